"""The report and the leaderboard in a real browser (issue 9): headless Chromium opens them, takes a 1280x800
screenshot, and the test fails on a console message from the page, a broken image, or prompt / concept / method
text that became markup instead of text.

One cheap real run makes the report: ``pytest suites`` in a subprocess on a copy of the micro world's prompt folder
(budget ``smoke``, two tests: the target proportion of "Pointelli" and one neighbour of a second concept), with the
base model as ``--model`` so that the target check fails and lists its worst prompts. The copy is hostile:

* every Pointelli target prompt carries ``<script>``, ``<img onerror>``, quotes and ``&amp;`` (``PROMPT``);
* a second concept (a copy of Pointelli's manifest entry and files) is *named* with them (``CONCEPT``; a file name
  cannot hold ``/``, so its script tag cannot be closed). The micro world's detector cannot judge a name it does not
  know, so the run uses the ``no-canary`` profile and selects only that concept's neighbour test (judged by the
  noun judge on the neighbour's name): its name reaches the test id, the records, the summary and the logs.

``hubkit compare`` then makes a leaderboard of that run's results.json under a hostile ``--name`` (``METHOD``).

What the browser is asked (``browse``):

* console: ``--enable-logging=stderr --v=0`` prints each console message of the page as
  ``[pid:tid:date:INFO:CONSOLE:LINE] "message", source: file:///... (LINE)`` (uncaught exceptions included, as
  ``"Uncaught ..."``). Every such line fails the test. Everything else on stderr is Chromium's own noise in a
  container and is ignored, e.g. ``ERROR:dbus/bus.cc:405] Failed to connect to the bus``,
  ``WARNING:device/bluetooth/dbus/bluez_dbus_manager.cc:209] Floss manager service not available``,
  ``WARNING:media/gpu/vaapi/vaapi_wrapper.cc:1655] drmGetDevices2() has not found any devices``,
  ``WARNING:sandbox/policy/linux/sandbox_linux.cc:405] InitializeSandbox() called with multiple threads`` and the
  Debian wrapper's ``/usr/bin/chromium: 9: [: ...: unexpected operator``.
* the final DOM (``--dump-dom`` after the page's scripts ran): every ``<img>`` outside a ``<template>`` must be a
  decodable data: URI (decoded with PIL) or an image file beside the report; every relative link (the full-size
  evidence grids in ``images/``) must exist; no ``<script>`` may hold the payload and no element may carry an
  event-handler attribute other than pytest-html's own reload button; the hostile strings must be in the page's
  text, literally.
* a probe: a copy of the page with one script appended at its end (the original is what the checks above open)
  reports ``window.__pwned`` (set by any payload that ran), every image the browser failed to decode
  (``complete && naturalWidth == 0``), and where the run verdict sits (it must be on the first 1280x800 screen).

Skipped, with the reason, where no Chromium is installed (``.ci/run`` installs Debian's ``chromium``).
``HUBKIT_BROWSER_DEFAULT_RUN=1`` also checks the bar on the embedded default run (``pytest suites`` as the README
runs it: minutes): its first screen shows the verdict and all six aspects.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from hubkit_micro import paths
from hubkit_reports.results import load_results

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
                 if (found := shutil.which(name))), None)

PROMPT = '<script>window.__pwned=1</script> <img src=x onerror="window.__pwned=1"> "quotes" &amp; ampersands'
# no "/" in a file name: this script tag cannot be closed, the <img> comes first so that it is parsed either way
CONCEPT = 'Evil <img src=x onerror="window.__pwned=2"> <script>window.__pwned=2 "quotes" &amp; ampersands'
METHOD = 'M <script>window.__pwned=3</script> <img src=x onerror="window.__pwned=3"> "quotes" &amp; ampersands'
SIX_ASPECTS = ("faithfulness", "alignment", "pinpoint", "multilingual", "robustness", "efficiency")
#: event handlers pytest-html itself puts in its page
OWN_HANDLERS = {("onclick", "location.reload()")}

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install chromium; .ci/run "
                                                "installs it): the report is not checked in a browser"),
    pytest.mark.skipif(not (paths.BASE / "model_index.json").is_file(),
                       reason="micro world not built (hubkit micro build)"),
]


# -- the run ------------------------------------------------------------------------------------------------------
def _hostile_folder(root: Path) -> Path:
    """A copy of the micro world's prompt folder with ``PROMPT`` in Pointelli's target prompts and a concept named
    ``CONCEPT`` (Pointelli's manifest entry and files under the hostile name)."""
    folder = root / "prompts"
    shutil.copytree(paths.PROMPTS, folder)
    lines = "".join('"' + f"a painting by Pointelli {PROMPT} #{i}".replace('"', '""') + '"\n' for i in range(20))
    (folder / "target_image" / "Pointelli.csv").write_text(lines, encoding="utf-8")
    for sub in ("target_image", "pinpoint_ness"):
        shutil.copyfile(folder / sub / "Pointelli.csv", folder / sub / f"{CONCEPT}.csv")
    manifest = (folder / "hubkit.toml").read_text(encoding="utf-8")
    start = manifest.index('[concepts."Pointelli"]')
    end = manifest.index("[concepts.", manifest.index('[concepts."Pointelli".keywords]') + 1)
    key = json.dumps(CONCEPT)  # a TOML basic string: JSON's escapes of these characters are TOML's
    block = manifest[start:end].replace('[concepts."Pointelli"]', f"[concepts.{key}]") \
                               .replace('[concepts."Pointelli".keywords]', f"[concepts.{key}.keywords]")
    (folder / "hubkit.toml").write_text(manifest + "\n" + block, encoding="utf-8")
    return folder


def _pytest_suites(rundir: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    shutil.copytree(REPO / "suites", rundir / "suites")
    cmd = [sys.executable, "-m", "pytest", "suites", "--rootdir", str(rundir), "-p", "no:cacheprovider",
           "-p", "no:randomly", "-q", "--html=reports/unlearning.html", "--self-contained-html", *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(cmd, cwd=rundir, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("browser")
    folder = _hostile_folder(root)
    base = str(paths.BASE)
    proc = _pytest_suites(
        root / "run", "--prompts", str(folder), "--concept", "Pointelli", "--concept", CONCEPT,
        "--model", base, "--base-model", base, "--budget", "smoke", "--profile", "no-canary",
        "--image-cache", str(root / "images"),
        "-k", "(test_target_proportion and not vs_base and not language and Pointelli) "
              "or (test_neighbour_survives and strokovsky and Evil)")
    report = root / "run" / "reports" / "unlearning.html"
    results = root / "run" / "reports" / "results.json"
    tail = proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.returncode == 1 and report.is_file() and results.is_file(), tail  # the base model fails
    _, records = load_results(results)
    assert {r["concept"] for r in records} == {"Pointelli", CONCEPT}, tail
    board = root / "board.html"
    cmp = subprocess.run([sys.executable, "-m", "hubkit", "compare", str(results), "-o", str(board), "--name", METHOD],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert cmp.returncode == 0 and board.is_file(), cmp.stdout + cmp.stderr
    return {"root": root, "report": report, "board": board, "records": records}


# -- the browser --------------------------------------------------------------------------------------------------
_CONSOLE = re.compile(r":CONSOLE[:(]\s*\d*\)?\]\s*(?P<message>.*?)(?:, source: (?P<source>\S*) \((?P<line>\d+)\))?$")


@dataclass
class Element:
    tag: str
    attrs: dict
    in_template: bool
    text: str = ""
    hidden: bool = False  # inside an element of class "hidden": pytest-html's empty media placeholder, never shown


@dataclass
class Page:
    path: Path
    dom: str
    console: list[str]
    elements: list[Element] = field(default_factory=list)
    text: str = ""  # the text a reader sees: every text node outside <script>, <style> and <template>


class _Dom(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.text: list[str] = []
        self.open: list[Element] = []

    def _in(self, *tags) -> bool:
        return any(e.tag in tags for e in self.open)

    def _hidden(self) -> bool:
        return any("hidden" in e.attrs.get("class", "").split() for e in self.open)

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: v or "" for k, v in attrs}, self._in("template"), hidden=self._hidden())
        self.elements.append(element)
        if tag not in self.VOID:
            self.open.append(element)

    def handle_startendtag(self, tag, attrs):
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}, self._in("template"), hidden=self._hidden()))

    def handle_endtag(self, tag):
        for i in range(len(self.open) - 1, -1, -1):
            if self.open[i].tag == tag:
                del self.open[i:]
                break

    def handle_data(self, data):
        if self.open and self.open[-1].tag == "script":
            self.open[-1].text += data
        elif not self._in("script", "style", "template"):
            self.text.append(data)


def _chromium(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           "--disable-extensions", "--allow-file-access-from-files", "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def browse(path: Path) -> Page:
    proc = _chromium("--enable-logging=stderr", "--v=0", "--dump-dom", path.resolve().as_uri())
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if _CONSOLE.search(line)]
    parser = _Dom()
    parser.feed(proc.stdout)
    return Page(path, proc.stdout, console, parser.elements, "".join(parser.text))


def screenshot(path: Path, out: Path) -> Path:
    from PIL import Image

    proc = _chromium("--window-size=1280,800", f"--screenshot={out}", path.resolve().as_uri())
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-3000:]
    with Image.open(out) as shot:
        assert shot.size == (1280, 800), shot.size
        colours = shot.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 4, f"{out}: a blank screenshot"  # None: more than 65536 colours
    return out


