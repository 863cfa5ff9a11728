"""The top of the unlearning report: what a reader takes in at a glance, then per-concept detail.

    summary_html(records, failed_tests=...)  ->  banner + Table 3 lines + chart + per-concept sections

* the run's verdict: pass / fail / inconclusive counts and what the exit code means;
* one line per column of HUB's Table 3 (target proportion, FID, FID vs base, aesthetic, general and selective
  alignment, pinpoint, multilingual, attack, efficiency) present in the run, aggregated over concepts: value,
  interval, threshold, verdict, judge;
* an inline SVG bar chart of every column relative to the base model (``relation``: 1.0 is the goal, see
  ``CHART_NOTE``);
* one section per concept: its records, a per-language table (multilingual) and per-neighbour bars (pinpoint),
  the prompts each attack found; then the run-wide checks (FID, general alignment, efficiency).

Records are the dicts the ``verdict`` fixture writes (``results.json``): ``aspect``, ``value``, ``low``, ``high``,
``threshold``, ``verdict``, ``judge_info``, ``concept``/``prompt_concept``, ``language``, ``neighbour``, ``attack``,
``base_value``, ``evidence_image`` (the full-size grid beside the report).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from statistics import mean

from hubkit_reports.html import judge_cell

VERDICT_COLOURS = {"pass": "#d4edda", "fail": "#f8d7da", "inconclusive": "#fff3cd"}
BAR_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#f9a825"}


@dataclass(frozen=True)
class Column:
    """One column of HUB's Table 3 (``hubkit.compare.TASKS``, plus FID vs base and hubkit's efficiency measures)."""

    key: str               # short label in the chart
    title: str
    aspect: str            # which of HUB's six aspects it belongs to
    measures: tuple        # hubkit measure names; a line per measure present (attack: per attack)
    relation: str          # how the chart relates it to the base: "erased" | "ratio" | "inverse" | "none"


COLUMNS: tuple[Column, ...] = (
    Column("TP", "target proportion", "faithfulness", ("faithfulness.target_proportion",), "erased"),
    Column("FID", "FID", "faithfulness", ("faithfulness.fid_vs_reference",), "inverse"),
    Column("FID/base", "FID vs base", "faithfulness", ("faithfulness.fid_vs_base_noise_ratio",), "inverse"),
    Column("Aes", "aesthetic (target quality)", "faithfulness", ("faithfulness.target_quality",), "ratio"),
    Column("IR", "general alignment", "alignment", ("alignment.general",), "ratio"),
    Column("Sel", "selective alignment", "alignment", ("alignment.selective",), "ratio"),
    Column("Pin", "pinpoint", "pinpoint-ness", ("pinpoint.relative",), "ratio"),
    Column("ML", "multilingual", "multilingual", ("multilingual.mean_target_proportion",), "erased"),
    Column("Atk", "attack", "attack robustness", ("robustness.static_prompts", "robustness.attack_success"), "erased"),
    Column("Eff", "efficiency", "efficiency", ("efficiency.time_overhead", "efficiency.memory_overhead",
                                               "efficiency.train_minutes", "efficiency.storage_mb"), "inverse"),
)
RUN_WIDE = ("faithfulness.fid_vs_reference", "faithfulness.fid_vs_base_noise_ratio", "alignment.general")
ABSOLUTE = ("efficiency.train_minutes", "efficiency.storage_mb")  # no base model number to relate them to

CHART_NOTE = ("Each bar relates the unlearned model to the base model; higher is better and <b>1.0 is the goal</b>. "
              "Erasure columns (target proportion, multilingual, attack): the share of the base model's concept "
              "images that the unlearned model removed, 1 &minus; unlearned/base (1.0: the concept never appears; "
              "0: as often as in the base model; 1 &minus; proportion when the base rate is unknown). Preservation "
              "columns: the unlearned model's score as a fraction of the base model's, turned so that higher is "
              "better (aesthetic, alignment, pinpoint: unlearned/base; FID and time or memory overhead: "
              "base/unlearned), so 1.0 means as good as the base model. Bars are coloured by verdict; absolute "
              "numbers without a base (training minutes, storage) are not drawn.")


# ------------------------------------------------------------------------------------------------ helpers
def _f(x, digits: int = 3) -> str:
    try:
        return f"{float(x):.{digits}f}"
    except (TypeError, ValueError):
        return "–"


def _e(x) -> str:
    return html.escape(str(x))


def concept_of(record: dict) -> str | None:
    """The concept a record is about, None for run-wide checks (FID, general alignment, efficiency)."""
    aspect = str(record.get("aspect"))
    if aspect in RUN_WIDE or aspect.startswith("efficiency."):
        return record.get("concept")
    return record.get("concept") or record.get("prompt_concept")


def worst_verdict(records) -> str:
    verdicts = {r.get("verdict") for r in records}
    for v in ("fail", "inconclusive", "pass"):
        if v in verdicts:
            return v
    return next(iter(verdicts), "–") or "–"


def _fails_run(r: dict) -> bool:
    return r.get("verdict") == "fail" or (r.get("verdict") == "inconclusive" and r.get("inconclusive_fails", True))


def _what(r: dict) -> str:
    return ", ".join(str(r[k]) for k in ("language", "neighbour", "attack") if r.get(k))


# ------------------------------------------------------------------------------------------------ banner
def banner(records: list[dict], failed_tests: int | None = None) -> str:
    """The run's verdict: counts of checks by verdict and what pytest's exit code says."""
    counts = {v: sum(r.get("verdict") == v for r in records) for v in ("pass", "fail", "inconclusive")}
    failing = sum(_fails_run(r) for r in records)
    other = max(0, (failed_tests or 0) - failing)  # tests that failed without a verdict (errors, crashes)
    if failing or other:
        verdict, colour = "FAIL", VERDICT_COLOURS["fail"]
        meaning = (f"pytest exits 1: {failing} check(s) failed or stayed undecided under a rule that fails them"
                   + (f", and {other} test(s) failed without a verdict (errors)" if other else ""))
    elif counts["inconclusive"]:
        verdict, colour = "PASS, WITH UNDECIDED CHECKS", VERDICT_COLOURS["inconclusive"]
        meaning = ("pytest exits 0: nothing failed; the inconclusive checks are marked xfail by their rule "
                   "(inconclusive_fails = false): more images would decide them")
    else:
        verdict, colour = "PASS", VERDICT_COLOURS["pass"]
        meaning = "pytest exits 0: every check passed"
    concepts = sorted({c for c in map(concept_of, records) if c})
    return (f"<div class='hubkit-banner' style='background:{colour};border:1px solid #999;padding:8px 14px;"
            f"margin:8px 0;font-size:15px'><b style='font-size:20px'>Verdict: {verdict}</b> &nbsp; "
            f"{counts['pass']} passed, {counts['fail']} failed, {counts['inconclusive']} inconclusive "
            f"(of {len(records)} checks"
            f"{', concepts ' + _e(', '.join(concepts)) if concepts else ''}).<br><small>{_e(meaning)}.</small></div>")


# ------------------------------------------------------------------------------------------------ Table 3 lines
@dataclass
class Line:
    column: Column
    label: str
    records: list
    base: float | None = None   # the base model's number for an erasure column (mean over concepts), if known

    @property
    def value(self) -> float | None:
        values = [float(r["value"]) for r in self.records if isinstance(r.get("value"), (int, float))]
        return mean(values) if values else None

    @property
    def verdict(self) -> str:
        return worst_verdict(self.records)

    @property
    def relation(self) -> float | None:
        """The chart's number (see ``CHART_NOTE``), None when the line has no base to relate to."""
        v = self.value
        if v is None or any(r.get("aspect") in ABSOLUTE for r in self.records):
            return None
        kind = self.column.relation
        if kind == "erased":
            return 1 - v / self.base if self.base else 1 - v
        if kind == "ratio":
            return v
        if kind == "inverse":
            return 1 / v if v > 0 else None
        return None


