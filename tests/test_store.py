"""The content-addressed image store: keys, sidecars, re-runs that generate nothing, crashes, sharing."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hubkit.generate import ImageRequest, image_seed
from hubkit.settings import GenerationSettings
from hubkit.store import ImageStore

FAST = GenerationSettings(steps=2, height=32, width=32)


@dataclass
class FakeLoaded:
    """Stand-in for hubkit.models.LoadedModel: only .pipe and .fingerprint matter to the store."""

    pipe: object
    fingerprint: str
    source: str = "tiny"
    format: str = "diffusers-folder"


class CallLog:
    def __init__(self):
        self.calls: list[int] = []
        self.fail_on_call: int | None = None

    @property
    def images(self) -> int:
        return sum(self.calls)


@pytest.fixture(scope="module")
def counted():
    """A tiny pipeline whose __call__ records the batch size of every call (and can be made to crash)."""
    from hubkit.testing import tiny_pipeline

    pipe = tiny_pipeline()
    log = CallLog()
    base = type(pipe)

    class Counting(base):
        def __call__(self, *args, **kwargs):
            if log.fail_on_call is not None and len(log.calls) == log.fail_on_call:
                raise RuntimeError("simulated crash")
            log.calls.append(len(kwargs["prompt"]))
            return super().__call__(*args, **kwargs)

    pipe.__class__ = Counting
    return pipe, log


@pytest.fixture
def model(counted):
    pipe, log = counted
    log.calls.clear()
    log.fail_on_call = None
    return FakeLoaded(pipe, "fp-test-1"), log


def reqs(n, seed=0, prefix="prompt"):
    return [ImageRequest(f"{prefix} {i}", image_seed("store", i, 0, seed)) for i in range(n)]


def test_second_run_generates_nothing(tmp_path, model):
    m, log = model
    store = ImageStore(tmp_path)
    r = reqs(5)
    first = store.images(m, r, FAST, batch_size=2, progress=False)
    assert log.calls == [2, 2, 1] and store.generated == 5
    log.calls.clear()
    again = ImageStore(tmp_path).images(m, r, FAST, batch_size=2, progress=False)
    assert log.calls == []
    for a, b in zip(first, again):
        assert np.array_equal(np.asarray(a), np.asarray(b))  # lossless PNG round trip
    # a superset generates only the new requests, results stay in request order
    log.calls.clear()
    more = r[:2] + reqs(7)[5:] + r[2:]
    out = store.images(m, more, FAST, batch_size=4, progress=False)
    assert log.images == 2
    assert np.array_equal(np.asarray(out[0]), np.asarray(first[0]))
    assert np.array_equal(np.asarray(out[-1]), np.asarray(first[-1]))


def test_duplicate_requests_are_generated_once(tmp_path, model):
    m, log = model
    r = reqs(2)
    out = ImageStore(tmp_path).images(m, [r[0], r[1], r[0]], FAST, batch_size=4, progress=False)
    assert log.images == 2 and len(out) == 3
    assert np.array_equal(np.asarray(out[0]), np.asarray(out[2]))


def test_key_depends_on_every_setting(tmp_path, model):
    m, _ = model
    store = ImageStore(tmp_path)
    r = ImageRequest("a cat", 1)
    base = store.keys(m, [r], FAST)[0]
    variants = [
        store.keys(m, [ImageRequest("a cat ", 1)], FAST)[0],
        store.keys(m, [ImageRequest("a cat", 2)], FAST)[0],
        store.keys(m, [ImageRequest("a cat", 1, "ugly")], FAST)[0],
        store.keys(m, [r], FAST.replace(steps=3))[0],
        store.keys(m, [r], FAST.replace(guidance=5.0))[0],
        store.keys(m, [r], FAST.replace(height=40))[0],
        store.keys(m, [r], FAST.replace(width=40))[0],
        store.keys(m, [r], FAST.replace(scheduler="EulerDiscreteScheduler"))[0],
        store.keys(FakeLoaded(m.pipe, "fp-other"), [r], FAST)[0],
    ]
    assert len(set(variants + [base])) == len(variants) + 1
    # the request's negative prompt and the settings' one are the same thing
    assert store.keys(m, [ImageRequest("a cat", 1, "ugly")], FAST)[0] == store.keys(
        m, [r], FAST.replace(negative_prompt="ugly"))[0]
    assert store.keys(m, [r], FAST)[0] == base  # deterministic
    assert len(base) == 64 and store.path(base) == tmp_path / base[:2] / f"{base}.png"


def test_key_depends_on_scheduler_config(tmp_path, model):
    m, _ = model
    store = ImageStore(tmp_path)
    r = [ImageRequest("a cat", 1)]
    before = store.keys(m, r, FAST)[0]
    original = m.pipe.scheduler
    try:
        m.pipe.scheduler = type(original).from_config(original.config, timestep_spacing="trailing")
        assert store.keys(m, r, FAST)[0] != before
    finally:
        m.pipe.scheduler = original


def test_sidecar_and_png_record_every_setting(tmp_path, model):
    from PIL import Image

    m, _ = model
    store = ImageStore(tmp_path)
    r = [ImageRequest("a cat", 11, "blurry")]
    store.images(m, r, FAST, batch_size=1, progress=False)
    key = store.keys(m, r, FAST)[0]
    rec = store.record(key)
    for field in ("model", "scheduler", "prompt", "negative_prompt", "seed", "steps", "guidance", "height", "width",
                  "dtype", "key", "versions"):
        assert field in rec, field
    assert rec["prompt"] == "a cat" and rec["seed"] == 11 and rec["negative_prompt"] == "blurry"
    assert rec["scheduler"]["class"] == type(m.pipe.scheduler).__name__
    assert "beta_schedule" in rec["scheduler"]["config"]
    with Image.open(store.path(key)) as im:
        assert im.format == "PNG"
        assert json.loads(im.text["hubkit"])["key"] == key
    # atomic writes leave no temporary files behind
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_crash_loses_at_most_one_batch(tmp_path, model):
    m, log = model
    store = ImageStore(tmp_path)
    r = reqs(6, seed=3)
    log.fail_on_call = 2  # the third batch crashes
    with pytest.raises(RuntimeError, match="simulated crash"):
        store.images(m, r, FAST, batch_size=2, progress=False)
    assert sum(store.has(k) for k in store.keys(m, r, FAST)) == 4
    log.fail_on_call = None
    log.calls.clear()
    store.images(m, r, FAST, batch_size=2, progress=False)
    assert log.calls == [2]


def test_unreadable_png_is_regenerated(tmp_path, model):
    m, log = model
    store = ImageStore(tmp_path)
    r = reqs(2, seed=9)
    store.images(m, r, FAST, batch_size=2, progress=False)
    key = store.keys(m, r, FAST)[1]
    store.path(key).write_bytes(b"not a png")
    log.calls.clear()
    out = store.images(m, r, FAST, batch_size=2, progress=False)
    assert log.images == 1 and out[1].size == (32, 32)


def test_waits_for_a_key_another_worker_holds(tmp_path, model):
    """A key locked by another worker is not generated here; its file is picked up when it appears."""
    from filelock import FileLock
    from PIL import Image

    m, log = model
    store = ImageStore(tmp_path)
    r = reqs(3, seed=5)
    keys = store.keys(m, r, FAST)
    fields = store._fields(m, r, FAST)
    lock_path = store.lock_root / keys[1][:2] / f"{keys[1]}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    other = FileLock(str(lock_path), thread_local=False)
    other.acquire()
    marker = Image.new("RGB", (32, 32), (255, 0, 0))

    def other_worker():
        time.sleep(1.0)
        ImageStore(tmp_path).save(keys[1], marker, fields[1])
        other.release()

    t = threading.Thread(target=other_worker)
    t.start()
    out = store.images(m, r, FAST, batch_size=3, progress=False)
    t.join()
    assert log.images == 2  # only the two free keys
    assert np.array_equal(np.asarray(out[1]), np.asarray(marker))


def test_generates_a_held_key_if_the_other_worker_died(tmp_path, model):
    from filelock import FileLock

    m, log = model
    store = ImageStore(tmp_path)
    r = reqs(2, seed=6)
    keys = store.keys(m, r, FAST)
    lock_path = store.lock_root / keys[0][:2] / f"{keys[0]}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    other = FileLock(str(lock_path), thread_local=False)
    other.acquire()
    t = threading.Timer(0.5, other.release)  # "dies" without writing the image
    t.start()
    out = store.images(m, r, FAST, batch_size=2, progress=False)
    t.join()
    assert log.images == 2 and len(out) == 2 and store.has(keys[0])


def _worker(root: str, n: int, queue) -> None:
    import torch

    torch.set_num_threads(1)
    from hubkit.testing import tiny_pipeline

    pipe = tiny_pipeline()
    store = ImageStore(Path(root))
    store.images(FakeLoaded(pipe, "fp-mp"), reqs(n, seed=7), FAST, batch_size=1, progress=False)
    queue.put(store.generated)


@pytest.mark.skipif(os.environ.get("HUBKIT_FAST_TESTS") == "1", reason="spawns processes")
def test_two_processes_share_the_store_without_duplicate_work(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), 6, q)) for _ in range(2)]
    for p in procs:
        p.start()
    counts = [q.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sum(counts) == 6, counts  # every image made exactly once between the two workers
    assert len(list(tmp_path.glob("*/*.png"))) == 6


def test_ensure_returns_paths_without_loading(tmp_path, model):
    m, log = model
    store = ImageStore(tmp_path)
    r = reqs(3, seed=12)
    paths = store.ensure(m, r, FAST, batch_size=3, progress=False)
    assert log.calls == [3] and all(p.is_file() and p.suffix == ".png" for p in paths)
    assert paths == store.paths(m, r, FAST)
    log.calls.clear()
    assert store.ensure(m, r, FAST, batch_size=3, progress=False) == paths and log.calls == []


def test_atomic_writes_get_ordinary_file_permissions(tmp_path):
    """mkstemp's private 0600 must not leak into results.json or the image store: others read reports."""
    import os

    from hubkit import atomic

    path = atomic.write_text(tmp_path / "results.json", "[]")
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o666 & ~umask