_PROBE = """<script>window.addEventListener('load', function () { setTimeout(function () {
  var broken = [], verdict = null;
  document.querySelectorAll('img').forEach(function (img) {
    if (img.closest('template') || img.closest('.hidden')) return;  // pytest-html's empty placeholder: not shown
    var src = img.getAttribute('src');
    if (!src || (img.complete && img.naturalWidth === 0)) broken.push((src || '(no src)').slice(0, 80));
  });
  var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), seen = {}, node;
  while ((node = walker.nextNode())) {
    var el = node.parentElement;
    if (!el || el.closest('script,style,template')) continue;
    var r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    var t = node.textContent;
    if (verdict === null && /^\\s*verdict\\W*(pass|fail|inconclusive)\\b/i.test(t))
      verdict = {text: t.trim().slice(0, 80), top: r.top + window.scrollY, bottom: r.bottom + window.scrollY};
    %s.forEach(function (a) {
      if (!new RegExp('\\\\b' + a + '\\\\b', 'i').test(t)) return;
      var y = r.top + window.scrollY;
      if (!(a in seen) || y < seen[a]) seen[a] = y;
    });
  }
  document.documentElement.setAttribute('data-probe', JSON.stringify(
    {pwned: window.__pwned === undefined ? null : String(window.__pwned), broken: broken, verdict: verdict,
     aspects: seen}));
}, 1500); });</script>"""


