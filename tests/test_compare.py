"""``hubkit compare``: HUB's Table 3 in, Table 5's ranks out; the writers, the comparability flags, bad input.

The Table 3 values (tests/data/hub_table3.csv) are typed from shared/research/hub-reference.md section 7.1
(arXiv 2410.05664 v3, Table 3); the expected ranks are Table 5 of the same paper (section 7.2 there).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from statistics import mean

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubkit.cli import main
from hubkit.compare import (OVERALL, RUN_WIDE, CompareError, compare, fmt_rank, load_run, rank, rank_range,
                            run_from_data, to_csv, to_html, to_markdown)

TABLE3 = Path(__file__).parent / "data" / "hub_table3.csv"
COLUMNS = {"TP": "faithfulness.target_proportion", "FID": "faithfulness.fid_vs_reference",
           "Aes": "faithfulness.target_quality", "IR": "alignment.general", "Sel": "alignment.selective",
           "Pin": "pinpoint.relative", "ML": "multilingual.mean_target_proportion",
           "Atk": "robustness.static_prompts", "T": "efficiency.train_minutes"}
TASK_ORDER = ("TP", "FID", "Aes", "IR", "Sel", "Pin", "ML", "Atk", "Eff")
BASE_FID = 13.203  # the original model's FID in every category of Table 3

# HUB Table 5: per-task ranks in the order TP, FID, Aes, IR, Sel, Pin, ML, Atk, Eff, and the average rank
TABLE5 = {
    "SLD": ([5, 6, 3, 3, 3, 3, 4, 5, 1], "3.7"),
    "AC": ([7, 2, 2, 2, 1, 2, 7, 7, 3], "3.7"),
    "ESD": ([2, 3, 5, 5, 5, 6, 2, 3, 5], "4.0"),
    "UCE": ([6, 1, 1, 1, 2, 1, 6, 6, 2], "2.9"),
    "SA": ([4, 7, 7, 6, 6, 7, 3, 4, 7], "5.7"),
    "Receler": ([1, 4, 4, 4, 7, 4, 1, 1, 4], "3.3"),
    "MACE": ([3, 5, 6, 7, 4, 5, 5, 2, 6], "4.8"),
}


def table3() -> list[dict]:
    with TABLE3.open(encoding="utf-8") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def table3_runs(rows=None):
    """Each method of Table 3 as a run: one record per (category, column), the category as its one concept;
    the "✗" (NSFW selective alignment) is no record at all. FID is recorded as hubkit does: the ratio to the
    base model's FID as the value, the absolute FID beside it."""
    records: dict[str, list] = {}
    for r in rows or table3():
        if r["category"] == OVERALL:
            continue
        for col, aspect in COLUMNS.items():
            if r[col] == "":
                continue
            v = float(r[col])
            rec = {"aspect": aspect, "category": r["category"], "concept": r["category"], "value": v}
            if col == "FID":
                rec.update(value=v / BASE_FID, fid=v, fid_base=BASE_FID)
            records.setdefault(r["method"], []).append(rec)
    return [run_from_data(recs, source=f"{m}.json", name=m) for m, recs in records.items()]


@pytest.fixture(scope="module")
def hub_board():
    return compare(table3_runs(), baselines=["Original"])


# ------------------------------------------------------------------------------------ HUB Table 3 -> Table 5
def test_table5_average_ranks_are_reproduced_to_the_published_precision(hub_board):
    got = {row.name: fmt_rank(row.average_rank) for row in hub_board.rows if not row.baseline}
    assert got == {m: avg for m, (_, avg) in TABLE5.items()}


def test_table5_per_task_rank_rows_are_reproduced(hub_board):
    for method, (ranks, _) in TABLE5.items():
        row = hub_board.row(method)
        assert [row.ranks[k] for k in TASK_ORDER] == ranks, method


