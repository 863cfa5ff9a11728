"""Data for the judge trainers (:mod:`hubkit_micro.train_judges`): renders with captions and labels, the base
VAE's reconstructions of them, the augmentations that imitate a small diffusion model's output and the
degradations the quality judge learns, plus the few helpers every judge's training loop shares (log, learning-rate
schedule, optimiser, batches, batched prediction). All randomness comes from the generators passed in.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def _log(msg: str) -> None:
    print(f"[train_judges] {msg}", file=sys.stderr, flush=True)


def _training_batch():
    try:
        from hubkit_micro.prompt_sets import training_batch
    except ImportError:  # prompt_sets re-exports it; captions defines it
        from hubkit_micro.captions import training_batch
    return training_batch


def _lr(step: int, total: int, base: float, warmup: int = 100) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 [n,64,64,3] -> float [n,3,64,64] in [0,1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


# -------------------------------------------------------------------------------------------------
# augmentations (batched torch ops, all randomness from ``g``)
# -------------------------------------------------------------------------------------------------
def _gauss_kernel(sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(2.5 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0.05:
        return x
    k = _gauss_kernel(sigma)
    r = (len(k) - 1) // 2
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _blur_per_sample(x: torch.Tensor, sigmas: torch.Tensor, levels=(0.0, 0.5, 0.8, 1.1, 1.5, 2.0, 2.6, 3.2)) -> torch.Tensor:
    lv = torch.tensor(levels)
    q = (sigmas.view(-1, 1) - lv.view(1, -1)).abs().argmin(1)
    out = x.clone()
    for j, s in enumerate(levels):
        idx = (q == j).nonzero().flatten()
        if len(idx) and s > 0:
            out[idx] = blur(x[idx], s)
    return out


def _shift(x: torch.Tensor, g: torch.Generator, max_px: int) -> torch.Tensor:
    if max_px <= 0:
        return x
    n = x.shape[0]
    p = max_px
    xp = F.pad(x, (p, p, p, p), mode="replicate")
    d = torch.randint(0, 2 * p + 1, (n, 2), generator=g)
    out = torch.empty_like(x)
    for i in range(n):
        dy, dx = int(d[i, 0]), int(d[i, 1])
        out[i] = xp[i, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]
    return out


def diffusion_like(x: torch.Tensor, g: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """What a small diffusion model does to a render: slight blur, noise, colour shifts, small shifts."""
    n = x.shape[0]
    u = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    x = _shift(x, g, 2)
    sig = torch.where(u(n) < 0.55, u(n) * 1.1 * strength, torch.zeros(n))
    x = _blur_per_sample(x, sig)
    # colour: per-channel gain, brightness, contrast, saturation
    gain = 1 + (u(n, 3, 1, 1) - 0.5) * 0.14 * strength
    bright = (u(n, 1, 1, 1) - 0.5) * 0.12 * strength
    contrast = 1 + (u(n, 1, 1, 1) - 0.5) * 0.3 * strength
    sat = 1 + (u(n, 1, 1, 1) - 0.5) * 0.4 * strength
    m = x.mean((1, 2, 3), keepdim=True)
    x = (x - m) * contrast + m
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * sat
    x = x * gain + bright
    noise = torch.where(u(n, 1, 1, 1) < 0.6, u(n, 1, 1, 1) * 0.05 * strength, torch.zeros(n, 1, 1, 1))
    x = x + noise * torch.randn(x.shape, generator=g)
    return x.clamp_(0, 1)


def degrade(x: torch.Tensor, severity: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Quality degradations, one or two per image, strength growing with ``severity`` in [0,1]."""
    n = x.shape[0]
    u = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    out = x.clone()
    kinds = torch.randint(0, 6, (n, 2), generator=g)
    second = u(n) < 0.35
    for slot in range(2):
        for k in range(6):
            idx = ((kinds[:, slot] == k) & (second if slot == 1 else torch.ones(n, dtype=torch.bool))).nonzero().flatten()
            if len(idx) == 0:
                continue
            s = severity[idx].view(-1, 1, 1, 1)
            xi = out[idx]
            if k == 0:  # blur
                xi = _blur_per_sample(xi, 0.7 + 2.6 * severity[idx])
            elif k == 1:  # noise
                xi = xi + (0.04 + 0.26 * s) * torch.randn(xi.shape, generator=g)
            elif k == 2:  # colour washing: towards a flat tint, lower contrast and saturation
                tint = 0.35 + 0.5 * u(len(idx), 3, 1, 1)
                a = 0.25 + 0.6 * s
                grey = xi.mean(1, keepdim=True)
                xi = (1 - a) * (grey + (xi - grey) * (1 - a)) + a * tint
            elif k == 3:  # blotches
                m = len(idx)
                yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
                for _ in range(3):
                    cy, cx = u(m, 1, 1, 1) * 64, u(m, 1, 1, 1) * 64
                    r = 4 + 10 * u(m, 1, 1, 1) * (0.5 + s)
                    blob = torch.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2)))
                    col = u(m, 3, 1, 1)
                    alpha = (0.35 + 0.6 * s) * blob
                    xi = xi * (1 - alpha) + col * alpha
            elif k == 4:  # smear: a smooth random displacement field
                m = len(idx)
                coarse = torch.randn(m, 2, 4, 4, generator=g) * (0.03 + 0.12 * s.view(-1, 1, 1, 1))
                flow = F.interpolate(coarse, size=(64, 64), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
                base = torch.stack(torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="xy"), -1)
                xi = F.grid_sample(xi, base.unsqueeze(0) + flow, mode="bilinear", padding_mode="border", align_corners=True)
                xi = _blur_per_sample(xi, 0.3 + 1.2 * severity[idx])
            else:  # blocky / low resolution
                factor = (2 + (severity[idx] * 4).clamp(max=3.99).floor()).long()  # 2..5 px blocks
                for f in factor.unique().tolist():
                    sel = (factor == f).nonzero().flatten()
                    small = F.interpolate(xi[sel], size=(64 // f, 64 // f), mode="area")
                    xi[sel] = F.interpolate(small, size=(64, 64), mode="bilinear", align_corners=False)
            out[idx] = xi
    return out.clamp_(0, 1)


# -------------------------------------------------------------------------------------------------
# data
# -------------------------------------------------------------------------------------------------
def render_data(seed: int, n: int, stream: int):
    """(images uint8, captions, labels) from ``training_batch`` with a generator derived from (seed, stream)."""
    rng = np.random.default_rng([seed, stream, 0x4A554447])
    return _training_batch()(rng, n)


def vae_reconstructions(images: np.ndarray, vae_dir: Path, batch: int = 128) -> np.ndarray | None:
    """Round-trip ``images`` through the base model's VAE (posterior mode), or None if it is not built."""
    if not (vae_dir / "config.json").is_file():
        return None
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(str(vae_dir)).eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            x = to_float(images[s : s + batch]) * 2 - 1
            z = vae.encode(x).latent_dist.mode()
            y = vae.decode(z).sample
            out.append(((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


# -------------------------------------------------------------------------------------------------
# training-loop helpers
# -------------------------------------------------------------------------------------------------
def _adamw(net, lr):
    decay = [p for n, p in net.named_parameters() if p.ndim > 1 and "pos" not in n]
    rest = [p for n, p in net.named_parameters() if not (p.ndim > 1 and "pos" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": rest, "weight_decay": 0.0}], lr=lr)


def _batch_images(imgs: np.ndarray, recon: np.ndarray | None, idx: np.ndarray, rng: np.random.Generator, p_recon: float):
    """float batch; a share ``p_recon`` of it comes from the VAE reconstructions of the same scenes."""
    x = to_float(imgs[idx])
    if recon is not None:
        sel = np.nonzero((idx < len(recon)) & (rng.random(len(idx)) < p_recon))[0]
        if len(sel):
            x[sel] = to_float(recon[idx[sel]])
    return x


def _predict(net, x: torch.Tensor, fn=None, bs: int = 500) -> torch.Tensor:
    out = []
    with torch.inference_mode():
        for s in range(0, len(x), bs):
            out.append(net(x[s : s + bs]) if fn is None else fn(x[s : s + bs]))
    return torch.cat(out)
