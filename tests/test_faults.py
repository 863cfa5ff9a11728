"""Faults, security and determinism (issue 12, second part), each proven by a test.

* kill -9 during generation, then the same command again: at most one batch lost, no corrupt file, the same images
  as a clean run (a child process really is SIGKILLed);
* two processes on one store at once: no corrupt or duplicate file, every image generated once, the same images;
* Ctrl-C during a run: ``reports/results.json`` (and the HTML report) still written for what finished, marked
  incomplete;
* two ``pytest suites`` runs at once on one image store, with sockets blocked (``sitecustomize``): both work, try
  no connection, generate every image once in all and record the same values and verdicts;
* determinism: two fresh stores give the same images; 1 vs 2 torch threads give the same verdicts;
* no ``except ...: pass`` around a write of results, images or reports (an ``ast`` scan of the source side).

Children run ``tests/data/faults_child.py`` (a tiny SD-1.x pipeline saved to disk, loaded with
``hubkit.models.load_model``, 16 px, 2 steps). The "same command again" runs of that script happen in this process
(``faults_child.run``), which saves a ~9 s interpreter start (torch + diffusers imports) per run.

Gaps found are ``xfail(strict=True)`` naming the place to fix and the fix, like tests/test_bad_inputs.py.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("data") / "faults_child.py"
BATCH = 2
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
WAIT_S = 180  # a child needs ~9 s to import torch + diffusers on a quiet machine; shared CI cores are slower


def _child_module():
    spec = importlib.util.spec_from_file_location("hubkit_faults_child", CHILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


child = _child_module()


def run_here(store: Path, model: Path, *args: str, threads: int = 1) -> dict:
    """The child script's generation, in this process (the "same command again"); torch threads restored after."""
    import torch

    before = torch.get_num_threads()
    try:
        return child.run([str(store), str(model), "--threads", str(threads), *args])
    finally:
        torch.set_num_threads(before)


_SPAWNED: list[subprocess.Popen] = []


