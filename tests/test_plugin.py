"""The pytest plugin: options, ini keys, markers, usage errors, -k with multi-word concept names, results.json."""

import json
import tempfile

import pytest

from hubkit.pytest_plugin import ASPECTS, join_bare_words
from hubkit_reports.results import load_results


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("faithfulness and Van Gogh", "faithfulness and (Van and Gogh)"),
        ("multilingual and Spanish", "multilingual and Spanish"),
        ("not (Emma Watson or Brad Pitt)", "not ((Emma and Watson) or (Brad and Pitt))"),
        ("robustness", "robustness"),
    ],
)
def test_bare_words_are_joined_with_and(expression, expected):
    assert join_bare_words(expression) == expected


def test_markers_are_registered_for_strict_markers(pytester):
    pytester.makepyfile(
        "\n".join(f"import pytest\n@pytest.mark.{name}\ndef test_{name}(): pass\n" for name in ASPECTS)
    )
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(ASPECTS))
    result = pytester.runpytest("--strict-markers", "-m", "robustness")
    result.assert_outcomes(passed=1, deselected=len(ASPECTS) - 1)


def test_k_selects_multiword_ids(pytester):
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.faithfulness
        @pytest.mark.parametrize("concept", ["Van Gogh", "Picasso"])
        def test_target(concept): pass
        """
    )
    result = pytester.runpytest("-k", "faithfulness and Van Gogh", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*test_target?Van Gogh?*PASSED*"])


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--budget", "huge"], "*--budget*'huge' is not a budget; use one of smoke, ci, full*"),
        (["--seed", "abc"], "*--seed*'abc' is not an integer*"),
        (["--device", "gpu0"], "*--device*'gpu0' is not a device*cpu, cuda, cuda:N*"),
    ],
)
def test_bad_option_is_a_usage_error_naming_it(pytester, args, needle):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([needle])


def test_ini_keys_back_the_options(pytester):
    pytester.makeini("[pytest]\nhubkit_budget = smoke\nhubkit_seed = 7\nhubkit_concepts =\n    Van Gogh\n    Picasso\n")
    pytester.makepyfile(
        """
        def test_options(pytestconfig):
            o = pytestconfig.hubkit_options
            assert (o["budget"], o["seed"], o["concepts"]) == ("smoke", 7, ["Van Gogh", "Picasso"])
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    # the command line wins over the ini file
    pytester.makepyfile(
        """
        def test_options(pytestconfig):
            assert pytestconfig.hubkit_options["budget"] == "full"
        """
    )
    pytester.runpytest("--budget", "full").assert_outcomes(passed=1)


_ATTACHING_TEST = """
from hubkit_reports.html import attach

def test_measured(request):
    attach(request.node, title="t", record={"aspect": "faithfulness", "value": 0.25})
"""


def test_results_json_holds_every_attached_record(pytester):
    pytester.makepyfile(_ATTACHING_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    run, records = load_results(pytester.path / "reports" / "results.json")
    assert [(r["aspect"], r["value"], r["outcome"]) for r in records] == [("faithfulness", 0.25, "passed")]
    assert run["exit_status"] == 0 and "pytest" in run["command"] and run["seconds"] >= 0


def test_unwritable_results_json_fails_the_run_and_keeps_the_numbers(pytester, monkeypatch, tmp_path):
    pytester.makepyfile(_ATTACHING_TEST)
    (pytester.path / "reports").write_text("a file where the reports folder should be")
    saved_dir = tmp_path / "saved"
    saved_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(saved_dir))
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(["*1 passed*"])  # the summary still comes first
    result.stderr.fnmatch_lines([f"*cannot write {pytester.path / 'reports' / 'results.json'}*saved to {saved_dir}*"])
    (saved,) = saved_dir.glob("hubkit-results-*.json")
    assert json.loads(saved.read_text())["records"][0]["value"] == 0.25


def test_junit_xml_carries_each_checks_numbers_as_properties(pytester):
    """CI systems read JUnit XML: every record's aspect, value, verdict ... are properties of its test case."""
    import xml.etree.ElementTree as ET

    pytester.makepyfile(_ATTACHING_TEST)
    pytester.runpytest(f"--junitxml={pytester.path / 'junit.xml'}").assert_outcomes(passed=1)
    (case,) = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["hubkit_aspect"] == "faithfulness" and props["hubkit_value"] == "0.25"
    assert "hubkit" in props  # the whole record, as JSON
