"""Statistics behind every verdict: intervals, paired comparisons with the base model, sample sizes.

HUB reports bare point estimates (reference §8): no intervals, no thresholds.  Here every number that a
test asserts on is a ``Measurement`` carrying its sample size and *its bounds as a function of the error
rate*: ``m.one_sided(alpha)`` gives the lower and the upper one-sided bound, each wrong with probability at
most ``alpha``, and ``m.interval(confidence)`` the equal-tailed two-sided interval built from the same
bounds.  ``hubkit_asserts`` decides a rule with the one-sided bound at the profile's ``alpha`` and shows the
two-sided interval at the profile's ``confidence`` (docs/statistics.md states the guarantees).

* ``clopper_pearson_bounds``: exact binomial bounds (never below their nominal level, at any n).
* ``proportion``: verdicts -> ``Measurement``; ``invalid`` verdicts leave the denominator and are counted.
* ``paired_proportion_ratio``: unlearned rate / base rate on the *same prompts and seeds* (Tang's score
  interval for paired proportions with a continuity correction).
* ``mean_of_proportions``: the equal-weight mean of several proportions (MOVER of exact bounds).
* ``paired_mean_difference`` / ``paired_mean_ratio`` / ``mean_measurement``: continuous scores (t, Fieller).
* ``median_measurement``: order-statistic bounds of a median (distribution-free).
* ``samples_needed``: how many more samples would make a bound clear a threshold.
* ``wilson_interval``: Wilson score interval, kept for the samples-needed projection of older callers.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

DIRECTIONS = ("lower", "higher")


@functools.lru_cache(maxsize=64)
def z_value(confidence: float = 0.95) -> float:
    """Two-sided normal quantile, e.g. 1.95996 for 0.95."""
    from scipy.stats import norm

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(norm.ppf(0.5 + confidence / 2))


def wilson_interval(k: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n``; ``(0.0, 1.0)`` when ``n == 0``.

    ``k`` may be fractional (used by ``samples_needed`` for projected counts).
    """
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    z = z_value(confidence)
    p = k / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    # exact boundary values (no float dust), and the estimate always inside
    if k == 0:
        low = 0.0
    if k == n:
        high = 1.0
    return min(low, p), max(high, p)


@functools.lru_cache(maxsize=256)
def z_one_sided(alpha: float) -> float:
    """Normal quantile of a one-sided bound at error rate ``alpha``, e.g. 1.64485 for 0.05."""
    from scipy.stats import norm

    _check_alpha(alpha)
    return float(norm.ppf(1 - alpha))


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha (one-sided error rate) must be in (0, 0.5), got {alpha}")