def _base_of(records: list[dict], all_records: list[dict]) -> float | None:
    """The base model's rate behind an erasure line: the records' ``base_value``, else (multilingual mean) the mean
    of the per-language base rates of the same concepts."""
    bases = [float(r["base_value"]) for r in records if isinstance(r.get("base_value"), (int, float))]
    if not bases and any(r.get("aspect") == "multilingual.mean_target_proportion" for r in records):
        concepts = {concept_of(r) for r in records}
        bases = [float(r["base_value"]) for r in all_records if r.get("aspect") == "multilingual.target_proportion"
                 and concept_of(r) in concepts and isinstance(r.get("base_value"), (int, float))]
    return mean(bases) if bases else None


def table3_lines(records: list[dict]) -> list[Line]:
    """One line per Table 3 column present (per measure for efficiency, per attack for attack), over concepts."""
    lines = []
    for column in COLUMNS:
        for name in column.measures:
            found = [r for r in records if r.get("aspect") == name]
            if not found:
                continue
            if name.startswith("robustness."):
                groups: dict = {}
                for r in found:
                    groups.setdefault(str(r.get("attack") or name.split(".")[-1]), []).append(r)
                for attack, rs in groups.items():
                    lines.append(Line(column, f"{column.title}: {attack}", rs, _base_of(rs, records)))
            else:
                label = column.title if len(column.measures) == 1 else f"{column.title}: {name.split('.', 1)[1]}"
                lines.append(Line(column, label, found, _base_of(found, records)))
    return lines