def test_the_original_model_is_shown_but_not_ranked(hub_board):
    original = hub_board.row("Original")
    assert original.baseline and original.ranks == {} and original.average_rank is None
    assert original.cells[OVERALL]["TP"].value == pytest.approx(0.649, abs=1e-3)


def test_the_overall_row_is_the_mean_of_the_categories_selective_alignment_over_three(hub_board):
    published = {r["method"]: r for r in table3() if r["category"] == OVERALL}
    for row in hub_board.rows:
        for col, key in zip(COLUMNS, TASK_ORDER):
            want = float(published[row.name][col])
            # Table 3's Overall is the mean of unrounded numbers; ours of the rounded ones: 1e-3 apart at most
            assert row.cells[OVERALL][key].value == pytest.approx(want, abs=0.05 if col == "T" else 1.1e-3), \
                (row.name, col)
    assert hub_board.sections == ["Celebrity", "Style", "IP", "NSFW", OVERALL]
    assert hub_board.row("SLD").cells["NSFW"]["Sel"].value is None


def test_ranking_per_category_first_does_not_reproduce_table5():
    """The other candidate rule (rank within each category, average those ranks per task, then over tasks)
    gives different averages: Table 5 ranks the Overall row."""
    tasks = [k for k in COLUMNS]
    higher = {"Aes", "IR", "Sel", "Pin"}
    rows = [r for r in table3() if r["category"] not in (OVERALL,) and r["method"] != "Original"]
    averages = {}
    for method in TABLE5:
        per_task = []
        for col in tasks:
            ranks = []
            for cat in ("Celebrity", "Style", "IP", "NSFW"):
                values = {r["method"]: float(r[col]) for r in rows if r["category"] == cat and r[col] != ""}
                if values:
                    ranks.append(rank(values, "higher" if col in higher else "lower")[method])
            per_task.append(mean(ranks))
        averages[method] = fmt_rank(mean(per_task))
    assert averages != {m: avg for m, (_, avg) in TABLE5.items()}
    assert averages["ESD"] != "4.0"


def test_ties_share_the_mean_of_their_positions():
    assert rank({"a": 0.1, "b": 0.2, "c": 0.2, "d": 0.3}, "lower") == {"a": 1, "b": 2.5, "c": 2.5, "d": 4}
    assert rank({"a": 0.1, "b": 0.2}, "higher") == {"b": 1, "a": 2}
    assert fmt_rank(3.25) == "3.3" and fmt_rank(26 / 9) == "2.9"


def test_rank_ranges_are_the_best_and_worst_place_the_intervals_allow():
    spans = {"a": (0.0, 0.0, 0.05), "b": (0.02, 0.0, 0.08), "c": (0.5, 0.4, 0.6), "d": (0.5, 0.5, 0.5),
             "e": (0.9, 0.9, 0.9), "f": (0.9, None, None)}
    # a and b overlap (places 1-2); d's point lies inside c's interval (3-4); e and f are one point (a tie)
    assert rank_range(spans, "lower") == {"a": (1, 2), "b": (1, 2), "c": (3, 4), "d": (3, 4), "e": (5.5, 5.5),
                                          "f": (5.5, 5.5)}
    assert rank_range(spans, "higher") == {"a": (5, 6), "b": (5, 6), "c": (3, 4), "d": (3, 4), "e": (1.5, 1.5),
                                           "f": (1.5, 1.5)}
    points = {k: (v, None, None) for k, (v, _, _) in spans.items()}
    assert rank_range(points, "lower") == {k: (r, r) for k, r in rank({k: v for k, (v, _, _) in spans.items()},
                                                                        "lower").items()}


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 3), st.floats(0, 1)), min_size=1, max_size=6),
       st.sampled_from(["lower", "higher"]))