@functools.lru_cache(maxsize=100_000)
def clopper_pearson_bounds(k: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Clopper-Pearson) one-sided bounds for ``k`` successes out of ``n``: ``(lower, upper)``.

    Each bound is wrong with probability at most ``alpha`` for every true rate and every n (it inverts the
    binomial test), so a decision on it has its stated error rate without any large-sample argument; the
    pair at ``alpha = 0.025`` is the equal-tailed 95% interval. ``(0, 1)`` when ``n == 0``. ``k`` may be
    fractional (``samples_needed`` projects counts).
    """
    from scipy.stats import beta

    _check_alpha(alpha)
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    low = 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha, k + 1, n - k))
    p = k / n
    return min(low, p), max(high, p)


Bounds = Callable[[float], "tuple[float, float]"]


@dataclass
class Measurement:
    """One measured quantity with its bounds.

    ``value`` is the point estimate and ``[low, high]`` its equal-tailed ``confidence`` interval; ``n`` the
    number of samples behind it (valid verdicts, images, pairs), ``k`` the successes for a proportion (else
    None); ``direction`` says which way is better ("lower" for target proportion, "higher" for alignment);
    ``judge`` names what produced the verdicts; ``invalid`` counts samples left out of the denominator;
    ``details`` holds anything else worth reporting (base rate, method of the interval, examples...).

    ``bounds(alpha) -> (lower, upper)`` gives the one-sided bounds at any error rate (the verdict layer asks
    for its profile's ``alpha``); a measurement built by hand without it can only answer for
    ``alpha >= (1 - confidence) / 2``, with ``low`` / ``high``.
    """

    name: str
    value: float
    low: float
    high: float
    n: int
    k: int | None = None
    direction: str = "lower"
    judge: str = ""
    invalid: int = 0
    details: dict = field(default_factory=dict)
    confidence: float = 0.95
    bounds: Bounds | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.bounds is not None:
            self.low, self.high = self.interval(self.confidence)

    def one_sided(self, alpha: float) -> tuple[float, float]:
        """``(lower, upper)``: one-sided bounds, each wrong with probability at most ``alpha``."""
        _check_alpha(alpha)
        if self.bounds is not None:
            low, high = self.bounds(alpha)
            return float(low), float(high)
        if alpha < (1 - self.confidence) / 2 - 1e-12:
            raise ValueError(f"measurement {self.name!r} carries only its {self.confidence:.0%} interval, which "
                             f"gives one-sided bounds at alpha >= {(1 - self.confidence) / 2:g}, not {alpha:g}")
        return self.low, self.high

    def interval(self, confidence: float) -> tuple[float, float]:
        """The equal-tailed two-sided interval at ``confidence``: the one-sided bounds at ``(1 - confidence) / 2``."""
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence}")
        return self.one_sided(round((1 - confidence) / 2, 12))  # 0.025, not 0.025000000000000022

    @property
    def relative(self) -> str | None:
        """``"ratio"`` / ``"difference"`` when this measures the model against the base, else None."""
        return self.details.get("relative")

    def interval_str(self, digits: int = 3) -> str:
        def f(x):
            return f"{x:.{digits}f}" if math.isfinite(x) else ("inf" if x > 0 else "-inf") if not math.isnan(x) else "nan"
        return f"{f(self.value)} ({self.confidence:.0%} CI {f(self.low)}-{f(self.high)})"

    def counts_str(self) -> str:
        s = f"k={self.k}/n={self.n}" if self.k is not None else f"n={self.n}"
        if self.invalid:
            s += f" (+{self.invalid} invalid, excluded)"
        return s

    def __str__(self) -> str:
        judge = f", judge {self.judge}" if self.judge else ""
        return f"{self.name} = {self.interval_str()}, {self.counts_str()}{judge}"

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("details", "bounds")}
        d["details"] = {k: v for k, v in self.details.items() if _plain(v)}
        return d


def _plain(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool, list, tuple, dict))


# -- proportions --------------------------------------------------------------------------------------
def _label(v: Any) -> str:
    """Verdict, label string, bool or None -> "yes" / "no" / "invalid"."""
    if v is None:
        return "invalid"
    label = getattr(v, "label", v)
    if isinstance(label, (bool, np.bool_)):
        return "yes" if label else "no"
    if isinstance(label, (int, np.integer)) and label in (0, 1):
        return "yes" if label else "no"
    if isinstance(label, float):
        return "invalid" if math.isnan(label) else ("yes" if label >= 0.5 else "no")
    label = str(label).strip().lower()
    if label in ("yes", "no", "invalid"):
        return label
    raise ValueError(f"cannot read {v!r} as a verdict (want yes/no/invalid)")


def count_verdicts(verdicts: Iterable) -> tuple[int, int, int]:
    """``(yes, no, invalid)`` counts."""
    yes = no = invalid = 0
    for v in verdicts:
        lab = _label(v)
        if lab == "yes":
            yes += 1
        elif lab == "no":
            no += 1
        else:
            invalid += 1
    return yes, no, invalid


def proportion_from_counts(k: int, n: int, name: str = "proportion", *, invalid: int = 0, direction: str = "lower",
                           judge: str = "", confidence: float = 0.95, details: dict | None = None) -> Measurement:
    """``k`` of ``n``, with exact (Clopper-Pearson) bounds at any error rate."""
    k, n = int(k), int(n)
    value = k / n if n else math.nan
    return Measurement(name=name, value=value, low=0.0, high=1.0, n=n, k=k, direction=direction,
                       judge=judge, invalid=int(invalid),
                       details={"interval": "clopper-pearson", **(details or {})}, confidence=confidence,
                       bounds=functools.partial(_cp_bounds, k, n))


def _cp_bounds(k: int, n: int, alpha: float) -> tuple[float, float]:
    return clopper_pearson_bounds(k, n, alpha)


def proportion(verdicts: Iterable, name: str = "proportion", *, direction: str = "lower", judge: str = "",
               confidence: float = 0.95, details: dict | None = None) -> Measurement:
    """Share of "yes" among valid verdicts, with exact bounds; invalid ones are counted, not used.

    No valid verdict -> value NaN, interval [0, 1] (``hubkit_asserts`` calls that inconclusive).
    """
    yes, no, invalid = count_verdicts(verdicts)
    return proportion_from_counts(yes, yes + no, name, invalid=invalid, direction=direction, judge=judge,
                                  confidence=confidence, details=details)


# -- paired comparisons with the base model -----------------------------------------------------------
def paired_table(unlearned: Sequence, base: Sequence) -> tuple[int, int, int, int, int]:
    """``(n11, n10, n01, n00, dropped)``: 2x2 table of (unlearned yes?, base yes?) over complete pairs."""
    if len(unlearned) != len(base):
        raise ValueError(f"paired verdicts need equal lengths, got {len(unlearned)} and {len(base)}")
    n11 = n10 = n01 = n00 = dropped = 0
    for u, b in zip(unlearned, base):
        lu, lb = _label(u), _label(b)
        if lu == "invalid" or lb == "invalid":
            dropped += 1
        elif lu == "yes":
            n11, n10 = (n11 + 1, n10) if lb == "yes" else (n11, n10 + 1)
        else:
            n01, n00 = (n01 + 1, n00) if lb == "yes" else (n01, n00 + 1)
    return n11, n10, n01, n00, dropped


CONTINUITY = 0.5  # Tang's score numerator is moved half a count towards the null for each bound


def paired_proportion_ratio(unlearned: Sequence, base: Sequence, name: str = "relative proportion", *,
                            direction: str = "lower", judge: str = "", confidence: float = 0.95) -> Measurement:
    """Ratio of "yes" rates, unlearned / base, over pairs (same prompt and seed) where both are valid.

    Bounds: Tang's asymptotic score interval for the ratio of paired proportions (Tang, Tang & Chan 2003;
    recommended by Fagerland, Lydersen & Laake 2014), inverted separately for each one-sided bound, with a
    continuity correction of half a count. Why this:

    * it uses the pairing: images of the same prompt and seed from the two models are strongly
      correlated, and intervals for a ratio of *independent* proportions ignore that and come out wide;
    * the score statistic is studentised under the null (constrained maximum likelihood), so it stays
      sensible for tables with empty cells: with no unlearned "yes" the lower bound is 0 and the upper bound
      stays near the exact bound of 0/n over the base rate;
    * the continuity correction is what makes it valid at small n: the uncorrected score interval and the
      Jeffreys-Dirichlet interval used before covered 0.92 and 0.91 at n = 8-12, and one concordant pair
      gave a lower bound of 0.27. With the correction the coverage of the 95% interval is at least 0.957 at
      n = 8, 16, 32 and 64 over 366 paired designs, by exact enumeration of every table (benchmarks/bench_verdicts.py,
      docs/statistics.md).

    A base rate of 0 makes the ratio undefined: value inf (NaN if both are 0) and unbounded bounds.
    """
    n11, n10, n01, n00, dropped = paired_table(unlearned, base)
    return paired_ratio_from_table(n11, n10, n01, n00, name, direction=direction, judge=judge,
                                   confidence=confidence, invalid=dropped)


def paired_ratio_from_table(n11: int, n10: int, n01: int, n00: int, name: str = "relative proportion", *,
                            direction: str = "lower", judge: str = "", confidence: float = 0.95,
                            invalid: int = 0) -> Measurement:
    """``paired_proportion_ratio`` from the 2x2 table: both yes, only unlearned, only base, both no."""
    n11, n10, n01, n00 = int(n11), int(n10), int(n01), int(n00)
    n = n11 + n10 + n01 + n00
    k_u, k_b = n11 + n10, n11 + n01
    details = {"relative": "ratio", "relative_to": "base",
               "interval": "paired score (Tang), continuity-corrected",
               "table": {"both_yes": n11, "only_unlearned": n10, "only_base": n01, "both_no": n00},
               "unlearned_rate": k_u / n if n else math.nan, "base_rate": k_b / n if n else math.nan,
               "unlearned_yes": k_u, "base_yes": k_b}
    if n == 0 or k_b == 0:
        value = math.nan if k_u == 0 else math.inf
        return Measurement(name, value, 0.0, math.inf, n, k_u, direction, judge, invalid,
                           {**details, "note": "the base model never shows the concept on these pairs"},
                           confidence, bounds=_unbounded_ratio)
    return Measurement(name, k_u / k_b, 0.0, math.inf, n, k_u, direction, judge, invalid, details, confidence,
                       bounds=functools.partial(paired_ratio_bounds, n11, n10, n01, n00))


def _unbounded_ratio(alpha: float) -> tuple[float, float]:
    return 0.0, math.inf


def _tang_statistic(phi: float, n11: int, n10: int, n01: int, n: int, shift: float) -> float:
    """Tang's score statistic for "ratio = phi" with its numerator moved by ``shift`` (continuity correction)."""
    a = n * (1 + phi)
    b = (n11 + n01) * phi * phi - (n11 + n10 + 2 * n01)
    c = n01 * (1 - phi) * (n11 + n10 + n01) / n
    p01 = (-b + math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)  # constrained ML estimate of the "only base" cell
    var = n * (1 + phi) * p01 + (n11 + n10 + n01) * (phi - 1)
    num = n11 + n10 + shift - phi * (n11 + n01)
    if var <= 0:
        return math.copysign(math.inf, num) if num else 0.0
    return num / math.sqrt(var)


