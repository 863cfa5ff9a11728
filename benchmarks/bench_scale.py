"""One machine, three ways to run the same suite selection: one process, two pytest-xdist workers, and Ray with two
local actors, side by side in one run, each with a cold image store.

    python benchmarks/bench_scale.py [--budget smoke] [--no-record]

Each way runs ``pytest suites`` on the micro world (two concepts' target proportion and the general FID, which
generate images for both models) and is timed end to end (start-up, model loading, generation, judging). The record
says whether each way wrote the single process's results (same values and verdicts) and how many images each made.
Results are appended to benchmarks/results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SELECTION = "(faithfulness and test_target_proportion and not vs_base) or test_general_quality_fid_vs_base"
CONCEPTS = ("Pointelli", "Zorbo")
WAYS = {
    "one process": [],
    "2 xdist workers": ["-n", "2"],
    "ray with 2 local actors": ["--ray", "auto"],
}


def run(way: str, extra: list[str], budget: str, root: Path) -> dict:
    from hubkit_micro import paths
    from hubkit_micro.check import _checkpoint_file

    work = root / way.replace(" ", "-").replace(",", "")
    shutil.copytree(REPO / "suites", work / "suites", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HUBKIT_RAY_ACTORS": "2",
           "HUBKIT_CACHE_DIR": str(root / "hubkit-cache")}
    args = [sys.executable, "-m", "pytest", "suites", "--rootdir", str(work),
            "--model", str(_checkpoint_file(paths.unlearned("esd-pointelli"))),
            *(a for c in CONCEPTS for a in ("--concept", c)), "--budget", budget,
            "--image-cache", str(work / "images"), "-p", "no:randomly", "-p", "no:cacheprovider", "-q",
            "-k", SELECTION, *extra]
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - start
    results = work / "reports" / "results.json"
    if not results.is_file():
        raise SystemExit(f"{way}: no results.json\n{proc.stdout[-3000:]}")
    document = json.loads(results.read_text())
    records = sorted((r["test"], r["aspect"], r["value"], r.get("low"), r.get("high"), r["verdict"])
                     for r in document["records"])
    generated = document["run"]["images_generated"]
    return {"seconds": round(seconds, 1), "images_generated": generated,
            "images_per_s": round(generated / seconds, 2), "records": records,
            "stored": len(list((work / "images").glob("??/*.png")))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", default="smoke")
    parser.add_argument("--ways", default=",".join(WAYS), help="comma-separated subset of: " + ", ".join(WAYS))
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    root = Path(tempfile.mkdtemp(prefix="hubkit-bench-scale-"))
    try:
        measured = {way: run(way, WAYS[way], args.budget, root) for way in ways}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    reference = measured[ways[0]]
    record = {
        "benchmark": "scale", "budget": args.budget, "concepts": list(CONCEPTS), "selection": SELECTION,
        "ways": {way: {k: v for k, v in m.items() if k != "records"} for way, m in measured.items()},
        "same_results_as_one_process": {way: m["records"] == reference["records"] for way, m in measured.items()},
        "each_image_once": {way: m["images_generated"] == m["stored"] for way, m in measured.items()},
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(json.dumps(record, indent=1))
    if not args.no_record:
        with open(Path(__file__).with_name("results.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