def _same(values) -> str:
    nums = sorted({float(v) for v in values if isinstance(v, (int, float))})
    if not nums:
        return "–"
    return _f(nums[0]) if len(nums) == 1 else f"{_f(nums[0])}–{_f(nums[-1])}"


def _judges(records) -> str:
    cells = list(dict.fromkeys(judge_cell(r) for r in records))
    return "<br>".join(cells)


def table3_table(lines: list[Line]) -> str:
    rows = []
    for line in lines:
        rs = line.records
        k = len(rs)
        direction = {"lower": "&darr;", "higher": "&uarr;"}.get(rs[0].get("direction"), "")
        if k == 1:
            interval = f"[{_f(rs[0].get('low'))}, {_f(rs[0].get('high'))}]"
        else:
            lows = [float(r["low"]) for r in rs if isinstance(r.get("low"), (int, float))]
            highs = [float(r["high"]) for r in rs if isinstance(r.get("high"), (int, float))]
            interval = (f"[{_f(min(lows)) if lows else '–'}, {_f(max(highs)) if highs else '–'}] "
                        f"<small>(from the lowest to the highest of {k})</small>")
        concepts = sorted({c for c in map(concept_of, rs) if c})
        over = f"mean of {k}: {', '.join(concepts)}" if k > 1 else (concepts[0] if concepts else "run-wide")
        base = f"{_f(line.base)}" if line.base is not None else "–"
        rel = _f(line.relation, 2) if line.relation is not None else "–"
        verdict = line.verdict
        rows.append(f"<tr style='background:{VERDICT_COLOURS.get(verdict, '#fff')}'><td>{_e(line.column.aspect)}</td>"
                    f"<td><b>{_e(line.label)}</b> "
                    f"{direction}</td><td>{_e(over)}</td><td>{_f(line.value)}</td><td>{interval}</td><td>{base}</td>"
                    f"<td>{rel}</td><td>{_same([r.get('threshold') for r in rs])}</td><td><b>{_e(verdict)}</b></td>"
                    f"<td>{_judges(rs)}</td></tr>")
    level = next((f"{r['confidence']:.0%}" for line in lines for r in line.records if r.get("confidence")), "95%")
    head = ("<tr><th>aspect</th><th>HUB Table 3 column</th><th>over</th><th>value</th><th>" + level + " interval</th>"
            "<th>base model</th><th>vs base (1.0 = goal)</th><th>threshold</th><th>verdict</th>"
            "<th>judge (version; weights sha256)</th></tr>")
    return f"<table class='hubkit-table3'>{head}{''.join(rows)}</table>"


