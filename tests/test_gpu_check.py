"""``benchmarks/gpu_check.py --tiny``: the GPU check's every step runs (at toy sizes, on the CPU), so the script
is ready the day a session has a GPU; a tiny run records nothing in benchmarks/results.jsonl."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_step_of_the_gpu_check_runs_at_toy_sizes(tmp_path, monkeypatch, capsys):
    gpu_check = _load("gpu_check")
    results = REPO / "benchmarks" / "results.jsonl"
    before = results.read_bytes()
    monkeypatch.setenv("OUT", str(tmp_path))
    assert gpu_check.main(["--tiny", "--images", "2", "--device", "cpu", "--work", str(tmp_path / "work"),
                           "--peak-tflops", "0.5"]) == 0
    records = [json.loads(line) for line in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(gpu_check.STEPS)
    assert all("error" not in r and r["images_per_s"] > 0 for r in records), records
    assert {r["judge"] for r in records if "judge" in r} >= {"vlm", "face-identity", "q16", "inception", "nudenet"}
    assert results.read_bytes() == before  # --tiny without --record leaves the benchmark log alone

    by_step = {r["step"]: r for r in records}
    sweep = by_step["batch_sweep"]
    assert set(sweep["by_batch_images_per_s"]) == {"1", "2"} and sweep["hub_loop_images_per_s"] > 0
    assert sweep["best_batch"] in (1, 2) and sweep["images_per_point"] == {"hub_loop": 2, "1": 2, "2": 2}
    assert sweep["speedup"] > 0 and sweep["bar"] == ">= 6x hub loop" and isinstance(sweep["meets_bar"], bool)
    assert sweep["fastpath"]["channels_last"] and sweep["fastpath"]["vae_slicing"]
    assert sweep["settings"]["scheduler"] == "DDIMScheduler"
    flops = by_step["unet_flops"]
    assert flops["unet_batch"] == sweep["best_batch"]
    assert flops["unet_flops_per_image"] == flops["unet_flops_per_forward_cfg"] * flops["settings"]["steps"] > 0
    assert flops["unet_tflops_achieved"] > 0 and flops["peak_tflops"] == 0.5 and flops["peak_source"] == "--peak-tflops"
    assert abs(flops["fraction_of_peak"] - flops["unet_tflops_achieved"] / 0.5) < 1e-3
    assert flops["bar"] == ">= 0.40" and isinstance(flops["meets_bar"], bool)


def test_peak_table_knows_the_usual_gpus_and_says_null_otherwise():
    sd_shapes = _load("sd_shapes")
    peak = sd_shapes.peak_fp16_flops
    assert peak("NVIDIA H200") == peak("NVIDIA H100 80GB HBM3") == 989.4e12
    assert peak("NVIDIA H100 PCIe") == 756e12 and peak("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak("NVIDIA A10") == 125e12 and peak("NVIDIA L4") == 121e12 and peak("NVIDIA L40S") == 362e12
    assert peak("NVIDIA GeForce RTX 4090") == 165.2e12 and peak("Tesla V100-SXM2-16GB") == 125e12
    assert peak("Tesla T4") == 65e12
    assert peak("cpu") is None and peak("NVIDIA A10G") is None and peak("NVIDIA L40") is None and peak(None) is None
