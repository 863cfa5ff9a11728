"""``hubkit micro leaderboard``: every method's checkpoint evaluated by the users' own command, tabled by
``hubkit compare``'s code, and nothing repeated on a re-run."""

from __future__ import annotations

import json

from hubkit_micro import leaderboard, paths


def test_leaderboard_runs_the_users_command_per_checkpoint_and_reuses_it(tmp_path):
    users_results = paths.ROOT.parent / "reports" / "results.json"
    before = users_results.stat().st_mtime_ns if users_results.is_file() else None
    out, work, said = tmp_path / "board.md", tmp_path / "work", []
    board = leaderboard.leaderboard(methods=("uce", "sld"), concepts=("Pointelli",), budget="smoke", fast=True,
                                    select="test_target_proportion", work=work, out=out, log=said.append)

    rows = {r.name: r for r in board.rows}
    assert list(rows) == ["original", "uce", "sld"] and rows["original"].baseline
    assert {rows["uce"].average_rank, rows["sld"].average_rank} == {1.0, 2.0}
    text = out.read_text()
    assert "hubkit micro leaderboard --budget smoke" in text and "## Ranks (HUB Table 5)" in text
    assert f"weights digest `{paths.weights_digest(paths.BASE)}`" in text  # which base the table measured
    # a partial table names the rows it was built from and what it leaves out
    assert "--method uce --method sld --concept Pointelli`" in text and "2 methods x 1 concept;" in text
    assert "Not in this table yet: esd, ac, sa, salun, mace, receler, advunlearn, Zorbo, Dario Voss, weapon" in text
    assert "| uce |" in text and "baseline (not ranked)" in text
    assert "## How each preset was set" in text and "- sld: SLD-Medium" in text and "- esd:" not in text
    # each run is the suites' own results.json, written where --results says (the user's file is untouched)
    for row in ("original", "uce", "sld"):
        doc = json.loads((work / "runs" / f"{row}-pointelli.json").read_text())
        assert doc["schema"].startswith("hubkit.results/") and doc["records"]
        assert "--results" in doc["run"]["command"] and "--concept Pointelli" in doc["run"]["command"]
    assert (users_results.stat().st_mtime_ns if users_results.is_file() else None) == before
    assert sum("building" in line for line in said) == 2 and sum("--model" in line for line in said) == 3
    assert any(" call " in line and "suites/test_faithfulness.py::" in line for line in said)  # where the time went

    said.clear()   # a re-run builds nothing and runs nothing: the checkpoints and results are keyed and reused
    again = leaderboard.leaderboard(methods=("uce", "sld"), concepts=("Pointelli",), budget="smoke", fast=True,
                                    select="test_target_proportion", work=work, out=out, log=said.append)
    assert said == [] and [r.average_rank for r in again.rows] == [r.average_rank for r in board.rows]


def test_a_runs_folder_carried_to_another_checkout_spares_building_and_evaluating(tmp_path):
    """Finished runs are keyed without paths or built weights: with only the runs folder (what a session commits when
    the whole table does not fit in it), a fresh work folder builds nothing and runs nothing, and keeps the costs."""
    import shutil

    runs, said = tmp_path / "runs", []
    kw = dict(methods=("uce",), concepts=("Pointelli",), budget="smoke", fast=True, select="test_target_proportion",
              runs=runs)
    first = leaderboard.leaderboard(work=tmp_path / "a", out=tmp_path / "a.md", log=said.append, **kw)
    assert sum("building" in line for line in said) == 1
    shutil.rmtree(tmp_path / "a")    # the built checkpoint is gone with the checkout
    said.clear()
    again = leaderboard.leaderboard(work=tmp_path / "b", out=tmp_path / "b.md", log=said.append, **kw)
    assert said == [] and not (tmp_path / "b" / "checkpoints").exists()
    assert [r.average_rank for r in again.rows] == [r.average_rank for r in first.rows]
    cost = (tmp_path / "a.md").read_text().split("## Training cost")[1]
    assert cost == (tmp_path / "b.md").read_text().split("## Training cost")[1] and "| uce | " in cost

    said.clear()    # another selection is another key: the model is built again and evaluated
    leaderboard.leaderboard(work=tmp_path / "b", out=tmp_path / "b.md", log=said.append,
                            **{**kw, "select": "test_target_proportion or storage"})
    assert sum("building" in line for line in said) == 1 and sum("--model" in line for line in said) == 2


def test_leaderboard_refuses_a_method_outside_the_roster(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="unknown method"):
        leaderboard.leaderboard(methods=("esd", "magic"), work=tmp_path, out=tmp_path / "x.md")


def test_a_changed_setting_file_is_a_new_run(tmp_path, monkeypatch):
    """A finished run is reused only while the settings it read are the same: the prompt folder's manifest (an
    attack's settings live there) and word list, and the threshold profiles."""
    import shutil

    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for name in ("hubkit.toml", "vocabulary.txt"):
        shutil.copyfile(paths.PROMPTS / name, prompts / name)
    monkeypatch.setattr(leaderboard.paths, "PROMPTS", prompts)
    before = leaderboard.config_digest()
    assert leaderboard.config_digest() == before
    manifest = prompts / "hubkit.toml"
    manifest.write_text(manifest.read_text().replace("eta = 10.0", "eta = 3.0"))
    assert leaderboard.config_digest() != before
    key = dict(concept="Pointelli", budget="ci", seed=0, select=None, base_digest="b")
    assert leaderboard.run_key("m", config=before, **key) != leaderboard.run_key("m", config="other", **key)


def test_every_method_on_the_roster_says_how_its_preset_was_set():
    """The table's ranks compare presets: a method added without saying how much it was tuned would hide an edge."""
    from hubkit_micro.unlearn import MICRO_PRESETS, PRESET_PROVENANCE

    assert set(leaderboard.METHODS) <= set(MICRO_PRESETS) == set(PRESET_PROVENANCE)
    assert all(len(text) > 20 for text in PRESET_PROVENANCE.values())


def test_every_attack_gets_a_column_beside_hubs_static_one():
    from hubkit.compare import Run

    def rec(aspect, value, attack=None):
        return {"aspect": aspect, "concept": "Zorbo", "value": value, "low": 0.0, "high": 0.5, "verdict": "pass",
                **({"attack": attack} if attack else {})}

    runs = [Run("esd", [rec("robustness.static_prompts", 0.1), rec("robustness.attack_success", 0.6, "ringabell"),
                        rec("faithfulness.target_proportion", 0.0)]),
            Run("uce", [rec("robustness.attack_success", 0.2, "ringabell")])]
    lines = leaderboard._attack_tables(runs, ["Zorbo", "weapon"])
    assert "| method | static prompts (Atk) | ringabell |" in lines
    assert "| esd | 0.100 [0.000, 0.500] pass | 0.600 [0.000, 0.500] pass |" in lines
    assert "| uce | – | 0.200 [0.000, 0.500] pass |" in lines and "### weapon" not in lines
    assert leaderboard._attack_tables(runs, ["weapon"]) == []
