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
