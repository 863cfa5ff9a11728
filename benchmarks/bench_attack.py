"""How fast is UnlearnDiffAtk's search against a micro checkpoint, searched one prompt at a time or in batches, and
does the batch change what it finds?

Runs the attack exactly as the suite does (``hubkit.aspects.robustness``: the budget and settings the prompt folder
gives it, the base model's images of the first target prompts) against one shipped checkpoint, once per batch size,
and compares each run's prompts and evaluation losses with the one-at-a-time run's (batch 1 is the search as it was
before batching, bit for bit).

    python benchmarks/bench_attack.py [--model esd-pointelli] [--concept Pointelli] [--batch 1 8 40] [--busy N]

Torch's threads wait as in the suites (``hubkit.devices.bounded_openmp_waiting``); the OpenMP settings are
recorded with each result: run it with ``OMP_WAIT_POLICY=PASSIVE`` or ``GOMP_SPINCOUNT=N`` to compare.

Results are appended to benchmarks/results.jsonl with the machine and settings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from hubkit.devices import bounded_openmp_waiting  # noqa: E402  (torch's threads wait as in the suites; before torch)

bounded_openmp_waiting()


def main() -> None:
    from hubkit.aspects.robustness import _suite_inputs, build_attack
    from hubkit.session import RunConfig, Session
    from hubkit_micro import paths
    from hubkit_micro.check import _checkpoint_file

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="esd-pointelli")
    parser.add_argument("--concept", default="Pointelli")
    parser.add_argument("--budget", default="ci")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 40])
    parser.add_argument("--prompts", type=int, help="search this many prompts instead of the budget's")
    parser.add_argument("--busy", type=int, default=0, help="busy-loop processes beside it (another job's load)")
    args = parser.parse_args()

    hub = Session(RunConfig(model=str(_checkpoint_file(paths.unlearned(args.model))), concepts=(args.concept,),
                            budget=args.budget))
    suite_attack = build_attack(hub, "unlearndiff")
    if args.prompts:
        suite_attack.budget["prompts"] = args.prompts
    inputs = _suite_inputs(hub, args.concept, suite_attack)  # the base's images are drawn (or read) before timing
    workers = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(args.busy)]
    for worker in workers:
        worker.start()
    try:
        _run(args, hub, suite_attack, inputs)
    finally:
        for worker in workers:
            worker.terminate()


def _busy() -> None:
    while True:
        pass


def _run(args, hub, suite_attack, inputs) -> None:
    import torch

    from hubkit.attacks import ATTACKS

    reference = None
    for batch in args.batch:
        attack = ATTACKS.build("unlearndiff", budget=suite_attack.budget, seed=suite_attack.seed, progress=False,
                               batch_size=batch)
        start = time.perf_counter()
        result = attack.run(hub.model.pipe, args.concept, **inputs)
        seconds = time.perf_counter() - start
        reference = reference or result
        record = {
            "benchmark": "unlearndiff_batch", "model": args.model, "concept": args.concept, "budget": args.budget,
            "prompts": len(result.prompts), "batch_size": batch, "seconds": round(seconds, 1),
            "same_prompts_as_first": result.prompts == reference.prompts,
            "same_losses_as_first": result.losses == reference.losses, "first_batch_size": args.batch[0],
            "prompts_sha256": hashlib.sha256(json.dumps(result.prompts).encode()).hexdigest()[:16],
            "device": str(hub.model.pipe.unet.device), "torch_threads": torch.get_num_threads(),
            "busy_processes": args.busy, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"),
            "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        print(json.dumps(record), flush=True)
        with open(Path(__file__).with_name("results.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
