"""Train the micro world's Stable Diffusion ("micro SD") from scratch and save it as a diffusers folder.

Stages (each cached under ``work_dir`` in a folder named by a hash of everything it depends on, so a re-run
resumes where it stopped and a changed setting redoes only the stages it affects):

1. ``vae-<key>/``   trains an ``AutoencoderKL`` (factor 4: 64 px -> 8×16×16 latents) on a stream of fresh
                    renders (L1 + MSE + LDM's tiny KL) and measures held-out reconstruction PSNR.
2. ``data-<key>/``  renders ``n_train`` training scenes with 7 captions each (``multilingual_batch``) in chunks.
3. ``lat-<key>.pt`` encodes every training image once (posterior mean and std, fp16), measures the latents'
                    per-channel mean and global std, tokenises the captions.
4. ``dec-<key>/``   fine-tunes the VAE's decoder only (frozen encoder, so the latents do not change; L1 + MSE +
                    an edge term), as SD's ft-MSE VAE did: sharper colours and outlines.
5. ``unet-<key>/``  trains the UNet and the CLIP text encoder jointly from scratch (epsilon prediction,
                    SD-1.x's scaled-linear betas, min-SNR-5 weighting, 10% empty-caption dropout, EMA 0.999).
6. ``out_dir``      ``StableDiffusionPipeline.save_pretrained`` (EMA weights, safetensors, fp32) + ``hubkit.json``.
                    The latents' mean is folded into the VAE's quant convs and ``scaling_factor`` = 1/std, so the
                    stock pipeline's ``latents * scaling_factor`` gives zero-mean, unit-std latents.

Training is deterministic from ``seed`` on a given machine and thread count: every random draw comes from a
``torch.Generator``/numpy ``Generator`` whose state is checkpointed, and a resumed run continues bit-identically.
The thread count is part of that: CPU gradients differ in their last bits between 1 and 2 threads, so the
shipped recipe (``build.SD_RECIPE``) names it per stage -- 1 thread up to the first UNet stage, 2 for the later
UNet stages (retraining the second stage so reproduced the shipped weights bit for bit). With other jobs on the
2 cores, 2 threads ran 3-20x slower than 1 (OpenMP threads wait on each other); they pay off on an idle machine.

    python -m hubkit.microworld.train_sd --out hubkit/microworld/weights/base
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from hubkit.microworld.sd_config import (
    MicroSDConfig,
    build_noise_scheduler,
    build_scheduler,
    build_text_encoder,
    build_unet,
    build_vae,
    count_params,
)

DEFAULT_WORK_DIR = Path(".scratch/train_sd")
CHUNK = 1000
HELDOUT = 512
KL_WEIGHT = 1e-6          # LDM's KL weight (relative to a per-pixel-summed reconstruction loss)
CAPTION_DROPOUT = 0.1
MIN_SNR_GAMMA = 5.0
EMA_DECAY = 0.999

# Default generation settings written to hubkit.json (chosen by measurement, see the module's report).
DEFAULT_STEPS = 20
DEFAULT_GUIDANCE = 5.0

DataFn = Callable[[np.random.Generator, int], tuple]


# ----------------------------------------------------------------------------------------------- helpers
def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _fn_name(fn) -> str:
    """A data source's name for cache keys (independent of how the module was imported/run)."""
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load(path: Path):
    return torch.load(path, map_location="cpu", weights_only=False)


class _Log:
    def __init__(self, path: Path | None, quiet: bool):
        self.path, self.quiet = path, quiet

    def __call__(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        if not self.quiet:
            print(line, file=sys.stderr, flush=True)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(line + "\n")


def _progress(total: int, initial: int, desc: str, quiet: bool):
    if quiet:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, mininterval=5.0, dynamic_ncols=True)


def _lr_at(step: int, total: int, base: float, warmup: int, final_frac: float = 0.1) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


#: sampling weights of the 7 captions ``multilingual_batch`` gives each image (English ×2, then the other 5)
CAPTION_WEIGHTS = (0.2, 0.2, 0.12, 0.12, 0.12, 0.12, 0.12)


