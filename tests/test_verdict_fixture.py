"""The ``verdict`` fixture: pass passes, fail fails, inconclusive fails or xfails as its rule says, and
results.json records the bound that decided, its alpha and n (issue 14)."""

import json
from hubkit_reports.results import load_results, validate

_SUITE = """
import pytest

import hubkit_asserts
from hubkit.aspects.registry import Evidence
from hubkit.stats import paired_ratio_from_table, proportion_from_counts


@pytest.fixture
def hub():
    return None  # the fixture under test only hands it on


@pytest.fixture
def profile():
    return hubkit_asserts.load_profile("default")


def test_pass(verdict):
    verdict(Evidence(proportion_from_counts(0, 64, "tp"), "faithfulness.target_proportion", "style"))


def test_inconclusive_fails_by_default(verdict):
    verdict(Evidence(proportion_from_counts(6, 64, "tp"), "faithfulness.target_proportion", "style"))


def test_inconclusive_without_inconclusive_fails_is_xfail(verdict):
    one_pair = paired_ratio_from_table(1, 0, 0, 0, "kept", direction="higher")
    verdict(Evidence(one_pair, "pinpoint.relative_per_neighbour", "style", extra={"neighbour": "x"}))


def test_fail(verdict):
    verdict(Evidence(proportion_from_counts(40, 64, "tp"), "faithfulness.target_proportion", "style"))
"""


def test_verdicts_map_to_test_outcomes_and_records(pytester):
    pytester.makepyfile(_SUITE)
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2, xfailed=1)
    result.stdout.fnmatch_lines(["*Inconclusive counts as a failure in this profile*"])
    document = json.loads((pytester.path / "reports" / "results.json").read_text())
    validate(document)  # reports/results.schema.json
    written = document["records"]
    records = {r["test"].split("::")[-1]: r for r in written}
    assert {name: r["verdict"] for name, r in records.items()} == {
        "test_pass": "pass", "test_inconclusive_fails_by_default": "inconclusive",
        "test_inconclusive_without_inconclusive_fails_is_xfail": "inconclusive", "test_fail": "fail"}
    ok = records["test_pass"]
    assert ok["alpha"] == 0.05 and ok["n"] == 64 and ok["bound_side"] == "upper" and ok["min_n"] == 8
    assert 0.045 < ok["bound"] < 0.046 < ok["high"]  # the exact one-sided 95% bound of 0/64; the 95% interval is wider
    assert ok["confidence"] == 0.95 and ok["interval"] == "clopper-pearson"
    few = records["test_inconclusive_without_inconclusive_fails_is_xfail"]
    assert few["n"] == 1 and few["inconclusive_fails"] is False and few["outcome"] == "skipped"  # pytest's xfail
    assert records["test_fail"]["bound_side"] == "lower"


_ROUNDS_SUITE = """
import contextlib

import numpy as np
import pytest

import hubkit_asserts
from hubkit.aspects.registry import Evidence
from hubkit.sequential import schedule
from hubkit.stats import proportion_from_counts

SIZES = schedule(64, 1000, 1.5)
STREAM = np.random.default_rng(0).random(1000) < 0.01  # a clear erasure
MEASURED = []


class Hub:
    rounds = len(SIZES)
    n = SIZES[-1]

    @contextlib.contextmanager
    def at_round(self, r):
        self.n = SIZES[min(r, len(SIZES) - 1)]
        yield self
        self.n = SIZES[-1]

    def judge_info(self, name):
        return {"name": name, "version": "test"} if name else None


@pytest.fixture
def hub():
    return Hub()


@pytest.fixture
def profile():
    return hubkit_asserts.load_profile("default")


def target_proportion(hub):
    MEASURED.append(hub.n)
    return Evidence(proportion_from_counts(int(STREAM[:hub.n].sum()), hub.n, "tp"), "faithfulness.target_proportion",
                    "style")


def test_rounds(verdict, hub):
    outcome = verdict(target_proportion, hub)
    assert outcome.verdict == "pass" and MEASURED[-1] < 1000
"""


def test_a_measure_runs_in_rounds_until_decided(pytester):
    pytester.makepyfile(_ROUNDS_SUITE)
    # a subprocess: numpy's extension modules cannot be imported afresh in-process (pytester restores sys.modules)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    _, (record,) = load_results(pytester.path / "reports" / "results.json")
    assert record["interval"].startswith("anytime-valid") and record["rounds"] >= 1 and record["n"] < 1000
    assert record["of_rounds"] == 8 and record["bound"] <= 0.098
