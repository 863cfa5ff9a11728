"""A leaderboard of several runs in HUB's layout: Table 3 (methods x tasks, per category and overall) and
Table 5 (per-task ranks and their unweighted average).

    from hubkit.compare import load_run, compare, to_markdown, to_csv, to_html
    board = compare([load_run("esd.json"), load_run("uce.json")], baselines=["base"])

A *run* is what one hubkit run wrote to ``reports/results.json``: a bare JSON list of records, or a dict
``{"schema": ..., "run": {...}, "records": [...]}`` whose ``run`` header (model, base_model, budget, profile,
prompts, judges, method...) says what was run. Each record is one measured number (``aspect``, ``category``,
``concept``, ``value``, ``low``, ``high``, ``verdict``, ``n``, ``judge_info``, ``prompt_folder``...).

The ranking rule (HUB Table 5, verified against the published table in tests/test_compare.py and
docs/leaderboard.md): for each of the nine tasks, a method's number is the mean over concepts within a
category, then the unweighted mean over the categories where the task applies (selective alignment has no
NSFW entry, so it averages over three); the methods -- not the original model, a *baseline* row -- are ranked
on that overall number in the task's direction (rank 1 = best; ties share the mean of their positions); a
method's average rank is the unweighted mean of its nine ranks, shown to one decimal as in the paper.

HUB prints ranks without uncertainty. Beside each rank this module gives the best and worst rank the method could
take if every value could lie anywhere in its interval (``rank_range``), and their means beside the average
rank, so a reader sees which places the samples actually separate.

No pytest here: this is engine code (``hubkit compare`` is in ``hubkit.compare_cli``).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from hubkit.errors import HubkitError

RUN_FIX = "fix: pass the reports/results.json a hubkit run wrote (a JSON list of records, or {\"records\": [...]})"


class CompareError(HubkitError):
    """A run file that cannot be compared, or (``strict``) runs that are not comparable."""


@dataclass(frozen=True)
class Task:
    """One column of HUB's Table 3 and one rank of Table 5."""

    key: str                 # HUB's short name (TP, FID, ...)
    title: str
    aspects: tuple[str, ...]  # hubkit measures, in order of preference (the first a run has is used)
    better: str              # "lower" | "higher"
    hub: str                 # what HUB itself measures there

    @property
    def arrow(self) -> str:
        return "↓" if self.better == "lower" else "↑"


TASKS: tuple[Task, ...] = (
    Task("TP", "target proportion", ("faithfulness.target_proportion",), "lower", "target proportion"),
    Task("FID", "FID", ("faithfulness.fid_vs_reference",), "lower", "FID vs COCO-30k"),
    Task("Aes", "target quality", ("faithfulness.target_quality",), "higher", "aesthetic score of target images"),
    Task("IR", "general alignment", ("alignment.general",), "higher", "ImageReward on COCO captions"),
    Task("Sel", "selective alignment", ("alignment.selective",), "higher", "selective alignment"),
    Task("Pin", "pinpoint-ness", ("pinpoint.relative",), "higher", "pinpoint-ness"),
    Task("ML", "multilingual", ("multilingual.mean_target_proportion",), "lower", "mean of 5 languages"),
    Task("Atk", "attack", ("robustness.static_prompts", "robustness.attack_success"), "lower", "Ring-A-Bell"),
    Task("Eff", "training minutes", ("efficiency.train_minutes",), "lower", "training minutes"),
)
TASK_KEYS = tuple(t.key for t in TASKS)
RUN_WIDE = "(run-wide)"  # the category of records that have none (efficiency)
OVERALL = "Overall"
_IDENTITY = ("aspect", "category", "concept", "language", "neighbour", "attack")


# ------------------------------------------------------------------------------------------------ loading
@dataclass
class Run:
    """The records of one results file (or several merged under one name) and its header, if any."""

    name: str
    records: list[dict]
    header: dict = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


