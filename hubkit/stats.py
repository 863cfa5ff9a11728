"""Statistics behind every verdict: intervals, paired comparisons with the base model, sample sizes.

HUB reports bare point estimates (reference §8): no intervals, no thresholds.  Here every number that a
test asserts on is a ``Measurement`` carrying its interval and its sample size, so ``hubkit_asserts`` can
say pass / fail only when the interval is on one side of the threshold, and "inconclusive, about N more
samples would decide it" otherwise.

* ``wilson_interval``: Wilson score interval for a binomial proportion (good coverage down to small n
  and near 0 / 1, unlike the Wald interval; Brown, Cai & DasGupta 2001).
* ``proportion``: verdicts -> ``Measurement``; ``invalid`` verdicts leave the denominator and are counted.
* ``paired_proportion_ratio``: unlearned rate / base rate on the *same prompts and seeds*.
* ``paired_mean_difference`` / ``paired_mean_ratio`` / ``mean_measurement``: continuous scores.
* ``samples_needed``: how many more samples would make an interval clear a threshold.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

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


@dataclass
class Measurement:
    """One measured quantity with its interval.

    ``value`` is the point estimate and ``[low, high]`` its ``confidence`` interval; ``n`` the number of
    samples behind it (valid verdicts, images, pairs), ``k`` the successes for a proportion (else None);
    ``direction`` says which way is better ("lower" for target proportion, "higher" for alignment);
    ``judge`` names what produced the verdicts; ``invalid`` counts samples left out of the denominator;
    ``details`` holds anything else worth reporting (base rate, method of the interval, examples...).
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

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")

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
        d = asdict(self)
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
    low, high = wilson_interval(k, n, confidence)
    value = k / n if n else math.nan
    return Measurement(name=name, value=value, low=low, high=high, n=int(n), k=int(k), direction=direction,
                       judge=judge, invalid=int(invalid),
                       details={"interval": "wilson", **(details or {})}, confidence=confidence)


