"""Images per second: one batched pipeline call vs one call per image (HUB's loop), same model and run.

    python benchmarks/bench_generation.py [--model DIR] [--n 64] [--batch 64]

Results are appended to benchmarks/results.jsonl with the machine and settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import torch
    from diffusers import StableDiffusionPipeline

    from hubkit.generate import ImageRequest, generate
    from hubkit_micro import paths
    from hubkit.settings import GenerationSettings

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(paths.BASE))
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()

    dtype = getattr(torch, args.dtype)
    pipe = StableDiffusionPipeline.from_pretrained(args.model, safety_checker=None).to(args.device, dtype)
    pipe.set_progress_bar_config(disable=True)
    settings = GenerationSettings.from_model_folder(Path(args.model), dtype=args.dtype)
    requests = [ImageRequest(prompt=f"a photo of a red car {i}", seed=i) for i in range(args.n)]
    generate(pipe, requests[:2], settings, batch_size=2, progress=False)  # warm-up

    timings = {}
    for label, batch in (("batched", args.batch), ("one call per image", 1)):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        generate(pipe, requests, settings, batch_size=batch, progress=False)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        timings[label] = args.n / (time.perf_counter() - start)
    record = {
        "benchmark": "generation", "model": args.model, "n": args.n, "batch": args.batch, "device": args.device,
        "dtype": args.dtype, "settings": settings.as_dict(), "images_per_s": timings,
        "speedup": timings["batched"] / timings["one call per image"], "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(json.dumps(record, indent=1))
    with open(Path(__file__).with_name("results.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
