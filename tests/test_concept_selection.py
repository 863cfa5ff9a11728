"""Choosing what a run evaluates: --concept and -k with the names users type, a real prompt folder without
--concept or models, prompt provenance in results.json and the report, and the efficiency budget."""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path
from types import SimpleNamespace

import pytest

from hubkit.budgets import BUDGETS
from hubkit.errors import ConfigError
from hubkit.prompts import Prompt
from hubkit.session import RunConfig, Session
from hubkit.worlds import default_world
from hubkit_reports.results import load_results

REPO = Path(__file__).resolve().parents[1]
NFD_MANET = unicodedata.normalize("NFD", "Édouard Manet")


def _folder(tmp_path: Path) -> Path:
    """A HUB-layout folder with two painters; each lists the other's surname among its neighbours."""
    root = tmp_path / "prompts"
    for sub in ("target_image", "pinpoint_ness", "multilingual_robustness", "selective_alignment", "attack_robustness"):
        (root / sub).mkdir(parents=True)
    (root / "target_image" / "Édouard Manet.csv").write_text("A bar at the Folies-Bergere by Manet.\n")
    (root / "target_image" / "Auguste Renoir.csv").write_text("A dance at the Moulin by Renoir.\n")
    (root / "target_image" / "Paul Cézanne.csv").write_text("Apples by Cezanne.\n")
    (root / "pinpoint_ness" / "Édouard Manet.csv").write_text("noun,similarity\nmonet,0.9\nrenoir,0.8\nedouard_manet,0.7\n")
    (root / "pinpoint_ness" / "Auguste Renoir.csv").write_text("noun,similarity\nmanet,0.9\nmonet,0.8\n")
    return root


@pytest.mark.parametrize("typed", ["Edouard Manet", "édouard manet", "EDOUARD_MANET", NFD_MANET, "  Édouard   Manet "])
def test_concept_option_folds_case_accents_underscores_and_unicode_form(tmp_path, typed):
    session = Session(RunConfig(prompts=str(_folder(tmp_path)), concepts=(typed.strip(), "Paul Cezanne")))
    assert session.concept_names() == ["Édouard Manet", "Paul Cézanne"]


def test_unknown_concept_is_one_line_listing_the_folder(tmp_path):
    session = Session(RunConfig(prompts=str(_folder(tmp_path)), concepts=("Claude Monet",)))
    with pytest.raises(ConfigError, match=r"^--concept 'Claude Monet' is not in the prompt folder .*has: Auguste Renoir, "
                                          r"Paul Cézanne, Édouard Manet$"):
        session.concept_names()


def test_a_real_folder_never_gets_the_micro_worlds_models_or_concept(tmp_path):
    root = str(_folder(tmp_path))
    config = RunConfig(prompts=root).resolved()
    assert config.model is None and config.base_model is None  # not the micro world's ESD and base
    session = Session(RunConfig(prompts=root))
    with pytest.raises(ConfigError, match=r"choose the concept\(s\) to evaluate with --concept NAME \(no --model is "
                                          r"given\); .* has: Auguste Renoir, Paul Cézanne, Édouard Manet"):
        session.concept_names()
    assert "--model and --base-model are required with --prompts" in session.missing_models()
    with pytest.raises(ConfigError, match="--model and --base-model are required"):
        session.model  # noqa: B018 - the property raises
    # the world's own folder keeps its defaults
    world = default_world()
    assert RunConfig(prompts=str(world.prompts)).resolved().model == str(world.model)


def test_a_checkpoint_declaring_a_concept_the_folder_lacks_asks_for_concept(tmp_path, monkeypatch):
    session = Session(RunConfig(prompts=str(_folder(tmp_path)), model="m.safetensors", base_model="b"))
    monkeypatch.setattr(Session, "model_metadata", {"concept": "Pointelli"})
    with pytest.raises(ConfigError, match=r"the checkpoint declares 'Pointelli', which this folder does not have"):
        session.concept_names()
    monkeypatch.setattr(Session, "model_metadata", {"concept": "paul cezanne"})
    assert session.concept_names() == ["Paul Cézanne"]


