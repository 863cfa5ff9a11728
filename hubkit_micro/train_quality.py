"""Training of ``micro-quality`` (clean vs degraded renders; target 1 - severity, score 10 * sigmoid(logit))."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hubkit_micro import judge_nets
from hubkit_micro.judge_data import _adamw, _batch_images, _log, _lr, degrade, diffusion_like

QUALITY_WIDTHS = (16, 24, 32, 48, 64)


def train_quality(data, recon, steps: int, batch: int, seed: int):
    imgs = data[0]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 2)
    rng = np.random.default_rng([seed, 12])
    net = judge_nets.QualityNet(QUALITY_WIDTHS)
    opt = _adamw(net, 3e-3)
    net.train()
    for step in range(steps):
        for grp in opt.param_groups:
            grp["lr"] = _lr(step, steps, 3e-3)
        idx = rng.integers(0, len(imgs), batch)
        x = _batch_images(imgs, recon, idx, rng, 0.3)
        clean = torch.rand(batch, generator=g) < 0.4
        sev = torch.rand(batch, generator=g)
        target = torch.where(clean, torch.ones(batch), 0.7 * (1 - sev))
        light = diffusion_like(x, g, strength=0.5)
        bad = degrade(x, sev, g)
        x = torch.where(clean.view(-1, 1, 1, 1), light, bad)
        loss = F.binary_cross_entropy_with_logits(net(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 300 == 0 or step == steps - 1:
            _log(f"quality step {step}/{steps} loss {loss.item():.4f}")
    return net.eval()
