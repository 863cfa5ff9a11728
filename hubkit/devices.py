"""Which device each pytest(-xdist) worker uses, and how many CPU threads torch may take.

* :func:`choose_device` spreads xdist workers over the GPUs (``PYTEST_XDIST_WORKER=gwK`` → ``cuda:{K % n}``)
  and falls back to ``"cpu"`` when there is no GPU;
* :func:`configure_threads` gives each worker its share of the cores (oversubscribed workers triple the wall
  time on a 2-core machine);
* :func:`bounded_openmp_waiting` bounds how long torch's OpenMP threads spin while they wait (set before torch
  is imported).
"""

from __future__ import annotations

import os
import re

from hubkit.errors import ConfigError

ACCEPTED = "auto (or empty), cpu, cuda, cuda:N, mps"
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


def worker_index() -> int | None:
    """K of ``PYTEST_XDIST_WORKER=gwK``; None outside xdist."""
    m = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", "").strip())
    return int(m.group(1)) if m else None


def worker_count() -> int:
    try:
        return max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    except ValueError:
        return 1


def _cuda_count() -> int:
    import torch

    try:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken driver counts as no GPU
        return 0


def _parse(requested: str) -> tuple[str, int | None]:
    m = _DEVICE_RE.match(requested.strip().lower())
    if not m or (m.group(1) in ("auto", "cpu") and m.group(2) is not None):
        raise ConfigError(f"--device {requested!r} is not a device; use one of: {ACCEPTED}")
    return m.group(1), (int(m.group(2)) if m.group(2) is not None else None)


def choose_device(requested: str | None = None) -> str:
    """The torch device string this process should use.

    ``None``/``"auto"``/``""``: a GPU if there is one (spread over xdist workers), else ``"cpu"``.
    ``"cuda"``: like auto but a missing GPU is an error. ``"cuda:N"``/``"mps"``/``"cpu"``: as given, checked.
    """
    kind, index = _parse(requested or "auto")
    if kind == "cpu":
        return "cpu"
    if kind == "mps":
        import torch

        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError(f"--device {requested!r}: MPS is not available here; use one of: {ACCEPTED}")
        return "mps"
    n = _cuda_count()
    if n == 0:
        if kind == "auto":
            return "cpu"
        raise ConfigError(f"--device {requested!r}: no CUDA GPU is visible (torch.cuda.is_available() is False); "
                          "use --device cpu or auto")
    if index is not None:
        if index >= n:
            raise ConfigError(f"--device {requested!r}: only {n} CUDA device(s) (cuda:0..cuda:{n - 1}) are visible")
        return f"cuda:{index}"
    k = worker_index()
    return f"cuda:{(k or 0) % n}"


def check_device(device) -> str:
    """Validate an explicit device (a string or ``torch.device``) without spreading: ``"cuda"`` stays ``"cuda"``."""
    text = str(device)
    kind, index = _parse(text)
    if kind == "auto":
        return choose_device(None)
    if kind == "cuda":
        n = _cuda_count()
        if n == 0:
            raise ConfigError(f"--device {text!r}: no CUDA GPU is visible; use --device cpu or auto")
        if index is not None and index >= n:
            raise ConfigError(f"--device {text!r}: only {n} CUDA device(s) (cuda:0..cuda:{n - 1}) are visible")
    if kind == "mps":
        choose_device("mps")
    return text.strip().lower()


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker() -> int:
    """``HUBKIT_NUM_THREADS`` if set, else cores ÷ ``PYTEST_XDIST_WORKER_COUNT`` (at least 1)."""
    env = os.environ.get("HUBKIT_NUM_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ConfigError(f"HUBKIT_NUM_THREADS={env!r} is not a whole number") from None
    return max(1, available_cores() // worker_count())


#: how long an idle OpenMP thread spins before it sleeps (libgomp's default is 300,000 spins; PASSIVE is 0)
SPIN_COUNT = "10000"


def bounded_openmp_waiting() -> None:
    """Default ``GOMP_SPINCOUNT`` to :data:`SPIN_COUNT`: an idle OpenMP thread spins briefly, then sleeps.

    libgomp's default spin (300,000) stalls torch on a busy 2-core machine, where two threads wait for each other's
    descheduled partner: 4 micro-world images (20 steps) took 25.2 s with six busy processes beside them, against
    0.51 s idle. Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``, what this set before) wakes a thread for every one of
    the many small parallel regions of a micro model: 1.19 s idle, and UnlearnDiff's search ran at half speed. A
    short spin keeps both: 0.49 s idle, 5.2 s beside six busy processes (PASSIVE 3.0 s; benchmarks/bench_attack.py
    and docs/base-experiments.md record the measurements). Either changes no number (only how threads wait, not
    what they compute). OpenMP reads the variables when torch is imported, so the pytest plugin and the ``hubkit``
    command call this first; a spin count or wait policy the user set wins.
    """
    if "OMP_WAIT_POLICY" not in os.environ:  # libgomp lets GOMP_SPINCOUNT override the policy the user chose
        os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)


def configure_threads() -> int:
    """Set torch's intra-op threads to this worker's share of the cores; return the number."""
    import torch

    n = threads_per_worker()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