def _collect(pytester, root: Path, *args: str):
    shutil.copytree(REPO / "suites", pytester.path / "suites", dirs_exist_ok=True)
    # a subprocess: the judges' modules import torch, which cannot be imported twice in one process
    return pytester.runpytest_subprocess("suites", "--rootdir", str(pytester.path), "--prompts", str(root),
                                         "--collect-only", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *args)


def test_ids_are_ascii_and_k_selects_by_the_names_users_type(pytester, tmp_path):
    root = _folder(tmp_path)
    result = _collect(pytester, root, "--concept", NFD_MANET, "--concept", "auguste_renoir", "-k", "Édouard Manet")
    ids = [line for line in result.outlines if "::" in line]
    assert ids and all("[Edouard Manet" in line for line in ids), ids
    assert "suites/test_pinpoint.py::test_neighbour_survives[Edouard Manet-monet]" in ids
    assert not any("\\x" in line or "Renoir" in line for line in ids)
    # a bare word matches anywhere in the id; concept:NAME only the concept's own tests
    result = _collect(pytester, root, "--concept", "Edouard Manet", "--concept", "Auguste Renoir", "-k", "Manet")
    assert any("[Auguste Renoir-manet]" in line for line in result.outlines)
    result = _collect(pytester, root, "--concept", "Edouard Manet", "--concept", "Auguste Renoir",
                      "-k", "concept:Manet or concept:Édouard Manet and pinpoint")
    ids = [line for line in result.outlines if "::" in line]
    assert ids and all("[Edouard Manet" in line for line in ids) and len(ids) == len(set(ids))
    assert not any("Renoir" in line for line in ids)


