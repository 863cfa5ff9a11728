"""``reports/results.json``: every number of a run with what it rests on, machine-readable and schema-versioned.

    {"schema": "hubkit.results/1",
     "run": {...},            # what the run rests on: models, judges, profile, budget, seed, settings, packages,
                              # command line, times, images generated (``Session.provenance`` + the pytest layer)
     "records": [{...}, ...]} # one per measured number: value, bounds, verdict, rule, judge, prompt files ...

The schema is ``results.schema.json`` beside this module (JSON Schema, draft 2020-12); ``docs/results.md``
explains every field. ``load_results`` reads this shape and the bare list of records older runs wrote.

Under pytest-xdist every worker describes its own part of the run (``workeroutput``, the xdist idiom); the
controller merges them (images generated are summed, judges collected by name and version) and writes the file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hubkit.atomic import write_text

SCHEMA = "hubkit.results/1"
SCHEMA_FILE = Path(__file__).with_name("results.schema.json")

RESULTS: list[dict] = []   # the records of this run, in the controller (also under xdist)
_RUNS: list[dict] = []     # run descriptions: this process's, and each xdist worker's
_SESSION = pytest.StashKey[object]()
_STARTED = pytest.StashKey[float]()


def note_session(config: pytest.Config, session) -> None:
    """The engine session of this process (the ``hub`` fixture calls this), described in the run header."""
    config.stash[_SESSION] = session


def load_results(path: str | Path) -> tuple[dict, list[dict]]:
    """(run header, records) of a results.json; a bare list (runs before schema 1) has an empty header."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, list):
        return {}, data
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise ValueError(f"{path}: not a hubkit results.json (expected {{\"schema\", \"run\", \"records\"}})")
    return data.get("run") or {}, data["records"]


def validate(document: dict) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``document`` follows ``results.schema.json``."""
    import jsonschema

    jsonschema.validate(document, json.loads(SCHEMA_FILE.read_text()))


def _describe(config: pytest.Config) -> dict | None:
    session = config.stash.get(_SESSION, None)
    return session.provenance() if session is not None else None


def merge_runs(parts: list[dict]) -> dict:
    """One run description from the processes' ones: the first that loaded a model speaks for the models;
    images generated add up; judges are listed once per (name, version, configuration)."""
    parts = [p for p in parts if p]
    if not parts:
        return {}
    first = next((p for p in parts if p.get("model")), parts[0])
    out = dict(first)
    out["images_generated"] = sum(int(p.get("images_generated") or 0) for p in parts)
    out["images_generated_by"] = {role: sum(int((p.get("images_generated_by") or {}).get(role) or 0) for p in parts)
                                  for role in ("base", "model")}
    judges: dict = {}
    for p in parts:
        for info in p.get("judges") or ():
            judges.setdefault((info.get("name"), info.get("version"), info.get("configured_as")), info)
    out["judges"] = list(judges.values())
    out["notices"] = list(dict.fromkeys(n for p in parts for n in p.get("notices") or ()))
    out["processes"] = len(parts)
    return out


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STARTED] = time.time()


def pytest_sessionstart(session) -> None:
    RESULTS.clear()  # one list per run, also when pytest runs in-process several times (pytester)
    _RUNS.clear()


_XDIST_GROUP = re.compile(r"@(concept:.*|general)$")


def plain_nodeid(nodeid: str) -> str:
    """The test id without the ``@<group>`` that xdist's loadgroup appends (``hubkit_fixtures.params`` groups tests by
    concept), so a run on N workers records the same ids as a run on one."""
    return _XDIST_GROUP.sub("", nodeid)


def pytest_runtest_logreport(report) -> None:
    # Runs in the controller under xdist too: user_properties travel back from the workers.
    if report.when == "call":
        for key, value in report.user_properties:
            if key == "hubkit":
                RESULTS.append(dict(json.loads(value), test=plain_nodeid(report.nodeid), outcome=report.outcome))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist controller: a worker finished; keep its description of the run."""
    described = getattr(node, "workeroutput", {}).get("hubkit_run")
    if described:
        _RUNS.append(json.loads(described))


def run_notices(config: pytest.Config) -> list[str]:
    """The run's notices (``Session.notices``) from this process and every xdist worker, each once."""
    return merge_runs([*_RUNS, _describe(config) or {}]).get("notices", [])


def results_path(config: pytest.Config) -> Path:
    """``--results PATH`` (relative to where pytest was started), else reports/results.json under the rootdir."""
    chosen = config.getoption("hubkit_results", None) or config.getini("hubkit_results")
    if chosen:
        return Path(config.invocation_params.dir) / chosen
    return Path(config.rootpath) / "reports" / "results.json"


def run_header(config: pytest.Config, exitstatus) -> dict:
    described = merge_runs([*_RUNS, _describe(config) or {}])
    started = config.stash.get(_STARTED, time.time())
    args = list(config.invocation_params.args)
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "pytest"
    program = "python -m pytest" if program == "__main__.py" else program
    return {**described,
            "command": " ".join([program, shlex.join(map(str, args))]).strip(),
            "cwd": str(config.invocation_params.dir),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.time() - started, 1),
            "exit_status": int(exitstatus),
            # Ctrl-C or a crash: the records are what finished, not the whole run
            "complete": int(exitstatus) not in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR),
            "verdicts": {v: sum(r.get("verdict") == v for r in RESULTS) for v in ("pass", "fail", "inconclusive")}}


@pytest.hookimpl(wrapper=True, tryfirst=True)  # the outermost wrapper: its code after ``yield`` runs last
def pytest_sessionfinish(session: pytest.Session, exitstatus):
    """Every measured number also lands in reports/results.json, machine-readable.

    Written after the other plugins' sessionfinish (the HTML report, the terminal summary). A failed write
    is never silent and never loses the numbers: they go to a temporary file instead and the run exits
    with one line naming both paths and the cause.
    """
    config = session.config
    if hasattr(config, "workerinput"):  # an xdist worker: hand its description to the controller
        # before yielding: xdist's own sessionfinish wrapper sends workeroutput as soon as the inner hooks are done,
        # which is before this outermost wrapper's code after ``yield`` would run
        described = _describe(config)
        if described:
            config.workeroutput["hubkit_run"] = json.dumps(described, default=str)
    result = yield
    if not hasattr(config, "workerinput") and RESULTS:
        document = {"schema": SCHEMA, "run": run_header(config, exitstatus), "records": RESULTS}
        write_results(results_path(config), document)
    return result


def write_results(out: Path, document) -> Path:
    """Write ``document`` to ``out`` atomically; on failure save it to a temporary file and exit the run."""
    text = json.dumps(document, indent=1, default=str)
    try:
        return write_text(out, text)
    except OSError as exc:
        cause = f"{type(exc).__name__}: {exc}"
    try:
        fd, saved = tempfile.mkstemp(prefix="hubkit-results-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        kept = f"the results were saved to {saved} instead"
    except OSError as exc:
        kept = f"saving them to a temporary file failed too ({type(exc).__name__}: {exc}), so they are lost"
    pytest.exit(f"hubkit: cannot write {out} ({cause}); {kept}. Make {out.parent} a writable folder "
                f"(or run from a checkout where it is) and run again.", returncode=pytest.ExitCode.INTERNAL_ERROR)