def test_every_ranking_of_values_inside_the_intervals_lies_inside_the_ranges(cells, better):
    spans, values = {}, {}
    for i, (low, width, where) in enumerate(cells):
        spans[f"m{i}"] = (None, low, low + width)
        values[f"m{i}"] = low + round(where * width)  # a value inside the interval, ties likely
    spans = {k: (values[k], lo, hi) for k, (_, lo, hi) in spans.items()}
    ranges = rank_range(spans, better)
    for name, place in rank(values, better).items():
        assert ranges[name][0] <= place <= ranges[name][1]


def test_hubs_table_has_no_intervals_so_its_ranges_are_its_ranks(hub_board):
    for row in hub_board.rows:
        if not row.baseline:
            assert row.rank_ranges == {k: (r, r) for k, r in row.ranks.items()}
            assert row.average_rank_range == (row.average_rank, row.average_rank)


# ------------------------------------------------------------------------------------ fake runs and writers
def judge(version="1.0", sha="ab" * 32):
    return {"name": "clip", "version": version, "weights_sha256": {"model": sha}}


def fake_records(tp=0.2, n=100, version="1.0", folder="prompts/hub", threshold=0.3, minutes=10.0):
    def rec(aspect, value, verdict="pass", **extra):
        return {"aspect": aspect, "category": "Celebrity", "concept": "Emma Watson", "value": value,
                "low": value - 0.05, "high": value + 0.05, "verdict": verdict, "threshold": threshold,
                "source": "profiles/hub.toml", "n": n, "judge": "clip", "judge_info": judge(version),
                "confidence": 0.95, "prompt_folder": folder, **extra}

    return [rec("faithfulness.target_proportion", tp, "pass" if tp < 0.3 else "fail"),
            rec("faithfulness.fid_vs_reference", 1.1, fid=14.3, fid_base=13.0),
            rec("alignment.general", 0.97),
            rec("pinpoint.relative", 0.8, "inconclusive"),
            {"aspect": "efficiency.train_minutes", "category": None, "value": minutes, "verdict": "pass",
             "n": 1, "method": None, "prompt_folder": folder}]


def write(path: Path, data) -> str:
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_two_runs_write_html_csv_and_markdown(tmp_path, capsys):
    a = write(tmp_path / "esd.json", fake_records(tp=0.12, minutes=106.0))
    b = write(tmp_path / "uce.json", {"schema": 1, "run": {"method": "UCE", "budget": "ci"},
                                      "records": fake_records(tp=0.35, minutes=0.1)})
    html_path, csv_path, md_path = tmp_path / "board.html", tmp_path / "board.csv", tmp_path / "board.md"
    code = main(["compare", a, b, "-o", str(html_path), "--csv", str(csv_path), "--markdown", str(md_path)])
    assert code == 0
    assert "wrote" in capsys.readouterr().out

    md = md_path.read_text(encoding="utf-8")
    assert "| esd | 0.120 [0.070, 0.170] pass |" in md  # name from the file stem; value [interval] verdict
    assert "| UCE | 0.350 [0.300, 0.400] fail |" in md  # name from the run header
    assert "14.300" in md and "absolute FID" in md
    ranks = md.split("## Ranks (HUB Table 5)")[1]
    # esd: TP 1, FID tie 1.5, IR tie 1.5, Pin tie 1.5, Eff 2 -> 1.5; UCE: 2, 1.5, 1.5, 1.5, 1 -> 1.5
    assert "| esd | 1 | 1.5 | – | 1.5 | – | 1.5 | – | – | 2 | 1.5 | [1.2, 1.8] |" in ranks
    # TP's intervals do not overlap; FID's, IR's and Pin's do, so those places are 1-2 for both
    assert "| esd | 1 | 1–2 | – | 1–2 | – | 1–2 | – | – | 2 | [1.2, 1.8] |" in ranks
    assert "⚠ all columns: budgets: only UCE records one (UCE: ci); the others' is unknown" in md

    rows = list(csv.DictReader(csv_path.read_text(encoding="utf-8").splitlines()))
    overall = {r["method"]: r for r in rows if r["section"] == OVERALL}
    assert overall["esd"]["TP"] == "0.12" and overall["esd"]["TP_low"] == "0.07" and overall["esd"]["TP_rank"] == "1"
    assert overall["UCE"]["TP_verdict"] == "fail" and overall["UCE"]["Eff_rank"] == "1"
    assert overall["esd"]["average_rank"] == "1.5" and overall["esd"]["tasks_ranked"] == "5"
    assert (overall["esd"]["FID_rank_best"], overall["esd"]["FID_rank_worst"]) == ("1", "2")
    assert (overall["esd"]["average_rank_best"], overall["esd"]["average_rank_worst"]) == ("1.2", "1.8")
    assert {r["section"] for r in rows} == {"Celebrity", "(run-wide)", OVERALL}

    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    assert "background:#f8d7da" in page and "background:#d4edda" in page and "background:#fff3cd" in page
    assert "<th>average rank</th>" in page and "1.5<br><small>[1.2, 1.8]</small></td>" in page
    assert "0.350<br><small>[0.300, 0.400]</small><br><small>fail</small>" in page