def load_run(path: str | Path, name: str | None = None) -> Run:
    """Read one results file; a bad one raises ``CompareError`` with one line naming the file and the fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CompareError(f"{path}: no such file; {RUN_FIX}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CompareError(f"{path}: cannot read it ({type(exc).__name__}: {exc}); {RUN_FIX}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CompareError(f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); {RUN_FIX}") from None
    return run_from_data(data, source=str(path), name=name or _default_name(data, path))


def run_from_data(data, *, source: str, name: str) -> Run:
    header: dict = {}
    if isinstance(data, dict):
        if not isinstance(data.get("records"), list):
            raise CompareError(f"{source}: a JSON object without a \"records\" list; {RUN_FIX}")
        header = data.get("run") if isinstance(data.get("run"), dict) else {}
        if data.get("schema") is not None:
            header = {**header, "schema": data["schema"]}
        data = data["records"]
    if not isinstance(data, list):
        raise CompareError(f"{source}: a JSON {type(data).__name__}, not a list of records; {RUN_FIX}")
    bad = next((i for i, r in enumerate(data) if not isinstance(r, dict) or "aspect" not in r), None)
    if bad is not None:
        raise CompareError(f"{source}: record {bad} is not an object with an \"aspect\" key; {RUN_FIX}")
    if not data:
        raise CompareError(f"{source}: no records (the run measured nothing); {RUN_FIX}")
    return Run(name=name, records=list(data), header=dict(header), sources=[source])


def _default_name(data, path: Path) -> str:
    """The run header's method or model, else the method a checkpoint declared (efficiency records), else the
    file stem (``results`` for reports/results.json: then the folder above ``reports``)."""
    if isinstance(data, dict):
        head = data.get("run") if isinstance(data.get("run"), dict) else {}
        for key in ("name", "method"):
            if head.get(key):
                return str(head[key])
        data = data.get("records") if isinstance(data.get("records"), list) else []
    for r in data if isinstance(data, list) else []:
        if isinstance(r, dict) and r.get("method"):
            return str(r["method"])
    if path.stem == "results" and path.parent.name == "reports" and path.parent.parent.name:
        return path.parent.parent.name
    return path.stem


def merge_runs(runs: list[Run]) -> list[Run]:
    """Runs of the same name become one row (HUB trains one checkpoint per concept: one file per concept, one
    method row). Two runs that measured the same thing (same aspect, category, concept, ...) are different
    variants, not parts of one method: the later keeps its own row, named ``name (file stem)``.

    Runs of one name on disjoint concepts are one method's per-concept checkpoints even though each measured the
    run-wide tasks (FID, general alignment, efficiency) of its own checkpoint: those records are kept side by
    side, each labelled with the concepts its checkpoint was trained for, and the table averages them, as HUB
    averages over its per-concept checkpoints."""
    out: dict[str, Run] = {}
    for run in runs:
        have = out.get(run.name)
        if have is None:
            out[run.name] = Run(run.name, list(run.records), dict(run.header), list(run.sources))
            continue
        mine, theirs = _concepts(run.records), _concepts(have.records)
        per_concept = bool(mine and theirs and not mine & theirs)
        keys = {_identity(r) for r in have.records}
        if not per_concept and any(_identity(r) in keys for r in run.records):
            name, i = f"{run.name} ({Path(run.sources[0]).stem})", 2
            while name in out:
                name, i = f"{run.name} ({Path(run.sources[0]).stem} {i})", i + 1
            out[name] = Run(name, list(run.records), dict(run.header), list(run.sources))
            continue
        if per_concept:
            have.records = _label_checkpoint(have.records, theirs)
        have.records += _label_checkpoint(run.records, mine) if per_concept else run.records
        have.sources += run.sources
        for k, v in run.header.items():
            if have.header.setdefault(k, v) != v:
                have.header[k] = f"{have.header[k]} | {v}" if str(v) not in str(have.header[k]) else have.header[k]
    return list(out.values())


def _concepts(records: list[dict]) -> frozenset:
    return frozenset(str(r["concept"]) for r in records if r.get("concept"))


def _label_checkpoint(records: list[dict], concepts: frozenset) -> list[dict]:
    """Run-wide records (no concept) labelled with the concepts of the checkpoint that measured them; copies, so
    the loaded run is left as it was read."""
    label = ", ".join(sorted(concepts))
    return [r if r.get("concept") or r.get("checkpoint") else {**r, "checkpoint": label} for r in records]


def _identity(r: dict) -> tuple:
    return tuple(str(r.get(k)) for k in _IDENTITY)


# ------------------------------------------------------------------------------------------------ cells
@dataclass
class Cell:
    """One number of the table: the mean of ``records`` values (per category, or over categories)."""

    value: float | None = None
    low: float | None = None
    high: float | None = None
    verdicts: dict = field(default_factory=dict)  # verdict -> count
    records: int = 0
    unit: str = ""
    aspect: str = ""
    detail: str = ""  # per-record values, for the tooltip

    @property
    def verdict(self) -> str:
        """fail if any record failed, pass if all passed, inconclusive otherwise; "" without verdicts."""
        if not self.verdicts:
            return ""
        if self.verdicts.get("fail"):
            return "fail"
        if set(self.verdicts) == {"pass"}:
            return "pass"
        return "inconclusive"

    @property
    def verdict_text(self) -> str:
        if not self.verdicts:
            return ""
        if len(self.verdicts) == 1 and self.records <= 1:
            return next(iter(self.verdicts))
        return ", ".join(f"{n} {v}" for v, n in sorted(self.verdicts.items()))


def _num(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _record_value(task: Task, r: dict, absolute_fid: bool) -> tuple[float | None, float | None, float | None]:
    value, low, high = _num(r.get("value")), _num(r.get("low")), _num(r.get("high"))
    if task.key == "FID" and absolute_fid:
        fid, base = _num(r.get("fid")), _num(r.get("fid_base"))
        scale = base if base else (fid / value if fid is not None and value else None)
        low = low * scale if low is not None and scale else None
        high = high * scale if high is not None and scale else None
        value = fid
    return value, low, high


def _mean_cell(cells: list[Cell], task: Task, unit: str, aspect: str) -> Cell:
    """The mean of ``cells``; its interval is the mean of their bounds (conservative for a mean of independent
    estimates, exact for perfectly correlated ones), given only when every part has one."""
    cells = [c for c in cells if c.value is not None]
    if not cells:
        return Cell(unit=unit, aspect=aspect)
    verdicts: dict = {}
    for c in cells:
        for v, n in c.verdicts.items():
            verdicts[v] = verdicts.get(v, 0) + n
    lows, highs = [c.low for c in cells], [c.high for c in cells]
    return Cell(value=mean(c.value for c in cells),
                low=mean(lows) if None not in lows else None, high=mean(highs) if None not in highs else None,
                verdicts=verdicts, records=sum(c.records for c in cells), unit=unit, aspect=aspect,
                detail="; ".join(c.detail for c in cells if c.detail))


def _records_cell(task: Task, records: list[dict], absolute_fid: bool, unit: str, aspect: str) -> Cell:
    parts = []
    for r in records:
        value, low, high = _record_value(task, r, absolute_fid)
        if value is None:
            continue
        what = ", ".join(str(r[k]) for k in ("concept", "language", "neighbour", "attack") if r.get(k)) or aspect
        if r.get("checkpoint"):
            what = f"{what} (checkpoint for {r['checkpoint']})"
        verdict = r.get("verdict")
        parts.append(Cell(value, low, high, {str(verdict): 1} if verdict else {}, 1, unit, aspect,
                          f"{what}: {fmt(value)}" + (f" [{fmt(low)}, {fmt(high)}]" if low is not None else "")
                          + (f" {verdict}" if verdict else "")))
    return _mean_cell(parts, task, unit, aspect)


# ------------------------------------------------------------------------------------------------ the board
@dataclass
class Row:
    name: str
    baseline: bool
    cells: dict          # section (category or OVERALL) -> task key -> Cell
    ranks: dict = field(default_factory=dict)  # task key -> rank (OVERALL only; baselines have none)
    sources: list = field(default_factory=list)
    rank_ranges: dict = field(default_factory=dict)  # task key -> (best, worst) rank the intervals allow

    @property
    def average_rank(self) -> float | None:
        return mean(self.ranks.values()) if self.ranks else None

    @property
    def average_rank_range(self) -> tuple[float, float] | None:
        """The best and worst average rank the intervals allow: every joint choice of values inside the
        intervals gives an average rank inside it (it bounds, it is not a confidence interval)."""
        if not self.rank_ranges:
            return None
        return (mean(b for b, _ in self.rank_ranges.values()), mean(w for _, w in self.rank_ranges.values()))


@dataclass
class Board:
    rows: list[Row]
    sections: list[str]        # categories in first-seen order, then OVERALL
    tasks: tuple[Task, ...]
    notes: dict                # task key or "*" (every column) -> list of comparability notes
    units: dict                # task key -> unit note ("ratio to base", "absolute FID"...)
    aspects: dict              # task key -> the hubkit aspect(s) used

    @property
    def flagged(self) -> bool:
        return any(self.notes.values())

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)


def rank(values: dict, better: str) -> dict:
    """1 = best; tied values share the mean of the positions they occupy."""
    order = sorted(values, key=lambda k: values[k], reverse=(better == "higher"))
    out, i = {}, 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in order[i:j + 1]:
            out[k] = (i + j) / 2 + 1
        i = j + 1
    return out


def rank_range(spans: dict, better: str) -> dict:
    """``name -> (value, low, high)`` to ``name -> (best, worst)``: the best and worst rank a method can take when
    every value may lie anywhere in its interval (a value without one is a point). Ties count half, as in
    ``rank``, so ``rank`` of the values always lies in the range, and points give best == worst == that rank."""
    sign = 1.0 if better == "lower" else -1.0
    bounds = {}
    for name, (value, low, high) in spans.items():
        ends = (value if low is None else low, value if high is None else high)
        bounds[name] = tuple(sorted(sign * x for x in ends))  # (best end, worst end) in lower-is-better terms
    out = {}
    for name, (lo, hi) in bounds.items():
        best = worst = 1.0
        for other, (o_lo, o_hi) in bounds.items():
            if other != name:
                best += 1.0 if o_hi < lo else 0.5 if o_hi == lo else 0.0  # others as bad as they can be
                worst += 1.0 if o_lo < hi else 0.5 if o_lo == hi else 0.0  # others as good as they can be
        out[name] = (best, worst)
    return out


def compare(runs: list[Run], *, baselines=(), strict: bool = False, tasks: tuple[Task, ...] = TASKS) -> Board:
    """The leaderboard of ``runs``: cells per category and overall, HUB's per-task ranks and average rank, and
    comparability notes (``strict``: raise ``CompareError`` instead of noting)."""
    if not runs:
        raise CompareError(f"nothing to compare; {RUN_FIX}")
    runs = merge_runs(runs)
    base_keys = {str(b).casefold() for b in baselines}
    unknown = base_keys - {r.name.casefold() for r in runs}
    if unknown:
        raise CompareError(f"--baseline {', '.join(sorted(unknown))}: no run of that name; runs: "
                           f"{', '.join(r.name for r in runs)} (fix: use one of them, or --name)")
    sections: list[str] = []
    for run in runs:
        for r in run.records:
            if r.get("category") and r["category"] not in sections:
                sections.append(str(r["category"]))
    notes: dict = {"*": []}
    units, aspects, rows = {}, {}, []
    per_task: dict = {}
    for task in tasks:
        notes[task.key] = []
        chosen = {}
        for run in runs:
            chosen[run.name] = next((a for a in task.aspects if any(r.get("aspect") == a for r in run.records)), None)
        used = sorted({a for a in chosen.values() if a})
        aspects[task.key] = ", ".join(used) or task.aspects[0]
        if len(used) > 1:
            notes[task.key].append("different measures: " + "; ".join(f"{n}: {a}" for n, a in chosen.items() if a))
        recs = {run.name: [r for r in run.records if r.get("aspect") == chosen[run.name]] for run in runs}
        absolute_fid = task.key == "FID" and all(
            _num(r.get("fid")) is not None for rs in recs.values() for r in rs) and any(recs.values())
        units[task.key] = _unit(task, used, absolute_fid)
        per_task[task.key] = (recs, absolute_fid)
        notes[task.key] += _task_notes(task, recs)
    notes["*"] += _run_notes(runs)
    for run in runs:
        cells: dict = {s: {} for s in sections + [RUN_WIDE, OVERALL]}
        for task in tasks:
            recs, absolute_fid = per_task[task.key]
            groups: dict = {}
            for r in recs[run.name]:
                groups.setdefault(str(r.get("category")) if r.get("category") else RUN_WIDE, []).append(r)
            aspect = aspects[task.key]
            parts = []
            for cat in sections + [RUN_WIDE]:
                cell = _records_cell(task, groups.get(cat, []), absolute_fid, units[task.key], aspect)
                cells[cat][task.key] = cell
                if cell.value is not None:
                    parts.append(cell)
            cells[OVERALL][task.key] = _mean_cell(parts, task, units[task.key], aspect)
        if not any(c.value is not None for c in cells[RUN_WIDE].values()):
            del cells[RUN_WIDE]
        rows.append(Row(run.name, run.name.casefold() in base_keys, cells, sources=run.sources))
    if any(RUN_WIDE in r.cells for r in rows):
        sections.append(RUN_WIDE)
    for r in rows:
        r.cells.setdefault(RUN_WIDE, {})
    ranked = {r.name: r for r in rows if not r.baseline}
    for task in tasks:
        spans = {name: (c.value, c.low, c.high) for name, r in ranked.items() for c in [r.cells[OVERALL][task.key]]
                 if c.value is not None}
        values = {name: value for name, (value, _, _) in spans.items()}
        for name, k in rank(values, task.better).items():
            ranked[name].ranks[task.key] = k
        for name, k in rank_range(spans, task.better).items():
            ranked[name].rank_ranges[task.key] = k
        missing = [name for name in ranked if name not in values]
        if missing and values:
            notes[task.key].append(f"not measured by {', '.join(missing)}: ranked among the others only, and "
                                   f"their average rank leaves this task out")
    if strict and any(notes.values()):
        flat = [f"{k}: {n}" if k != "*" else n for k, ns in notes.items() for n in ns]
        raise CompareError(f"--strict: the runs are not comparable ({' | '.join(flat)}); fix: compare runs with "
                           f"the same judges, budget, profile and prompt folder, or drop --strict to flag instead")
    return Board(rows, sections + [OVERALL], tasks, notes, units, aspects)


def _unit(task: Task, used: list[str], absolute_fid: bool) -> str:
    if task.key == "FID":
        return "absolute FID" if absolute_fid else "FID ratio to the base model (absolute FID not recorded)"
    if task.key in ("Aes", "IR", "Sel", "Pin"):
        return "ratio to the base model"
    if task.key == "Eff":
        return "minutes"
    return "proportion"


def _judges(r: dict) -> str:
    infos = r.get("judge_info") or []
    infos = [infos] if isinstance(infos, dict) else infos
    if not infos:
        return str(r.get("judge") or "")
    out = []
    for i in infos:
        if not isinstance(i, dict):
            out.append(str(i))
            continue
        sha = ",".join(f"{k}:{str(v)[:12]}" for k, v in sorted((i.get("weights_sha256") or {}).items()))
        out.append(f"{i.get('name')} {i.get('version')}" + (f" ({sha})" if sha else ""))
    return " + ".join(out)


def _differs(what: str, by_run: dict) -> str | None:
    """A note when the runs' values of ``what`` differ (each run: a set of values)."""
    distinct = {frozenset(v) for v in by_run.values() if v}
    if len(distinct) <= 1:
        return None
    shown = "; ".join(f"{n}: {', '.join(sorted(v))}" for n, v in by_run.items() if v)
    return f"{what} differ ({shown})"


