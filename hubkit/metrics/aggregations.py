"""The built-in metrics: each turns per-sample values into one ``Measurement`` with its interval.

Every function takes the samples first, then ``name`` (what the report calls the number) and
``direction`` (which way is better; filled in by the measure that uses the metric, never by hand).
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Mapping, Sequence


from hubkit import stats
from hubkit.metrics.fid import JACKKNIFE_GROUPS, fid_from_features, jackknife_log_ratio, jackknife_ratio_bounds
from hubkit.metrics.registry import METRICS
from hubkit.stats import Measurement


@METRICS.register("proportion")
def proportion(verdicts: Sequence, name: str, *, direction: str, judge: str = "", confidence: float = 0.95,
               details: dict | None = None) -> Measurement:
    """Share of "yes" among valid verdicts, exact (Clopper-Pearson) bounds; invalid verdicts are counted, not used."""
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

    Its bounds are those of that mean (MOVER of each group's exact bounds, ``hubkit.stats.mean_of_proportions``),
    not of the pooled counts: with unequal n per group the two statistics differ.
    """
    counts, invalid = {}, 0
    for group, verdicts in groups.items():
        yes, no, bad = stats.count_verdicts(verdicts)
        counts[group] = (yes, yes + no)
        invalid += bad
    return stats.mean_of_proportions(counts, name, direction=direction, judge=judge, confidence=confidence,
                                     invalid=invalid)


@METRICS.register("median_ratio")
def median_ratio(unlearned: Sequence[float], base: Sequence[float], name: str, *, direction: str, unit: str,
                 judge: str = "", confidence: float = 0.95) -> Measurement:
    """Median of per-round ratios unlearned / base, with the order-statistic interval of a median."""
    ratios = [u / b for u, b in zip(unlearned, base)]
    return stats.median_measurement(ratios, name, direction=direction, judge=judge, confidence=confidence, details={
        "rounds": f"{len(ratios)} interleaved rounds, one ratio each",
        "unlearned": statistics.median(unlearned), "base": statistics.median(base), "unit": unit})


@METRICS.register("fid_ratio")
def fid_ratio(real, fake, floor, name: str, *, direction: str, judge: str = "", groups: int = JACKKNIFE_GROUPS,
              confidence: float = 0.95, details: dict | None = None) -> Measurement:
    """FID(real, fake) / FID(real, floor), with grouped-jackknife bounds over captions (log scale, t quantiles).

    ``real`` is feature rows or fixed statistics ``(mu, sigma)``; row i of every array comes from the same
    caption. Both FIDs go into the name (so the report's text shows them) and into ``details``. The bounds
    contain the estimate by construction (``hubkit.metrics.fid.jackknife_log_ratio`` says why not a bootstrap).
    """
    fid, fid_floor = fid_from_features(real, fake), fid_from_features(real, floor)
    ratio, se, used = jackknife_log_ratio(real, fake, floor, groups=groups)
    return Measurement(f"{name} [{fid:.3g} / {fid_floor:.3g}]", ratio, ratio, ratio, len(fake),
                       direction=direction, judge=judge,
                       details={**(details or {}), "fid": fid, "fid_floor": fid_floor,
                                "interval": f"grouped jackknife over captions ({used} groups, log scale, t)",
                                "log_se": se},
                       confidence=confidence, bounds=functools.partial(jackknife_ratio_bounds, ratio, se, used))


@METRICS.register("exact")
def exact(value: float, name: str, *, direction: str, interval: str = "exact", details: dict | None = None) -> Measurement:
    """A number known without sampling error (bytes on disk, a ratio of weight sizes, a declared cost)."""
    return Measurement(name, value, value, value, 1, direction=direction,
                       details={"interval": interval, **(details or {})}, bounds=lambda alpha: (value, value))