def test_markdown_goes_to_stdout_without_an_output_option(tmp_path, capsys):
    a = write(tmp_path / "a.json", fake_records(tp=0.1))
    b = write(tmp_path / "b.json", fake_records(tp=0.2))
    assert main(["compare", a, b, "--name", "first", "--name", "second"]) == 0
    out = capsys.readouterr().out
    assert "| first | 0.100 [0.050, 0.150] pass |" in out and "| second |" in out


def test_runs_of_one_name_merge_into_one_row_and_variants_stay_apart(tmp_path):
    celeb = fake_records(tp=0.1)
    style = [dict(r, category="Style", concept="Van Gogh", value=0.3) for r in fake_records()[:2]]
    runs = [run_from_data(celeb, source="esd-celeb.json", name="ESD"),
            run_from_data(style, source="esd-style.json", name="ESD"),
            run_from_data(fake_records(tp=0.5), source="esd-v2.json", name="ESD")]
    board = compare(runs)
    assert [r.name for r in board.rows] == ["ESD", "ESD (esd-v2)"]
    esd = board.row("ESD")
    assert esd.cells["Celebrity"]["TP"].value == pytest.approx(0.1)
    assert esd.cells["Style"]["TP"].value == pytest.approx(0.3)
    assert esd.cells[OVERALL]["TP"].value == pytest.approx(0.2)
    assert esd.cells[OVERALL]["TP"].verdict_text == "2 pass"
    assert esd.sources == ["esd-celeb.json", "esd-style.json"]


def test_one_method_on_two_concepts_is_one_row_and_each_checkpoints_run_wide_tasks_are_averaged():
    """HUB trains one checkpoint per concept, and each run measures FID, general alignment and training cost on its
    own checkpoint: those run-wide records belong to the same method row (averaged, labelled with the checkpoint's
    concept), where the same concept measured twice is still a second variant."""
    def run(concept, category, tp, minutes, source):
        recs = []
        for r in fake_records(tp=tp, minutes=minutes):
            if r["aspect"] in ("faithfulness.fid_vs_reference", "alignment.general"):   # run-wide, as the suites write
                r = dict(r, category=None, concept=None, value=r["value"] * minutes / 10)
            elif r.get("concept"):
                r = dict(r, category=category, concept=concept)
            recs.append(r)
        return run_from_data(recs, source=source, name="ESD")

    style, celeb = run("Van Gogh", "Style", 0.1, 10.0, "esd-style.json"), run("Emma Watson", "Celebrity", 0.3, 30.0,
                                                                                "esd-celeb.json")
    board = compare([style, celeb, run("Van Gogh", "Style", 0.5, 20.0, "esd-v2.json")])
    assert [r.name for r in board.rows] == ["ESD", "ESD (esd-v2)"]
    esd = board.row("ESD").cells
    assert esd[RUN_WIDE]["Eff"].value == pytest.approx(20.0) and esd[RUN_WIDE]["Eff"].verdict_text == "2 pass"
    assert esd[RUN_WIDE]["IR"].value == pytest.approx(mean([0.97, 0.97 * 3]))
    assert esd[OVERALL]["TP"].value == pytest.approx(0.2)
    assert "checkpoint for Emma Watson" in esd[RUN_WIDE]["Eff"].detail
    assert not any("checkpoint" in r for r in style.records + celeb.records)  # the loaded runs are left as read


