"""pytest hooks that turn each suite test's attached results into pytest-html extras and a JSON log.

Suite tests call ``reports.attach(request, ...)`` (through the ``verdict`` fixture); this module reads
what was attached, whatever the verdict, so failing tests show their evidence too.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from reports.grids import png_base64

ATTACHED = pytest.StashKey[list]()
_RESULTS: list[dict] = []


def attach(item: pytest.Item, *, title: str, text: str = "", image=None, record: dict | None = None) -> None:
    """Queue one piece of evidence for ``item``'s report row."""
    item.stash.setdefault(ATTACHED, []).append({"title": title, "text": text, "image": image, "record": record})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call":
        return
    attached = item.stash.get(ATTACHED, [])
    html_plugin = item.config.pluginmanager.getplugin("html")
    extras = getattr(report, "extras", [])
    for entry in attached:
        if entry["record"] is not None:
            report.user_properties.append(("hubkit", json.dumps(entry["record"], default=str)))
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


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Every measured number also lands in reports/results.json, machine-readable."""
    if not _RESULTS or hasattr(session.config, "workerinput"):
        return
    out = Path(session.config.rootpath) / "reports" / "results.json"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(_RESULTS, indent=1, default=str))
    except OSError:
        pass


def _fmt(x) -> str:
    try:
        return f"{float(x):.3f}"
    except (TypeError, ValueError):
        return "–"


def summary_table(results: list[dict]) -> str:
    """One row per measured number: aspect, what, value [CI], n, threshold (source), verdict."""
    rows = []
    for r in results:
        what = ", ".join(str(r[k]) for k in ("concept", "language", "neighbour", "attack") if r.get(k))
        colour = {"pass": "#d4edda", "fail": "#f8d7da"}.get(r.get("verdict"), "#fff3cd")
        rows.append(
            f"<tr style='background:{colour}'><td>{html.escape(str(r.get('aspect')))}</td><td>{html.escape(what)}</td>"
            f"<td>{_fmt(r.get('value'))} [{_fmt(r.get('low'))}, {_fmt(r.get('high'))}]</td><td>{r.get('n')}</td>"
            f"<td title='{html.escape(str(r.get('source')))}'>{_fmt(r.get('threshold'))}</td>"
            f"<td>{html.escape(str(r.get('verdict')))}</td></tr>"
        )
    head = "<tr><th>aspect</th><th>for</th><th>value [95% CI]</th><th>n</th><th>threshold</th><th>verdict</th></tr>"
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