def multilingual_batch(rng: np.random.Generator, n: int):
    """Like ``prompt_sets.training_batch`` but with 7 captions per image: ``(images, captions, labels)``.

    Each scene is drawn by ``captions.training_example`` (same scene/caption distribution as
    ``training_batch``: ~15% ``a photo of X``, ~35% styled) with its caption in English, plus one more plan
    realised in all six languages by ``captions.captions_all`` (English, Spanish, French, German, Italian,
    Portuguese).  Training draws one of the 7 per step (``CAPTION_WEIGHTS``: English 40%, 12% each other
    language), so every image is seen described in every language: the text encoder learns the foreign
    words from parallel captions of the same pictures.
    """
    from hubkit.microworld.captions import captions_all, training_example
    from hubkit.microworld.render import labels as scene_labels
    from hubkit.microworld.render import render
    from hubkit.microworld.world import LANGUAGES

    images = np.empty((n, 64, 64, 3), np.uint8)
    captions: list[tuple[str, ...]] = []
    ys = []
    for i in range(n):
        scene, seed, text = training_example(rng, language="English")
        images[i] = render(scene, seed)
        parallel = captions_all(scene, rng)
        captions.append((text,) + tuple(parallel[lang] for lang in LANGUAGES))
        ys.append(scene_labels(scene))
    return images, captions, np.stack(ys)


def default_data_fn() -> DataFn:
    return multilingual_batch


