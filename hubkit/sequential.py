"""Anytime-valid bounds for deciding with the fewest images: confidence sequences by betting.

A fixed-n bound is valid for the one n it was computed at; looking at it after every round of images and
stopping when it clears the threshold would multiply its error rate. A *confidence sequence* is valid at
every n at once (Ville's inequality), so a check may look after each round and stop as soon as its verdict
is decided, and a model sitting at the threshold still passes with probability at most alpha.

Construction (testing by betting: Waudby-Smith & Ramdas 2023; mixture martingales: Howard et al. 2021).
For a paired 2x2 table of (unlearned yes?, base yes?) and a candidate ratio ``theta``, each pair gives
``Z = U - theta * B``, whose mean is >= 0 exactly when the true ratio is >= theta. Betting a fraction
``lambda`` of one's wealth on the sign of ``Z`` at every pair gives a wealth ``prod(1 + lambda * Z_i)``
that is a nonnegative supermartingale while the hypothesis holds, so it exceeds ``1/alpha`` with
probability at most alpha, ever. The wealth used here is the average over a fixed grid of constant bets
(a discrete mixture martingale): it needs no tuning, it grows at nearly the rate of the best constant bet
in hindsight, it is monotone in ``theta`` (so the bound is found by bisection and every ratio beyond it is
rejected), and it depends only on the counts of the table, not on the order of the pairs. A rate ``k/n``
is the same construction with a base that always says yes.

``anytime(m)`` turns a proportion, paired ratio or mean-of-proportions ``Measurement`` into the same
measurement with confidence-sequence bounds; ``rounds`` and ``until_decided`` drive the sequential
procedure (``--budget auto``, ``hubkit.budgets``). docs/statistics.md states the guarantees.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from hubkit.stats import Measurement

#: the constant bets averaged by the mixture: 0.95 * 2**(-k/2), k = 0..17 (about 0.95 down to 0.0019)
BETS = tuple(0.95 * 2 ** (-k / 2) for k in range(18))
_G = np.array(BETS)
_LOG_G = math.log(len(BETS))
INTERVAL = "anytime-valid confidence sequence (mixture of constant bets)"


def _log_wealth(terms: list[tuple[int, np.ndarray]]) -> float:
    """log of the mixture's mean wealth, from (count, factor per bet) pairs; empty cells contribute nothing."""
    total = np.zeros_like(_G)
    for count, factor in terms:
        if count:
            with np.errstate(divide="ignore", invalid="ignore"):
                total = total + count * np.where(factor > 0, np.log(np.maximum(factor, 1e-300)), -np.inf)
    top = float(total.max())
    if top == -math.inf:
        return -math.inf
    return top + math.log(float(np.exp(total - top).sum())) - _LOG_G


def log_wealth_above(table: tuple[int, int, int, int], theta: float) -> float:
    """Log wealth against "ratio <= theta" (evidence that the ratio is above ``theta``).

    Bets ``lambda = g / theta`` on ``Z = U - theta B`` (``Z >= -theta``, so every factor stays positive)."""
    n11, n10, n01, _ = table
    return _log_wealth([(n11, 1 + _G * (1 - theta) / theta), (n10, 1 + _G / theta), (n01, 1 - _G)])


def log_wealth_below(table: tuple[int, int, int, int], theta: float, paired: bool) -> float:
    """Log wealth against "ratio >= theta" (evidence that the ratio is below ``theta``).

    Bets ``lambda = g / s`` on ``theta B - U``, where ``s`` is the largest loss per unit bet: 1 when a pair can
    have the unlearned model alone saying yes (``paired``), ``1 - theta`` for a plain rate (base always yes)."""
    n11, n10, n01, _ = table
    s = 1.0 if paired else 1.0 - theta
    if s <= 0:
        return -math.inf
    return _log_wealth([(n11, 1 + _G * (theta - 1) / s), (n10, 1 - _G / s), (n01, 1 + _G * theta / s)])


@functools.lru_cache(maxsize=100_000)
def ratio_sequence_bounds(table: tuple[int, int, int, int], alpha: float, paired: bool = True) -> tuple[float, float]:
    """Confidence-sequence bounds ``(lower, upper)`` at error rate ``alpha`` for the ratio of a paired table
    ``(both yes, only unlearned, only base, both no)``; for a rate (``paired=False``) pass ``(k, 0, n - k, 0)``.

    Each bound is wrong at *any* n (including a data-dependent stopping time) with probability at most alpha.
    """
    n11, n10, n01, _ = table
    k_u, k_b = n11 + n10, n11 + n01
    top = math.inf if paired else 1.0
    if k_b == 0:
        return 0.0, top
    value = k_u / k_b
    threshold = math.log(1 / alpha)
    lo_edge, hi_edge = (-25.0, 12.0) if paired else (-25.0, math.log(1 - 1e-12))

    # lower: the largest theta still rejected ("ratio <= theta" refuted); wealth falls as theta grows
    if k_u == 0 or log_wealth_above(table, math.exp(lo_edge)) < threshold:
        lower = 0.0
    else:
        lo, hi = lo_edge, math.log(value) if value > 0 else lo_edge
        for _ in range(48):
            mid = (lo + hi) / 2
            if log_wealth_above(table, math.exp(mid)) >= threshold:
                lo = mid
            else:
                hi = mid
        lower = math.exp(lo)
    # upper: the smallest theta rejected ("ratio >= theta" refuted); wealth grows with theta
    if log_wealth_below(table, math.exp(hi_edge), paired) < threshold:
        upper = top
    else:
        lo, hi = math.log(value) if value > 0 else lo_edge, hi_edge
        for _ in range(48):
            mid = (lo + hi) / 2
            if log_wealth_below(table, math.exp(mid), paired) >= threshold:
                hi = mid
            else:
                lo = mid
        upper = math.exp(hi)
    return min(lower, value), max(upper, value)