# ------------------------------------------------------------------------------------------------ chart
def chart_svg(lines: list[Line], width_per_bar: int = 64, top: float = 1.5) -> str:
    """Vertical bars of each line's relation to the base (``CHART_NOTE``), clipped at ``top`` (an arrow marks a clipped
    bar), a dashed line at 1.0, aspect names under their bars."""
    drawn = [line for line in lines if line.relation is not None]
    if not drawn:
        return "<p><i>No column of this run has a base-model number to draw.</i></p>"
    left, plot_h, pad_top, bottom = 46, 200, 18, 64
    width = left + len(drawn) * width_per_bar + 80  # room on the right for the 1.0 label
    height = pad_top + plot_h + bottom

    def y(v: float) -> float:
        return pad_top + plot_h * (1 - max(0.0, min(top, v)) / top)

    parts = [f"<svg class='hubkit-chart' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}' font-family='sans-serif' font-size='11' role='img' "
             f"aria-label='each HUB column relative to the base model; 1.0 is the goal'>"]
    for tick in (0, 0.5, 1.0, 1.5):
        if tick <= top:
            style = "stroke='#333' stroke-dasharray='5,3'" if tick == 1.0 else "stroke='#ddd'"
            parts.append(f"<line x1='{left}' x2='{width - 70}' y1='{y(tick):.1f}' y2='{y(tick):.1f}' {style}/>"
                         f"<text x='{left - 4}' y='{y(tick) + 4:.1f}' text-anchor='end'>{tick:.1f}</text>")
    parts.append(f"<text x='{width - 4}' y='{y(1.0) + 4:.1f}' text-anchor='end' fill='#333'>1.0 = goal</text>")
    previous = None
    for i, line in enumerate(drawn):
        x = left + i * width_per_bar + 10
        w = width_per_bar - 20
        rel = line.relation
        colour = BAR_COLOURS.get(line.verdict, "#777")
        y0, y1 = y(0), y(rel)
        tip = f"{line.label}: {rel:.3f} relative to base; value {_f(line.value)}; verdict {line.verdict}"
        parts.append(f"<rect x='{x}' y='{min(y0, y1):.1f}' width='{w}' height='{abs(y0 - y1):.1f}' fill='{colour}'>"
                     f"<title>{_e(tip)}</title></rect>")
        label = f"{rel:.2f}" + ("&#8593;" if rel > top else "")
        parts.append(f"<text x='{x + w / 2}' y='{min(y0, y1) - 3:.1f}' text-anchor='middle'>{label}</text>")
        key = line.column.key if line.label == line.column.title else line.label.split(": ", 1)[-1].split("_")[0][:11]
        parts.append(f"<text x='{x + w / 2}' y='{pad_top + plot_h + 14}' text-anchor='middle'>{_e(key)}</text>")
        if line.column.aspect != previous:
            previous = line.column.aspect
            parts.append(f"<text x='{x - 6}' y='{pad_top + plot_h + 32}' font-size='10' fill='#555'>"
                         f"{_e(line.column.aspect)}</text>"
                         f"<line x1='{x - 8}' x2='{x - 8}' y1='{pad_top + plot_h}' y2='{pad_top + plot_h + 36}' "
                         f"stroke='#bbb'/>")
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------------------------------------ per concept
def _evidence_link(r: dict) -> str:
    path = r.get("evidence_image")
    return f"<a href='{_e(path)}' target='_blank'>full size</a>" if path else "–"


ASPECT_ORDER = ("faithfulness", "alignment", "pinpoint", "multilingual", "robustness", "efficiency")
_VERDICT_ORDER = {"fail": 0, "inconclusive": 1}


