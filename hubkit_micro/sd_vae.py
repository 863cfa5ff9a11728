"""Micro-SD's VAE: training (stage 2; then, with a frozen encoder, the decoder-only fine-tune) and the final VAE
with the latents' statistics folded in.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from hubkit_micro.sd_cache import _adamw, _atomic_save, _fn_name, _key, _load, _lr_at, _progress, Checkpoints
from hubkit_micro.sd_config import MicroSDConfig, build_vae, count_params
from hubkit_micro.sd_data import HELDOUT, psnr, to_tensor

KL_WEIGHT = 1e-6          # LDM's KL weight (relative to a per-pixel-summed reconstruction loss)


# ------------------------------------------------------------------------------------------- stage 2: VAE
def _edges(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def _vae_loss(vae, x: torch.Tensor, g: torch.Generator, decoder_only: bool = False):
    if decoder_only:
        with torch.no_grad():
            h = vae.quant_conv(vae.encoder(x))
    else:
        h = vae.quant_conv(vae.encoder(x))
    mean, logvar = h.chunk(2, dim=1)
    logvar = logvar.clamp(-30.0, 20.0)
    std = torch.exp(0.5 * logvar)
    z = mean + std * torch.randn(mean.shape, generator=g)
    rec = vae.decoder(vae.post_quant_conv(z))
    l1 = (rec - x).abs().mean()
    mse = (rec - x).pow(2).mean()
    kl = 0.5 * (mean.pow(2) + std.pow(2) - 1.0 - logvar).flatten(1).sum(1).mean()
    if decoder_only:   # sharpen: match horizontal/vertical differences too (textures, outlines)
        (rx, ry), (tx, ty) = _edges(rec), _edges(x)
        loss = l1 + mse + 0.5 * ((rx - tx).abs().mean() + (ry - ty).abs().mean())
    else:
        loss = l1 + mse + KL_WEIGHT * kl / x[0].numel()
    return loss, l1.detach(), kl.detach()


def _train_vae(work_dir: Path, image_fn, cfg: MicroSDConfig, seed: int, steps: int, batch: int,
               lr: float, ckpt_every_s: float, ckpt_every_steps: int | None, stop_after: int | None, log,
               base: tuple[str, dict] | None = None, fused_adam: bool = False):
    """Train the VAE; with ``base=(vae_key, vae_result)``, fine-tune only its decoder (frozen encoder, so the
    latents the UNet is trained on do not change) on a fresh stream of renders. ``fused_adam``: torch's fused AdamW
    kernel (the same update, rounded differently: other bits, so it is part of the cache key)."""
    decoder_only = base is not None
    name = "dec" if decoder_only else "vae"
    key = _key(name, _fn_name(image_fn), cfg.vae_dict(), seed, steps, batch, lr, KL_WEIGHT,
               base[0] if base else None, *(("fused-adam",) if fused_adam else ()))
    d = work_dir / f"{name}-{key}"
    final = d / "final.pt"
    if final.exists():
        return _load(final), key
    ckpt_path = d / "ckpt.pt"

    torch.manual_seed(seed + 1)
    vae = build_vae(cfg)
    if decoder_only:
        vae.load_state_dict(base[1]["model"])
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    opt = _adamw(params, lr, fused_adam)
    g = torch.Generator().manual_seed(seed + (12 if decoder_only else 2))
    rng = np.random.default_rng([seed, 15 if decoder_only else 5])
    step, elapsed, hist = 0, 0.0, []
    if ckpt_path.exists():
        ck = _load(ckpt_path)
        vae.load_state_dict(ck["model"]), opt.load_state_dict(ck["opt"]), g.set_state(ck["gen"])
        rng.bit_generator.state = ck["np_rng"]
        step, elapsed, hist = ck["step"], ck["elapsed"], ck["hist"]
        log(f"{name}: resuming at step {step}/{steps}")
    else:
        log(f"{name}: {count_params(vae):,} params ({sum(p.numel() for p in params):,} trained), "
            f"factor {cfg.vae_factor}, {steps} steps of batch {batch}")

    def save():
        _atomic_save({"model": vae.state_dict(), "opt": opt.state_dict(), "gen": g.get_state(),
                      "np_rng": rng.bit_generator.state, "step": step,
                      "elapsed": elapsed, "hist": hist}, ckpt_path)

    vae.train()
    bar = _progress(steps, step, name, log.quiet)
    checkpoints = Checkpoints(save, ckpt_every_s, ckpt_every_steps, stop_after)
    run_l1 = None
    done_here = 0
    while step < steps:
        t0 = time.perf_counter()
        for pg in opt.param_groups:
            pg["lr"] = _lr_at(step, steps, lr, warmup=min(100, steps // 10 + 1))
        x = to_tensor(image_fn(rng, batch), cfg.image_size)
        loss, l1, kl = _vae_loss(vae, x, g, decoder_only)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        done_here += 1
        elapsed += time.perf_counter() - t0
        run_l1 = float(l1) if run_l1 is None else 0.98 * run_l1 + 0.02 * float(l1)
        if step % 50 == 0 or step == steps:
            hist.append((step, run_l1, float(kl)))
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(l1=f"{run_l1:.4f}", kl=f"{float(kl):.0f}")
        if step % 200 == 0:
            log(f"{name} step {step}/{steps} l1 {run_l1:.4f} kl {float(kl):.1f} ({elapsed / step * 1000:.0f} ms/step)")
        checkpoints.after_step(step, done_here)
    if bar is not None:
        bar.close()

    # held-out reconstruction quality
    vae.eval()
    with torch.no_grad():
        xh = to_tensor(image_fn(np.random.default_rng([seed, 6]), HELDOUT), cfg.image_size)
        rec = torch.cat([vae.decode(vae.encode(xb).latent_dist.mode()).sample for xb in xh.split(128)])
        base_psnr = None
        if decoder_only:
            ref = build_vae(cfg)
            ref.load_state_dict(base[1]["model"])
            ref.eval()
            base_rec = torch.cat([ref.decode(ref.encode(xb).latent_dist.mode()).sample for xb in xh.split(128)])
            base_psnr = float(psnr(base_rec, xh).mean())
        p = psnr(rec, xh)
    result = {"model": vae.state_dict(), "steps": steps, "threads": torch.get_num_threads(), "heldout_images": xh,
              "heldout_recon": rec, "seconds": elapsed, "hist": hist,
              "heldout_psnr": float(p.mean()), "heldout_psnr_min": float(p.min()), "base_heldout_psnr": base_psnr,
              "final_l1": run_l1}
    log(f"{name} done: {steps} steps in {elapsed:.0f} s, held-out PSNR {result['heldout_psnr']:.2f} dB "
        f"(min {result['heldout_psnr_min']:.2f})")
    _atomic_save(result, final)
    ckpt_path.unlink(missing_ok=True)
    return result, key


def final_vae(cfg: MicroSDConfig, vae_state: dict, lat: dict):
    """The trained VAE with the latents' per-channel mean folded into it and ``scaling_factor`` = 1/std."""
    vae = build_vae(cfg)
    vae.load_state_dict(vae_state)
    shift = lat["shift"].float()
    with torch.no_grad():
        c = cfg.latent_channels
        # encoder: mean channels of quant_conv output shifted by -shift -> latents have zero mean
        vae.quant_conv.bias[:c] -= shift
        # decoder: post_quant_conv(z' + shift) = W z' + (W shift + b)
        w = vae.post_quant_conv.weight[:, :, 0, 0]
        vae.post_quant_conv.bias += w @ shift
    vae.register_to_config(scaling_factor=float(lat["scale"]))
    return vae.eval()
