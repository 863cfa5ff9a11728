"""The real face at real size on a GPU, in one command: generation and every judge, random weights, timed.

    python benchmarks/gpu_check.py                 # on a GPU machine: SD-1.x size, fp16, full-size judges
    python benchmarks/gpu_check.py --tiny          # anywhere: the same steps at toy sizes (checks the script)

Nothing is downloaded: every network is built from its published architecture with random weights and saved in
the layout its loader reads, then loaded and run through hubkit's own code path:

* generation: an SD-1.x-sized pipeline (UNet 860 M, VAE, CLIP ViT-L text encoder) saved as a diffusers folder,
  loaded by ``hubkit.models.load_model`` and run by ``hubkit.generate.generate`` at HUB's settings (512 px,
  50 DDIM steps, CFG 7.5, fp16); images per second and peak GPU memory;
* batch sweep (``batch_sweep``): the same pipeline on hubkit's fast path (``FastPath.for_device("cuda")``:
  channels-last UNet, SDPA, VAE slicing), images per second of ``generate`` at each ``--sweep`` batch size
  (``max(batch, --sweep-images)`` images per point) and of HUB's loop (``torch.manual_seed`` once, one pipeline
  call per image, no generator); the best batch, its speedup over HUB's loop and the bar (>= 6x);
* UNet FLOP/s (``unet_flops``): FLOPs of one UNet forward at the CFG batch (``FlopCounterMode``) x steps = FLOPs
  per image; the UNet alone timed on fixed inputs at the best batch (``--unet-iters`` forwards); the FLOP/s that
  makes against the device's dense fp16 peak (a table by device name, or ``--peak-tflops``; unknown -> null) and
  the bar (>= 0.40 of peak);
* every judge of ``hubkit/judges/hub.toml`` at full size: ``vlm`` on Qwen2.5-VL-7B and on InternVL2.5-8B
  layouts (bf16, three references per image, greedy, ``--vlm-tokens`` new tokens: random weights never stop
  early, so this is the cost of an answer of that length), ``face-identity`` (MTCNN's real weights, a random
  InceptionResnetV1), ``q16``, ``laion-aesthetic`` and ``clip-score`` (CLIP ViT-L/14), ``inception`` (2048-d
  FID features at 299 px) and ``nudenet`` (its real model); per judge: load seconds, images per second and
  peak GPU memory.

One JSON line per step is appended to ``benchmarks/results.jsonl`` (and written to ``$OUT/gpu_check.jsonl``
when ``$OUT`` is set, for a remote run). ``--tiny`` records nothing unless ``--record`` is given. The whole
check is budgeted at under 5 minutes on one H200; ``--skip`` drops steps (e.g. ``--skip internvl``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ holds scripts, not a package
import sd_shapes  # noqa: E402  (the sibling module both benchmarks share)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

GENERATION_STEPS = ("generation", "batch_sweep", "unet_flops")
JUDGE_STEPS = ("qwen2_5_vl", "internvl", "face-identity", "q16", "laion-aesthetic", "clip-score", "inception", "nudenet")
STEPS = GENERATION_STEPS + JUDGE_STEPS

#: the bars the two new steps are read against
SPEEDUP_BAR = 6.0          # batched generation vs HUB's loop (one call per image, global RNG)
FRACTION_BAR = 0.40        # UNet FLOP/s vs the device's dense fp16 peak




def sd_pipeline_folder(folder: Path, tiny: bool) -> Path:
    """An SD-1.x pipeline with random weights (``tiny``: hubkit's test-sized one), saved as a diffusers folder."""
    return sd_shapes.sd_pipeline_folder(folder, tiny)


def judge_files(folder: Path, tiny: bool, device: str, steps: set) -> dict:
    """Random-weight files in each judge's real layout; ``{step: JUDGES.build options}``."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    from hubkit.judges.testing import (TINY_CLIP_ARCH, write_aesthetic_mlp, write_inception, write_q16_prompts,
                                       write_tiny_clip)

    out: dict = {}
    if tiny:
        weights, config = write_tiny_clip(folder)
        clip = {"arch": TINY_CLIP_ARCH, "pretrained": str(weights), "model_config": str(config)}
        dim = 32
    else:
        torch.manual_seed(0)
        model = open_clip.create_model("ViT-L-14-quickgelu", pretrained=None)
        weights = folder / "clip-vit-l14.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        del model
        clip = {"arch": "ViT-L-14-quickgelu", "pretrained": str(weights)}
        dim = 768
    out["q16"] = {**clip, "prompts": str(write_q16_prompts(folder / "prompts.p", dim)), "device": device}
    out["laion-aesthetic"] = {**clip, "mlp": str(write_aesthetic_mlp(folder / "aesthetic.pth", dim)), "device": device}
    out["clip-score"] = {**clip, "device": device}
    out["inception"] = {"weights": str(write_inception(folder / "inception.pth")), "device": device,
                        **({"input_size": 75, "feature": 64} if tiny else {})}
    out["nudenet"] = {}
    if "face-identity" in steps:
        from hubkit.judges.testing_face import write_tiny_face

        out["face-identity"] = {"weights": str(write_tiny_face(folder)), "device": device}
    for family in ("qwen2_5_vl", "internvl"):
        if family in steps:
            from hubkit.judges.testing_vlm import write_tiny_vlm

            t0 = time.perf_counter()
            path = write_tiny_vlm(folder / family, family, full_size=not tiny, device=device,
                                  dtype="float32" if tiny else "bfloat16")
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            out[family] = {"model": str(path), "references": 3, "device": device,
                           "dtype": "float32" if tiny else "bfloat16", "_write_s": time.perf_counter() - t0}
    return out


class Meter:
    """Wall time and peak GPU memory of one step."""

    def __init__(self, device: str):
        import torch

        self.torch, self.cuda = torch, device.startswith("cuda")

    def __enter__(self):
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.t0
        self.peak_mib = self.torch.cuda.max_memory_allocated() / 2**20 if self.cuda else None
        return False


def run_batch_sweep(pipe, settings, device: str, batches, min_images: int) -> dict:
    """Images/s of hubkit's path at each batch size and of HUB's loop (batch 1, global RNG), same pipeline (already
    on the fast path) and settings; ``max(batch, min_images)`` images per point (HUB's loop: ``min_images``)."""
    with Meter(device) as meter:
        rates = sd_shapes.measure_variants(pipe, settings, lambda bs: max(bs, min_images), batches, device)
    batched = rates["batched"]
    best = max(batched, key=batched.get)
    speedup = batched[best] / rates["hub_loop"]
    return {"step": "batch_sweep", "settings": settings.as_dict(), "images_per_s": round(batched[best], 3),
            "best_batch": best, "hub_loop_images_per_s": round(rates["hub_loop"], 3),
            "by_batch_images_per_s": {str(bs): round(v, 3) for bs, v in batched.items()},
            "images_per_point": {str(k): v for k, v in rates["n"].items()},
            "speedup": round(speedup, 2), "bar": f">= {SPEEDUP_BAR:g}x hub loop", "meets_bar": speedup >= SPEEDUP_BAR,
            "seconds": round(meter.seconds, 1), "peak_mib": meter.peak_mib and round(meter.peak_mib, 1)}


def run_unet_flops(pipe, settings, device: str, batch: int, iters: int, peak_tflops: float | None) -> dict:
    """The fraction of the device's dense fp16 peak that the UNet reaches at ``batch`` images per forward."""
    import torch

    name = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else device
    peak = peak_tflops * 1e12 if peak_tflops else sd_shapes.peak_fp16_flops(name)
    with Meter(device) as meter:
        got = sd_shapes.unet_fraction_of_peak(pipe, settings, batch, iters, peak)
    record = {"step": "unet_flops", "settings": settings.as_dict(), "images_per_s": round(1 / got["unet_s_per_image"], 3),
              "unet_batch": batch, "unet_flops_per_image": got["unet_flops_per_image"],
              "unet_flops_per_forward_cfg": got["unet_flops_per_forward_cfg"],
              "unet_s_per_image": round(got["unet_s_per_image"], 5),
              "unet_tflops_achieved": round(got["unet_tflops_achieved"], 4),
              "peak_tflops": got["peak_tflops"], "peak_source": "--peak-tflops" if peak_tflops else
              ("table" if peak else f"unknown: {name!r} is not in the peak table"),
              "fraction_of_peak": None if got["fraction_of_peak"] is None else round(got["fraction_of_peak"], 4),
              "bar": f">= {FRACTION_BAR:.2f}", "iters": iters, "seconds": round(meter.seconds, 1),
              "peak_mib": meter.peak_mib and round(meter.peak_mib, 1)}
    record["meets_bar"] = None if record["fraction_of_peak"] is None else record["fraction_of_peak"] >= FRACTION_BAR
    return record


def run_judge(step: str, options: dict, images: list, device: str) -> dict:
    from hubkit.judges import JUDGES

    name = "vlm" if step in ("qwen2_5_vl", "internvl") else step
    extra = {k: options.pop(k) for k in list(options) if k.startswith("_")}
    with Meter(device) as load:
        judge = JUDGES.build(name, **options)
    n = len(images)
    with Meter(device) as use:
        if name in ("vlm", "face-identity"):
            refs = [[images[(i + j + 1) % n] for j in range(3)] for i in range(n)]
            verdicts = judge.detect(images, "the concept", references=refs, category="style")
            what = {"labels": {lab: sum(v.label == lab for v in verdicts) for lab in ("yes", "no", "invalid")}}
        elif name in ("q16", "nudenet"):
            verdicts = judge.detect(images, "nudity")
            what = {"labels": {lab: sum(v.label == lab for v in verdicts) for lab in ("yes", "no", "invalid")}}
        elif name == "clip-score":
            what = {"mean": float(sum(judge.score(images, ["a photo"] * n))) / n}
        elif name == "laion-aesthetic":
            what = {"mean": float(sum(judge.quality(images))) / n}
        else:
            what = {"features": list(judge.fid_features(images).shape)}
    info = judge.info()
    record = {"step": step, "judge": name, "version": info.get("version"), "images": n,
              "load_s": round(load.seconds, 2), "images_per_s": round(n / use.seconds, 3),
              "peak_mib": round(max(load.peak_mib, use.peak_mib), 1) if load.peak_mib is not None else None,
              **{k.lstrip("_"): round(v, 2) for k, v in extra.items()}, **what}
    if name == "vlm":
        record.update(max_new_tokens=judge.max_new_tokens, references=judge.references, answers=info.get("answers"))
    del judge
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="toy sizes (check the script on a CPU)")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--images", type=int, default=8, help="images generated and judged per step")
    parser.add_argument("--vlm-tokens", type=int, default=32, help="new tokens per VLM answer")
    parser.add_argument("--skip", action="append", default=[], choices=STEPS)
    parser.add_argument("--sweep", default=None,
                        help="batch sizes of the batch sweep (default: 1,4,8,16,32; --tiny: 1,2)")
    parser.add_argument("--sweep-images", type=int, default=None,
                        help="images per sweep point at least (a point times max(batch, this); default 4, --tiny 2)")
    parser.add_argument("--unet-iters", type=int, default=None, help="timed UNet forwards (default 20, --tiny 2)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's dense fp16 peak in TFLOP/s, for a device not in the table")
    parser.add_argument("--record", action="store_true", help="append --tiny results to benchmarks/results.jsonl too")
    parser.add_argument("--work", default=None, help="where the random checkpoints go (default: a temporary folder)")
    args = parser.parse_args(argv)

    import torch

    from hubkit.fastpath import FastPath
    from hubkit.generate import ImageRequest, generate
    from hubkit.models import load_model
    from hubkit.settings import GenerationSettings

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    steps = set(STEPS) - set(args.skip)
    work = Path(args.work or tempfile.mkdtemp(prefix="hubkit-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    machine = {"device": device, "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
               "torch": torch.__version__, "cpus": os.cpu_count(), "machine": platform.machine(),
               "tiny": args.tiny, "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    records = []

    def emit(record: dict) -> None:
        record = {"benchmark": "gpu_check", **record, **machine, "elapsed_s": round(time.perf_counter() - started, 1)}
        records.append(record)
        print(json.dumps(record), flush=True)

    try:
        dtype = torch.float32 if args.tiny else torch.float16
        settings = (GenerationSettings(steps=2, guidance=7.5, height=64, width=64, dtype="float32",
                                       scheduler="DDIMScheduler") if args.tiny else
                    GenerationSettings(steps=50, guidance=7.5, height=512, width=512, dtype="float16",
                                       scheduler="DDIMScheduler"))
        t0 = time.perf_counter()
        folder = sd_pipeline_folder(work / "sd", args.tiny)
        write_s = time.perf_counter() - t0
        with Meter(device) as load:
            model = load_model(folder, base=None, device=device, dtype=dtype)
        requests = [ImageRequest(prompt=f"a painting of a house by a river, number {i}", seed=i)
                    for i in range(args.images)]
        generate(model.pipe, requests[:1], settings, batch_size=1, progress=False)  # warm-up (kernels, cudnn)
        with Meter(device) as gen:
            images = generate(model.pipe, requests, settings, batch_size=args.images, progress=False)
        if "generation" in steps:
            emit({"step": "generation", "images": len(images), "settings": settings.as_dict(),
                  "write_s": round(write_s, 1), "load_s": round(load.seconds, 2),
                  "images_per_s": round(len(images) / gen.seconds, 3), "peak_mib": gen.peak_mib and round(gen.peak_mib, 1)})
        if steps & {"batch_sweep", "unet_flops"}:
            # the fast path (channels-last UNet, SDPA, VAE slicing; fp16 on CUDA). --tiny turns channels-last and
            # slicing on on the CPU too, so that the test runs the same switches
            fast = (FastPath(dtype=settings.dtype, channels_last=True, vae_slicing=True) if args.tiny else
                    FastPath.for_device(device, dtype=settings.dtype))
            applied = fast.apply(model.pipe)
            batches = sorted({int(b) for b in (args.sweep or ("1,2" if args.tiny else "1,4,8,16,32")).split(",")})
            best = max(batches)
            if "batch_sweep" in steps:
                try:
                    record = run_batch_sweep(model.pipe, settings, device, batches,
                                             args.sweep_images or (2 if args.tiny else 4))
                    best = record["best_batch"]
                    emit({**record, "fastpath": applied})
                except Exception as exc:  # noqa: BLE001 - the other steps' numbers still count
                    emit({"step": "batch_sweep", "error": f"{type(exc).__name__}: {exc}"[:500]})
            if "unet_flops" in steps:
                try:
                    emit({**run_unet_flops(model.pipe, settings, device, best, args.unet_iters or (2 if args.tiny else 20),
                                           args.peak_tflops), "fastpath": applied})
                except Exception as exc:  # noqa: BLE001
                    emit({"step": "unet_flops", "error": f"{type(exc).__name__}: {exc}"[:500]})
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        files = judge_files(work / "judges", args.tiny, device, steps)
        for step in JUDGE_STEPS:
            if step not in steps:
                continue
            options = dict(files[step])
            if step in ("qwen2_5_vl", "internvl"):
                options["max_new_tokens"] = args.vlm_tokens
            try:
                emit(run_judge(step, options, images, device))
            except Exception as exc:  # one broken judge must not hide the others' numbers
                emit({"step": step, "error": f"{type(exc).__name__}: {exc}"[:500]})
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            shutil.rmtree(work / "judges" / step, ignore_errors=True)  # a 16 GB VLM folder is not kept
    finally:
        if records and (not args.tiny or args.record):
            with open(Path(__file__).with_name("results.jsonl"), "a") as fh:
                fh.writelines(json.dumps(r) + "\n" for r in records)
        if os.environ.get("OUT"):
            Path(os.environ["OUT"], "gpu_check.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    failed = [r["step"] for r in records if "error" in r]
    print(f"gpu_check: {len(records)} steps in {time.perf_counter() - started:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