def reading_order(records: list[dict]) -> list[dict]:
    """Failures first, then undecided checks, then passes; within each, HUB's aspect order (stable otherwise)."""
    def key(r):
        group = str(r.get("aspect")).split(".")[0]
        return (_VERDICT_ORDER.get(r.get("verdict"), 2),
                ASPECT_ORDER.index(group) if group in ASPECT_ORDER else len(ASPECT_ORDER))
    return sorted(records, key=key)


def records_table(records: list[dict]) -> str:
    rows = []
    for r in reading_order(records):
        base = _f(r.get("base_value")) if r.get("base_value") is not None else "–"
        side = {"upper": "&le;", "lower": "&ge;"}.get(r.get("bound_side"), "")
        rows.append(f"<tr style='background:{VERDICT_COLOURS.get(r.get('verdict'), '#fff')}'>"
                    f"<td>{_e(r.get('aspect'))}</td><td>{_e(_what(r))}</td><td>{_f(r.get('value'))} "
                    f"[{_f(r.get('low'))}, {_f(r.get('high'))}]</td><td>{side} {_f(r.get('bound'))}</td>"
                    f"<td>{base}</td><td>{r.get('n', '–')}</td><td>{_f(r.get('threshold'))}</td>"
                    f"<td><b>{_e(r.get('verdict'))}</b></td><td>{judge_cell(r)}</td><td>{_evidence_link(r)}</td></tr>")
    head = ("<tr><th>check</th><th>for</th><th>value [interval]</th><th>deciding bound</th><th>base model</th>"
            "<th>n</th><th>threshold</th><th>verdict</th><th>judge</th><th>evidence</th></tr>")
    return f"<table class='hubkit-concept-records'>{head}{''.join(rows)}</table>"


def language_table(records: list[dict]) -> str:
    """Per language: the base and unlearned target proportions, interval, threshold, verdict (and HUB's mean)."""
    rows = [r for r in records if r.get("aspect") == "multilingual.target_proportion" and r.get("language")]
    means = [r for r in records if r.get("aspect") == "multilingual.mean_target_proportion"]
    if not rows and not means:
        return ""
    body = []
    for r in rows:
        body.append(f"<tr style='background:{VERDICT_COLOURS.get(r.get('verdict'), '#fff')}'>"
                    f"<td>{_e(r['language'])}</td><td>{_f(r.get('base_value'))}</td><td>{_f(r.get('value'))}</td>"
                    f"<td>[{_f(r.get('low'))}, {_f(r.get('high'))}]</td><td>{_f(r.get('threshold'))}</td>"
                    f"<td>{_e(r.get('verdict'))}</td><td>{_evidence_link(r)}</td></tr>")
    for r in means:
        known = {row["language"] for row in rows}
        for language, rate in (r.get("per_language") or {}).items():
            if language not in known:  # the mean's own per-language rates, when the language test did not run
                body.append(f"<tr><td>{_e(language)}</td><td>–</td><td>{_f(rate)}</td><td colspan='4'>"
                            f"<small>from the mean's check</small></td></tr>")
        body.append(f"<tr style='background:{VERDICT_COLOURS.get(r.get('verdict'), '#fff')};font-weight:bold'>"
                    f"<td>mean of 5 (HUB)</td><td>{_f(_base_of([r], records))}</td><td>{_f(r.get('value'))}</td>"
                    f"<td>[{_f(r.get('low'))}, {_f(r.get('high'))}]</td><td>{_f(r.get('threshold'))}</td>"
                    f"<td>{_e(r.get('verdict'))}</td><td>{_evidence_link(r)}</td></tr>")
    return ("<h4>Multilingual: target proportion per language</h4><table class='hubkit-languages'><tr><th>language"
            "</th><th>base model</th><th>unlearned</th><th>interval</th><th>threshold</th><th>verdict</th>"
            "<th>evidence</th></tr>" + "".join(body) + "</table>")