def _task_notes(task: Task, recs: dict) -> list[str]:
    notes = []
    judges = {n: {_judges(r) for r in rs if _judges(r)} for n, rs in recs.items()}
    if note := _differs("judges", judges):
        notes.append(note)
    # the same measured thing at different sample sizes: a different budget
    sizes: dict = {}
    for n, rs in recs.items():
        for r in rs:
            if r.get("n") is not None:
                sizes.setdefault(_identity(r), {})[n] = str(r.get("n"))
    odd = {k: v for k, v in sizes.items() if len(v) > 1 and len(set(v.values())) > 1}
    if odd:
        key, by = next(iter(odd.items()))
        what = ", ".join(x for x in key[2:] if x != "None") or key[0]
        more = f"; {len(odd) - 1} more" if len(odd) > 1 else ""
        notes.append(f"sample sizes differ, a different budget? ({what}: "
                     + ", ".join(f"{n} n={v}" for n, v in by.items()) + more + ")")
    thresholds = {n: {f"{r.get('threshold')} ({r.get('source')})" for r in rs if r.get("threshold") is not None}
                  for n, rs in recs.items()}
    if note := _differs("thresholds, a different profile?", thresholds):
        notes.append(note)
    conf = {n: {str(r.get("confidence")) for r in rs if r.get("confidence") is not None} for n, rs in recs.items()}
    if note := _differs("confidence levels", conf):
        notes.append(note)
    return notes