def spawn(store: Path, model: Path, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(CHILD), str(store), str(model), *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _SPAWNED.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _no_child_left():
    """A test that fails half-way must not leave its children running."""
    yield
    while _SPAWNED:
        proc = _SPAWNED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def pngs(store: Path) -> dict[str, Path]:
    return {p.stem: p for p in store.glob("??/*.png")}


def temp_files(store: Path) -> list[Path]:
    return sorted(p for p in store.rglob("*.tmp"))


def decode(path: Path) -> np.ndarray:
    """Fully decode a PNG (a truncated or corrupt file raises)."""
    from PIL import Image

    with Image.open(path) as im:
        im.verify()  # checks the chunk CRCs
    with Image.open(path) as im:
        im.load()
        return np.asarray(im.convert("RGB")).copy()


def sidecar(path: Path) -> dict:
    record = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    record.pop("created")
    return record


def started_images(progress: Path) -> int:
    """Images whose generation a child had started (one ``start <n> <time>`` line per pipeline call)."""
    if not progress.is_file():
        return 0
    return sum(int(line.split()[1]) for line in progress.read_text().splitlines() if line.strip())


def start_times(progress: Path) -> list[float]:
    return [float(line.split()[2]) for line in progress.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from hubkit.testing import save_tiny_pipeline

    return save_tiny_pipeline(tmp_path_factory.mktemp("faults_model") / "tiny")


@pytest.fixture(scope="module")
def reference(model_dir, tmp_path_factory) -> dict:
    """A clean single-process run of requests 0..11 in a fresh store: key -> (pixels, sidecar record, PNG path)."""
    store = tmp_path_factory.mktemp("faults_reference")
    result = run_here(store, model_dir, "--first", "0", "--count", "12", "--batch", str(BATCH))
    assert result["generated"] == 12
    return {k: (decode(p), sidecar(p), p) for k, p in pngs(store).items()}


def assert_same_as_reference(store: Path, keys, reference: dict) -> None:
    for key in keys:
        path = store / key[:2] / f"{key}.png"
        pixels, record, _ = reference[key]
        assert np.array_equal(decode(path), pixels), f"{path}: pixels differ from a clean run"
        assert sidecar(path) == record, f"{path}: sidecar differs from a clean run's"


# ---------------------------------------------------------------------------------------------------- kill -9


def test_kill_9_during_generation_then_the_same_command_again(model_dir, reference, tmp_path):
    """SIGKILL a generating child right after its first PNG lands, then run the same command again.

    Nothing in the store is corrupt (every PNG decodes, CRCs included), the rerun generates exactly the missing
    images, the work lost to the kill (images started but not saved) is at most one batch, and the final images and
    sidecars equal a clean run's. A ``.<name>.tmp`` left by a writer killed mid-write is never read as an image
    (the store only reads ``<key>.png``); whether it is cleaned is ``test_stale_temp_file_of_a_killed_writer_is_
    cleaned``. Measured: in 2 of 4 runs the kill landed inside ``hubkit.atomic.write_bytes`` and left one
    ``.<key>.png.*.tmp`` or ``.<key>.json.*.tmp`` behind; the rerun ignored it and it stayed.
    """
    n = 8
    store, progress = tmp_path / "store", tmp_path / "progress"
    # --slow 0.3: each batch starts 0.3 s late, so a busy machine still kills the child before it is done
    args = ("--first", "0", "--count", str(n), "--batch", str(BATCH), "--progress", str(progress), "--slow", "0.3")
    proc = spawn(store, model_dir, *args)
    deadline = time.time() + WAIT_S
    while not (store.exists() and pngs(store)):
        assert proc.poll() is None, f"the child ended before writing a PNG: {proc.communicate()[1][-3000:]}"
        assert time.time() < deadline, "no PNG within the time limit"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=WAIT_S)
    assert proc.returncode == -signal.SIGKILL

    saved = pngs(store)
    assert 1 <= len(saved) < n, f"killed too late to test anything: {len(saved)} of {n} images saved"
    for path in saved.values():
        decode(path)  # no corrupt PNG after the kill
    lost = started_images(progress) - len(saved)
    assert 0 <= lost <= BATCH, f"{lost} images started but not saved: more than one batch ({BATCH}) lost"
    stale_after_kill = temp_files(store)

    again = run_here(store, model_dir, *args)
    assert again["generated"] == n - len(saved)  # only the missing ones: nothing saved is generated twice
    final = pngs(store)
    assert set(final) == set(again["keys"]) and len(final) == n
    assert_same_as_reference(store, again["keys"], reference)
    # a temp file of the killed writer, if any, is never a <key>.png: the store ignores it (and keeps it, see below)
    assert all(p.name.startswith(".") and p.stem.split(".")[1] in final for p in stale_after_kill), stale_after_kill
    print(f"kill -9: {len(saved)} of {n} saved, {lost} lost in flight, temp files left: {stale_after_kill}")


def test_stale_temp_file_of_a_killed_writer_is_ignored(model_dir, reference, tmp_path):
    """What a kill -9 between ``mkstemp`` and ``os.replace`` leaves (``.<key>.png.<random>.tmp``, half a PNG) is
    never taken for the image: the key is generated and equals a clean run."""
    store = tmp_path / "store"
    key = next(iter(reference))
    folder = store / key[:2]
    folder.mkdir(parents=True)
    stale = folder / f".{key}.png.k1ll3d.tmp"
    stale.write_bytes(reference[key][2].read_bytes()[:40])
    result = run_here(store, model_dir, "--first", "0", "--count", "12", "--batch", str(BATCH))
    assert result["generated"] == 12
    assert_same_as_reference(store, result["keys"], reference)


def test_stale_temp_file_of_a_killed_writer_is_cleaned(model_dir, reference, tmp_path):
    store = tmp_path / "store"
    key = next(iter(reference))
    folder = store / key[:2]
    folder.mkdir(parents=True)
    (folder / f".{key}.png.k1ll3d.tmp").write_bytes(b"\x89PNG half")
    run_here(store, model_dir, "--first", "0", "--count", "12", "--batch", str(BATCH))
    assert temp_files(store) == []


# ---------------------------------------------------------------------------------------------- two processes


def test_two_processes_on_one_store_at_once(model_dir, reference, tmp_path):
    """A child and this process, started together (the child loads the model, says ready and waits for go), ask
    for overlapping requests (4..11 and 0..7) in one store. Every key is generated exactly once in all, every PNG
    decodes, there is exactly one PNG and one sidecar per key and no temp file, and the images equal a
    single-process run. (This process is the second one: a second child would cost another ~9 s of imports.)"""
    store, go, ready = tmp_path / "store", tmp_path / "go", tmp_path / "ready"
    progress = [tmp_path / "progress-a", tmp_path / "progress-b"]
    proc = spawn(store, model_dir, "--first", "4", "--count", "8", "--batch", str(BATCH), "--progress",
                 str(progress[1]), "--ready", str(ready), "--go", str(go), "--slow", "0.3")
    deadline = time.time() + WAIT_S
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, "the child was not ready within the time limit"
        time.sleep(0.01)
    go.touch()
    a = run_here(store, model_dir, "--first", "0", "--count", "8", "--batch", str(BATCH), "--progress",
                 str(progress[0]), "--slow", "0.3")
    b = finish(proc)

    print(f"two processes: this one generated {a['generated']}, the child {b['generated']}")
    keys = set(a["keys"]) | set(b["keys"])
    assert len(keys) == 12
    assert a["generated"] + b["generated"] == 12, "a key was generated by both processes"
    # they really worked at the same time: each started a batch while the other was still starting batches
    ta, tb = start_times(progress[0]), start_times(progress[1])
    assert ta and tb and max(ta[0], tb[0]) <= min(ta[-1], tb[-1]), (ta, tb)
    assert set(pngs(store)) == keys
    assert {p.stem for p in store.glob("??/*.json")} == keys
    assert {p for p in store.rglob("*") if p.is_file() and ".locks" not in p.parts} == \
        {store / k[:2] / f"{k}{ext}" for k in keys for ext in (".png", ".json")}  # no temp file, nothing else
    assert_same_as_reference(store, keys, reference)


# ---------------------------------------------------------------------------------------------------- Ctrl-C


_INTERRUPTED_RUN = """
import pathlib
import time

from hubkit_reports.html import attach


def test_measured(request):
    attach(request.node, title="t", record={"aspect": "faithfulness", "value": 0.25})


def test_sleeps():
    pathlib.Path("sleeping").touch()
    time.sleep(120)
"""


def test_ctrl_c_still_writes_results_json_marked_incomplete(tmp_path):
    """SIGINT during the second test of a run: pytest exits INTERRUPTED (2); ``reports/results.json`` holds the
    record of the test that finished, with ``run.exit_status == 2`` and ``run.complete == false``; the HTML report
    is written too."""
    (tmp_path / "test_interrupted.py").write_text(_INTERRUPTED_RUN)
    # the child gets SIGINT's default disposition back: a test run started in the background of a non-interactive shell
    # inherits "ignore SIGINT", and Python then installs no KeyboardInterrupt handler (Ctrl-C would do nothing)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider",
                             "--html", "reports/report.html", "test_interrupted.py"],
                            cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + WAIT_S
    while not (tmp_path / "sleeping").exists():
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-3000:]
    assert "KeyboardInterrupt" in out and "1 passed" in out

    from hubkit_reports.results import load_results

    run, records = load_results(tmp_path / "reports" / "results.json")
    assert [(r["aspect"], r["value"], r["outcome"]) for r in records] == [("faithfulness", 0.25, "passed")]
    assert run["exit_status"] == pytest.ExitCode.INTERRUPTED and run["complete"] is False
    assert "faithfulness" in (tmp_path / "reports" / "report.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------- network


_NO_NETWORK = '''
"""Loaded first by every Python process of the run (PYTHONPATH): every socket connection or name lookup is logged
and refused."""
import os
import socket

_LOG = os.environ["HUBKIT_TEST_NET_LOG"]


def _refuse(what):
    def refused(*args, **kwargs):
        with open(_LOG, "a", encoding="utf-8") as fh:
            fh.write(f"{what} {args[1:] if what.startswith('socket.') else args}\\n")
        raise OSError(f"network access blocked by tests/test_faults.py ({what})")
    return refused


socket.socket.connect = _refuse("socket.connect")
socket.socket.connect_ex = _refuse("socket.connect_ex")
socket.create_connection = _refuse("create_connection")
socket.getaddrinfo = _refuse("getaddrinfo")
with open(_LOG, "a", encoding="utf-8") as fh:
    fh.write("loaded\\n")
'''


def test_two_pytest_runs_on_one_store_at_once_without_network(tmp_path):
    """Two ``pytest suites`` runs at once (separate processes, separate checkouts, one ``--image-cache``) on the micro
    world (an ESD checkpoint; storage, and target proportion, which generates images and runs the concept judge),
    with every socket connection and name lookup refused (a ``sitecustomize`` on PYTHONPATH) and the HF offline
    variables *unset* (the plugin must not need them).

    Both runs work and try no connection; every image of the shared store was generated once in all (the runs'
    ``images_generated`` add up to the PNGs in the store), every PNG decodes, there is one PNG and one sidecar per
    key and no temp file; and both runs record the same values and verdicts."""
    from hubkit_micro import paths

    if not (paths.BASE / "model_index.json").is_file():
        pytest.skip("micro world not built (hubkit micro build)")
    from hubkit_micro.check import _checkpoint_file

    checkpoint = _checkpoint_file(paths.unlearned("esd-pointelli"))
    (tmp_path / "blocker").mkdir()
    (tmp_path / "blocker" / "sitecustomize.py").write_text(_NO_NETWORK)
    log, images = tmp_path / "net.log", tmp_path / "images"
    env = {k: v for k, v in ENV.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(PYTHONPATH=str(tmp_path / "blocker"), HUBKIT_TEST_NET_LOG=str(log),
               HUBKIT_CACHE_DIR=str(tmp_path / "cache"), PYTHONDONTWRITEBYTECODE="1")
    procs, works = [], []
    for name in ("a", "b"):
        work = tmp_path / f"work-{name}"
        shutil.copytree(REPO / "suites", work / "suites", ignore=shutil.ignore_patterns("__pycache__"))
        works.append(work)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "pytest", "suites", "--rootdir", str(work), "--model", str(checkpoint),
             "--concept", "Pointelli", "--budget", "smoke", "--image-cache", str(images),
             "-p", "no:randomly", "-p", "no:cacheprovider", "-q", "-rA",
             "-k", "(efficiency and storage) or (faithfulness and test_target_proportion and not vs_base)"],
            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        _SPAWNED.append(procs[-1])
    texts = [p.communicate(timeout=WAIT_S)[0] for p in procs]
    lines = log.read_text().splitlines()
    assert lines[:1] == ["loaded"] and set(lines) == {"loaded"}, lines  # the blocker was active; nothing connected
    assert lines.count("loaded") >= 2

    from hubkit_reports.results import load_results

    runs = [load_results(work / "reports" / "results.json") for work in works]
    for text in texts:
        assert "network access blocked" not in text, text[-3000:]
        assert "PASSED suites/test_efficiency.py::test_storage" in text, text[-3000:]
    for _, records in runs:
        by = {r["aspect"]: r for r in records}
        assert by["efficiency.storage_mb"]["verdict"] == "pass"
        # smoke's 16 images cannot settle a proportion (inconclusive, so that test fails): what counts here is that
        # the images were generated and judged offline
        assert by["faithfulness.target_proportion"]["n"] == 16

    def values(records):
        return sorted((r["aspect"], r["value"], r.get("low"), r.get("high"), r["verdict"]) for r in records)

    assert values(runs[0][1]) == values(runs[1][1])
    stored = pngs(images)
    print(f"two pytest runs: images generated {[run['images_generated'] for run, _ in runs]}, stored {len(stored)}")
    assert stored and sum(run["images_generated"] for run, _ in runs) == len(stored)
    assert {p.stem for p in images.glob("??/*.json")} == set(stored) and temp_files(images) == []
    for path in stored.values():
        decode(path)


# ----------------------------------------------------------------------------------------------- determinism


def test_same_generation_twice_gives_the_same_pixels_and_records(model_dir, reference, tmp_path):
    """Measured: the same run in a second fresh store gives pixel-identical images and identical sidecars (but for
    ``created``, which only the sidecar holds); the PNG files are byte-identical too (next test)."""
    result = run_here(tmp_path / "again", model_dir, "--first", "0", "--count", "12", "--batch", str(BATCH))
    assert result["generated"] == 12
    assert_same_as_reference(tmp_path / "again", result["keys"], reference)


def test_same_generation_twice_gives_byte_identical_png_files(model_dir, reference, tmp_path):
    time.sleep(1.05)  # the reference run finished in an earlier second
    result = run_here(tmp_path / "again", model_dir, "--first", "0", "--count", "12", "--batch", str(BATCH))
    for key in result["keys"]:
        assert (tmp_path / "again" / key[:2] / f"{key}.png").read_bytes() == reference[key][2].read_bytes()


def test_one_and_two_torch_threads_give_the_same_verdicts(model_dir, reference, tmp_path):
    """Measured (torch CPU, this tiny UNet at 16 px, 2 steps): the PNGs of a 1-thread and a 2-thread run are
    pixel-identical (max |difference| 0). Verdicts are only required to be equal: a deterministic threshold judge
    (mean brightness > the median over the set) gives the same verdict on every image."""
    runs = {}
    for threads in (1, 2):
        store = tmp_path / f"threads-{threads}"
        result = run_here(store, model_dir, "--first", "0", "--count", "6", "--batch", str(BATCH), threads=threads)
        runs[threads] = [decode(store / k[:2] / f"{k}.png") for k in result["keys"]]
    threshold = float(np.median([a.mean() for a in runs[1]]))
    verdicts = {t: ["yes" if a.mean() > threshold else "no" for a in imgs] for t, imgs in runs.items()}
    assert verdicts[1] == verdicts[2] and set(verdicts[1]) == {"yes", "no"}
    max_diff = max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(runs[1], runs[2]))
    assert max_diff == 0, f"1 vs 2 threads: images differ by up to {max_diff} levels (verdicts still equal)"