@functools.lru_cache(maxsize=200_000)
def paired_ratio_bounds(n11: int, n10: int, n01: int, n00: int, alpha: float) -> tuple[float, float]:
    """One-sided bounds ``(lower, upper)`` of the paired ratio at error rate ``alpha`` (see
    ``paired_proportion_ratio``): each solves Tang's statistic = +-z by bisection on log(ratio); the
    statistic decreases in the ratio, so the solution is unique."""
    z = z_one_sided(alpha)
    n = n11 + n10 + n01 + n00
    k_u, k_b = n11 + n10, n11 + n01
    if n == 0 or k_b == 0:
        return 0.0, math.inf
    value = k_u / k_b

    def solve(target: float, shift: float) -> float:
        lo, hi = -40.0, 40.0  # log(ratio)
        f = lambda x: _tang_statistic(math.exp(x), n11, n10, n01, n, shift) - target  # noqa: E731
        if f(lo) <= 0:
            return 0.0  # below the target even for a vanishing ratio
        if f(hi) > 0:
            return math.inf  # above it even for a huge ratio
        for _ in range(80):
            mid = (lo + hi) / 2
            if f(mid) > 0:
                lo = mid
            else:
                hi = mid
        return math.exp((lo + hi) / 2)

    low = 0.0 if k_u == 0 else solve(z, -CONTINUITY)
    high = solve(-z, CONTINUITY)
    return min(low, value), max(high, value)