def _run_notes(runs: list[Run]) -> list[str]:
    notes = []
    folders = {run.name: {str(r["prompt_folder"]) for r in run.records if r.get("prompt_folder")}
               | ({str(run.header["prompts"])} if run.header.get("prompts") else set()) for run in runs}
    if note := _differs("prompt folders", folders):
        notes.append(note)
    for key, what in (("budget", "budgets"), ("profile", "profiles"), ("base_model", "base models"),
                      ("judges", "judges files"), ("seed", "seeds")):
        values = {run.name: {str(run.header[key])} for run in runs if run.header.get(key) is not None}
        if len(values) != len(runs) and values and key in ("budget", "profile"):
            notes.append(f"{what}: only {', '.join(values)} record{'s' if len(values) == 1 else ''} one "
                         f"({'; '.join(f'{n}: {next(iter(v))}' for n, v in values.items())}); the others' is unknown")
        if note := _differs(what, values):
            notes.append(note)
    return notes


# ------------------------------------------------------------------------------------------------ writers
def fmt(x, digits: int = 3) -> str:
    x = _num(x)
    if x is None:
        return "–"
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.{digits}f}"


def fmt_rank(x) -> str:
    """An average rank to the paper's precision (one decimal, halves rounded up: 3.25 -> 3.3)."""
    return "–" if x is None else f"{math.floor(x * 10 + 0.5 + 1e-9) / 10:.1f}"