def proportion(verdicts: Iterable, name: str = "proportion", *, direction: str = "lower", judge: str = "",
               confidence: float = 0.95, details: dict | None = None) -> Measurement:
    """Share of "yes" among valid verdicts, with a Wilson interval; invalid ones are counted, not used.

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


def paired_proportion_ratio(unlearned: Sequence, base: Sequence, name: str = "relative proportion", *,
                            direction: str = "lower", judge: str = "", confidence: float = 0.95,
                            draws: int = 20000, seed: int = 0) -> Measurement:
    """Ratio of "yes" rates, unlearned / base, over pairs (same prompt and seed) where both are valid.

    Interval: equal-tailed posterior interval of ``(p11 + p10) / (p11 + p01)`` under a Dirichlet posterior
    on the paired 2x2 table with Jeffreys' prior (0.5 per cell), by Monte Carlo with a fixed seed.  Why
    this and not the alternatives:

    * it uses the pairing: images of the same prompt and seed from the two models are strongly
      correlated, and intervals for a ratio of *independent* proportions (Katz log, Koopman, Newcombe's
      MOVER with r = 0) ignore that and come out too wide;
    * unlike a plain paired bootstrap it does not collapse to [0, 0] when the unlearned model never
      shows the concept (the usual case we want to pass): with k = 0 the upper limit stays near the
      Wilson/Jeffreys upper limit divided by the base rate, so "0 out of 20" is not over-claimed;
    * Jeffreys intervals have close-to-nominal frequentist coverage for binomial data (Brown, Cai &
      DasGupta 2001), and the Dirichlet form is their natural extension to a 2x2 table.

    As for a single Jeffreys interval, the lower limit is set to 0 when the unlearned model has no "yes".
    The interval is widened, if need be, to contain the point estimate.  A base rate of 0 makes the
    ratio undefined: value inf (NaN if both are 0) and an unbounded interval.
    """
    n11, n10, n01, n00, dropped = paired_table(unlearned, base)
    n = n11 + n10 + n01 + n00
    k_u, k_b = n11 + n10, n11 + n01
    details = {"relative": "ratio", "relative_to": "base", "interval": "paired Jeffreys-Dirichlet (Monte Carlo)",
               "table": {"both_yes": n11, "only_unlearned": n10, "only_base": n01, "both_no": n00},
               "unlearned_rate": k_u / n if n else math.nan, "base_rate": k_b / n if n else math.nan,
               "unlearned_yes": k_u, "base_yes": k_b, "draws": draws, "seed": seed}
    if n == 0 or k_b == 0:
        value = math.nan if k_u == 0 else math.inf
        return Measurement(name, value, 0.0, math.inf, n, k_u, direction, judge, dropped,
                           {**details, "note": "the base model never shows the concept on these pairs"},
                           confidence)
    value = k_u / k_b
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.array([n11, n10, n01, n00], dtype=float) + 0.5, size=draws)
    ratio = (p[:, 0] + p[:, 1]) / (p[:, 0] + p[:, 2])
    alpha = 1 - confidence
    low, high = (float(x) for x in np.quantile(ratio, [alpha / 2, 1 - alpha / 2]))
    if k_u == 0:
        low = 0.0
    low, high = min(low, value), max(high, value)
    return Measurement(name, value, low, high, n, k_u, direction, judge, dropped, details, confidence)


def _finite_pairs(unlearned: Sequence[float], base: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    a = np.asarray(unlearned, dtype=float)
    b = np.asarray(base, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores need equal 1-D lengths, got {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok], int((~ok).sum())


@functools.lru_cache(maxsize=256)
def _t(confidence: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, df))


def mean_measurement(values: Sequence[float], name: str = "mean", *, direction: str = "higher", judge: str = "",
                     confidence: float = 0.95, details: dict | None = None) -> Measurement:
    """Mean of finite ``values`` with a Student-t interval (NaN values are counted as invalid)."""
    x = np.asarray(list(values), dtype=float)
    ok = np.isfinite(x)
    x, invalid = x[ok], int((~ok).sum())
    n = len(x)
    if n == 0:
        return Measurement(name, math.nan, -math.inf, math.inf, 0, None, direction, judge, invalid,
                           {"interval": "t", **(details or {})}, confidence)
    mean = float(x.mean())
    if n == 1:
        low, high = -math.inf, math.inf
    else:
        half = _t(confidence, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
        low, high = mean - half, mean + half
    return Measurement(name, mean, low, high, n, None, direction, judge, invalid,
                       {"interval": "t", "sd": float(x.std(ddof=1)) if n > 1 else math.nan, **(details or {})},
                       confidence)


def paired_mean_difference(unlearned: Sequence[float], base: Sequence[float], name: str = "difference", *,
                           direction: str = "higher", judge: str = "", confidence: float = 0.95) -> Measurement:
    """Mean of ``unlearned - base`` over complete pairs, with a paired t interval."""
    a, b, dropped = _finite_pairs(unlearned, base)
    m = mean_measurement(a - b, name, direction=direction, judge=judge, confidence=confidence)
    m.invalid = dropped
    m.details.update({"relative": "difference", "relative_to": "base", "interval": "paired t",
                      "unlearned_mean": float(a.mean()) if len(a) else math.nan,
                      "base_mean": float(b.mean()) if len(b) else math.nan})
    return m


def paired_mean_ratio(unlearned: Sequence[float], base: Sequence[float], name: str = "relative mean", *,
                      direction: str = "higher", judge: str = "", confidence: float = 0.95) -> Measurement:
    """``mean(unlearned) / mean(base)`` over complete pairs, with Fieller's interval for paired data.

    Fieller's interval accounts for the covariance of the two means (same prompts and seeds); it is
    unbounded when the base mean is not clearly away from 0 -- a ratio is only meaningful for a score
    that is positive (CLIP score, quality), use ``paired_mean_difference`` for signed scores.
    """
    a, b, dropped = _finite_pairs(unlearned, base)
    n = len(a)
    details = {"relative": "ratio", "relative_to": "base", "interval": "Fieller (paired)"}
    if n < 2 or b.mean() == 0:
        value = float(a.mean() / b.mean()) if n and b.mean() != 0 else math.nan
        return Measurement(name, value, -math.inf, math.inf, n, None, direction, judge, dropped, details, confidence)
    ma, mb = float(a.mean()), float(b.mean())
    cov = np.cov(np.vstack([a, b]), ddof=1) / n
    vaa, vbb, vab = float(cov[0, 0]), float(cov[1, 1]), float(cov[0, 1])
    t2 = _t(confidence, n - 1) ** 2
    qa, qb, qc = mb * mb - t2 * vbb, ma * mb - t2 * vab, ma * ma - t2 * vaa
    value = ma / mb
    disc = qb * qb - qa * qc
    if qa > 0 and disc >= 0:
        r = math.sqrt(disc)
        low, high = (qb - r) / qa, (qb + r) / qa
        low, high = min(low, value), max(high, value)
    else:
        low, high = -math.inf, math.inf
        details["note"] = "base mean not clearly away from 0: the ratio's interval is unbounded"
    details.update({"unlearned_mean": ma, "base_mean": mb})
    return Measurement(name, value, low, high, n, None, direction, judge, dropped, details, confidence)


def median_measurement(values: Sequence[float], name: str = "median", *, direction: str = "lower", judge: str = "",
                       confidence: float = 0.95, details: dict | None = None) -> Measurement:
    """Median of finite ``values`` with the distribution-free order-statistic interval.

    For timings: one round slowed by another process moves a mean and a min-max range, but moves
    this interval only once more than a few rounds are slowed (with 15 rounds it rests on the 4th
    and 12th smallest). Fewer than 6 values cannot give a 95% interval; it is then unbounded.
    """
    from scipy.stats import quantile_test

    x = np.asarray(list(values), dtype=float)
    ok = np.isfinite(x)
    x, invalid = x[ok], int((~ok).sum())
    info = {"interval": "order statistics (distribution-free)", **(details or {})}
    if len(x) == 0:
        return Measurement(name, math.nan, -math.inf, math.inf, 0, None, direction, judge, invalid, info, confidence)
    value = float(np.median(x))
    ci = quantile_test(x, q=value, p=0.5).confidence_interval(confidence)
    low = float(ci.low) if np.isfinite(ci.low) else -math.inf
    high = float(ci.high) if np.isfinite(ci.high) else math.inf
    return Measurement(name, value, min(low, value), max(high, value), len(x), None, direction, judge, invalid,
                       info, confidence)


# -- how many more samples? ---------------------------------------------------------------------------
def samples_needed(k: int, n: int, threshold: float, confidence: float = 0.95, max_n: int = 10**9) -> int | None:
    """Extra samples after which the Wilson interval would clear ``threshold``, if the rate stays ``k/n``.

    0 when it already does; None when it never would (rate equal to the threshold, or no data).
    """
    if n <= 0:
        return None
    p = k / n
    if p == threshold:
        return None

    def decided(m: float) -> bool:
        low, high = wilson_interval(p * m, m, confidence)
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


def samples_needed_for(m: Measurement, threshold: float) -> int | None:
    """``samples_needed`` for any measurement: exact (Wilson) for a plain proportion, otherwise from
    the interval's half-width scaling as 1/sqrt(n)."""
    if m.n <= 0 or not math.isfinite(m.value):
        return None
    if m.k is not None and not m.relative and m.details.get("interval") == "wilson":
        return samples_needed(m.k, m.n, threshold, m.confidence)
    gap = abs(m.value - threshold)
    if gap == 0:
        return None
    half = (m.high - m.value) if threshold > m.value else (m.value - m.low)
    if not math.isfinite(half):
        return None
    if half < gap:
        return 0
    total = math.ceil(m.n * (half / gap) ** 2 * 1.0001)
    return max(0, total - m.n)
