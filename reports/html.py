"""pytest hooks that turn each suite test's attached results into pytest-html extras and a JSON log.

Suite tests call ``hubkit_reports.html.attach(request, ...)`` (through the ``verdict`` fixture); this module reads
what was attached, whatever the verdict, so failing tests show their evidence too.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path

import pytest

from hubkit.atomic import write_text
from hubkit_reports.grids import png_base64

ATTACHED = pytest.StashKey[list]()
PROMPTS = pytest.StashKey[dict]()
_RESULTS: list[dict] = []


def attach(item: pytest.Item, *, title: str, text: str = "", image=None, record: dict | None = None) -> None:
    """Queue one piece of evidence for ``item``'s report row."""
    item.stash.setdefault(ATTACHED, []).append({"title": title, "text": text, "image": image, "record": record})


def note_prompts(item: pytest.Item, provenance: dict) -> None:
    """Tie ``item``'s records to the prompt files they were measured on: ``provenance`` holds ``prompt_folder``,
    ``prompt_concept``, ``prompt_files`` (set -> file) and ``prompt_issues`` (``PromptFolder.provenance``); every record of the item
    gets these keys in ``results.json``, and the report's "Prompt folder" section lists the issues."""
    item.stash[PROMPTS] = provenance


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call":
        return
    attached = item.stash.get(ATTACHED, [])
    html_plugin = item.config.pluginmanager.getplugin("html")
    extras = getattr(report, "extras", [])
    provenance = item.stash.get(PROMPTS, {})
    for entry in attached:
        if entry["record"] is not None:
            record = {**entry["record"], **{k: v for k, v in provenance.items() if k not in entry["record"]}}
            report.user_properties.append(("hubkit", json.dumps(record, default=str)))
        if html_plugin is None:
            continue
        if entry["text"]:
            extras.append(html_plugin.extras.html(f"<pre>{html.escape(entry['text'])}</pre>"))
        if entry["image"] is not None:
            extras.append(html_plugin.extras.png(png_base64(entry["image"]), name=entry["title"]))
    report.extras = extras


def pytest_sessionstart(session) -> None:
    _RESULTS.clear()  # one list per run, also when pytest runs in-process several times (pytester)


def pytest_runtest_logreport(report) -> None:
    # Runs in the controller under xdist too: user_properties travel back from the workers.
    if report.when == "call":
        for key, value in report.user_properties:
            if key == "hubkit":
                _RESULTS.append(dict(json.loads(value), test=report.nodeid, outcome=report.outcome))


def results_path(config: pytest.Config) -> Path:
    return Path(config.rootpath) / "reports" / "results.json"


@pytest.hookimpl(wrapper=True, tryfirst=True)  # the outermost wrapper: its code after ``yield`` runs last
def pytest_sessionfinish(session: pytest.Session):
    """Every measured number also lands in reports/results.json, machine-readable.

    Written after the other plugins' sessionfinish (the HTML report, the terminal summary). A failed write
    is never silent and never loses the numbers: they go to a temporary file instead and the run exits
    with one line naming both paths and the cause.
    """
    result = yield
    if _RESULTS and not hasattr(session.config, "workerinput"):
        write_results(results_path(session.config), _RESULTS)
    return result


def write_results(out: Path, results: list[dict]) -> Path:
    """Write ``results`` to ``out`` atomically; on failure save them to a temporary file and exit the run."""
    text = json.dumps(results, indent=1, default=str)
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


def _fmt(x) -> str:
    try:
        return f"{float(x):.3f}"
    except (TypeError, ValueError):
        return "–"


def judge_cell(record: dict) -> str:
    """Who decided a check: the judge's name, version and the first 12 hex digits of each weights file's sha256
    (the whole record, with full hashes and paths, is in results.json and the cell's tooltip)."""
    infos = record.get("judge_info") or []
    infos = [infos] if isinstance(infos, dict) else infos
    if not infos:
        return html.escape(str(record.get("judge") or "–"))
    parts, tips = [], []
    for info in infos:
        hashes = ", ".join(f"{k} {str(v)[:12]}" for k, v in (info.get("weights_sha256") or {}).items())
        parts.append(f"{html.escape(str(info.get('name')))} <small>{html.escape(str(info.get('version')))}"
                     f"{'; ' + html.escape(hashes) if hashes else ''}</small>")
        tips.append(json.dumps(info, default=str))
    return f"<span title='{html.escape(' | '.join(tips))}'>{'<br>'.join(parts)}</span>"


