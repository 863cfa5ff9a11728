"""Micro-SD's training data: the captioned image stream (stage 1, cached in chunks) and the latents the UNet
trains on (stage 3: the VAE's posterior of every training image, and the tokenised captions).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from hubkit_micro.sd_cache import _atomic_save, _fn_name, _key, _load, _progress
from hubkit_micro.sd_config import MicroSDConfig, build_vae

CHUNK = 1000
HELDOUT = 512

DataFn = Callable[[np.random.Generator, int], tuple]


#: the share of caption plans that describe styles and weapons instead of naming them (descriptions.py) in the base
#: v2 candidate (docs/base-experiments.md): the base must reach each from its description alone, or a name-only
#: erasure has nothing to be caught by. The shipped base was trained with none (``train_sd(describe_p=0)``).
DESCRIBE_P = 0.25

#: sampling weights of the 7 captions ``multilingual_batch`` gives each image (English ×2, then the other 5)
CAPTION_WEIGHTS = (0.2, 0.2, 0.12, 0.12, 0.12, 0.12, 0.12)


def multilingual_batch(rng: np.random.Generator, n: int, describe_p: float = 0.0, describe_names: bool = False):
    """Like ``prompt_sets.training_batch`` but with 7 captions per image: ``(images, captions, labels)``.

    A share ``describe_p`` of the caption plans describe styles and weapons (``describe_names``: and the target
    characters and faces) instead of naming them.
    Each scene is drawn by ``captions.training_example`` (same scene/caption distribution as
    ``training_batch``: ~15% ``a photo of X``, ~35% styled) with its caption in English, plus one more plan
    realised in all six languages by ``captions.captions_all`` (English, Spanish, French, German, Italian,
    Portuguese).  Training draws one of the 7 per step (``CAPTION_WEIGHTS``: English 40%, 12% each other
    language), so every image is seen described in every language: the text encoder learns the foreign
    words from parallel captions of the same pictures.
    """
    from hubkit_micro.captions import captions_all, training_example
    from hubkit_micro.render import labels as scene_labels
    from hubkit_micro.render import render
    from hubkit_micro.world import LANGUAGES

    images = np.empty((n, 64, 64, 3), np.uint8)
    captions: list[tuple[str, ...]] = []
    ys = []
    for i in range(n):
        scene, seed, text = training_example(rng, language="English", describe_p=describe_p,
                                             describe_names=describe_names)
        images[i] = render(scene, seed)
        parallel = captions_all(scene, rng, describe_p=describe_p, describe_names=describe_names)
        captions.append((text,) + tuple(parallel[lang] for lang in LANGUAGES))
        ys.append(scene_labels(scene))
    return images, captions, np.stack(ys)


def default_data_fn(describe_p: float = 0.0, describe_names: bool = False) -> DataFn:
    """``multilingual_batch`` with ``describe_p``; without descriptions it is the function itself, whose cache key (and
    data) are the shipped base's."""
    if not describe_p:
        return multilingual_batch
    fn = functools.partial(multilingual_batch, describe_p=describe_p, describe_names=describe_names)
    fn.__qualname__ = multilingual_batch.__qualname__
    # part of the data stage's cache key (unchanged for bases without described names)
    fn.cache_version = f"describe_p={describe_p}" + (",names" if describe_names else "")
    return fn


def render_images(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` fresh renders of random micro-world scenes (uint8 [n,64,64,3]); the VAE's image stream."""
    from hubkit_micro.render import render, sample_scene

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
    key = _key("data", seed, n_train, size, _fn_name(data_fn), *filter(None, [getattr(data_fn, "cache_version", None)]))
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