def render_images(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` fresh renders of random micro-world scenes (uint8 [n,64,64,3]); the VAE's image stream."""
    from hubkit.microworld.render import render, sample_scene

    return np.stack([render(sample_scene(rng), int(rng.integers(2**31))) for _ in range(n)])


def to_tensor(images: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [n,H,W,3] -> float [-1,1] [n,3,size,size]."""
    x = torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="area")
    return x.contiguous()


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of two [-1,1] batches, measured on the [0,1] scale."""
    mse = ((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


# ------------------------------------------------------------------------------------------ stage 1: data
def _render_data(work_dir: Path, data_fn: DataFn, seed: int, n_train: int, size: int, log) -> dict:
    key = _key("data", seed, n_train, size, _fn_name(data_fn))
    d = work_dir / f"data-{key}"
    final = d / "data.pt"
    if final.exists():
        return {**_load(final), "key": key}
    d.mkdir(parents=True, exist_ok=True)

    def chunk(i: int, n: int) -> dict:
        p = d / f"chunk{i:05d}.pt"
        if p.exists():
            return _load(p)
        imgs, caps, labels = data_fn(np.random.default_rng([seed, 7, i]), n)
        imgs = torch.as_tensor(np.asarray(imgs, dtype=np.uint8))
        if imgs.shape[1] != size:
            imgs = to_tensor(imgs, size).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        out = {"images": imgs.contiguous(), "captions": list(caps), "labels": list(labels)}
        _atomic_save(out, p)
        return out

    n_chunks = -(-n_train // CHUNK)
    t0 = time.perf_counter()
    parts = []
    bar = _progress(n_chunks, 0, "render", log.quiet)
    for i in range(n_chunks):
        parts.append(chunk(i, min(CHUNK, n_train - i * CHUNK)))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    data = {
        "images": torch.cat([p["images"] for p in parts]),
        "captions": [c for p in parts for c in p["captions"]],
        "labels": [lab for p in parts for lab in p["labels"]],
        "render_seconds": time.perf_counter() - t0,
        "key": key,
    }
    _atomic_save(data, final)
    for i in range(n_chunks):
        (d / f"chunk{i:05d}.pt").unlink(missing_ok=True)
    log(f"rendered {n_train} captioned training scenes in {data['render_seconds']:.0f} s")
    return data


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
               base: tuple[str, dict] | None = None):
    """Train the VAE; with ``base=(vae_key, vae_result)``, fine-tune only its decoder (frozen encoder, so the
    latents the UNet is trained on do not change) on a fresh stream of renders."""
    decoder_only = base is not None
    name = "dec" if decoder_only else "vae"
    key = _key(name, _fn_name(image_fn), cfg.vae_dict(), seed, steps, batch, lr, KL_WEIGHT,
               base[0] if base else None)
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
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
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
    t_last_ck = time.perf_counter()
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
        if stop_after is not None and done_here >= stop_after:
            save()
            raise _Stopped()
        now = time.perf_counter()
        if (ckpt_every_steps and step % ckpt_every_steps == 0) or now - t_last_ck > ckpt_every_s:
            save()
            t_last_ck = now
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


class _Stopped(Exception):
    """Raised by ``stop_after`` to simulate a crash (tests)."""


# ---------------------------------------------------------------------------------------- stage 3: latents
def _encode_latents(work_dir: Path, data: dict, data_key: str, vae_result: dict, vae_key: str, cfg: MicroSDConfig,
                    tokenizer, log):
    path = work_dir / f"lat-{_key(vae_key, data_key)}.pt"
    if path.exists():
        return _load(path)
    t0 = time.perf_counter()
    vae = build_vae(cfg)
    vae.load_state_dict(vae_result["model"])
    vae.eval()
    means, stds = [], []
    with torch.no_grad():
        for xb in data["images"].split(256):
            h = vae.quant_conv(vae.encoder(to_tensor(xb, cfg.image_size)))
            mean, logvar = h.chunk(2, dim=1)
            means.append(mean)
            stds.append(torch.exp(0.5 * logvar.clamp(-30.0, 20.0)))
    mean = torch.cat(means)
    std = torch.cat(stds)
    shift = mean.mean(dim=(0, 2, 3))                                  # per-channel mean, folded into the VAE
    scale = float(1.0 / (mean - shift.view(1, -1, 1, 1)).std())     # SD's scaling_factor: 1 / std(latents)
    caps = [c if isinstance(c, (list, tuple)) else (c,) for c in data["captions"]]
    k = len(caps[0])
    assert all(len(c) == k for c in caps), "every image needs the same number of captions"
    flat = [t for c in caps for t in c]
    ids = tokenizer(flat, padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids.to(torch.int32).view(len(caps), k, -1)
    out = {"key": path.stem, "mean": mean.half(), "std": std.half(), "shift": shift, "scale": scale, "ids": ids,
           "posterior_std_mean": float(std.mean()), "seconds": time.perf_counter() - t0}
    log(f"latents {tuple(mean.shape)}: per-channel mean {[round(v, 3) for v in shift.tolist()]}, "
        f"scaling_factor {scale:.4f}, mean posterior std {out['posterior_std_mean']:.4f} "
        f"({out['seconds']:.0f} s)")
    _atomic_save(out, path)
    return out


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
    from hubkit.microworld import world

    y = torch.as_tensor(np.stack([np.asarray(l) for l in labels]))
    n_objects = len(world.OBJECT_LABELS)
    objects = y[:, :n_objects].sum(1)
    named = y[:, [world.LABEL_INDEX[l] for l in world.CHARACTERS + world.FACES]].amax(1) > 0
    styled = y[:, n_objects:].amax(1) > 0
    return torch.where((objects >= 2) & (named | styled), FOCUS_WEIGHT, 1.0).double()


def _train_unet(work_dir: Path, lat: dict, cfg: MicroSDConfig, tokenizer, seed: int, steps: int,
                batch: int, lr: float, ckpt_every_s: float, ckpt_every_steps: int | None,
                stop_after: int | None, log, init: dict | None = None, focus: dict | None = None):
    """Train UNet + text encoder from scratch, or (``init``: an earlier stage's result) continue from its EMA
    weights with a fresh optimiser and schedule and a different batch stream.

    ``focus`` (``{"name": ..., "weights": tensor[n_images]}``) draws training images in proportion to the
    weights instead of uniformly."""
    key = _key("unet", lat["key"], cfg.to_dict(), seed, steps, batch, lr, CAPTION_DROPOUT, MIN_SNR_GAMMA, EMA_DECAY,
               CAPTION_WEIGHTS, *((init["key"],) if init else ()), *((focus["name"],) if focus else ()))
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
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
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
    t_last_ck = time.perf_counter()
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
        if stop_after is not None and done_here >= stop_after:
            save()
            raise _Stopped()
        now = time.perf_counter()
        if (ckpt_every_steps and step % ckpt_every_steps == 0) or now - t_last_ck > ckpt_every_s:
            save()
            t_last_ck = now
    if bar is not None:
        bar.close()
    result = {"unet": ema_u, "text": ema_t, "steps": steps, "threads": torch.get_num_threads(), "seconds": elapsed,
              "hist": hist, "final_loss": run_loss}
    log(f"unet done: {steps} steps in {elapsed:.0f} s ({elapsed / max(1, steps) * 1000:.0f} ms/step), "
        f"loss {run_loss:.4f}")
    _atomic_save(result, final)
    ckpt_path.unlink(missing_ok=True)
    return {**result, "key": key}


# ------------------------------------------------------------------------------------------ stage 5: save
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


def assemble_pipeline(cfg: MicroSDConfig, tokenizer, vae_state: dict, lat: dict, unet_state: dict, text_state: dict):
    """Build the ``StableDiffusionPipeline`` (EMA weights, the final VAE, DDIM)."""
    from diffusers import StableDiffusionPipeline

    vae = final_vae(cfg, vae_state, lat)
    unet = build_unet(cfg)
    unet.load_state_dict(unet_state)
    text_encoder = build_text_encoder(cfg, tokenizer)
    text_encoder.load_state_dict(text_state)
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder.eval(), tokenizer=tokenizer, unet=unet.eval(),
        scheduler=build_scheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_pipeline(pipe, out_dir: Path) -> Path:
    """``save_pretrained`` (safetensors), with the tokenizer stored as ``vocab.json`` + ``merges.txt``.

    transformers 5 writes the tokenizer as a 3.6 MB ``tokenizer.json``; the two source files hold the same
    49,408-token vocabulary in 1.5 MB and ``CLIPTokenizer.from_pretrained`` builds the identical tokenizer
    from them.
    """
    from hubkit.tokenizer import write_clip_vocab

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(str(out_dir), safe_serialization=True)
    tok_dir = out_dir / "tokenizer"
    write_clip_vocab(tok_dir)
    (tok_dir / "tokenizer.json").unlink(missing_ok=True)
    for f in out_dir.rglob("*"):
        if f.is_file():
            f.chmod(0o644)   # save_pretrained leaves safetensors files 0600
    return out_dir


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


# -------------------------------------------------------------------------------------------- entry point
def _restores_threads(fn):
    """Give the caller back its torch thread count: the stages set their own, a library call must not leak it."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        caller = torch.get_num_threads()
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(caller)
    return wrapper


@_restores_threads
def train_sd(
    out_dir: Path,
    *,
    seed: int = 0,
    work_dir: Path = DEFAULT_WORK_DIR,
    vae_steps: int = 2000,
    unet_steps: int = 8000,
    n_train: int = 30000,
    config: MicroSDConfig | None = None,
    vae_batch: int = 16,
    unet_batch: int = 64,
    vae_lr: float = 2e-3,
    dec_steps: int = 1500,
    dec_lr: float = 5e-4,
    unet_lr: float = 1e-3,
    unet_finetune_steps: int = 0,
    unet_finetune_lr: float = 3e-4,
    unet_focus_steps: int = 0,
    unet_focus_lr: float = 3e-4,
    unet_finetune_threads: int | None = None,
    steps: int = DEFAULT_STEPS,
    guidance: float = DEFAULT_GUIDANCE,
    data_fn: DataFn | None = None,
    image_fn: Callable[[np.random.Generator, int], np.ndarray] | None = None,
    checkpoint_every_s: float = 180.0,
    checkpoint_every_steps: int | None = None,
    threads: int | None = 1,
    quiet: bool = False,
    _stop_after_vae: int | None = None,
    _stop_after_unet: int | None = None,
) -> Path:
    """Train micro SD (resuming from ``work_dir``) and write the pipeline folder to ``out_dir``; returns it.

    ``steps``/``guidance`` are the default generation settings recorded in ``out_dir/hubkit.json``.
    ``threads`` applies to every stage except the UNet's later ones (finetune, focus), which use
    ``unet_finetune_threads`` when given: CPU gradients differ in their last bits between thread counts,
    so a rebuild reproduces the shipped weights only with the thread count each stage was trained at.
    ``_stop_after_*`` stop the run (leaving a checkpoint) after that many steps of this call, as a crash would.
    """
    from hubkit.tokenizer import clip_tokenizer

    t_start = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    cfg = config or MicroSDConfig()
    work_dir = Path(work_dir)
    out_dir = Path(out_dir)
    log = _Log(work_dir / "train.log", quiet)
    image_fn = image_fn or render_images
    tokenizer = clip_tokenizer()

    try:
        vae_result, vae_key = _train_vae(work_dir, image_fn, cfg, seed, vae_steps, vae_batch, vae_lr,
                                         checkpoint_every_s, checkpoint_every_steps, _stop_after_vae, log)
        data = _render_data(work_dir, data_fn or default_data_fn(), seed, n_train, cfg.image_size, log)
        data_key = data["key"]
        lat = _encode_latents(work_dir, data, data_key, vae_result, vae_key, cfg, tokenizer, log)
        dec_result = None
        if dec_steps:
            dec_result, _ = _train_vae(work_dir, image_fn, cfg, seed, dec_steps, vae_batch, dec_lr, checkpoint_every_s,
                                       checkpoint_every_steps, None, log, base=(vae_key, vae_result))
        vae_state = (dec_result or vae_result)["model"]
        # the final VAE is known now: write it early (the judge trainer trains on its reconstructions)
        final_vae(cfg, vae_state, lat).save_pretrained(str(out_dir / "vae"), safe_serialization=True)
        unet_result = _train_unet(work_dir, lat, cfg, tokenizer, seed, unet_steps, unet_batch, unet_lr,
                                  checkpoint_every_s, checkpoint_every_steps, _stop_after_unet, log)
        unet_seconds = unet_result["seconds"]
        first_unet_threads = unet_result.get("threads")
        if unet_finetune_threads and (unet_finetune_steps or unet_focus_steps):
            torch.set_num_threads(unet_finetune_threads)
        if unet_finetune_steps:
            unet_result = _train_unet(work_dir, lat, cfg, tokenizer, seed, unet_finetune_steps, unet_batch,
                                      unet_finetune_lr, checkpoint_every_s, checkpoint_every_steps, _stop_after_unet,
                                      log, init=unet_result)
            unet_seconds += unet_result["seconds"]
        if unet_focus_steps:
            focus = {"name": FOCUS_RULE, "weights": focus_weights(data["labels"])}
            unet_result = _train_unet(work_dir, lat, cfg, tokenizer, seed, unet_focus_steps, unet_batch,
                                      unet_focus_lr, checkpoint_every_s, checkpoint_every_steps, _stop_after_unet,
                                      log, init=unet_result, focus=focus)
            unet_seconds += unet_result["seconds"]
    except _Stopped:
        log("stopped early on request; re-run to resume")
        raise

    pipe = assemble_pipeline(cfg, tokenizer, vae_state, lat, unet_result["unet"], unet_result["text"])
    save_pipeline(pipe, out_dir)
    dec_seconds = dec_result["seconds"] if dec_result else 0.0
    train_seconds = (data["render_seconds"] + vae_result["seconds"] + lat["seconds"] + dec_seconds
                     + unet_seconds)
    meta = {
        "height": cfg.image_size,
        "width": cfg.image_size,
        "steps": steps,
        "guidance": guidance,
        "scheduler": "DDIMScheduler",
        "train_seconds": round(train_seconds, 1),
        "train_seconds_by_stage": {
            "render": round(data["render_seconds"], 1), "vae": round(vae_result["seconds"], 1),
            "encode": round(lat["seconds"], 1), "vae_decoder_finetune": round(dec_seconds, 1),
            "unet_text": round(unet_seconds, 1),
        },
        "seed": seed,
        "n_train": n_train,
        "vae_steps": vae_steps,
        "unet_steps": unet_steps,
        "unet_finetune_steps": unet_finetune_steps,
        "unet_finetune_lr": unet_finetune_lr,
        "unet_focus_steps": unet_focus_steps,
        "unet_focus_lr": unet_focus_lr,
        "unet_focus_weight": FOCUS_WEIGHT if unet_focus_steps else None,
        "vae_batch": vae_batch,
        "unet_batch": unet_batch,
        "config": cfg.to_dict(),
        "vae_factor": cfg.vae_factor,
        "scaling_factor": float(lat["scale"]),
        "vae_heldout_psnr_db": round((dec_result or vae_result)["heldout_psnr"], 2),
        "vae_heldout_psnr_db_before_decoder_finetune": round(vae_result["heldout_psnr"], 2),
        "dec_steps": dec_steps,
        "final_vae_l1": (dec_result or vae_result)["final_l1"],
        "final_unet_loss": unet_result["final_loss"],
        "params": {"unet": count_params(pipe.unet), "vae": count_params(pipe.vae),
                   "text_encoder": count_params(pipe.text_encoder)},
        "threads": {"vae": vae_result.get("threads"), "unet_text": first_unet_threads,
                    **({"unet_finetune": unet_result.get("threads")}
                       if unet_finetune_steps or unet_focus_steps else {})},
    }
    (out_dir / "hubkit.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"saved {out_dir} ({folder_bytes(out_dir) / 1e6:.1f} MB); total {time.perf_counter() - t_start:.0f} s "
        f"this call, {train_seconds:.0f} s of training")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hubkit.microworld.train_sd", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="pipeline folder to write")
    ap.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="checkpoints and caches (resumable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vae-steps", type=int, default=2000)
    ap.add_argument("--unet-steps", type=int, default=8000)
    ap.add_argument("--dec-steps", type=int, default=1500, help="decoder-only VAE fine-tune steps (0: none)")
    ap.add_argument("--n-train", type=int, default=30000)
    ap.add_argument("--unet-batch", type=int, default=64)
    ap.add_argument("--unet-lr", type=float, default=1e-3)
    ap.add_argument("--unet-finetune-steps", type=int, default=0,
                    help="continue from the UNet's EMA weights for this many steps (fresh optimiser, lower lr)")
    ap.add_argument("--unet-finetune-lr", type=float, default=3e-4)
    ap.add_argument("--unet-focus-steps", type=int, default=0,
                    help="then continue this many steps drawing multi-object scenes with a character, a face or "
                         "a named style FOCUS_WEIGHT times as often")
    ap.add_argument("--unet-focus-lr", type=float, default=3e-4)
    ap.add_argument("--unet-finetune-threads", type=int, default=None,
                    help="torch threads for the later UNet stages (default: --threads; the shipped base used 2)")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="default DDIM steps recorded in hubkit.json")
    ap.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE, help="default guidance for hubkit.json")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the shipped weights used 1)")
    ap.add_argument("--checkpoint-every-s", type=float, default=180.0)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hubkit.microworld import train_sd as module   # not __main__: same defaults/cache keys however it is run

    module.train_sd(a.out, seed=a.seed, work_dir=a.work_dir, vae_steps=a.vae_steps, dec_steps=a.dec_steps,
                    unet_steps=a.unet_steps, n_train=a.n_train, unet_batch=a.unet_batch, unet_lr=a.unet_lr,
                    unet_finetune_steps=a.unet_finetune_steps, unet_finetune_lr=a.unet_finetune_lr,
                    unet_focus_steps=a.unet_focus_steps, unet_focus_lr=a.unet_focus_lr,
                    unet_finetune_threads=a.unet_finetune_threads,
                    steps=a.steps, guidance=a.guidance, threads=a.threads,
                    checkpoint_every_s=a.checkpoint_every_s, quiet=a.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
