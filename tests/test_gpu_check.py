"""``benchmarks/gpu_check.py --tiny``: the GPU check's every step runs (at toy sizes, on the CPU), so the script
is ready the day a session has a GPU; a tiny run records nothing in benchmarks/results.jsonl."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_step_of_the_gpu_check_runs_at_toy_sizes(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    results = REPO / "benchmarks" / "results.jsonl"
    before = results.read_bytes()
    monkeypatch.setenv("OUT", str(tmp_path))
    assert gpu_check.main(["--tiny", "--images", "2", "--device", "cpu", "--work", str(tmp_path / "work")]) == 0
    records = [json.loads(line) for line in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(gpu_check.STEPS)
    assert all("error" not in r and r["images_per_s"] > 0 for r in records), records
    assert {r["judge"] for r in records[1:]} >= {"vlm", "face-identity", "q16", "inception", "nudenet"}
    assert results.read_bytes() == before  # --tiny without --record leaves the benchmark log alone