def summary_table(results: list[dict]) -> str:
    """One row per measured number: aspect, what, value [CI], the one-sided bound that decided (its alpha), n,
    threshold (source), verdict."""
    rows = []
    for r in results:
        what = ", ".join(str(r[k]) for k in ("concept", "language", "neighbour", "attack") if r.get(k))
        colour = {"pass": "#d4edda", "fail": "#f8d7da"}.get(r.get("verdict"), "#fff3cd")
        side = {"upper": "&le;", "lower": "&ge;"}.get(r.get("bound_side"), "")
        bound = f"{side} {_fmt(r.get('bound'))} (&alpha; {r.get('alpha')})" if r.get("alpha") is not None else "–"
        rows.append(
            f"<tr style='background:{colour}'><td>{html.escape(str(r.get('aspect')))}</td><td>{html.escape(what)}</td>"
            f"<td>{_fmt(r.get('value'))} [{_fmt(r.get('low'))}, {_fmt(r.get('high'))}]</td><td>{bound}</td>"
            f"<td>{r.get('n')}</td><td title='{html.escape(str(r.get('source')))}'>{_fmt(r.get('threshold'))}</td>"
            f"<td>{html.escape(str(r.get('verdict')))}</td><td>{judge_cell(r)}</td></tr>"
        )
    level = next((f"{r['confidence']:.0%}" for r in results if r.get("confidence")), "95%")
    head = (f"<tr><th>aspect</th><th>for</th><th>value [{level} CI]</th><th>deciding one-sided bound</th><th>n</th>"
            f"<th>threshold</th><th>verdict</th><th>judge (version; weights sha256)</th></tr>")
    return f"<table class='hubkit-summary'>{head}{''.join(rows)}</table>"


def pytest_html_results_summary(prefix, summary, postfix, session):
    options = getattr(session.config, "hubkit_options", None) or {}
    if not options or not _RESULTS:
        return
    from dataclasses import asdict

    from hubkit.session import RunConfig

    try:
        resolved = asdict(RunConfig.from_options(options).resolved())
    except Exception:  # noqa: BLE001 - a config error was already reported by the tests themselves
        resolved = dict(options)
    shown = {k: v for k, v in resolved.items() if v not in (None, [], (), False)}
    prefix.append("<h2>Unlearning report</h2><p>" + html.escape(", ".join(f"{k}={v}" for k, v in shown.items())) + "</p>")
    prefix.append(summary_table(_RESULTS))
    prefix.append(prompt_folder_section(_RESULTS))


_DECISION_COLOURS = {"refused": "#f8d7da", "dropped": "#fff3cd", "cleaned": "#e2e3e5", "kept": "#ffffff"}


def prompt_folder_section(results: list[dict]) -> str:
    """The "Prompt folder" section: per concept, the file used for each prompt set, then every issue found in
    those files (what, how many, the rule's decision and text, examples), gathered from the results' records."""
    files: dict[str, dict] = {}
    issues: dict[tuple, dict] = {}
    folder = ""
    for r in results:
        folder = r.get("prompt_folder") or folder
        concept = r.get("prompt_concept") or r.get("concept") or "*"
        if r.get("prompt_files"):
            files.setdefault(concept, {}).update(r["prompt_files"])
        for i in r.get("prompt_issues") or ():
            issues[(i.get("concept"), i.get("set"), i.get("kind"))] = i
    if not files and not issues:
        return ""
    used = "".join(f"<tr><td>{html.escape(c)}</td><td>{html.escape(s)}</td><td>{html.escape(str(f))}</td></tr>"
                   for c, by_set in sorted(files.items()) for s, f in sorted(by_set.items()))
    rows = []
    for i in sorted(issues.values(), key=lambda i: (str(i.get("concept")), str(i.get("set")), str(i.get("kind")))):
        examples = "<br>".join(html.escape(str(e)) for e in (i.get("examples") or [])[:3])
        rows.append(f"<tr style='background:{_DECISION_COLOURS.get(i.get('decision'), '#ffffff')}'>"
                    f"<td>{html.escape(str(i.get('concept')))}</td><td>{html.escape(str(i.get('set')))}</td>"
                    f"<td>{html.escape(str(i.get('kind')))}</td><td>{i.get('count')} / {i.get('total')} "
                    f"{html.escape(str(i.get('unit') or ''))}</td><td>{html.escape(str(i.get('decision')))}</td>"
                    f"<td>{html.escape(str(i.get('rule')))}</td><td>{examples}</td></tr>")
    refused = sum(i.get("decision") == "refused" for i in issues.values())
    return ("<h2>Prompt folder</h2>"
            f"<p>{html.escape(folder)}: {len(issues)} kinds of defect in the files these results rest on"
            f"{f', {refused} refused (their checks were skipped)' if refused else ''}; every one was decided by a "
            "written rule (<code>hubkit prompts check DIR</code> prints them all).</p>"
            "<table class='hubkit-prompt-files'><tr><th>concept</th><th>set</th><th>file used</th></tr>" + used +
            "</table><table class='hubkit-prompt-issues'><tr><th>concept</th><th>set</th><th>defect</th><th>count</th>"
            "<th>decision</th><th>rule</th><th>examples</th></tr>" + "".join(rows) + "</table>")
