"""Aspect 6: efficiency. What the unlearned model costs at inference and on disk, and what it cost to train.

HUB measured only training cost; an inference-time method such as SLD costs nothing to train but an
extra UNet pass per step, so inference overhead is measured here on the same settings and batch.
"""

from __future__ import annotations

import statistics
import time

from hubkit.aspects.registry import measure
from hubkit.errors import NotApplicable
from hubkit.metrics import METRICS

TIME_OVERHEAD = measure(
    "efficiency.time_overhead", better="lower", aggregation=METRICS["median_ratio"],
    description="per-image generation cost, unlearned / base (on the CPU: floating-point operations, counted; "
                "on a GPU: wall seconds of synchronised calls)")
MEMORY_OVERHEAD = measure(
    "efficiency.memory_overhead", better="lower", aggregation=METRICS["median_ratio"],
    description="peak GPU memory while generating, unlearned / base (on the CPU: resident weights, exact)")
STORAGE_MB = measure(
    "efficiency.storage_mb", better="lower", aggregation=METRICS["exact"],
    description="megabytes on disk of what --model points at (not the base)")
TRAIN_MINUTES = measure(
    "efficiency.train_minutes", better="lower", aggregation=METRICS["exact"],
    description="training time the checkpoint declares in its metadata, minutes")

# Interleaved timing rounds per model: the budget's ``efficiency_rounds`` (ci and full: 15). 15 lets the median's
# 95% interval rest on the 4th and 12th smallest ratio, so up to three rounds disturbed by other processes cannot
# swing the verdict (with 5 rounds and a min-max range, one slow base round on a CI runner turned SLD's 1.57x
# into "inconclusive"); smoke takes 3, so that its time stays bounded on any machine. On the CPU the seconds decide
# nothing (counted operations do) and are only reported, so at most CPU_REPORT_ROUNDS rounds time them: 15 cost 2-3
# minutes of a ci run on 2 cores and moved no verdict.
CPU_REPORT_ROUNDS = 5


def _rounds(hub) -> int:
    rounds = hub.budget.efficiency_rounds
    return rounds if hub.device.startswith("cuda") else min(rounds, CPU_REPORT_ROUNDS)


def _prompts(hub):
    return [p.text for p in hub.prompts.general()[: hub.budget.efficiency_images]]


def _timed(hub, loaded, prompts) -> tuple[float, float | None, float]:
    """(seconds per image, peak GPU memory in MB or None on the CPU, wall seconds per image) of one uncached
    batched generation.

    On a GPU the seconds are wall time around synchronised calls. On the CPU they are the process's CPU
    time (all threads): a CI runner's other processes stretch wall time at random, by more than SLD's
    whole overhead in one round, but do not add to the CPU time this process spends on the images.
    """
    import torch

    from hubkit.generate import ImageRequest, generate

    requests = [ImageRequest(prompt=p, seed=i) for i, p in enumerate(prompts)]
    cuda = hub.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start, cpu_start = time.perf_counter(), time.process_time()
    generate(loaded.pipe, requests, hub.settings, batch_size=len(requests), progress=False)
    if cuda:
        torch.cuda.synchronize()
    wall = (time.perf_counter() - start) / len(requests)
    seconds = wall if cuda else (time.process_time() - cpu_start) / len(requests)
    memory = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return seconds, memory, wall


def _flops_per_image(hub, loaded, prompts) -> float:
    """Floating-point operations per image of one batched generation, counted by torch's FlopCounterMode
    (matrix products, convolutions, attention): the same for the same model and settings on any machine.

    Why on the CPU: a busy machine stretches every clock, and not evenly; with two other suite runs on the same
    2 cores the ESD checkpoint, which adds nothing per image, failed a 1.3x time rule (process CPU time is no
    shield: oversubscribed torch threads burn CPU spinning). What the rule asks, an extra UNet pass or a bigger
    network, is an operation count."""
    from torch.utils.flop_counter import FlopCounterMode

    from hubkit.generate import ImageRequest, generate

    requests = [ImageRequest(prompt=p, seed=i) for i, p in enumerate(prompts)]
    with FlopCounterMode(display=False) as counter:
        generate(loaded.pipe, requests, hub.settings, batch_size=len(requests), progress=False)
    return counter.get_total_flops() / len(requests)


