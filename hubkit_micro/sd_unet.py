"""Micro-SD's UNet and CLIP text encoder, trained jointly on the cached latents (stage 4; later stages continue
from an earlier one's EMA weights, optionally drawing a focus set of images more often).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from hubkit_micro.sd_cache import _adamw, _atomic_save, _key, _load, _lr_at, _progress, Checkpoints
from hubkit_micro.sd_config import MicroSDConfig, build_noise_scheduler, build_text_encoder, build_unet, count_params
from hubkit_micro.sd_data import CAPTION_WEIGHTS

CAPTION_DROPOUT = 0.1
MIN_SNR_GAMMA = 5.0
EMA_DECAY = 0.999


# ----------------------------------------------------------------------------------- stage 4: UNet + text
def _ema_update(ema: dict, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                ema[k].mul_(decay).add_(v, alpha=1 - decay)
            else:
                ema[k].copy_(v)


#: the focus stage's sampling weight for scenes of two or more objects with a character, a face or a named style
FOCUS_WEIGHT = 3.0
#: what ``focus_weights`` favours, in the focus stage's cache key (change it with the rule)
FOCUS_RULE = f"focus:multi-object+character/face/style x{FOCUS_WEIGHT}"


def focus_weights(labels) -> torch.Tensor:
    """Per-image sampling weights for the focus stage: FOCUS_WEIGHT for a scene of 2+ objects that holds a
    character, a face or a named style, else 1.

    Why: the base model drew these concepts alone but dropped them from multi-object prompts (HUB's target
    prompts name other nouns too), which left Zorbo and Dario Voss at 0.64 and 0.67. Weighting only the
    characters and faces raised those and cost the style Pointelli (0.88 -> 0.70), so styled scenes count too.
    """
    from hubkit_micro import world

    y = torch.as_tensor(np.stack([np.asarray(l) for l in labels]))
    n_objects = len(world.OBJECT_LABELS)
    objects = y[:, :n_objects].sum(1)
    named = y[:, [world.LABEL_INDEX[l] for l in world.CHARACTERS + world.FACES]].amax(1) > 0
    styled = y[:, n_objects:].amax(1) > 0
    return torch.where((objects >= 2) & (named | styled), FOCUS_WEIGHT, 1.0).double()


def _train_unet(work_dir: Path, lat: dict, cfg: MicroSDConfig, tokenizer, seed: int, steps: int,
                batch: int, lr: float, ckpt_every_s: float, ckpt_every_steps: int | None,
                stop_after: int | None, log, init: dict | None = None, focus: dict | None = None,
                offset_noise: float = 0.0, fused_adam: bool = False):
    """Train UNet + text encoder from scratch, or (``init``: an earlier stage's result) continue from its EMA
    weights with a fresh optimiser and schedule and a different batch stream.

    ``focus`` (``{"name": ..., "weights": tensor[n_images]}``) draws training images in proportion to the
    weights instead of uniformly.

    ``offset_noise`` adds a per-image, per-channel constant of that standard deviation to the training noise
    (Guttenberg, "Diffusion with offset noise", 2023). Why: an epsilon-predicting model barely pays, in loss, for
    getting an image's overall brightness wrong at high noise (SD's last timestep keeps 7% of the signal), so it
    learns not to read the prompt for it and starts every sample from a mid-grey mean. A style on a black ground
    then comes out on a pale one: base v4 drew Neonardo in 38 of 64 images, and the same stage 2 with offset
    noise 0.1 in 64 of 64 (docs/base-experiments.md).

    ``fused_adam``: torch's fused AdamW kernel, 8% faster per 2-core step (the same update, rounded differently)."""
    key = _key("unet", lat["key"], cfg.to_dict(), seed, steps, batch, lr, CAPTION_DROPOUT, MIN_SNR_GAMMA, EMA_DECAY,
               CAPTION_WEIGHTS, *((init["key"],) if init else ()), *((focus["name"],) if focus else ()),
               *((f"offset-noise:{offset_noise}",) if offset_noise else ()), *(("fused-adam",) if fused_adam else ()))
    d = work_dir / f"unet-{key}"
    final = d / "final.pt"
    if final.exists():
        return {**_load(final), "key": key}
    ckpt_path = d / "ckpt.pt"

    torch.manual_seed(seed + 3)
    unet = build_unet(cfg)
    text_encoder = build_text_encoder(cfg, tokenizer)
    if init:
        unet.load_state_dict(init["unet"])
        text_encoder.load_state_dict(init["text"])
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = _adamw(params, lr, fused_adam)
    ema_u = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    ema_t = {k: v.detach().clone() for k, v in text_encoder.state_dict().items()}
    g = torch.Generator().manual_seed(seed + 4 + (1000 if init else 0) + (1000 if focus else 0))
    step, elapsed, hist = 0, 0.0, []
    if ckpt_path.exists():
        ck = _load(ckpt_path)
        unet.load_state_dict(ck["unet"]), text_encoder.load_state_dict(ck["text"]), opt.load_state_dict(ck["opt"])
        ema_u, ema_t = ck["ema_unet"], ck["ema_text"]
        g.set_state(ck["gen"])
        step, elapsed, hist = ck["step"], ck["elapsed"], ck["hist"]
        log(f"unet: resuming at step {step}/{steps}")
    else:
        log(f"unet: {count_params(unet):,} params, text encoder {count_params(text_encoder):,} params, "
            f"{steps} steps of batch {batch}, latents {cfg.latent_channels}x{cfg.latent_size}x{cfg.latent_size}")

    noise_sched = build_noise_scheduler()
    acp = noise_sched.alphas_cumprod.float()
    snr = acp / (1 - acp)
    loss_w = torch.clamp(snr, max=MIN_SNR_GAMMA) / snr
    sqrt_a, sqrt_1ma = acp.sqrt(), (1 - acp).sqrt()
    empty_ids = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length,
                          return_tensors="pt").input_ids.to(torch.int32)
    mean_all, std_all, ids_all = lat["mean"], lat["std"], lat["ids"]
    k = ids_all.shape[1]
    cap_w = torch.tensor(CAPTION_WEIGHTS if k == len(CAPTION_WEIGHTS) else [1.0] * k, dtype=torch.float64)
    shift, scale = lat["shift"].view(1, -1, 1, 1), lat["scale"]
    n = mean_all.shape[0]

    def save():
        _atomic_save({"unet": unet.state_dict(), "text": text_encoder.state_dict(), "opt": opt.state_dict(),
                      "ema_unet": ema_u, "ema_text": ema_t, "gen": g.get_state(), "step": step,
                      "elapsed": elapsed, "hist": hist}, ckpt_path)

    unet.train()
    text_encoder.train()
    bar = _progress(steps, step, "unet+text", log.quiet)
    checkpoints = Checkpoints(save, ckpt_every_s, ckpt_every_steps, stop_after)
    run_loss = None
    done_here = 0
    while step < steps:
        t0 = time.perf_counter()
        for pg in opt.param_groups:
            pg["lr"] = _lr_at(step, steps, lr, warmup=min(300, steps // 10 + 1))
        if focus is None:
            idx = torch.randint(0, n, (batch,), generator=g)
        else:
            idx = torch.multinomial(focus["weights"], batch, replacement=True, generator=g)
        z = mean_all[idx].float() + std_all[idx].float() * torch.randn((batch, *mean_all.shape[1:]), generator=g)
        z = (z - shift) * scale
        which = torch.multinomial(cap_w, batch, replacement=True, generator=g)
        ids = ids_all[idx, which].clone()
        drop = torch.rand(batch, generator=g) < CAPTION_DROPOUT
        ids[drop] = empty_ids
        t = torch.randint(0, acp.shape[0], (batch,), generator=g)
        noise = torch.randn(z.shape, generator=g)
        if offset_noise:
            noise = noise + offset_noise * torch.randn((batch, z.shape[1], 1, 1), generator=g)
        zt = sqrt_a[t].view(-1, 1, 1, 1) * z + sqrt_1ma[t].view(-1, 1, 1, 1) * noise
        cond = text_encoder(ids.long())[0]
        pred = unet(zt, t, cond).sample
        per = (pred - noise).pow(2).flatten(1).mean(1)
        loss = (per * loss_w[t]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        done_here += 1
        decay = min(EMA_DECAY, (1 + step) / (10 + step))
        _ema_update(ema_u, unet, decay)
        _ema_update(ema_t, text_encoder, decay)
        elapsed += time.perf_counter() - t0
        lv = float(per.detach().mean())
        run_loss = lv if run_loss is None else 0.99 * run_loss + 0.01 * lv
        if step % 50 == 0 or step == steps:
            hist.append((step, run_loss))
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{run_loss:.4f}")
        if step % 200 == 0:
            log(f"unet step {step}/{steps} loss {run_loss:.4f} ({elapsed / step * 1000:.0f} ms/step)")
        checkpoints.after_step(step, done_here)
    if bar is not None:
        bar.close()
    result = {"unet": ema_u, "text": ema_t, "steps": steps, "threads": torch.get_num_threads(), "seconds": elapsed,
              "hist": hist, "final_loss": run_loss}
    log(f"unet done: {steps} steps in {elapsed:.0f} s ({elapsed / max(1, steps) * 1000:.0f} ms/step), "
        f"loss {run_loss:.4f}")
    _atomic_save(result, final)
    ckpt_path.unlink(missing_ok=True)
    return {**result, "key": key}