def probe(path: Path) -> dict:
    """Run ``_PROBE`` in a copy of ``path`` (same folder, so relative images resolve) and return what it saw."""
    copy = path.with_name(path.stem + ".probe.html")
    copy.write_text(path.read_text(encoding="utf-8") + _PROBE % json.dumps(SIX_ASPECTS), encoding="utf-8")
    page = browse(copy)
    found = next((e.attrs["data-probe"] for e in page.elements if e.tag == "html" and "data-probe" in e.attrs), None)
    assert found is not None, f"the probe did not run in {copy}; console: {page.console}"
    return json.loads(found)


# -- what a page must satisfy -------------------------------------------------------------------------------------
def _image_problem(page: Page, src: str) -> str | None:
    from PIL import Image

    if src.startswith("data:"):
        head, _, payload = src.partition(",")
        try:
            data = base64.b64decode(payload, validate=True) if head.endswith(";base64") else unquote(payload).encode()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
        except (binascii.Error, ValueError, OSError) as exc:
            return f"data URI ({head}) does not decode: {exc}"
        return None
    url = urlparse(src)
    if url.scheme not in ("", "file"):
        return f"{src}: points outside the report (a self-contained report carries its images)"
    target = Path(unquote(url.path)) if url.scheme == "file" else page.path.parent / unquote(url.path)
    if not target.is_file():
        return f"{src}: no such file beside the report"
    try:
        with Image.open(target) as image:
            image.load()
    except OSError as exc:
        return f"{src}: not a readable image: {exc}"
    return None


def page_problems(page: Page, seen: dict) -> list[str]:
    problems = [f"console: {line.strip()}" for line in page.console]
    if seen.get("pwned") is not None:
        problems.append(f"a payload ran: window.__pwned = {seen['pwned']}")
    problems += [f"the browser could not show an image: {src}" for src in seen.get("broken", [])]
    for e in page.elements:
        if e.in_template:
            continue
        if e.tag == "img" and not (e.hidden and not e.attrs.get("src")):
            problem = _image_problem(page, e.attrs.get("src", "")) if e.attrs.get("src") else "an <img> without src"
            if problem:
                problems.append(f"broken image: {problem}")
        if e.tag == "a" and e.attrs.get("href"):
            href = urlparse(e.attrs["href"])
            if not href.scheme and href.path and not (page.path.parent / unquote(href.path)).exists():
                problems.append(f"link to a missing file: {e.attrs['href']}")
        if e.tag == "script" and e.text.lstrip().startswith("window.__pwned"):  # not a JSON string of a script
            problems.append(f"hostile text became a <script> element: <script>{e.text[:160]}")
        for name, value in e.attrs.items():
            if name.startswith("on") and (name, value) not in OWN_HANDLERS:
                problems.append(f"hostile text became an event handler: <{e.tag} {name}={value!r}>")
    return problems