def _cell_text(c: Cell) -> str:
    if c is None or c.value is None:
        return "–"
    text = fmt(c.value)
    if c.low is not None and c.high is not None:
        text += f" [{fmt(c.low)}, {fmt(c.high)}]"
    if c.verdict_text:
        text += f" {c.verdict_text}"
    return text


def _note_lines(board: Board) -> list[str]:
    lines = [f"all columns: {n}" for n in board.notes.get("*", [])]
    lines += [f"{k}: {n}" for k, ns in board.notes.items() if k != "*" for n in ns]
    return lines


def _head(board: Board, task: Task) -> str:
    return f"{task.key} {task.arrow}" + (" ⚠" if board.notes.get(task.key) else "")


def to_markdown(board: Board) -> str:
    out = ["# Leaderboard (HUB Table 3 / Table 5 layout)", ""]
    for section in board.sections:
        out += [f"## {section}", ""]
        heads = [_head(board, t) for t in board.tasks]
        ranks = section == OVERALL
        if ranks:
            heads += [f"rank {t.key}" for t in board.tasks] + ["average rank"]
        out.append(f"| {section} | " + " | ".join(heads) + " |")
        out.append("|---" * (len(heads) + 1) + "|")
        for row in board.rows:
            cells = [_cell_text(row.cells.get(section, {}).get(t.key)) for t in board.tasks]
            if ranks:
                cells += [_fmt_int_rank(row.ranks.get(t.key)) for t in board.tasks] + [
                    "baseline (not ranked)" if row.baseline else fmt_rank(row.average_rank)]
            out.append(f"| {row.name} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["## Ranks (HUB Table 5)", "", "| method | " + " | ".join(board_keys(board))
            + " | average | average's range |", "|---" * (len(board.tasks) + 3) + "|"]
    ranked = sorted((r for r in board.rows if not r.baseline),
                    key=lambda r: (r.average_rank is None, r.average_rank or 0))
    for row in ranked:
        out.append(f"| {row.name} | " + " | ".join(_fmt_int_rank(row.ranks.get(t.key)) for t in board.tasks)
                   + f" | {fmt_rank(row.average_rank)} | {fmt_rank_range(row.average_rank_range)} |")
    out += ["", "### The ranks the intervals allow", "",
            "Each cell is the best and the worst rank the method can take when every value may lie anywhere in its "
            "interval; ranks whose ranges overlap are not told apart by these samples.", "",
            "| method | " + " | ".join(board_keys(board)) + " | average |", "|---" * (len(board.tasks) + 2) + "|"]
    for row in ranked:
        out.append(f"| {row.name} | " + " | ".join(_fmt_span(row.rank_ranges.get(t.key)) for t in board.tasks)
                   + f" | {fmt_rank_range(row.average_rank_range)} |")
    out += ["", "## Columns", ""]
    out += [f"- {t.key} {t.arrow}: {board.aspects[t.key]} ({board.units[t.key]}); HUB: {t.hub}" for t in board.tasks]
    out += ["", "Values: mean over concepts within a category, then over categories (Overall); [interval] is the "
            "mean of the records' interval bounds; ranks: on the Overall value, 1 = best, baselines not ranked; "
            "average rank: unweighted mean of the task ranks (HUB Table 5); average's range: the best and worst average "
            "rank with every value anywhere in its interval (a bound over the intervals, not a confidence "
            "interval).", ""]
    notes = _note_lines(board)
    out += ["## Comparability", ""] + ([f"- ⚠ {n}" for n in notes] or ["- the runs are comparable: same judges, "
                                                                        "sample sizes, thresholds and prompt folders"])
    return "\n".join(out) + "\n"


