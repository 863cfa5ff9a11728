"""Anytime-valid sequential verdicts (issue 14): confidence sequences, the rounds of --budget auto, and the
guarantee that looking after every round does not inflate the error rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from hubkit import sequential, stats
from hubkit.budgets import BUDGETS, SequentialBudget, default_budget
from hubkit_asserts import Rule, decide

tables = st.tuples(*[st.integers(0, 60)] * 4)


@hsettings(max_examples=80, deadline=None)
@given(tables, st.sampled_from([0.01, 0.05, 0.1]))
def test_sequence_bounds_contain_the_estimate_and_are_wider_than_fixed_n(t, alpha):
    n11, n10, n01, n00 = t
    if n11 + n01 == 0:
        assert sequential.ratio_sequence_bounds(t, alpha) == (0.0, math.inf)
        return
    lo, hi = sequential.ratio_sequence_bounds(t, alpha)
    value = (n11 + n10) / (n11 + n01)
    assert 0 <= lo <= value <= hi
    flo, fhi = stats.paired_ratio_from_table(*t).one_sided(alpha)
    if n11 + n10 + n01 >= 8:  # at tiny n the two methods' edge conventions differ
        assert lo <= flo * 1.001 + 1e-9 and hi >= fhi * 0.999 - 1e-9
    # rejecting beyond the bounds: the wealth is past 1/alpha there and not at the estimate
    assert sequential.log_wealth_above(t, value) < math.log(1 / alpha)


def test_rate_sequence_bounds():
    assert sequential.rate_sequence_bounds(0, 0, 0.05) == (0.0, 1.0)
    lo, hi = sequential.rate_sequence_bounds(0, 64, 0.05)
    assert lo == 0.0 and stats.clopper_pearson_bounds(0, 64, 0.05)[1] < hi < 0.1
    lo, hi = sequential.rate_sequence_bounds(64, 64, 0.05)
    assert hi == 1.0 and 0.85 < lo < 0.96
    a = sequential.rate_sequence_bounds(20, 200, 0.05)
    b = sequential.rate_sequence_bounds(200, 2000, 0.05)
    assert b[1] - b[0] < a[1] - a[0]  # shrinks with n


def test_looking_after_every_round_keeps_the_false_pass_rate_below_alpha():
    """A model exactly at the threshold (rate 0.1), looked at after each of --budget auto's rounds from 64 to
    1,000 images: the fixed-n bound looked at that often passes it far more often than alpha; the confidence
    sequence does not."""
    rng = np.random.default_rng(0)
    sizes = sequential.schedule(64, 1000, 1.5)
    rule = Rule("r", 0.1, "test", alpha=0.05, min_n=8)
    seq_pass = peek_pass = 0
    runs = 600
    for _ in range(runs):
        counts = np.cumsum(rng.random(1000) < 0.1)
        seq = [decide(sequential.anytime(stats.proportion_from_counts(int(counts[n - 1]), n)), rule).verdict
               for n in sizes]
        peek = [decide(stats.proportion_from_counts(int(counts[n - 1]), n), rule).verdict for n in sizes]
        seq_pass += "pass" in seq[: seq.index("fail") if "fail" in seq else None]
        peek_pass += "pass" in peek[: peek.index("fail") if "fail" in peek else None]
    assert seq_pass / runs <= 0.05
    assert peek_pass / runs > seq_pass / runs  # peeking at fixed-n bounds costs error rate


def test_anytime_converts_rates_ratios_and_means_of_rates_only():
    p = sequential.anytime(stats.proportion_from_counts(3, 100))
    assert p.details["interval"] == sequential.INTERVAL and p.details["fixed_n_interval"] == "clopper-pearson"
    assert p.one_sided(0.05) == sequential.rate_sequence_bounds(3, 100, 0.05) and p.k == 3 and p.n == 100
    r = sequential.anytime(stats.paired_ratio_from_table(40, 2, 10, 8, "kept", direction="higher"))
    assert r.one_sided(0.05) == sequential.ratio_sequence_bounds((40, 2, 10, 8), 0.05) and r.direction == "higher"
    m = sequential.anytime(stats.mean_of_proportions({"a": (1, 100), "b": (3, 50)}))
    lo, hi = m.one_sided(0.05)
    pa, pb = sequential.rate_sequence_bounds(1, 100, 0.025), sequential.rate_sequence_bounds(3, 50, 0.025)
    assert (lo, hi) == pytest.approx(((pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2))  # Bonferroni over the groups
    assert sequential.anytime(p) is p
    assert sequential.anytime(stats.paired_mean_ratio([1.0, 2.0, 3.0], [1.0, 2.0, 2.5])) is None
    assert sequential.anytime(stats.median_measurement([1.0, 2.0])) is None


def test_schedule_grows_to_the_cap_and_never_past_it():
    assert sequential.schedule(64, 1000, 1.5) == [64, 96, 144, 216, 324, 486, 729, 1000]
    assert sequential.schedule(64, 50, 1.5) == [50]
    assert sequential.schedule(10, 10, 1.5) == [10]


def _measure_rate(p, cap=1000, seed=0):
    stream = np.random.default_rng(seed).random(cap) < p
    sizes = sequential.schedule(64, cap, 1.5)
    calls = []

    def measure(r):
        n = sizes[min(r, len(sizes) - 1)]
        calls.append(n)
        return stats.proportion_from_counts(int(stream[:n].sum()), n)

    return measure, len(sizes), calls


def test_until_decided_stops_at_the_first_decided_round():
    rule = Rule("r", 0.1, "test", alpha=0.05, min_n=8)
    measure, rounds, calls = _measure_rate(0.0)
    m, last, seq = sequential.until_decided(measure, lambda m: decide(m, rule).verdict in ("pass", "fail"), rounds,
                                            to_anytime=sequential.anytime, size=lambda m: m.n)
    assert seq and decide(m, rule).verdict == "pass" and m.details["interval"] == sequential.INTERVAL
    assert (m.n, last) == (64, 0) and calls == [64, 96]  # decided at once; round 1 was only measured to see it grow
    # at the threshold it runs to the cap, and never past it
    measure, rounds, calls = _measure_rate(0.1, seed=3)
    m, last, seq = sequential.until_decided(measure, lambda m: decide(m, rule).verdict in ("pass", "fail"), rounds,
                                            to_anytime=sequential.anytime, size=lambda m: m.n)
    assert max(calls) <= 1000


def test_a_check_that_does_not_grow_is_measured_at_fixed_n():
    fixed = stats.proportion_from_counts(2, 64)
    m, last, seq = sequential.until_decided(lambda r: fixed, lambda m: False, 5, to_anytime=sequential.anytime,
                                            size=lambda m: m.n)
    assert m is fixed and not seq and last == 0  # one look: its exact bounds, no confidence sequence
    score = stats.paired_mean_ratio([1.0, 2.0, 3.0], [1.0, 2.0, 2.5])
    assert sequential.until_decided(lambda r: score, lambda m: False, 5, to_anytime=sequential.anytime,
                                    size=lambda m: m.n)[0] is score


def test_auto_budget_rounds_contain_each_other_up_to_hubs_counts():
    from hubkit.prompts import Prompt, subsample

    auto = BUDGETS.get("auto")
    assert isinstance(auto, SequentialBudget) and auto.rounds == len(auto.sizes("target_prompts"))
    full, ci = BUDGETS.get("full"), BUDGETS.get("ci")
    sizes = auto.sizes("target_prompts")
    assert sizes[0] == ci.target_prompts and sizes[-1] == full.target_prompts
    assert auto.at_round(99).language_prompts == full.language_prompts
    assert auto.at_round(0).selective_prompts == ci.selective_prompts
    assert auto.at_round(5).general_prompts == auto.general_prompts  # not sequential: fixed
    prompts = [Prompt(i, f"prompt {i}") for i in range(3000)]
    previous: set = set()
    for r in range(auto.rounds):
        chosen = {p.index for p in subsample(prompts, auto.at_round(r).target_prompts, seed="0:target:X")}
        assert previous <= chosen  # a round only adds prompts (and seeds are per image): no image changes
        previous = chosen


def test_session_at_round_swaps_the_budget_and_restores_it(tmp_path):
    from hubkit.session import RunConfig, Session

    hub = Session(RunConfig(budget="auto", image_cache=str(tmp_path)))
    assert hub.rounds == BUDGETS.get("auto").rounds and hub.budget.target_prompts == 10_000
    with hub.at_round(2):
        assert hub.budget.target_prompts == 144 and hub.budget.name == "auto[round 2]"
    assert hub.budget.target_prompts == 10_000
    ci = Session(RunConfig(budget="ci", image_cache=str(tmp_path)))
    with ci.at_round(3):
        assert ci.budget is BUDGETS.get("ci")
    assert ci.rounds == 1


def test_default_budget_is_auto_for_another_base_model(tmp_path):
    from hubkit.worlds import default_world

    assert default_budget(None) == "ci"
    assert default_budget(str(default_world().base_model)) == "ci"
    assert default_budget(str(tmp_path / "sd-v1-5")) == "auto"