# ------------------------------------------------------------------------------------ no silent failed writes


SOURCE_DIRS = ("hubkit", "reports", "fixtures", "hub_asserts")
WRITE_CALLS = ("write", "save", "dump")
WRITE_NAMES = {"replace", "rename", "mkstemp", "copy", "copyfile", "copytree", "move", "touch"}
NOT_WRITES = {"dumps"}  # json.dumps & co. build a string


def _is_silent(handler: ast.ExceptHandler) -> bool:
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                           and s.value.value is Ellipsis) for s in handler.body)


def _writes(nodes) -> list[str]:
    """Names of the write calls among ``nodes`` (write*, save*, dump*, replace, rename, mkstemp, open(..., 'w'))."""
    found = []
    for node in (n for tree in nodes for n in ast.walk(tree)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if (name.startswith(WRITE_CALLS) or name in WRITE_NAMES) and name not in NOT_WRITES:
            found.append(name)
        elif name in ("open", "fdopen"):
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"),
                                                                None)
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax+"):
                found.append(f"{name}(..., {mode.value!r})")
    return found


@functools.lru_cache(maxsize=None)
def silent_handlers() -> list[tuple[str, str, str, list[str]]]:
    """(file:line, file:function, caught exception, write calls in the try body) of every ``except ...: pass``."""
    out = []
    for folder in SOURCE_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            rel = path.relative_to(REPO).as_posix()
            functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Try) or type(node).__name__ == "TryStar"):
                    continue
                inner = min((f for f in functions if f.lineno <= node.lineno <= f.end_lineno),
                            key=lambda f: f.end_lineno - f.lineno, default=None)
                for handler in node.handlers:
                    if _is_silent(handler):
                        caught = ast.unparse(handler.type) if handler.type else "(bare)"
                        out.append((f"{rel}:{handler.lineno}", f"{rel}:{inner.name if inner else '<module>'}",
                                    caught, _writes(node.body)))
    return out


