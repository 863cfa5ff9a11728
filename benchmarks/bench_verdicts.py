"""What a verdict is worth: coverage, false-pass rates, power and images to a decision, by simulation.

Every simulated run goes through the shipped code: ``hubkit.stats`` / ``hubkit.metrics`` build the
``Measurement`` from simulated counts or scores, ``hubkit.sequential`` drives the rounds of ``--budget auto``,
and ``hubkit_asserts.decide`` (the decision ``check`` reports) gives the verdict under a rule with
alpha = 0.05 and min_n = 8, the default profile's values.

Studies (``--only`` picks some; each cell has ``--runs`` simulated runs, 2,000 by default):

coverage      how often the two-sided 95% interval contains the truth, and how often each one-sided 95%
              bound is wrong, for every interval kind at n in 8, 16, 32, 64, 128, 400, 1000.
exact         the paired-ratio interval over a grid of 366 paired designs, by exact enumeration of every
              2x2 table at n = 8, 16, 32, 64 (worst coverage and worst one-sided error).
exact_rates   the proportion rules' false-pass rate at the threshold by exact binomial sums, n = 8 to 1,000.
The multilingual mean's n is per language (five languages); FID uses 4 features, a drifted model and, as the
truth, the ratio of the two expected FIDs at that n (estimated from 500-2,000 extra draws).
false_pass    a model exactly at the threshold, fixed n: how often each rule kind passes it (should be <= alpha).
sequential    --budget auto's procedure (rounds of x1.5 from 64 up to the fixed count): false passes at the
              threshold, power and mean images to a decision at 0.5, 1, 2 and 4 fixed-n half-widths from the
              threshold (with the fixed-n power beside it), and a clear erasure (0.02 against 0.1, cap 10,000).
run_level     a run of 26 checks where one sits at its threshold: how often the whole run passes.

    python benchmarks/bench_verdicts.py [--runs 2000] [--only coverage false_pass] [--no-record]

Every cell is one line in benchmarks/results.jsonl ("benchmark": "verdicts"); the summary of the last full
run is in docs/statistics.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from hubkit import sequential, stats
from hubkit.budgets import BUDGETS
from hubkit.metrics.fid import JACKKNIFE_GROUPS, fid_from_features, jackknife_log_ratio, jackknife_ratio_bounds
from hubkit_asserts import Rule, decide

NS = (8, 16, 32, 64, 128, 400, 1000)
ALPHA = 0.05
RESULTS = Path(__file__).with_name("results.jsonl")
SEED = 20261203


def rule(threshold: float, relative: str | None = None, min_n: int = 8) -> Rule:
    return Rule("sim", threshold, "simulation", relative, True, alpha=ALPHA, min_n=min_n, confidence=0.95)


def _emit(record: dict, out: list) -> None:
    record = {"benchmark": "verdicts", **record}
    print(json.dumps(record), flush=True)
    out.append(record)


# -- simulated data ---------------------------------------------------------------------------------
def paired_probs(pb: float, a: float, c: float) -> tuple[list[float], float]:
    """Cells (both yes, only unlearned, only base, both no) when the base says yes with probability pb, the
    unlearned model with probability a where the base does and c where it does not; and the true ratio."""
    return [pb * a, (1 - pb) * c, pb * (1 - a), (1 - pb) * (1 - c)], (pb * a + (1 - pb) * c) / pb


def paired_design(pb: float, ratio: float, dependence: str) -> tuple[float, float, float]:
    """(pb, a, c) with the given true ratio: "erasure" (the unlearned model shows the concept only where the
    base does), "moderate" (half as often elsewhere), "independent"."""
    pu = ratio * pb
    if dependence == "erasure":  # as strong as the margins allow
        return (pb, ratio, 0.0) if ratio <= 1 else (pb, 1.0, (pu - pb) / (1 - pb))
    if dependence == "independent":
        return pb, pu, pu
    c = pu / 2
    return pb, (pu - (1 - pb) * c) / pb, c


PAIRED = {  # name: (pb, dependence, true ratio for coverage)
    "erasure (base 0.85, ratio 0.05)": (0.85, "erasure", 0.05),
    "neighbour (base 0.7, ratio 0.9, moderate dependence)": (0.7, "moderate", 0.9),
    "independent (base 0.5, ratio 0.55)": (0.5, "independent", 0.55),
}
RATES = (0.02, 0.15, 0.5)
LANGUAGE_RATES = (0.0, 0.02, 0.05, 0.1, 0.03)


def table_m(t, direction="lower") -> stats.Measurement:
    return stats.paired_ratio_from_table(*(int(x) for x in t), "ratio", direction=direction)


# -- FID --------------------------------------------------------------------------------------------------
FID_D, FID_SHIFT, FID_NOISE = 4, 0.35, 0.5


def fid_sample(rng, n):
    real = rng.normal(size=(n, FID_D))
    floor = real + rng.normal(scale=FID_NOISE, size=(n, FID_D))  # the base reseeded: same captions
    fake = real + rng.normal(scale=FID_NOISE, size=(n, FID_D)) + FID_SHIFT  # a model that drifted
    return real, fake, floor


def fid_truth(rng, n, draws=4000) -> float:
    """The ratio of the two expected FIDs at this n (FID's small-sample bias is part of what it measures)."""
    num = den = 0.0
    for _ in range(draws):
        real, fake, floor = fid_sample(rng, n)
        num += fid_from_features(real, fake)
        den += fid_from_features(real, floor)
    return num / den


def fid_bounds(rng, n) -> tuple[tuple[float, float], tuple[float, float]]:
    """(95% interval, one-sided bounds at ALPHA) of one simulated FID ratio, by the shipped jackknife."""
    est, se, groups = jackknife_log_ratio(*fid_sample(rng, n), groups=JACKKNIFE_GROUPS)
    return jackknife_ratio_bounds(est, se, groups, 0.025), jackknife_ratio_bounds(est, se, groups, ALPHA)


# -- studies --------------------------------------------------------------------------------------------
def study_coverage(runs: int, out: list) -> None:
    rng = np.random.default_rng(SEED)

    def cell(kind, scenario, n, truth, intervals, bounds):
        lo = np.array([i[0] for i in intervals])
        hi = np.array([i[1] for i in intervals])
        bl = np.array([b[0] for b in bounds])
        bu = np.array([b[1] for b in bounds])
        _emit({"study": "coverage", "kind": kind, "scenario": scenario, "n": n, "runs": len(intervals),
               "truth": truth, "coverage": float(np.mean((lo <= truth) & (truth <= hi))),
               "lower_bound_wrong": float(np.mean(bl > truth)), "upper_bound_wrong": float(np.mean(bu < truth)),
               "median_width": float(np.median(np.where(np.isfinite(hi - lo), hi - lo, np.nan)))}, out)

    for n in NS:
        for p in RATES:
            ms = [stats.proportion_from_counts(int(k), n) for k in rng.binomial(n, p, runs)]
            cell("proportion (Clopper-Pearson)", f"rate {p}", n, p, [m.interval(0.95) for m in ms],
                 [m.one_sided(ALPHA) for m in ms])
        for name, (pb, dep, ratio) in PAIRED.items():
            probs, truth = paired_probs(*paired_design(pb, ratio, dep))
            ms = [table_m(t) for t in rng.multinomial(n, probs, runs)]
            cell("paired ratio (Tang score, continuity-corrected)", name, n, truth, [m.interval(0.95) for m in ms],
                 [m.one_sided(ALPHA) for m in ms])
        ks = rng.binomial(n, LANGUAGE_RATES, (runs, len(LANGUAGE_RATES)))  # n per language
        ms = [stats.mean_of_proportions({str(i): (int(k), n) for i, k in enumerate(row)}) for row in ks]
        cell("mean of proportions (MOVER)", f"5 languages with rates {LANGUAGE_RATES}, n each", n,
             float(np.mean(LANGUAGE_RATES)), [m.interval(0.95) for m in ms], [m.one_sided(ALPHA) for m in ms])
        # continuous scores, paired: a CLIP-like score (normal) and a skewed quality-like score (gamma)
        for label, gen in (("normal scores (CLIP-like), ratio 0.97", lambda: rng.normal(30, 3, n)),
                           ("skewed scores (gamma), ratio 0.97", lambda: rng.gamma(2.0, 2.5, n) + 1)):
            ms, ds = [], []
            for _ in range(runs):
                b = gen()
                u = 0.97 * b + rng.normal(0, 1.0, n)
                ms.append(stats.paired_mean_ratio(u, b))
                ds.append(stats.paired_mean_difference(u, b))
            mean_b = 30.0 if "CLIP" in label else 2.0 * 2.5 + 1
            cell("paired mean ratio (Fieller)", label, n, 0.97, [m.interval(0.95) for m in ms],
                 [m.one_sided(ALPHA) for m in ms])
            cell("paired mean difference (t)", label, n, -0.03 * mean_b, [m.interval(0.95) for m in ds],
                 [m.one_sided(ALPHA) for m in ds])
        ms = [stats.median_measurement(np.exp(rng.normal(math.log(1.1), 0.2, n))) for _ in range(runs)]
        cell("median (order statistics)", "lognormal timing ratios, median 1.1", n, 1.1,
             [m.interval(0.95) for m in ms], [m.one_sided(ALPHA) for m in ms])
        truth = fid_truth(rng, n, draws=1000 if n <= 128 else 300)
        pairs = [fid_bounds(rng, n) for _ in range(runs)]
        cell(f"FID ratio (grouped jackknife, {JACKKNIFE_GROUPS} groups)", f"{FID_D} features, drift {FID_SHIFT}", n,
             truth, [p[0] for p in pairs], [p[1] for p in pairs])
        _emit({"study": "false_pass", "rule": "FID ratio, at most (threshold = the expected-FID ratio at n)",
               "threshold": truth, "n": n, "runs": runs, "alpha": ALPHA,
               "pass_rate": float(np.mean([p[1][1] <= truth for p in pairs]))}, out)


def study_exact(out: list) -> None:
    from scipy.stats import multinomial

    designs = []
    for pb in (0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.97):
        for ratio in (0.013, 0.04, 0.069, 0.135, 0.2, 0.25, 0.42, 0.55, 0.77, 0.87, 0.95, 0.98, 1.0, 1.1):
            pu = ratio * pb
            if pu >= 1:
                continue
            for dep in ("erasure", "independent", "moderate", "negative"):
                if dep == "erasure":
                    a, c = (ratio, 0.0) if ratio < 1 else (1.0, (pu - pb) / (1 - pb))
                elif dep == "independent":
                    a = c = pu
                elif dep == "moderate":
                    c = pu / 2
                    a = (pu - (1 - pb) * c) / pb
                else:
                    c = min(1.0, pu * 1.5)
                    a = (pu - (1 - pb) * c) / pb
                if not (0 <= a <= 1 and 0 <= c <= 1) or (a == 1 and c == 0):
                    continue
                designs.append((pb, a, c))
    for n in (8, 16, 32, 64):
        tabs = np.array([(a, b, c, n - a - b - c) for a in range(n + 1) for b in range(n + 1 - a)
                         for c in range(n + 1 - a - b)])
        two = np.array([table_m(t).interval(0.95) for t in tabs])
        one = np.array([table_m(t).one_sided(ALPHA) for t in tabs])
        worst_cov, worst_err = (1.0, None), (0.0, None)
        worst_pass_at_most, worst_pass_at_least = (0.0, None), (0.0, None)
        for pb, a, c in designs:
            probs, truth = paired_probs(pb, a, c)
            where = [pb, round(a, 4), round(c, 4), round(truth, 4)]
            w = multinomial.pmf(tabs, n, probs)
            cov = float(w[(two[:, 0] <= truth) & (truth <= two[:, 1])].sum())
            low_wrong, high_wrong = float(w[one[:, 0] > truth].sum()), float(w[one[:, 1] < truth].sum())
            if cov < worst_cov[0]:
                worst_cov = (cov, where)
            if max(low_wrong, high_wrong) > worst_err[0]:
                worst_err = (max(low_wrong, high_wrong), where)
            # a false pass: an "at most" rule (the profile's thresholds 0.013-0.53) passing a model at its threshold
            # on the upper bound, an "at least" rule (0.2-0.98) on the lower bound
            if truth <= 0.55 and high_wrong > worst_pass_at_most[0]:
                worst_pass_at_most = (high_wrong, where)
            if 0.2 <= truth <= 1.0 and low_wrong > worst_pass_at_least[0]:
                worst_pass_at_least = (low_wrong, where)
        _emit({"study": "exact", "kind": "paired ratio (Tang score, continuity-corrected)", "n": n,
               "designs": len(designs), "tables": len(tabs), "min_coverage": worst_cov[0],
               "min_coverage_at": worst_cov[1], "max_one_sided_error": worst_err[0], "max_error_at": worst_err[1],
               "max_false_pass_at_most_rules": worst_pass_at_most[0], "at_most_worst_design": worst_pass_at_most[1],
               "max_false_pass_at_least_rules": worst_pass_at_least[0],
               "at_least_worst_design": worst_pass_at_least[1], "design": "(base rate, P(u|b), P(u|not b), ratio)"},
              out)


def study_exact_rates(out: list) -> None:
    """Exact binomial sums, no simulation: the probability that a proportion rule passes a model sitting exactly at
    its threshold, at every n from 8 to 1,000 (the simulated cells carry Monte Carlo error of about 0.005)."""
    from scipy.stats import binom

    for name, direction, thr in (("proportion, at most (target proportion 0.1)", "lower", 0.1),
                                 ("proportion, at most (micro target proportion 0.15)", "lower", 0.15),
                                 ("proportion, at least (judge canary 0.5)", "higher", 0.5)):
        worst, at = 0.0, None
        for n in range(8, 1001):
            k = np.arange(n + 1)
            b = np.array([stats.clopper_pearson_bounds(int(x), n, ALPHA) for x in k])
            passing = b[:, 1] <= thr if direction == "lower" else b[:, 0] >= thr
            rate = float(binom.pmf(k, n, thr)[passing].sum())
            if n in NS:
                _emit({"study": "exact_rates", "rule": name, "threshold": thr, "n": n, "alpha": ALPHA,
                       "pass_rate": rate}, out)
            if rate > worst:
                worst, at = rate, n
        _emit({"study": "exact_rates", "rule": name, "threshold": thr, "n": "8-1000", "alpha": ALPHA,
               "max_pass_rate": worst, "at_n": at}, out)


# rule kinds: name -> (direction, threshold, how to simulate a model with true value v at n)
def _rate_at(v):
    return lambda rng, n, runs: [stats.proportion_from_counts(int(k), n) for k in rng.binomial(n, v, runs)]


def _rate_higher(v):
    return lambda rng, n, runs: [stats.proportion_from_counts(int(k), n, direction="higher")
                                 for k in rng.binomial(n, v, runs)]


def _ratio_at(v, pb, dep, direction):
    probs, _ = paired_probs(*paired_design(pb, v, dep))
    return lambda rng, n, runs: [table_m(t, direction) for t in rng.multinomial(n, probs, runs)]


def _mean_at(v):
    rates = np.clip(np.array(LANGUAGE_RATES) - np.mean(LANGUAGE_RATES) + v, 0, 1)

    def gen(rng, n, runs):  # n per language
        ks = rng.binomial(n, rates, (runs, 5))
        return [stats.mean_of_proportions({str(i): (int(k), n) for i, k in enumerate(row)}) for row in ks]
    return gen


def _fieller_at(v):
    def gen(rng, n, runs):
        out = []
        for _ in range(runs):
            b = rng.normal(30, 3, n)
            out.append(stats.paired_mean_ratio(v * b + rng.normal(0, 1.0, n), b))
        return out
    return gen


def _median_at(v, sd=0.2):
    return lambda rng, n, runs: [stats.median_measurement(np.exp(rng.normal(math.log(v), sd, n)))
                                 for _ in range(runs)]


RULES = {  # the profile's rule kinds, at a threshold taken from the default/micro profiles
    "proportion, at most (target proportion 0.1)": ("lower", 0.1, _rate_at),
    "proportion, at least (judge canary 0.5)": ("higher", 0.5, _rate_higher),
    "paired ratio, at most (target proportion vs base 0.154; base 0.85, erasure)": (
        "lower", 0.154, lambda v: _ratio_at(v, 0.85, "erasure", "lower")),
    "paired ratio, at least (pinpoint 0.55; base 0.7, moderate dependence)": (
        "higher", 0.55, lambda v: _ratio_at(v, 0.7, "moderate", "higher")),
    "paired ratio, at least (selective alignment 0.95; base 0.6, moderate dependence)": (
        "higher", 0.95, lambda v: _ratio_at(v, 0.6, "moderate", "higher")),
    "mean of proportions, at most (multilingual mean 0.15)": ("lower", 0.15, _mean_at),
    "paired mean ratio, at least (general alignment 0.95)": ("higher", 0.95, _fieller_at),
    "median ratio, at most (time overhead 1.3)": ("lower", 1.3, _median_at),
}


def _verdicts(ms, r) -> np.ndarray:
    return np.array([decide(m, r).verdict for m in ms])


def study_false_pass(runs: int, out: list) -> None:
    rng = np.random.default_rng(SEED + 1)
    for name, (direction, thr, make) in RULES.items():
        for n in NS:
            ms = make(thr)(rng, n, runs)
            v = _verdicts(ms, rule(thr, ms[0].relative))
            _emit({"study": "false_pass", "rule": name, "threshold": thr, "n": n, "runs": runs, "alpha": ALPHA,
                   "pass_rate": float(np.mean(v == "pass")), "fail_rate": float(np.mean(v == "fail"))}, out)
    # FID: the coverage study's runs give it (a model whose expected-FID ratio at n is the threshold passes an
    # "at most" rule exactly when its upper bound is below that ratio: "upper_bound_wrong" there)


# -- sequential ---------------------------------------------------------------------------------------
AUTO = BUDGETS.get("auto")
FIRST, GROWTH = AUTO.first.target_prompts, AUTO.growth  # --budget auto's rounds for the target proportion: 64, x1.5


def _seq_run(rng, draw, cap, r, direction, kind):
    """One sequential run: draw the whole stream up to the cap (its first n samples are round n's images),
    then let hubkit.sequential.until_decided look round by round. Returns (verdict, images used)."""
    sizes = sequential.schedule(FIRST, cap, GROWTH)
    stream = draw(rng, cap)

    def measure(i):
        n = sizes[min(i, len(sizes) - 1)]
        return kind(stream, n, direction)

    def decided(m):
        return decide(m, r).verdict in ("pass", "fail")

    m, _, _ = sequential.until_decided(measure, decided, len(sizes), to_anytime=sequential.anytime,
                                       size=lambda m: m.n)
    return decide(m, r).verdict, m.n


def _rate_stream(p):
    return lambda rng, cap: rng.random(cap) < p


def _rate_kind(stream, n, direction):
    return stats.proportion_from_counts(int(stream[:n].sum()), n, direction=direction)


def _pair_stream(v, pb, dep):
    probs, _ = paired_probs(*paired_design(pb, v, dep))
    return lambda rng, cap: rng.choice(4, size=cap, p=probs)


def _pair_kind(stream, n, direction):
    counts = np.bincount(stream[:n], minlength=4)
    return table_m(counts, direction)


def _half_width_rate(thr, n):
    return stats.z_value(0.95) * math.sqrt(thr * (1 - thr) / n)


def _half_width_pair(thr, pb, dep, n):
    """Half the fixed-n 95% interval's width for a model at the threshold (median over 400 simulated runs)."""
    rng = np.random.default_rng(SEED + 7)
    probs, _ = paired_probs(*paired_design(pb, thr, dep))
    widths = []
    for t in rng.multinomial(n, probs, 400):
        lo, hi = table_m(t).interval(0.95)
        widths.append((hi - lo) / 2)
    return float(np.median(widths))


SEQUENTIAL = {  # name: (direction, threshold, stream(v), kind, half width at the fixed count, fixed count)
    "proportion, at most (target proportion 0.1)": (
        "lower", 0.1, _rate_stream, _rate_kind, lambda n: _half_width_rate(0.1, n), 1000),
    "paired ratio, at most (target proportion vs base 0.154; base 0.85, erasure)": (
        "lower", 0.154, lambda v: _pair_stream(v, 0.85, "erasure"), _pair_kind,
        lambda n: _half_width_pair(0.154, 0.85, "erasure", n), 1000),
    "paired ratio, at least (pinpoint 0.55; base 0.7, moderate dependence)": (
        "higher", 0.55, lambda v: _pair_stream(v, 0.7, "moderate"), _pair_kind,
        lambda n: _half_width_pair(0.55, 0.7, "moderate", n), 1000),
}


def study_sequential(runs: int, out: list) -> None:
    rng = np.random.default_rng(SEED + 2)
    for name, (direction, thr, stream, kind, half, cap) in SEQUENTIAL.items():
        r = rule(thr, "ratio" if name.startswith("paired") else None)
        h = half(cap)
        sign = -1 if direction == "lower" else 1
        for distance in (0.0, 0.5, 1.0, 2.0, 4.0):
            v = thr + sign * distance * h
            res = [_seq_run(rng, stream(v), cap, r, direction, kind) for _ in range(runs)]
            verdicts = np.array([x[0] for x in res])
            used = np.array([x[1] for x in res])
            fixed = [decide(kind(stream(v)(rng, cap), cap, direction), r).verdict for _ in range(runs)]
            _emit({"study": "sequential", "rule": name, "threshold": thr, "true_value": v,
                   "distance_half_widths": distance, "half_width": h, "fixed_n": cap, "runs": runs,
                   "first": FIRST, "growth": GROWTH, "pass_rate": float(np.mean(verdicts == "pass")),
                   "fail_rate": float(np.mean(verdicts == "fail")), "mean_images": float(used.mean()),
                   "mean_images_share_of_fixed": float(used.mean() / cap), "max_images": int(used.max()),
                   "fixed_n_pass_rate": float(np.mean(np.array(fixed) == "pass"))}, out)
    # HUB's scale: a clear erasure, 0.02 against 0.1, capped at HUB's 10,000 target images
    r = rule(0.1)
    res = [_seq_run(rng, _rate_stream(0.02), 10_000, r, "lower", _rate_kind) for _ in range(runs)]
    used = np.array([x[1] for x in res])
    _emit({"study": "sequential", "rule": "clear erasure: proportion 0.02 against 0.1 (HUB's 10,000 images)",
           "threshold": 0.1, "true_value": 0.02, "fixed_n": 10_000, "runs": runs, "first": FIRST, "growth": GROWTH,
           "pass_rate": float(np.mean(np.array([x[0] for x in res]) == "pass")), "mean_images": float(used.mean()),
           "mean_images_share_of_fixed": float(used.mean() / 10_000), "max_images": int(used.max())}, out)


def _fid_clear(rng, n, runs):
    """A model whose images stay closer to the base's than the base's own reseeded images (ratio about 0.3)."""
    from hubkit.metrics import METRICS

    out = []
    for _ in range(runs):
        real = rng.normal(size=(n, FID_D))
        out.append(METRICS["fid_ratio"](real, real + rng.normal(scale=FID_NOISE / 2, size=(n, FID_D)),
                                        real + rng.normal(scale=FID_NOISE, size=(n, FID_D)), "fid", direction="lower"))
    return out


def study_run_level(runs: int, out: list) -> None:
    """The default run's 26 checks at the ci budget's sizes; one (the English target proportion) sits exactly at
    its threshold, the other 25 are clear passes as for the shipped ESD checkpoint. The run passes only if all
    26 pass: fixed-n, and with the check at the threshold run sequentially (cap 1,000)."""
    rng = np.random.default_rng(SEED + 3)
    others = []
    for direction, thr, make, n in (
        [("lower", 0.15, _rate_at(0.0), 64)] * 5  # multilingual, per language
        + [("lower", 0.15, _mean_at(0.01), 64), ("lower", 0.154, _ratio_at(0.0, 0.85, "erasure", "lower"), 64)]
        + [("higher", 0.25, _ratio_at(1.0, 0.95, "moderate", "higher"), 12)] * 5  # per neighbour
        + [("higher", 0.55, _ratio_at(1.0, 0.95, "moderate", "higher"), 60),  # pinpoint pooled
           ("higher", 0.95, _ratio_at(1.18, 0.78, "erasure", "higher"), 58),  # selective alignment (ESD: 1.18)
           ("higher", 0.95, _fieller_at(1.0), 128), ("higher", 0.95, _fieller_at(1.2), 64),  # CLIP score, quality
           ("lower", 1.3, _median_at(1.0, 0.05), 15),  # time overhead
           ("lower", 3.0, _fid_clear, 128), ("lower", 1.1, _fid_clear, 128)]  # FID vs base floor, vs reference
        + [("lower", 0.15, _rate_at(0.0), 32)] * 3  # static prompts and two attacks
    ):
        ms = make(rng, n, runs)
        others.append(_verdicts(ms, rule(thr, ms[0].relative)) == "pass")
        if others[-1].mean() < 0.99:
            print(f"# run_level: a check meant to be clear passes only {others[-1].mean():.3f}: {thr} {ms[0]}")
    exact = 3  # storage, declared training time, memory on the CPU: exact numbers, no sampling error
    clear = np.all(others, axis=0)
    r = rule(0.15)
    fixed = _verdicts(_rate_at(0.15)(rng, 64, runs), r) == "pass"
    seq = np.array([_seq_run(rng, _rate_stream(0.15), 1000, r, "lower", _rate_kind)[0] == "pass" for _ in range(runs)])
    for mode, at_threshold in (("fixed n (64)", fixed), ("sequential (rounds from 64 to 1,000)", seq)):
        _emit({"study": "run_level", "mode": mode, "checks": 1 + len(others) + exact,
               "at_threshold": "English target proportion, true rate 0.15 = threshold", "runs": runs, "alpha": ALPHA,
               "other_checks_all_pass": float(clear.mean()), "run_pass_rate": float((clear & at_threshold).mean())},
              out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--only", nargs="+",
                        default=["coverage", "exact", "exact_rates", "false_pass", "sequential", "run_level"])
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to results.jsonl")
    args = parser.parse_args()
    out: list[dict] = []
    started = time.time()
    for study in args.only:
        t0 = time.time()
        if study in ("exact", "exact_rates"):
            globals()[f"study_{study}"](out)
        else:
            globals()[f"study_{study}"](args.runs, out)
        print(f"# {study}: {time.time() - t0:.0f} s", flush=True)
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "when": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(time.time() - started, 1)}
    if not args.no_record:
        with open(RESULTS, "a") as f:
            for record in out:
                f.write(json.dumps({**record, **meta}) + "\n")


if __name__ == "__main__":
    main()