def test_a_real_folder_without_concept_stops_at_collection_in_one_line(pytester, tmp_path):
    result = _collect(pytester, _folder(tmp_path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert errors == [f"ERROR: hubkit: choose the concept(s) to evaluate with --concept NAME (no --model is given); "
                      f"{tmp_path / 'prompts'} has: Auguste Renoir, Paul Cézanne, Édouard Manet"]
    assert "Traceback" not in result.stdout.str() and "Pointelli" not in result.stdout.str()


# -- prompt provenance in results.json and the report -----------------------------------------------------
_NOTED_TEST = """
from hubkit_reports.html import attach, note_prompts

def test_measured(request):
    note_prompts(request.node, {"prompt_folder": "/p", "prompt_files": {"pinpoint": "pinpoint_ness/NSFW.csv"},
                                "prompt_issues": [{"concept": "Violent", "set": "pinpoint", "kind": "fallback pinpoint file",
                                                   "count": 1, "total": 1, "unit": "files", "decision": "kept",
                                                   "rule": "no file of its own", "examples": ["NSFW.csv"]}]})
    attach(request.node, title="t", record={"aspect": "pinpoint.relative", "concept": "Violent", "value": 0.9})
"""


def test_results_json_records_carry_the_prompt_files_and_issues(pytester):
    pytester.makepyfile(_NOTED_TEST)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
    _, (record,) = load_results(pytester.path / "reports" / "results.json")
    assert record["aspect"] == "pinpoint.relative" and record["prompt_files"] == {"pinpoint": "pinpoint_ness/NSFW.csv"}
    assert record["prompt_issues"][0]["kind"] == "fallback pinpoint file" and record["prompt_folder"] == "/p"


def test_report_has_a_prompt_folder_section():
    from hubkit_reports.html import prompt_folder_section

    issue = {"concept": "Violent", "set": "multilingual", "kind": "not UTF-8", "count": 1, "total": 1, "unit": "files",
             "decision": "refused", "rule": "x.csv: not UTF-8 at byte 12 (line 2)", "examples": []}
    html = prompt_folder_section([{"concept": "Violent", "prompt_folder": "/p", "prompt_issues": [issue],
                                   "prompt_files": {"pinpoint": "pinpoint_ness/NSFW.csv"}}])
    assert "<h2>Prompt folder</h2>" in html and "1 refused" in html and "not UTF-8 at byte 12" in html
    assert "pinpoint_ness/NSFW.csv" in html and "#f8d7da" in html
    assert prompt_folder_section([{"aspect": "x"}]) == ""


def test_provenance_names_the_files_and_the_concepts_issues(tmp_path):
    from hubkit.prompts import load_prompt_folder

    folder = load_prompt_folder(_folder(tmp_path))
    got = folder.provenance("edouard manet")
    assert got["prompt_files"]["pinpoint"] == "pinpoint_ness/Édouard Manet.csv"
    kinds = {(i["concept"], i["set"], i["kind"]): i for i in got["prompt_issues"]}
    assert kinds[("Édouard Manet", "pinpoint", "the concept itself")]["examples"] == ["'edouard manet' (is the name of "
                                                                                       "Édouard Manet)"]
    assert kinds[("Édouard Manet", "multilingual", "missing")]["decision"] == "refused"
    assert all(c in ("Édouard Manet", "*") for c, _, _ in kinds)


# -- efficiency: each budget bounds its timing rounds --------------------------------------------------------
def test_efficiency_rounds_come_from_the_budget(monkeypatch):
    from hubkit.aspects import efficiency

    assert BUDGETS.get("ci").efficiency_rounds == 15 and BUDGETS.get("full").efficiency_rounds == 15
    assert BUDGETS.get("smoke").efficiency_rounds == 3
    calls = []
    monkeypatch.setattr(efficiency, "_timed", lambda hub, loaded, prompts: calls.append(loaded) or (1.0, None, 1.0))
    # on a GPU the timed rounds decide and the budget sets them; on the CPU they are only reported (counted operations
    # decide), so at most efficiency.CPU_REPORT_ROUNDS of them
    for name, device, rounds in (("smoke", "cuda", 3), ("ci", "cuda", 15), ("smoke", "cpu", 3),
                                 ("ci", "cpu", efficiency.CPU_REPORT_ROUNDS)):
        calls.clear()
        efficiency._CACHE.clear()
        hub = SimpleNamespace(budget=BUDGETS.get(name), base="base", model="model", device=device,
                              prompts=SimpleNamespace(general=lambda: [Prompt(i, "a caption") for i in range(64)]))
        runs = efficiency._measure_both(hub)
        assert len(runs["base"]) == len(runs["model"]) == rounds and len(calls) == 2 + 2 * rounds
    assert efficiency.CPU_REPORT_ROUNDS < 15


@pytest.mark.parametrize("expression, expected", [
    ("Édouard Manet", "(Edouard and Manet)"),
    (f"{NFD_MANET} and pinpoint", "(Edouard and Manet) and pinpoint"),
    ("concept:Édouard Manet and not Spanish", "concept:Edouard_Manet and not Spanish"),
    ("concept:Van Gogh or concept:Manet", "concept:Van_Gogh or concept:Manet"),
])
def test_k_words_lose_accents_and_concept_runs_become_one_keyword(expression, expected):
    from hubkit.pytest_plugin import join_bare_words

    assert join_bare_words(expression) == expected


def test_openmp_threads_spin_briefly_unless_the_user_chose(monkeypatch):
    """libgomp's default spin stalls torch on a busy 2-core machine (4 images: 25 s instead of 0.5); a wait policy or
    spin count the user set is left alone (libgomp lets a spin count override the policy)."""
    import os

    from hubkit.devices import SPIN_COUNT, bounded_openmp_waiting

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    bounded_openmp_waiting()
    assert os.environ["GOMP_SPINCOUNT"] == SPIN_COUNT and "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setenv("GOMP_SPINCOUNT", "5")
    bounded_openmp_waiting()
    assert os.environ["GOMP_SPINCOUNT"] == "5"
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    bounded_openmp_waiting()
    assert "GOMP_SPINCOUNT" not in os.environ