def fmt_rank_range(span) -> str:
    return "–" if span is None else f"[{fmt_rank(span[0])}, {fmt_rank(span[1])}]"


def _fmt_span(span) -> str:
    if span is None:
        return "–"
    best, worst = span
    return _fmt_int_rank(best) if best == worst else f"{_fmt_int_rank(best)}–{_fmt_int_rank(worst)}"


def board_keys(board: Board) -> list[str]:
    return [f"{t.key} {t.arrow}" for t in board.tasks]


def _fmt_int_rank(x) -> str:
    if x is None:
        return "–"
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def to_csv(board: Board) -> str:
    """One line per (section, method): each task's value, low, high, verdict (and rank on Overall lines)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["section", "method", "baseline"]
    for t in board.tasks:
        head += [t.key, f"{t.key}_low", f"{t.key}_high", f"{t.key}_verdict", f"{t.key}_rank", f"{t.key}_rank_best",
                 f"{t.key}_rank_worst"]
    w.writerow(head + ["average_rank", "average_rank_best", "average_rank_worst", "tasks_ranked", "comparability",
                       "sources"])
    notes = " | ".join(_note_lines(board))
    for section in board.sections:
        for row in board.rows:
            line = [section, row.name, "yes" if row.baseline else "no"]
            for t in board.tasks:
                c = row.cells.get(section, {}).get(t.key) or Cell()
                span = row.rank_ranges.get(t.key) if section == OVERALL else None
                line += [_csv_num(c.value), _csv_num(c.low), _csv_num(c.high), c.verdict_text,
                         _csv_num(row.ranks.get(t.key)) if section == OVERALL else "",
                         _csv_num(span[0]) if span else "", _csv_num(span[1]) if span else ""]
            avg = row.average_rank if section == OVERALL else None
            avg_span = row.average_rank_range if section == OVERALL else None
            line += [_csv_num(avg), _csv_num(avg_span[0]) if avg_span else "", _csv_num(avg_span[1]) if avg_span else "",
                     len(row.ranks) if section == OVERALL and not row.baseline else "", notes,
                     " ".join(row.sources)]
            w.writerow(line)
    return buf.getvalue()


def _csv_num(x) -> str:
    x = _num(x)
    return "" if x is None else f"{x:.6g}"


_COLOURS = {"pass": "#d4edda", "fail": "#f8d7da", "inconclusive": "#fff3cd"}
_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:right;font-variant-numeric:tabular-nums}
th{background:#f2f2f2}td.name,th.name{text-align:left;font-weight:600}
td small{color:#555}tr.baseline td{font-style:italic;color:#555}
td.rank{background:#eef3fb}td.avg{background:#dde7f7;font-weight:700}
.notes li{color:#7a4b00}.legend span{padding:0 .4em;margin-right:.5em}
"""


