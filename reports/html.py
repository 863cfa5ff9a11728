"""pytest hooks that turn each suite test's attached results into pytest-html extras and a JSON log.

Suite tests call ``hubkit_reports.html.attach(request, ...)`` (through the ``verdict`` fixture); this module reads
what was attached, whatever the verdict, so failing tests show their evidence too.
"""

from __future__ import annotations

import html
import json

import pytest

from hubkit_reports.grids import png_base64
from hubkit_reports.results import RESULTS

ATTACHED = pytest.StashKey[list]()
PROMPTS = pytest.StashKey[dict]()
_RESULTS = RESULTS  # the run's records (collected and written by hubkit_reports.results)
#: the record fields each check also carries as JUnit XML properties (``hubkit_<field>``), for CI systems
JUNIT_FIELDS = ("aspect", "concept", "verdict", "value", "low", "high", "threshold", "bound", "alpha", "n", "judge")


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
    n_records = 0
    for entry in attached:
        if entry["record"] is not None:
            record = {**entry["record"], **{k: v for k, v in provenance.items() if k not in entry["record"]}}
            report.user_properties.append(("hubkit", json.dumps(record, default=str)))
            # JUnit XML writes the item's properties (with the teardown report): the record and its main fields
            suffix = f"_{n_records}" if n_records else ""
            item.user_properties.append((f"hubkit{suffix}", json.dumps(record, default=str)))
            item.user_properties.extend((f"hubkit_{k}{suffix}", record[k]) for k in JUNIT_FIELDS
                                        if record.get(k) is not None)
            n_records += 1
        if html_plugin is None:
            continue
        if entry["text"]:
            extras.append(html_plugin.extras.html(f"<pre>{html.escape(entry['text'])}</pre>"))
        if entry["image"] is not None:
            extras.append(html_plugin.extras.png(png_base64(entry["image"]), name=entry["title"]))
    report.extras = extras


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


def pytest_html_results_table_row(report, cells):
    """pytest-html puts the test id into its table as raw HTML, and a test id holds concept and neighbour names
    from the user's prompt folder: escape it, so a name like ``<img onerror=...>`` is shown, never run."""
    from hubkit_reports.results import plain_nodeid

    nodeid = plain_nodeid(report.nodeid)
    test_id = nodeid if report.when == "call" else f"{nodeid}::{report.when}"
    if len(cells) > 1:
        cells[1] = f'<td class="col-testId">{html.escape(test_id)}</td>'


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
    from hubkit_reports.summary import summary_html  # here: summary imports judge_cell from this module

    from hubkit_reports.results import run_notices

    prefix.append(summary_html(_RESULTS, failed_tests=getattr(session, "testsfailed", None),
                               settings=", ".join(f"{k}={v}" for k, v in shown.items()),
                               notices=run_notices(session.config)))
    prefix.append("<div class='hubkit-report'><h2>Every measured number</h2>" + summary_table(_RESULTS)
                  + prompt_folder_section(_RESULTS) + "</div>")


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