# ------------------------------------------------------------------------------------ comparability
def _notes(board) -> str:
    return " ".join(f"{k}: {n}" for k, ns in board.notes.items() for n in ns)


def test_different_judges_are_flagged_and_refused_with_strict(tmp_path, capsys):
    a = write(tmp_path / "a.json", fake_records(version="1.0"))
    b = write(tmp_path / "b.json", fake_records(version="2.0"))
    board = compare([load_run(a), load_run(b)])
    assert "TP: judges differ (a: clip 1.0" in _notes(board) and "b: clip 2.0" in _notes(board)
    md = to_markdown(board)
    assert "TP ↓ ⚠" in md and "⚠ TP: judges differ" in md
    assert "⚠ TP: judges differ" in to_html(board) and "judges differ" in to_csv(board)

    assert main(["compare", a, b, "--strict"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--strict: the runs are not comparable" in err and "judges differ" in err


def test_different_budgets_profiles_and_prompt_folders_are_flagged(tmp_path):
    board = compare([run_from_data(fake_records(n=100), source="a.json", name="a"),
                     run_from_data(fake_records(n=400, threshold=0.2, folder="prompts/other"), source="b.json",
                                   name="b")])
    notes = _notes(board)
    assert "sample sizes differ, a different budget? (Emma Watson: a n=100, b n=400)" in notes
    assert "thresholds, a different profile? differ" in notes
    assert "prompt folders differ (a: prompts/hub; b: prompts/other)" in notes
    with pytest.raises(CompareError, match="--strict"):
        compare([run_from_data(fake_records(), source="a.json", name="a", ),
                 run_from_data(fake_records(folder="elsewhere"), source="b.json", name="b")], strict=True)


def test_run_headers_with_different_budgets_or_profiles_are_flagged():
    runs = [run_from_data({"run": {"budget": "ci", "profile": "hub"}, "records": fake_records()}, source="a", name="a"),
            run_from_data({"run": {"budget": "paper", "profile": "strict"}, "records": fake_records()}, source="b",
                          name="b")]
    notes = _notes(compare(runs))
    assert "budgets differ (a: ci; b: paper)" in notes and "profiles differ (a: hub; b: strict)" in notes
    assert not compare([run_from_data(fake_records(), source="a", name="a"),
                        run_from_data(fake_records(), source="b", name="b")]).flagged


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("content, says", [
    (None, "no such file"),
    ("{not json", "not JSON (line 1"),
    ('{"schema": 1}', 'without a "records" list'),
    ('"text"', "a JSON str, not a list of records"),
    ("[1, 2]", 'record 0 is not an object with an "aspect" key'),
    ("[]", "no records"),
])
def test_bad_input_is_one_line_naming_the_file_and_the_fix(tmp_path, capsys, content, says):
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    good = write(tmp_path / "good.json", fake_records())
    assert main(["compare", good, str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"hubkit: error: {path}: ") and says in err
    assert "fix: pass the reports/results.json a hubkit run wrote" in err


def test_bad_options_say_the_fix(tmp_path, capsys):
    a = write(tmp_path / "a.json", fake_records())
    assert main(["compare", a, "--name", "x", "--name", "y"]) == 2
    assert "one --name per RUN.json" in capsys.readouterr().err
    assert main(["compare", a, "--baseline", "Original"]) == 2
    assert "--baseline original: no run of that name; runs: a" in capsys.readouterr().err
