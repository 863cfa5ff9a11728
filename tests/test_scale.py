"""Scaling out on one machine: two xdist workers on one image store give the single-worker run's results.json and
make every image once, and a second checkpoint evaluated against the same base reuses every base image.

Each test runs ``pytest suites`` on the micro world in a subprocess (its own checkout copy, so its
``reports/results.json`` is its own) at the smoke budget, on a selection that generates images for two concepts and
for the concept-free general captions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hubkit_reports.results import load_results

REPO = Path(__file__).resolve().parents[1]
WAIT_S = 900
SELECTION = "(faithfulness and test_target_proportion and not vs_base) or test_general_quality_fid_vs_base"
CONCEPTS = ("Pointelli", "Zorbo")


def checkpoint(name: str) -> Path:
    from hubkit_micro import paths
    from hubkit_micro.check import _checkpoint_file

    if not (paths.BASE / "model_index.json").is_file():
        pytest.skip("micro world not built (hubkit micro build)")
    return _checkpoint_file(paths.unlearned(name))


def run_suites(work: Path, model: Path, images: Path, *extra: str) -> tuple[dict, list[dict], str]:
    """``pytest suites`` in a copy of the suites at ``work``; returns (run header, records, output)."""
    if not (work / "suites").exists():
        shutil.copytree(REPO / "suites", work / "suites", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "HUBKIT_CACHE_DIR": str(work.parent / "hubkit-cache")}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    args = [sys.executable, "-m", "pytest", "suites", "--rootdir", str(work), "--model", str(model),
            *(a for c in CONCEPTS for a in ("--concept", c)), "--budget", "smoke", "--image-cache", str(images),
            "-p", "no:randomly", "-p", "no:cacheprovider", "-q", "-rA", "-k", SELECTION, *extra]
    proc = subprocess.run(args, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=WAIT_S)
    results = work / "reports" / "results.json"
    assert results.is_file(), proc.stdout[-4000:]
    run, records = load_results(results)
    return run, records, proc.stdout


def values(records: list[dict]) -> list[tuple]:
    """What a verdict rests on, per test: everything but timings."""
    return sorted((r["test"], r["aspect"], r.get("concept"), r["value"], r.get("low"), r.get("high"), r.get("n"),
                   r["verdict"]) for r in records)


def pngs(store: Path) -> set[str]:
    return {p.stem for p in store.glob("??/*.png")}


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    root = tmp_path_factory.mktemp("one-worker")
    images = root / "images"
    run, records, text = run_suites(root / "work", checkpoint("esd-pointelli"), images)
    return run, records, text, images


def test_two_xdist_workers_give_the_same_results_and_make_each_image_once(one_worker, tmp_path):
    run1, records1, text1, images1 = one_worker
    images2 = tmp_path / "images"
    run2, records2, text2 = run_suites(tmp_path / "work", checkpoint("esd-pointelli"), images2, "-n", "2")
    assert run2["processes"] == 2, text2[-3000:]  # both workers described their part (the controller ran no test)
    # every concept went to one worker (loadgroup by concept), and both runs measured the same numbers
    assert len(records1) == len(records2) == 3, text2[-3000:]
    assert values(records2) == values(records1)
    assert {r["concept"] for r in records2 if r.get("concept")} == set(CONCEPTS)
    # every image was generated exactly once: the workers' counts add up to the files in the store, which are
    # exactly the single-worker run's files (same keys), each with its one sidecar
    stored = pngs(images2)
    print(f"one worker: {run1['images_generated']} images; two workers: {run2['images_generated']} images, "
          f"{len(stored)} stored")
    assert stored == pngs(images1)
    assert run2["images_generated"] == len(stored) == run1["images_generated"]
    assert {p.stem for p in images2.glob("??/*.json")} == stored


def test_a_second_checkpoint_reuses_every_base_image(one_worker, tmp_path):
    """HUB re-generates the base model's images for every method; here the second method's run makes only its own."""
    run1, records1, _, images = one_worker
    shared = tmp_path / "images"
    shutil.copytree(images, shared)  # the first run's store, as a user's cache would hold it
    before = pngs(shared)
    run2, records2, text = run_suites(tmp_path / "work", checkpoint("uce-pointelli"), shared)
    made = run2["images_generated_by"]
    print(f"first checkpoint made {run1['images_generated_by']}, second made {made}")
    assert run1["images_generated_by"]["base"] > 0
    assert made["base"] == 0, text[-3000:]
    assert made["model"] == run1["images_generated_by"]["model"] > 0  # same prompts and seeds, other weights
    assert len(pngs(shared) - before) == made["model"] == run2["images_generated"]