# Every silent handler found (2026-12), none around a write (reports/grids.py:evidence_grid's was one; it warns now):
#   hubkit/models/fingerprint.py:81  except AttributeError: pass      caching a digest on a tokenizer object
#   hubkit/models/fingerprint.py:132 except OSError: pass             reading an optional file
#   hubkit/models/io.py              except CheckpointError: pass     reading optional safetensors metadata
#   hubkit/registry.py:84            except (AttributeError, TypeError): pass   naming a registry entry
#   hubkit/store.py                  except Exception: pass           an optional library's version
KNOWN_SILENT_WRITES: dict[str, str] = {}  # file:function -> where and how to fix it (none today)


def test_no_silent_except_around_a_write():
    """An ``ast`` scan of hubkit/, reports/, fixtures/, hub_asserts/: no ``except ...: pass`` (or ``...``) whose try
    body calls write*/save*/dump*, replace, rename, mkstemp, open(..., 'w'), ... (KNOWN_SILENT_WRITES is empty)."""
    found = [(line, where, caught, writes) for line, where, caught, writes in silent_handlers() if writes]
    new = [f for f in found if f[1] not in KNOWN_SILENT_WRITES]
    assert new == [], f"`except ...: pass` around a write (results, images or reports must never fail silently): {new}"


def test_no_temporary_folder_outlives_the_process(tmp_path):
    """The offline CLIP vocabulary and open_clip's custom configs are written to temporary folders: they go when the
    process ends (they used to stay, 1.5 MB per process)."""
    code = (
        "import json, tempfile\n"
        "from hubkit.tokenizer import clip_tokenizer\n"
        "from hubkit.judges.openclip import register_config\n"
        "assert len(clip_tokenizer()) == 49408\n"
        "register_config('test', 'hubkit-test-arch', {'embed_dim': 8, 'vision_cfg': {}, 'text_cfg': {}})\n"
    )
    env = {**ENV, "TMPDIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("hubkit")] == []  # (torch keeps its own)