def rate_sequence_bounds(k: int, n: int, alpha: float) -> tuple[float, float]:
    """Confidence-sequence bounds for a rate of ``k`` in ``n``."""
    if n == 0:
        return 0.0, 1.0
    return ratio_sequence_bounds((int(k), 0, int(n - k), 0), alpha, paired=False)


def _mean_sequence_bounds(counts: tuple[tuple[int, int], ...], alpha: float) -> tuple[float, float]:
    """Bonferroni over the groups: each group's rate bounds at alpha / groups, averaged."""
    parts = [rate_sequence_bounds(k, n, alpha / len(counts)) for k, n in counts]
    return (sum(p[0] for p in parts) / len(parts), sum(p[1] for p in parts) / len(parts))


def anytime(m: Measurement) -> Measurement | None:
    """``m`` with confidence-sequence bounds instead of its fixed-n ones, or None when its kind has no
    sequential form (means of scores, FID, medians, exact numbers): those are measured once."""
    kind = m.details.get("interval", "")
    if kind == INTERVAL:
        return m
    if m.details.get("relative") == "ratio" and "table" in m.details:
        t = m.details["table"]
        table = (t["both_yes"], t["only_unlearned"], t["only_base"], t["both_no"])
        bounds = functools.partial(_ratio_bounds_fn, table)
    elif kind == "clopper-pearson" and m.k is not None and not m.relative:
        bounds = functools.partial(_rate_bounds_fn, m.k, m.n)
    elif "counts" in m.details and kind.startswith("MOVER"):
        counts = tuple((int(k), int(n)) for k, n in m.details["counts"].values() if n > 0)
        if not counts:
            return None
        bounds = functools.partial(_mean_sequence_bounds, counts)
    else:
        return None
    out = copy.copy(m)
    out.details = {**m.details, "interval": INTERVAL, "fixed_n_interval": kind}
    out.bounds = bounds
    out.low, out.high = out.interval(out.confidence)
    return out


def _ratio_bounds_fn(table, alpha):
    return ratio_sequence_bounds(table, alpha, True)


def _rate_bounds_fn(k, n, alpha):
    return rate_sequence_bounds(k, n, alpha)


# -- the sequential procedure --------------------------------------------------------------------------
def schedule(first: int, cap: int, growth: float) -> list[int]:
    """Sample sizes of successive rounds: ``first``, then times ``growth`` (rounded up), ending at ``cap``."""
    if first <= 0 or cap <= 0:
        return [max(0, min(first, cap))]
    if growth <= 1:
        raise ValueError(f"growth must be > 1, got {growth}")
    sizes, n = [], float(min(first, cap))
    while int(math.ceil(n)) < cap:
        sizes.append(int(math.ceil(n)))
        n *= growth
    sizes.append(cap)
    return sizes


def until_decided(measure: Callable[[int], Any], decided: Callable[[Any], bool], rounds: int, *,
                  to_anytime: Callable[[Any], Any | None], size: Callable[[Any], int]) -> tuple[Any, int, bool]:
    """Run one check in rounds and stop as soon as it is decided. Returns ``(result, round, sequential)``.

    ``measure(r)`` measures the check with round r's sample sizes (the same images as every earlier round, and
    more); ``to_anytime(result)`` gives the result with confidence-sequence bounds, or None for a kind that has
    none; ``size(result)`` its sample size; ``decided(result)`` whether its verdict is pass or fail.

    A kind without a sequential form, or a check whose sample size does not grow from round 0 to round 1 (its
    budget is not one that grows), is measured once at a fixed n and keeps its fixed-n bounds: one look needs
    no confidence sequence. Otherwise every round is judged on its confidence-sequence bounds until one is
    decided or the sample stops growing (the cap: HUB's full counts), so no round's verdict can be wrong more
    often than alpha however many rounds are looked at.
    """
    first = measure(0)
    if rounds <= 1 or to_anytime(first) is None:
        return first, 0, False
    second = measure(1)
    if size(second) == size(first):
        return first, 0, False
    last = None
    for r in range(rounds):
        raw = first if r == 0 else second if r == 1 else measure(r)
        result = to_anytime(raw)
        n = size(result)
        if decided(result) or n == last or r == rounds - 1:
            return result, r, True
        last = n
    raise AssertionError("unreachable")  # pragma: no cover
