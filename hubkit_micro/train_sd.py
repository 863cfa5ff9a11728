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
shipped recipe (``build.SD_RECIPE``) names it per stage (base v5c: 2 threads for every stage). With other jobs on
the 2 cores, 2 threads ran 3-20x slower than 1 (OpenMP threads wait on each other); they pay off on an idle machine.

The stages live in :mod:`hubkit_micro.sd_data` (training images, latents), :mod:`hubkit_micro.sd_vae`,
:mod:`hubkit_micro.sd_unet` and :mod:`hubkit_micro.sd_cache` (cache keys, checkpoints, logging); this module
runs them in order and assembles the pipeline.

    python -m hubkit_micro.train_sd --out hubkit_micro/weights/base
"""


from __future__ import annotations

import argparse
import functools
import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from hubkit_micro.sd_cache import DEFAULT_WORK_DIR, _Log, _Stopped  # noqa: F401 (_Stopped: raised to callers)
from hubkit_micro.sd_config import MicroSDConfig, build_scheduler, build_text_encoder, build_unet, count_params
from hubkit_micro.sd_data import (  # noqa: F401 (re-exported: the data sources and helpers of the stages)
    CAPTION_WEIGHTS, DataFn, _encode_latents, _render_data, default_data_fn, multilingual_batch, psnr, render_images,
    to_tensor,
)
from hubkit_micro.sd_unet import FOCUS_RULE, FOCUS_WEIGHT, _train_unet, focus_weights
from hubkit_micro.sd_vae import _train_vae, final_vae

# Default generation settings written to hubkit.json (chosen by measurement, see the module's report).
DEFAULT_STEPS = 20
DEFAULT_GUIDANCE = 5.0


# ------------------------------------------------------------------------------------------ stage 5: save
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
    unet_finetune_offset_noise: float = 0.0,
    unet_focus_steps: int = 0,
    unet_focus_lr: float = 3e-4,
    unet_finetune_threads: int | None = None,
    unet_threads: int | None = None,
    describe_p: float = 0.0,
    describe_names: bool = False,
    fused_adam: bool = False,
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
    ``threads`` applies to every stage; ``unet_threads`` (when given) to the UNet's stages from the first on, and
    ``unet_finetune_threads`` (when given) to its later ones (finetune, focus): CPU gradients differ in their last bits between thread counts,
    so a rebuild reproduces the shipped weights only with the thread count each stage was trained at.
    ``describe_p``: the share of caption plans that describe styles and weapons instead of naming them
    (``hubkit_micro.descriptions``; the shipped base: 0); ``describe_names``: the target characters and faces too.
    ``fused_adam``: every stage steps with torch's fused AdamW (8% less time per 2-core UNet step; other bits).
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
                                         checkpoint_every_s, checkpoint_every_steps, _stop_after_vae, log,
                                         fused_adam=fused_adam)
        data = _render_data(work_dir, data_fn or default_data_fn(describe_p, describe_names), seed, n_train, cfg.image_size, log)
        data_key = data["key"]
        lat = _encode_latents(work_dir, data, data_key, vae_result, vae_key, cfg, tokenizer, log)
        dec_result = None
        if dec_steps:
            dec_result, _ = _train_vae(work_dir, image_fn, cfg, seed, dec_steps, vae_batch, dec_lr, checkpoint_every_s,
                                       checkpoint_every_steps, None, log, base=(vae_key, vae_result),
                                       fused_adam=fused_adam)
        vae_state = (dec_result or vae_result)["model"]
        # the final VAE is known now: write it early (the judge trainer trains on its reconstructions)
        final_vae(cfg, vae_state, lat).save_pretrained(str(out_dir / "vae"), safe_serialization=True)
        if unet_threads:
            torch.set_num_threads(unet_threads)
        unet_result = _train_unet(work_dir, lat, cfg, tokenizer, seed, unet_steps, unet_batch, unet_lr,
                                  checkpoint_every_s, checkpoint_every_steps, _stop_after_unet, log,
                                  fused_adam=fused_adam)
        unet_seconds = unet_result["seconds"]
        first_unet_threads = unet_result.get("threads")
        if unet_finetune_threads and (unet_finetune_steps or unet_focus_steps):
            torch.set_num_threads(unet_finetune_threads)
        if unet_finetune_steps:
            unet_result = _train_unet(work_dir, lat, cfg, tokenizer, seed, unet_finetune_steps, unet_batch,
                                      unet_finetune_lr, checkpoint_every_s, checkpoint_every_steps, _stop_after_unet,
                                      log, init=unet_result, offset_noise=unet_finetune_offset_noise,
                                      fused_adam=fused_adam)
            unet_seconds += unet_result["seconds"]
        if unet_focus_steps:
            focus = {"name": FOCUS_RULE, "weights": focus_weights(data["labels"])}
            unet_result = _train_unet(work_dir, lat, cfg, tokenizer, seed, unet_focus_steps, unet_batch,
                                      unet_focus_lr, checkpoint_every_s, checkpoint_every_steps, _stop_after_unet,
                                      log, init=unet_result, focus=focus, fused_adam=fused_adam)
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
        "describe_p": describe_p,
        "describe_names": describe_names,
        "fused_adam": fused_adam,
        "vae_steps": vae_steps,
        "unet_steps": unet_steps,
        "unet_finetune_steps": unet_finetune_steps,
        "unet_finetune_lr": unet_finetune_lr,
        "unet_finetune_offset_noise": unet_finetune_offset_noise,
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
    ap = argparse.ArgumentParser(prog="python -m hubkit_micro.train_sd", description=__doc__.split("\n")[0])
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
    ap.add_argument("--unet-finetune-offset-noise", type=float, default=0.0,
                    help="per-image, per-channel offset added to the finetune stage's noise (std; 0: none)")
    ap.add_argument("--unet-focus-steps", type=int, default=0,
                    help="then continue this many steps drawing multi-object scenes with a character, a face or "
                         "a named style FOCUS_WEIGHT times as often")
    ap.add_argument("--unet-focus-lr", type=float, default=3e-4)
    ap.add_argument("--unet-finetune-threads", type=int, default=None,
                    help="torch threads for the later UNet stages (default: --threads; the shipped base used 2)")
    ap.add_argument("--unet-threads", type=int, default=None,
                    help="torch threads for the UNet's stages (default: --threads)")
    ap.add_argument("--fused-adam", action="store_true",
                    help="every stage on torch's fused AdamW (8%% less per 2-core UNet step; other bits)")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="default DDIM steps recorded in hubkit.json")
    ap.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE, help="default guidance for hubkit.json")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the shipped weights used 1)")
    ap.add_argument("--checkpoint-every-s", type=float, default=180.0)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hubkit_micro import train_sd as module   # not __main__: same defaults/cache keys however it is run

    module.train_sd(a.out, seed=a.seed, work_dir=a.work_dir, vae_steps=a.vae_steps, dec_steps=a.dec_steps,
                    unet_steps=a.unet_steps, n_train=a.n_train, unet_batch=a.unet_batch, unet_lr=a.unet_lr,
                    unet_finetune_steps=a.unet_finetune_steps, unet_finetune_lr=a.unet_finetune_lr,
                    unet_finetune_offset_noise=a.unet_finetune_offset_noise,
                    unet_focus_steps=a.unet_focus_steps, unet_focus_lr=a.unet_focus_lr,
                    unet_finetune_threads=a.unet_finetune_threads, unet_threads=a.unet_threads,
                    fused_adam=a.fused_adam, steps=a.steps, guidance=a.guidance, threads=a.threads,
                    checkpoint_every_s=a.checkpoint_every_s, quiet=a.quiet)
    return 0


__all__ = ["CAPTION_WEIGHTS", "DEFAULT_GUIDANCE", "DEFAULT_STEPS", "DEFAULT_WORK_DIR", "FOCUS_RULE", "FOCUS_WEIGHT",
           "assemble_pipeline", "default_data_fn", "final_vae", "focus_weights", "folder_bytes", "main",
           "multilingual_batch", "psnr", "render_images", "save_pipeline", "to_tensor", "train_sd"]


if __name__ == "__main__":
    raise SystemExit(main())