def _missing_literally(page: Page, *strings: str) -> list[str]:
    return [f"not shown literally: {s!r}" for s in strings if s not in page.text]


# -- the tests ----------------------------------------------------------------------------------------------------
def test_report_in_the_browser(hostile_run, tmp_path):
    report = hostile_run["report"]
    shot = screenshot(report, tmp_path / "report.png")
    page = browse(report)
    seen = probe(report)
    problems = page_problems(page, seen)
    problems += _missing_literally(page, PROMPT, CONCEPT)
    # the evidence grids are embedded (data: URIs) and their full-size files are linked beside the report
    shown = [e for e in page.elements
             if e.tag == "img" and not e.in_template and e.attrs.get("src", "").startswith("data:")]
    assert shown, "the report embeds no evidence image"
    assert any(e.tag == "a" and e.attrs.get("href", "").startswith("images/") for e in page.elements), \
        "no link to a full-size evidence grid"
    # the run verdict is on the first screen
    verdict = seen.get("verdict")
    if verdict is None:
        problems.append("no run verdict ('Verdict: PASS/FAIL/INCONCLUSIVE') found in the page")
    elif verdict["bottom"] > 800:
        problems.append(f"the run verdict is below the first 1280x800 screen (at y = {verdict['top']:.0f})")
    assert not problems, f"{report} (screenshot {shot}):\n" + "\n".join(problems)


def test_leaderboard_in_the_browser(hostile_run, tmp_path):
    board = hostile_run["board"]
    shot = screenshot(board, tmp_path / "board.png")
    page = browse(board)
    problems = page_problems(page, probe(board)) + _missing_literally(page, METHOD)
    assert not problems, f"{board} (screenshot {shot}):\n" + "\n".join(problems)


def test_the_checks_catch_what_they_are_for(tmp_path):
    """The checks themselves: a page with a console error, an executed payload and a broken image fails them."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><p>ok</p><script>console.error('boom')</script>"
                   '<div id="x"></div><script>document.getElementById("x").innerHTML = '
                   "'<img src=missing.png onerror=\"window.__pwned=9\">'</script></body></html>")
    page = browse(bad)
    problems = "\n".join(page_problems(page, probe(bad)))
    assert "console:" in problems and '"boom"' in problems, problems
    assert "window.__pwned = 9" in problems and "missing.png" in problems, problems
    assert "event handler" in problems, problems
    good = tmp_path / "good.html"
    good.write_text("<html><body><p>&lt;script&gt;window.__pwned=1&lt;/script&gt; &amp;amp;</p></body></html>")
    page = browse(good)
    assert page_problems(page, probe(good)) == [] and "<script>window.__pwned=1</script> &amp;" in page.text


@pytest.mark.skipif(os.environ.get("HUBKIT_BROWSER_DEFAULT_RUN") != "1",
                    reason="the embedded default run takes minutes: set HUBKIT_BROWSER_DEFAULT_RUN=1")
def test_default_run_first_screen_shows_the_verdict_and_all_six_aspects(tmp_path):
    proc = _pytest_suites(tmp_path / "run", "--image-cache", str(tmp_path / "images"), timeout=3600)
    report = tmp_path / "run" / "reports" / "unlearning.html"
    assert proc.returncode == 0 and report.is_file(), proc.stdout[-3000:] + proc.stderr[-2000:]
    shot = screenshot(report, tmp_path / "default.png")
    page = browse(report)
    seen = probe(report)
    problems = page_problems(page, seen)
    verdict = seen.get("verdict")
    if verdict is None or verdict["bottom"] > 800:
        problems.append(f"the run verdict is not on the first screen: {verdict}")
    below = {a: seen["aspects"].get(a) for a in SIX_ASPECTS
             if seen["aspects"].get(a) is None or seen["aspects"][a] > 800}
    if below:
        problems.append(f"aspects not named on the first 1280x800 screen (y of their first mention): {below}")
    assert not problems, f"{report} (screenshot {shot}):\n" + "\n".join(problems)
