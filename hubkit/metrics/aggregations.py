"""The built-in metrics: each turns per-sample values into one ``Measurement`` with its interval.

Every function takes the samples first, then ``name`` (what the report calls the number) and
``direction`` (which way is better; filled in by the measure that uses the metric, never by hand).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

from hubkit import stats
from hubkit.metrics.fid import fid_from_features, paired_ratio_interval
from hubkit.metrics.registry import METRICS
from hubkit.stats import Measurement


@METRICS.register("proportion")
def proportion(verdicts: Sequence, name: str, *, direction: str, judge: str = "", confidence: float = 0.95,
               details: dict | None = None) -> Measurement:
    """Share of "yes" among valid verdicts, Wilson interval; invalid verdicts are counted, not used."""
    return stats.proportion(verdicts, name, direction=direction, judge=judge, confidence=confidence, details=details)


@METRICS.register("paired_proportion_ratio")
def paired_proportion_ratio(unlearned: Sequence, base: Sequence, name: str, *, direction: str, judge: str = "",
                            confidence: float = 0.95) -> Measurement:
    """Rate of "yes" of the unlearned model / the base model's, over pairs with the same prompt and seed."""
    return stats.paired_proportion_ratio(unlearned, base, name, direction=direction, judge=judge,
                                         confidence=confidence)


@METRICS.register("paired_mean_ratio")
def paired_mean_ratio(unlearned: Sequence[float], base: Sequence[float], name: str, *, direction: str,
                      judge: str = "", confidence: float = 0.95) -> Measurement:
    """Mean score of the unlearned model / the base model's, over pairs (Fieller's interval)."""
    return stats.paired_mean_ratio(unlearned, base, name, direction=direction, judge=judge, confidence=confidence)


@METRICS.register("paired_mean_difference")
def paired_mean_difference(unlearned: Sequence[float], base: Sequence[float], name: str, *, direction: str,
                           judge: str = "", confidence: float = 0.95) -> Measurement:
    """Mean of per-pair differences unlearned - base (t interval): for signed scores, where a ratio means nothing
    (HUB's ImageReward)."""
    return stats.paired_mean_difference(unlearned, base, name, direction=direction, judge=judge, confidence=confidence)


@METRICS.register("mean_of_proportions")
def mean_of_proportions(groups: Mapping[str, Sequence], name: str, *, direction: str, judge: str = "",
                        confidence: float = 0.95) -> Measurement:
    """Equal-weight mean of each group's proportion (HUB's mean over languages).

    The interval is the Wilson interval of the pooled counts, widened to contain the mean: with equal n
    per group the mean is the pooled proportion and the interval is exact in form.
    """
    ks, ns, rates = [], [], {}
    for group, verdicts in groups.items():
        p = stats.proportion(verdicts, group, direction=direction, judge=judge, confidence=confidence)
        ks.append(p.k)
        ns.append(p.n)
        rates[group] = p.value
    m = stats.proportion_from_counts(sum(ks), sum(ns), name, direction=direction, judge=judge, confidence=confidence)
    valid = [r for r in rates.values() if not math.isnan(r)]
    if valid:
        m.value = sum(valid) / len(valid)
        m.low, m.high = min(m.low, m.value), max(m.high, m.value)
    m.details["per_group"] = rates
    return m


@METRICS.register("median_ratio")
def median_ratio(unlearned: Sequence[float], base: Sequence[float], name: str, *, direction: str, unit: str,
                 judge: str = "", confidence: float = 0.95) -> Measurement:
    """Median of per-round ratios unlearned / base, with the order-statistic interval of a median."""
    ratios = [u / b for u, b in zip(unlearned, base)]
    return stats.median_measurement(ratios, name, direction=direction, judge=judge, confidence=confidence, details={
        "rounds": f"{len(ratios)} interleaved rounds, one ratio each",
        "unlearned": statistics.median(unlearned), "base": statistics.median(base), "unit": unit})


@METRICS.register("fid_ratio")
def fid_ratio(real, fake, floor, name: str, *, direction: str, judge: str = "", resamples: int, seed: int = 0,
              confidence: float = 0.95, details: dict | None = None) -> Measurement:
    """FID(real, fake) / FID(real, floor), with a paired bootstrap interval over captions.

    ``real`` is feature rows or fixed statistics ``(mu, sigma)``; row i of every array comes from the same
    caption. Both FIDs go into the name (so the report's text shows them) and into ``details``.
    """
    fid, fid_floor = fid_from_features(real, fake), fid_from_features(real, floor)
    ratio = fid / fid_floor if fid_floor > 0 else math.inf
    low, high = paired_ratio_interval(real, fake, floor, resamples=resamples, seed=seed, confidence=confidence)
    return Measurement(f"{name} [{fid:.3g} / {fid_floor:.3g}]", ratio, min(low, ratio), max(high, ratio), len(fake),
                       direction=direction, judge=judge,
                       details={**(details or {}), "fid": fid, "fid_floor": fid_floor,
                                "interval": f"paired bootstrap over captions, {resamples} resamples"})


@METRICS.register("exact")
def exact(value: float, name: str, *, direction: str, interval: str = "exact", details: dict | None = None) -> Measurement:
    """A number known without sampling error (bytes on disk, a ratio of weight sizes, a declared cost)."""
    return Measurement(name, value, value, value, 1, direction=direction,
                       details={"interval": interval, **(details or {})})
