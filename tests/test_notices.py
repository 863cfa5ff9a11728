"""Notices about the run itself, before any image is made: a model whose weights are the base's, and a checkpoint
that declares no concept (every concept of the folder is then evaluated)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hubkit_reports.results import load_results

REPO = Path(__file__).resolve().parents[1]


def test_the_base_model_as_model_is_flagged_before_any_image(tmp_path):
    from hubkit_micro import paths

    if not (paths.BASE / "model_index.json").is_file():
        pytest.skip("micro world not built (hubkit micro build)")
    work = tmp_path / "work"
    shutil.copytree(REPO / "suites", work / "suites", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HUBKIT_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites", "--rootdir", str(work), "--model", str(paths.BASE),
         "--budget", "smoke", "--image-cache", str(tmp_path / "images"), "-p", "no:randomly", "-p", "no:cacheprovider",
         "-k", "efficiency and storage", "--html", str(work / "report.html"), "--self-contained-html"],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    out = proc.stdout
    same = f"hubkit notice: --model {paths.BASE} has the same weights as --base-model"
    fallback = "declares no concept (no `concept` in its hubkit.json or weights metadata): evaluating all 7 concepts"
    assert same in out and fallback in out, out[-3000:]
    assert out.index(same) < out.index("suites/")  # on the terminal before the first test's line
    assert not list((tmp_path / "images").glob("??/*.png"))  # flagged with no image made
    run, _ = load_results(work / "reports" / "results.json")
    assert any("has the same weights as --base-model" in n for n in run["notices"])
    assert any(fallback in n for n in run["notices"])
    report = (work / "report.html").read_text()
    assert "hubkit-notices" in report and "has the same weights as --base-model" in report