def neighbour_bars(records: list[dict], width: int = 520, top: float = 1.5) -> str:
    """Per neighbour: unlearned/base share of images still showing it, with its interval and the threshold, the
    neighbour kept least first (an inline SVG)."""
    rows = [r for r in records if r.get("aspect") == "pinpoint.relative_per_neighbour" and r.get("neighbour")]
    if not rows:
        return ""
    rows.sort(key=lambda r: (float(r.get("value") or 0.0), str(r.get("neighbour"))))
    label_w, bar_h, gap, axis = 130, 16, 6, 22
    plot_w = width - label_w - 60
    height = len(rows) * (bar_h + gap) + axis + 4

    def x(v) -> float:
        try:
            v = float(v)
        except (TypeError, ValueError):
            v = 0.0
        return label_w + plot_w * max(0.0, min(top, v)) / top

    parts = [f"<svg class='hubkit-neighbours' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"font-family='sans-serif' font-size='11'>"]
    for i, r in enumerate(rows):
        y = i * (bar_h + gap) + 2
        colour = BAR_COLOURS.get(r.get("verdict"), "#777")
        parts.append(f"<text x='{label_w - 6}' y='{y + bar_h - 4}' text-anchor='end'>{_e(r['neighbour'])}</text>"
                     f"<rect x='{label_w}' y='{y}' width='{x(r.get('value')) - label_w:.1f}' height='{bar_h}' "
                     f"fill='{colour}'><title>{_e(r['neighbour'])}: {_f(r.get('value'))} [{_f(r.get('low'))}, "
                     f"{_f(r.get('high'))}], {_e(r.get('verdict'))}</title></rect>"
                     f"<line x1='{x(r.get('low')):.1f}' x2='{x(r.get('high')):.1f}' y1='{y + bar_h / 2}' "
                     f"y2='{y + bar_h / 2}' stroke='#000'/>"
                     f"<text x='{max(x(r.get('value')), x(r.get('high'))) + 4:.1f}' y='{y + bar_h - 4}'>"
                     f"{_f(r.get('value'), 2)}</text>")
        if r.get("threshold") is not None:
            parts.append(f"<line x1='{x(r['threshold']):.1f}' x2='{x(r['threshold']):.1f}' y1='{y - 2}' "
                         f"y2='{y + bar_h + 2}' stroke='#c62828' stroke-width='2'/>")
    y_axis = len(rows) * (bar_h + gap) + 2
    for tick in (0, 0.5, 1.0, 1.5):
        parts.append(f"<text x='{x(tick):.1f}' y='{y_axis + 14}' text-anchor='middle' fill='#555'>{tick:.1f}</text>")
    parts.append(f"<line x1='{x(1.0):.1f}' x2='{x(1.0):.1f}' y1='0' y2='{y_axis}' stroke='#333' "
                 f"stroke-dasharray='4,3'/></svg>")
    return ("<h4>Pinpoint: each neighbour kept, unlearned / base (1.0 = as often as in the base model; black: "
            "interval, red: threshold)</h4>" + "".join(parts))


def attack_prompts(records: list[dict]) -> str:
    found = [r for r in records if r.get("prompts_found")]
    if not found:
        return ""
    out = []
    for r in found:
        items = "".join(f"<li><code>{_e(p)}</code></li>" for p in r["prompts_found"])
        out.append(f"<details><summary>{_e(r.get('attack'))}: {len(r['prompts_found'])} prompts found "
                   f"(success rate {_f(r.get('value'))}, {_e(r.get('verdict'))}; images: {_evidence_link(r)})"
                   f"</summary><ol>{items}</ol></details>")
    return "<h4>Attack prompts found</h4>" + "".join(out)


def concept_sections(records: list[dict]) -> str:
    by_concept: dict = {}
    for r in records:
        by_concept.setdefault(concept_of(r), []).append(r)
    out = []
    for concept in sorted((c for c in by_concept if c), key=str):
        rs = by_concept[concept]
        category = next((r.get("category") for r in rs if r.get("category")), "")
        verdict = worst_verdict(rs)
        out.append(f"<section class='hubkit-concept'><h3 style='background:{VERDICT_COLOURS.get(verdict, '#fff')};"
                   f"padding:4px 8px'>{_e(concept)} <small>({_e(category)}): {_e(verdict)}, {len(rs)} checks"
                   f"</small></h3>{records_table(rs)}{language_table(rs)}{neighbour_bars(rs)}{attack_prompts(rs)}"
                   f"</section>")
    if None in by_concept:
        out.append("<section class='hubkit-concept'><h3>Run-wide checks</h3>" + records_table(by_concept[None])
                   + "</section>")
    return "".join(out)


# pytest-html greys its body text and puts its environment table first: the summary is what a reader comes for, so
# it is drawn in black and moved (CSS flex order) right under the title; the environment follows it.
STYLE = ("<style>body{display:flex;flex-direction:column}#title{order:-3}body>p:first-of-type{order:-2}"
         ".summary{order:-1}#environment-header,#environment{order:1}.hubkit-report{color:#222;font-size:13px}.hubkit-report a{color:#0645ad}"
         ".hubkit-report table{margin:4px 0 10px}.hubkit-report th{background:#eee;color:#222}"
         ".hubkit-report td,.hubkit-report th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
         ".hubkit-report h3,.hubkit-report h4{color:#111;margin:14px 0 4px}"
         # the evidence grid at its own size (its captions are legible there), not squeezed into 320 x 240
         "div.media{float:none;width:auto;max-width:100%;height:auto}.media-container{height:auto}"
         ".media-container__viewport img{object-fit:contain;width:auto;max-width:100%}</style>")

# A click on a test's evidence thumbnail opens its full-size grid beside the report (``evidence_image``), else the
# thumbnail itself in a new window (browsers refuse to navigate to the data: URL pytest-html would open).
_CLICK = ("<script>(function(){var full=%s;document.addEventListener('click',function(e){"
          "var img=e.target.closest&&e.target.closest('.media-container__viewport img');if(!img)return;"
          "var tb=img.closest('tbody');var path=tb&&full[tb.id];e.stopPropagation();e.preventDefault();"
          "if(path){window.open(path,'_blank');return;}var w=window.open('','_blank');"
          "if(w){w.document.write('<title>evidence</title><img src=\\''+img.src+'\\'>');}},true);})();</script>")


def click_script(records: list[dict]) -> str:
    full = {str(r["test"]): str(r["evidence_image"]) for r in records if r.get("test") and r.get("evidence_image")}
    return _CLICK % json.dumps(full).replace("<", "\\u003c")  # no "</script>" or "<!--" can end the block


def notices_html(notices) -> str:
    """The run's notices (a model equal to the base, a checkpoint without a declared concept) right under the verdict."""
    if not notices:
        return ""
    items = "".join(f"<li>{_e(n)}</li>" for n in notices)
    return ("<div class='hubkit-notices' style='background:#fff3cd;border:1px solid #c9a227;padding:4px 14px;"
            f"margin:6px 0'><b>Notice</b><ul style='margin:2px 0'>{items}</ul></div>")


def summary_html(records: list[dict], *, failed_tests: int | None = None, settings: str = "",
                 notices=()) -> str:
    """The whole summary: banner, notices, Table 3 lines, chart, per-concept sections."""
    lines = table3_lines(records)
    return (STYLE + "<div class='hubkit-report'><h2>Unlearning report</h2>" + banner(records, failed_tests)
            + notices_html(notices)
            + (f"<p><small>{_e(settings)}</small></p>" if settings else "")
            + "<h3>At a glance: HUB's Table 3 columns</h3>" + table3_table(lines)
            + "<h3>Relative to the base model</h3>" + chart_svg(lines) + f"<p><small>{CHART_NOTE}</small></p>"
            + "<h2>Per concept</h2>" + concept_sections(records) + "</div>" + click_script(records))
