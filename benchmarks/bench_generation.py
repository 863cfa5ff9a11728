"""Images per second: HUB's generation loop vs hubkit's path, side by side in one process and run.

    python benchmarks/bench_generation.py                      # micro world base, n=64, batches 8,16,32,64
    python benchmarks/bench_generation.py --target sd          # SD-1.x-shaped, random weights, 512 px, 2 steps
    python benchmarks/bench_generation.py --target sd --device cuda --steps 50 --n 64 --batches 1,8,16,32,64

Measured on the same pipeline and settings (scheduler, steps, guidance, size, dtype), each variant warmed up once
(one call at its batch size, ``min(2, steps)`` steps) before it is timed:

* ``hub_loop``: HUB's loop -- ``torch.manual_seed(seed)`` once, then one ``pipe(prompt, num_inference_steps=...,
  guidance_scale=..., height=..., width=...)`` per image, no generator (``benchmarks/sd_shapes.hub_loop``);
* ``batched``: ``hubkit.generate.generate`` (one seed and generator per image) at each ``--batches`` size;
* ``ours_batch1``: ``generate`` at batch 1, which separates what batching gains from what per-image seeding costs.

Targets: ``micro`` is the micro world's base (``hubkit_micro.paths.BASE``) at its ``hubkit.json`` settings (64 px,
20 DDIM steps, CFG 5); ``sd`` is an SD-1.x-shaped pipeline with random weights built offline
(``benchmarks/sd_shapes.sd1_pipeline``: UNet 860 M, VAE, CLIP ViT-L text encoder) at 512 px, CFG 7.5, DDIM.
Both run on hubkit's fast path for the device (``FastPath.for_device``: on CUDA fp16, channels-last, SDPA, VAE
slicing; on the CPU float32 and SDPA), applied once to the pipeline both loops share.

One JSON line per run is appended to ``benchmarks/results.jsonl`` unless ``--no-record``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ holds scripts, not a package
import sd_shapes  # noqa: E402  (the sibling module both benchmarks share)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULTS = {"micro": {"n": 64, "batches": "8,16,32,64", "steps": None},
            "sd": {"n": 4, "batches": "1,2,4", "steps": 2}}




def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=sorted(DEFAULTS), default="micro")
    parser.add_argument("--model", default=None, help="micro target: the diffusers folder (default: the micro base)")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--dtype", default=None, help="default: float16 on CUDA, float32 elsewhere")
    parser.add_argument("--n", type=int, default=None, help="images per variant (micro 64, sd 4); >= every batch")
    parser.add_argument("--batches", default=None, help="batch sizes of the sweep (micro 8,16,32,64; sd 1,2,4)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (micro: its hubkit.json; sd 2)")
    parser.add_argument("--size", type=int, default=None, help="image side in px (micro: its hubkit.json; sd 512)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-record", action="store_true", help="print the record, do not append it to results.jsonl")
    args = parser.parse_args(argv)
    defaults = DEFAULTS[args.target]
    args.n = args.n if args.n is not None else defaults["n"]
    args.batches = sorted({int(b) for b in (args.batches or defaults["batches"]).split(",")})
    if args.steps is None:
        args.steps = defaults["steps"]
    if min(args.batches) < 1 or args.n < max(args.batches):
        parser.error(f"--n ({args.n}) must be >= the largest batch ({max(args.batches)}) and batches >= 1")
    return args


def build(args, device: str, dtype: str):
    """The pipeline (on ``device``, on the fast path) and the settings both loops use; plus a model label."""
    import torch

    from hubkit.fastpath import FastPath
    from hubkit.settings import GenerationSettings

    overrides = {k: v for k, v in (("steps", args.steps), ("height", args.size), ("width", args.size)) if v}
    if args.target == "micro":
        from hubkit.models import load_model
        from hubkit_micro import paths

        model = Path(args.model or paths.BASE)
        pipe = load_model(model, base=None, device=device, dtype=getattr(torch, dtype)).pipe
        settings = GenerationSettings.from_model_folder(model, dtype=dtype, **overrides)
        label = str(model)
    else:
        pipe = sd_shapes.sd1_pipeline().to(device)  # FastPath.apply casts to dtype
        settings = GenerationSettings(**{"steps": 2, "guidance": 7.5, "height": 512, "width": 512, **overrides},
                                      dtype=dtype, scheduler="DDIMScheduler")
        label = "sd1-shaped random weights (UNet 860M, DDIM)"
    applied = FastPath.for_device(device, dtype=dtype).apply(pipe)
    pipe.set_progress_bar_config(disable=True)
    return pipe, settings, label, applied


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = args.dtype or ("float16" if device.startswith("cuda") else "float32")
    started = time.perf_counter()
    pipe, settings, label, applied = build(args, device, dtype)
    load_s = time.perf_counter() - started

    batches = list(args.batches)
    sweep = batches if 1 in batches else [1] + batches  # ours at batch 1 always
    rates = sd_shapes.measure_variants(pipe, settings, lambda bs: args.n, sweep, device, seed=args.seed)
    ours_batch1 = rates["batched"][1]
    batched = {bs: rates["batched"][bs] for bs in batches}
    best = max(batched, key=batched.get)
    hub = rates["hub_loop"]
    record = {
        "benchmark": "generation", "target": args.target, "model": label, "device": device,
        "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None, "dtype": dtype,
        "settings": settings.as_dict(), "fastpath": applied, "n": args.n, "seed": args.seed,
        "images_per_s": {"hub_loop": round(hub, 3), "batched": {str(bs): round(v, 3) for bs, v in batched.items()},
                         "ours_batch1": round(ours_batch1, 3)},
        "best_batch": best, "speedup": round(batched[best] / hub, 3),
        "seeding_cost": round(ours_batch1 / hub, 3),      # ours at batch 1 vs HUB's loop: per-image generators
        "batching_gain": round(batched[best] / ours_batch1, 3),  # best batch vs ours at batch 1
        "load_s": round(load_s, 1), "seconds": round(time.perf_counter() - started, 1),
        "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(json.dumps(record, indent=1))
    if not args.no_record:
        with open(Path(__file__).with_name("results.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
    return record


if __name__ == "__main__":
    main()
