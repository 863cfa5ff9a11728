"""Does the efficiency aspect's time-overhead verdict survive a busy machine?

Measures ``efficiency.time_overhead`` (unlearned / base seconds per image, median of interleaved rounds
with its order-statistic interval) for SLD (an extra UNet pass: should fail the 1.3 bar) and ESD (same
cost as the base: should pass), once on an otherwise idle machine and once with a busy-loop process
holding one core, as another job on a CI runner would.

    python benchmarks/bench_time_overhead.py [--models sld-pointelli esd-pointelli]

Results are appended to benchmarks/results.jsonl with the machine and settings.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _busy() -> None:
    while True:
        pass


def _measure(model: str):
    from hubkit.aspects import efficiency
    from hubkit_micro import paths
    from hubkit_micro.check import _checkpoint_file
    from hubkit.session import RunConfig, Session

    spec = _checkpoint_file(paths.unlearned(model))
    hub = Session(RunConfig(model=str(spec), concepts=("Pointelli",), budget="ci"))
    efficiency._CACHE.clear()
    m = efficiency.time_overhead(hub).measurement
    return m, hub.device


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["sld-pointelli", "esd-pointelli"])
    args = parser.parse_args()
    for load in ("idle", "one core busy"):
        worker = None
        if load != "idle":
            worker = multiprocessing.Process(target=_busy, daemon=True)
            worker.start()
        try:
            for model in args.models:
                m, device = _measure(model)
                record = {
                    "benchmark": "time_overhead", "model": model, "load": load, "ratio": m.value, "low": m.low,
                    "high": m.high, "rounds": m.n, "clock": m.name, "device": device,
                    "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S"),
                }
                print(json.dumps(record))
                with open(Path(__file__).with_name("results.jsonl"), "a") as f:
                    f.write(json.dumps(record) + "\n")
        finally:
            if worker is not None:
                worker.terminate()
                worker.join()


if __name__ == "__main__":
    main()