def _finite_pairs(unlearned: Sequence[float], base: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    a = np.asarray(unlearned, dtype=float)
    b = np.asarray(base, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores need equal 1-D lengths, got {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok], int((~ok).sum())


@functools.lru_cache(maxsize=4096)
def _t_one_sided(alpha: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(1 - alpha, df))


def _t_bounds(mean: float, se: float, df: int, alpha: float) -> tuple[float, float]:
    half = _t_one_sided(alpha, df) * se
    return mean - half, mean + half


def _unbounded(alpha: float) -> tuple[float, float]:
    return -math.inf, math.inf


def mean_measurement(values: Sequence[float], name: str = "mean", *, direction: str = "higher", judge: str = "",
                     confidence: float = 0.95, details: dict | None = None) -> Measurement:
    """Mean of finite ``values`` with Student-t bounds (NaN values are counted as invalid)."""
    x = np.asarray(list(values), dtype=float)
    ok = np.isfinite(x)
    x, invalid = x[ok], int((~ok).sum())
    n = len(x)
    if n == 0:
        return Measurement(name, math.nan, -math.inf, math.inf, 0, None, direction, judge, invalid,
                           {"interval": "t", **(details or {})}, confidence, bounds=_unbounded)
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    bounds = _unbounded if n == 1 else functools.partial(_t_bounds, mean, sd / math.sqrt(n), n - 1)
    return Measurement(name, mean, -math.inf, math.inf, n, None, direction, judge, invalid,
                       {"interval": "t", "sd": sd, **(details or {})}, confidence, bounds=bounds)


def paired_mean_difference(unlearned: Sequence[float], base: Sequence[float], name: str = "difference", *,
                           direction: str = "higher", judge: str = "", confidence: float = 0.95) -> Measurement:
    """Mean of ``unlearned - base`` over complete pairs, with paired t bounds."""
    a, b, dropped = _finite_pairs(unlearned, base)
    m = mean_measurement(a - b, name, direction=direction, judge=judge, confidence=confidence)
    m.invalid = dropped
    m.details.update({"relative": "difference", "relative_to": "base", "interval": "paired t",
                      "unlearned_mean": float(a.mean()) if len(a) else math.nan,
                      "base_mean": float(b.mean()) if len(b) else math.nan})
    return m


def _fieller_bounds(ma: float, mb: float, vaa: float, vbb: float, vab: float, df: int,
                    alpha: float) -> tuple[float, float]:
    """Fieller's bounds for ma / mb at one-sided error rate ``alpha`` (unbounded when mb is not clear of 0)."""
    t2 = _t_one_sided(alpha, df) ** 2
    qa, qb, qc = mb * mb - t2 * vbb, ma * mb - t2 * vab, ma * ma - t2 * vaa
    disc = qb * qb - qa * qc
    if qa <= 0 or disc < 0:
        return -math.inf, math.inf
    r = math.sqrt(disc)
    value = ma / mb
    return min((qb - r) / qa, value), max((qb + r) / qa, value)


def paired_mean_ratio(unlearned: Sequence[float], base: Sequence[float], name: str = "relative mean", *,
                      direction: str = "higher", judge: str = "", confidence: float = 0.95) -> Measurement:
    """``mean(unlearned) / mean(base)`` over complete pairs, with Fieller's bounds for paired data.

    Fieller's interval accounts for the covariance of the two means (same prompts and seeds); it is
    unbounded when the base mean is not clearly away from 0 -- a ratio is only meaningful for a score
    that is positive (CLIP score, quality), use ``paired_mean_difference`` for signed scores.
    """
    a, b, dropped = _finite_pairs(unlearned, base)
    n = len(a)
    details = {"relative": "ratio", "relative_to": "base", "interval": "Fieller (paired)"}
    if n < 2 or b.mean() == 0:
        value = float(a.mean() / b.mean()) if n and b.mean() != 0 else math.nan
        return Measurement(name, value, -math.inf, math.inf, n, None, direction, judge, dropped, details, confidence,
                           bounds=_unbounded)
    ma, mb = float(a.mean()), float(b.mean())
    cov = np.cov(np.vstack([a, b]), ddof=1) / n
    bounds = functools.partial(_fieller_bounds, ma, mb, float(cov[0, 0]), float(cov[1, 1]), float(cov[0, 1]), n - 1)
    details.update({"unlearned_mean": ma, "base_mean": mb})
    m = Measurement(name, ma / mb, -math.inf, math.inf, n, None, direction, judge, dropped, details, confidence,
                    bounds=bounds)
    if math.isinf(m.low):
        m.details["note"] = "base mean not clearly away from 0: the ratio's interval is unbounded"
    return m


@functools.lru_cache(maxsize=1024)
def order_statistic_rank(n: int, alpha: float) -> int | None:
    """The largest j with P(Binomial(n, 1/2) <= j - 1) <= alpha: the j-th smallest of n values is a lower
    bound of their median, wrong with probability at most ``alpha`` (the (n + 1 - j)-th an upper bound).
    None when n is too small for any bound at ``alpha``."""
    from scipy.stats import binom

    j = None
    for cand in range(1, n // 2 + 2):
        if binom.cdf(cand - 1, n, 0.5) <= alpha:
            j = cand
        else:
            break
    return j


def _median_bounds(xs: tuple[float, ...], alpha: float) -> tuple[float, float]:
    j = order_statistic_rank(len(xs), alpha)
    if j is None:
        return -math.inf, math.inf
    value = float(np.median(xs))
    return min(xs[j - 1], value), max(xs[len(xs) - j], value)


def median_measurement(values: Sequence[float], name: str = "median", *, direction: str = "lower", judge: str = "",
                       confidence: float = 0.95, details: dict | None = None) -> Measurement:
    """Median of finite ``values`` with distribution-free order-statistic bounds.

    For timings: one round slowed by another process moves a mean and a min-max range, but moves
    these bounds only once more than a few rounds are slowed (with 15 rounds the 95% interval and the
    one-sided 95% bounds both rest on the 4th and 12th smallest). Fewer than 6 values cannot give a 95%
    interval (nor fewer than 5 a one-sided 95% bound); it is then unbounded.
    """
    x = np.asarray(list(values), dtype=float)
    ok = np.isfinite(x)
    x, invalid = x[ok], int((~ok).sum())
    info = {"interval": "order statistics (distribution-free)", **(details or {})}
    if len(x) == 0:
        return Measurement(name, math.nan, -math.inf, math.inf, 0, None, direction, judge, invalid, info, confidence,
                           bounds=_unbounded)
    xs = tuple(float(v) for v in np.sort(x))
    return Measurement(name, float(np.median(x)), -math.inf, math.inf, len(x), None, direction, judge, invalid, info,
                       confidence, bounds=functools.partial(_median_bounds, xs))


# -- the mean of several proportions -------------------------------------------------------------------
def _mover_bounds(counts: tuple[tuple[int, int], ...], alpha: float) -> tuple[float, float]:
    rates = [k / n for k, n in counts]
    mean = sum(rates) / len(rates)
    below = above = 0.0
    for (k, n), p in zip(counts, rates):
        low, high = clopper_pearson_bounds(k, n, alpha)
        below += (p - low) ** 2
        above += (high - p) ** 2
    w = 1 / len(counts)
    return max(0.0, mean - w * math.sqrt(below)), min(1.0, mean + w * math.sqrt(above))


def mean_of_proportions(counts: Mapping[str, tuple[int, int]], name: str = "mean of proportions", *,
                        direction: str = "lower", judge: str = "", confidence: float = 0.95,
                        invalid: int = 0) -> Measurement:
    """Equal-weight mean of several proportions ``{group: (k, n)}`` (HUB's mean over languages).

    Bounds by MOVER (Zou & Donner 2008; Newcombe's square-and-add for a sum): each group's exact bound
    moves the mean by its own distance, weighted by 1/groups, and the distances add in quadrature. The
    bounds therefore belong to the statistic reported (the unweighted mean), also when the groups have
    different n, and contain it by construction. Groups without a valid verdict are left out of the mean.
    """
    used = {g: (int(k), int(n)) for g, (k, n) in counts.items() if n > 0}
    rates = {g: (k / n if n else math.nan) for g, (k, n) in counts.items()}
    k_all, n_all = sum(k for k, _ in used.values()), sum(n for _, n in used.values())
    details = {"interval": "MOVER of exact bounds (equal-weight mean)", "per_group": rates,
               "counts": {g: [int(k), int(n)] for g, (k, n) in counts.items()}, "groups": len(used)}
    if not used:
        return Measurement(name, math.nan, 0.0, 1.0, 0, 0, direction, judge, invalid, details, confidence,
                           bounds=lambda alpha: (0.0, 1.0))
    value = sum(k / n for k, n in used.values()) / len(used)
    return Measurement(name, value, 0.0, 1.0, n_all, k_all, direction, judge, invalid, details, confidence,
                       bounds=functools.partial(_mover_bounds, tuple(used.values())))


# -- how many more samples? ---------------------------------------------------------------------------
def samples_needed(k: int, n: int, threshold: float, alpha: float = 0.05, max_n: int = 10**9) -> int | None:
    """Extra samples after which the exact one-sided bound at ``alpha`` would clear ``threshold``, if the
    rate stays ``k/n`` (the upper bound below it for a rate under the threshold, the lower bound above it
    for a rate over it).

    0 when it already does; None when it never would (rate equal to the threshold, or no data).
    """
    if n <= 0:
        return None
    p = k / n
    if p == threshold:
        return None

    def decided(m: float) -> bool:
        low, high = clopper_pearson_bounds(p * m, m, alpha)
        return high < threshold if p < threshold else low > threshold

    if decided(n):
        return 0
    hi = n
    while not decided(hi):
        hi *= 2
        if hi > max_n:
            return None
    lo = hi // 2 if hi > n else n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if decided(mid):
            hi = mid
        else:
            lo = mid
    return int(hi - n)


def samples_needed_for(m: Measurement, threshold: float, alpha: float = 0.05) -> int | None:
    """``samples_needed`` for any measurement: exact for a plain proportion, otherwise from the distance
    of the deciding one-sided bound to the estimate, scaling as 1/sqrt(n)."""
    if m.n <= 0 or not math.isfinite(m.value):
        return None
    if m.k is not None and not m.relative and m.details.get("interval") == "clopper-pearson":
        return samples_needed(m.k, m.n, threshold, alpha)
    gap = abs(m.value - threshold)
    if gap == 0:
        return None
    low, high = m.one_sided(alpha)
    half = (high - m.value) if threshold > m.value else (m.value - low)
    if not math.isfinite(half):
        return None
    if half < gap:
        return 0
    total = math.ceil(m.n * (half / gap) ** 2 * 1.0001)
    return max(0, total - m.n)