def _resident_mb(loaded) -> float:
    """Megabytes of the pipeline's weights: on the CPU, peak activation memory is not observable per call."""
    return sum(t.numel() * t.element_size() for name in ("unet", "text_encoder", "vae")
               for t in getattr(loaded.pipe, name).state_dict().values()) / 2**20


_CACHE: dict = {}


def _measure_both(hub):
    key = id(hub)
    if key not in _CACHE:
        prompts = _prompts(hub)
        # Warm-up at the timed batch size: the first call at a new shape pays for allocation.
        _timed(hub, hub.base, prompts)
        _timed(hub, hub.model, prompts)
        runs = {"base": [], "model": []}
        for _ in range(_rounds(hub)):  # interleaved, so drift in machine load hits both models alike
            runs["base"].append(_timed(hub, hub.base, prompts))
            runs["model"].append(_timed(hub, hub.model, prompts))
        _CACHE[key] = runs
    return _CACHE[key]


def time_overhead(hub):
    """On a GPU: the median ratio of interleaved, synchronised timings. On the CPU: the ratio of counted
    operations per image decides (load cannot move it); the measured CPU and wall seconds are reported."""
    runs = _measure_both(hub)
    measured = {"unlearned_s_per_image": statistics.median(r[0] for r in runs["model"]),
                "base_s_per_image": statistics.median(r[0] for r in runs["base"]),
                "unlearned_wall_s_per_image": statistics.median(r[2] for r in runs["model"]),
                "base_wall_s_per_image": statistics.median(r[2] for r in runs["base"]),
                "images": len(_prompts(hub)), "device": hub.device}
    if hub.device.startswith("cuda"):
        m = TIME_OVERHEAD.aggregate([r[0] for r in runs["model"]], [r[0] for r in runs["base"]],
                                    "seconds per image, unlearned / base", unit="s/image")
        return TIME_OVERHEAD.evidence(m, extra={**measured, "clock": "seconds", "decided_by": "median time ratio"})
    prompts = _prompts(hub)
    model, base = _flops_per_image(hub, hub.model, prompts), _flops_per_image(hub, hub.base, prompts)
    m = METRICS["exact"](model / base, "floating-point operations per image, unlearned / base",
                         direction=TIME_OVERHEAD.better, details={"unlearned": model, "base": base, "unit": "FLOP"})
    return TIME_OVERHEAD.evidence(m, extra={**measured, "clock": "CPU seconds", "unlearned_flops_per_image": model,
                                           "base_flops_per_image": base, "decided_by": "counted operations"})


def memory_overhead(hub):
    if hub.device.startswith("cuda"):
        runs = _measure_both(hub)
        what = "peak GPU memory"
        m = MEMORY_OVERHEAD.aggregate([r[1] for r in runs["model"]], [r[1] for r in runs["base"]],
                                      f"{what}, unlearned / base", unit="MB")
    else:  # peak activation memory is not observable per call on the CPU; the weights' size is, exactly
        what = "resident weights (CPU)"
        model, base = _resident_mb(hub.model), _resident_mb(hub.base)
        m = METRICS["exact"](model / base, f"{what}, unlearned / base", direction=MEMORY_OVERHEAD.better,
                             details={"unlearned": model, "base": base, "unit": "MB"})
    return MEMORY_OVERHEAD.evidence(m, extra={
        "unlearned_mb": m.details["unlearned"], "base_mb": m.details["base"], "what": what})


def storage(hub):
    mb = hub.model.storage_bytes / 2**20
    m = STORAGE_MB.aggregate(mb, "checkpoint size on disk (MB)", details={"format": hub.model.format})
    return STORAGE_MB.evidence(m, extra={"storage_mb": mb, "format": hub.model.format})


def training_time(hub):
    meta = hub.model.metadata or {}
    seconds = meta.get("train_seconds")
    if seconds is None:
        raise NotApplicable("the checkpoint declares no training cost (train_seconds in its metadata)")
    minutes = float(seconds) / 60
    m = TRAIN_MINUTES.aggregate(minutes, "declared training time (minutes)", interval="declared", details={
        "train_peak_mem_mb": meta.get("train_peak_mem_mb"), "method": meta.get("method")})
    return TRAIN_MINUTES.evidence(m, extra={
        "train_minutes": minutes, "train_peak_mem_mb": meta.get("train_peak_mem_mb"), "method": meta.get("method")})