def _html_cell(c: Cell | None) -> str:
    if c is None or c.value is None:
        return "<td>–</td>"
    style = f" style='background:{_COLOURS[c.verdict]}'" if c.verdict in _COLOURS else ""
    tip = html.escape(c.detail or "", quote=True)
    interval = (f"<br><small>[{fmt(c.low)}, {fmt(c.high)}]</small>" if c.low is not None and c.high is not None else "")
    verdict = f"<br><small>{html.escape(c.verdict_text)}</small>" if c.verdict_text else ""
    return f"<td{style} title='{tip}'>{fmt(c.value)}{interval}{verdict}</td>"


def to_html(board: Board, title: str = "hubkit leaderboard") -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             "<p class='legend'>Verdicts: " + "".join(f"<span style='background:{c}'>{v}</span>"
                                                        for v, c in _COLOURS.items())
             + " &middot; values: mean over concepts, then categories; [interval]: mean of the records' bounds; "
               "ranks on the Overall value, 1 = best (HUB Table 5); baselines are not ranked; under an average rank, the "
               "best and worst it can be with every value anywhere in its interval.</p>"]
    for section in board.sections:
        ranks = section == OVERALL
        head = "".join(f"<th title='{html.escape(board.aspects[t.key] + ' (' + board.units[t.key] + ')')}'>"
                       f"{html.escape(_head(board, t))}</th>" for t in board.tasks)
        if ranks:
            head += "".join(f"<th>rank {t.key}</th>" for t in board.tasks) + "<th>average rank</th>"
        rows = []
        for row in board.rows:
            cells = "".join(_html_cell(row.cells.get(section, {}).get(t.key)) for t in board.tasks)
            if ranks:
                cells += "".join(f"<td class='rank'>{_fmt_int_rank(row.ranks.get(t.key))}</td>" for t in board.tasks)
                span = row.average_rank_range
                cells += ("<td class='avg'>baseline</td>" if row.baseline
                          else f"<td class='avg' title='the best and worst average rank the intervals allow'>"
                               f"{fmt_rank(row.average_rank)}"
                               + (f"<br><small>{fmt_rank_range(span)}</small>" if span else "") + "</td>")
            cls = " class='baseline'" if row.baseline else ""
            rows.append(f"<tr{cls}><td class='name' title='{html.escape(' '.join(row.sources))}'>"
                        f"{html.escape(row.name)}</td>{cells}</tr>")
        parts.append(f"<h2>{html.escape(section)}</h2><table class='hubkit-leaderboard'>"
                     f"<tr><th class='name'>{html.escape(section)}</th>{head}</tr>{''.join(rows)}</table>")
    parts.append("<h2>Columns</h2><ul>" + "".join(
        f"<li><b>{t.key} {t.arrow}</b>: {html.escape(board.aspects[t.key])} ({html.escape(board.units[t.key])}); "
        f"HUB: {html.escape(t.hub)}</li>" for t in board.tasks) + "</ul>")
    notes = _note_lines(board)
    parts.append("<h2>Comparability</h2><ul class='notes'>" + ("".join(f"<li>⚠ {html.escape(n)}</li>" for n in notes)
                 or "<li>the runs are comparable: same judges, sample sizes, thresholds and prompt folders</li>")
                 + "</ul></body></html>")
    return "\n".join(parts)
