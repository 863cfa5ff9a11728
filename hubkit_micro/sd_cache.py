"""Plumbing shared by micro-SD's training stages (:mod:`hubkit_micro.train_sd`): cache keys, atomic checkpoint
files, logging and progress, the learning-rate schedule, and the simulated crash the resume tests use.

Each stage caches its result under ``work_dir`` in a folder named by :func:`_key` of everything it depends on,
so a re-run resumes where it stopped and a changed setting redoes only the stages it affects.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
import time
from pathlib import Path

import torch

from hubkit.atomic import write_bytes

DEFAULT_WORK_DIR = Path(".scratch/train_sd")


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _fn_name(fn) -> str:
    """A data source's name for cache keys (independent of how the module was imported/run)."""
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _atomic_save(obj, path: Path) -> None:
    """``torch.save`` through the engine's atomic write: a crash leaves the old file or the new one."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getbuffer())


def _load(path: Path):
    return torch.load(path, map_location="cpu", weights_only=False)


class _Log:
    def __init__(self, path: Path | None, quiet: bool):
        self.path, self.quiet = path, quiet

    def __call__(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        if not self.quiet:
            print(line, file=sys.stderr, flush=True)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(line + "\n")


def _progress(total: int, initial: int, desc: str, quiet: bool):
    if quiet:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, mininterval=5.0, dynamic_ncols=True)


def _adamw(params, lr: float, fused: bool):
    """Every micro-SD stage's optimiser. ``fused``: torch's fused kernel, the same update rounded differently (other
    bits, so a stage puts it in its cache key)."""
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.0, **({"fused": True} if fused else {}))


def _lr_at(step: int, total: int, base: float, warmup: int, final_frac: float = 0.1) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


class _Stopped(Exception):
    """Raised by ``stop_after`` to simulate a crash (tests)."""


class Checkpoints:
    """When a long training stage saves its state: every ``every_steps`` steps or ``every_s`` seconds, whichever comes
    first; after ``stop_after`` steps of this call it saves and raises ``_Stopped`` (a simulated crash, for tests)."""

    def __init__(self, save, every_s: float, every_steps: int | None, stop_after: int | None):
        self.save, self.every_s, self.every_steps, self.stop_after = save, every_s, every_steps, stop_after
        self.last = time.perf_counter()

    def after_step(self, step: int, done_here: int) -> None:
        if self.stop_after is not None and done_here >= self.stop_after:
            self.save()
            raise _Stopped()
        now = time.perf_counter()
        if (self.every_steps and step % self.every_steps == 0) or now - self.last > self.every_s:
            self.save()
            self.last = now
