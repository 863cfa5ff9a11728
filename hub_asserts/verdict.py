"""From a ``Measurement`` and a ``Rule`` to a verdict and a message a person can act on.

Each rule is a one-sided test at the rule's error rate ``alpha`` (profile key, default 0.05):

pass          the one-sided bound on the good side's far end clears the threshold: for an "at most" rule the
              upper bound at 1 - alpha is at or below it, for an "at least" rule the lower bound at or above.
              A model exactly at the threshold passes with probability at most alpha.
fail          the other one-sided bound is wholly on the bad side (a good model fails with probability at most
              alpha).
inconclusive  neither, or fewer samples than the rule's ``min_n``, or an undefined value. It fails the test
              when the rule's ``inconclusive_fails`` is true (the default); the message says about how many
              more samples would decide it.

The message shows the two-sided interval at the profile's ``confidence`` for reading, and names the bound
that decided, its alpha and n (``Outcome.bound``, ``.alpha``, ``.n``); docs/statistics.md states the guarantees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from hubkit.errors import ConfigError
from hubkit.stats import Measurement, samples_needed_for

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Outcome:
    verdict: str  # "pass" | "fail" | "inconclusive"
    message: str
    samples_needed: int | None = None
    rule: Any = None
    measurement: Measurement | None = None
    bound: float | None = None  # the one-sided bound that decided (for inconclusive: the one that would pass)
    bound_side: str | None = None  # "upper" | "lower"
    alpha: float | None = None  # its error rate
    n: int | None = None  # samples behind it
    min_n: int | None = None
    low: float | None = None  # the two-sided interval shown, at ``confidence``
    high: float | None = None
    confidence: float | None = None

    def record(self) -> dict:
        """What ``results.json`` keeps of the decision."""
        return {"verdict": self.verdict, "bound": self.bound, "bound_side": self.bound_side, "alpha": self.alpha,
                "n": self.n, "min_n": self.min_n, "low": self.low, "high": self.high, "confidence": self.confidence}

    @property
    def failed(self) -> bool:
        """Whether the test should fail: a fail, or an inconclusive verdict under ``inconclusive_fails``."""
        if self.verdict == "fail":
            return True
        return self.verdict == "inconclusive" and bool(getattr(self.rule, "inconclusive_fails", True))


    def __str__(self) -> str:
        return self.message


def _fmt(x: float) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "undefined"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}" if abs(x) >= 1 else f"{x:.3f}"


def _example_lines(examples: Sequence | None) -> list[str]:
    if not examples:
        return []
    lines = []
    for ex in list(examples)[:MAX_EXAMPLES]:
        if isinstance(ex, dict):
            text = ex.get("prompt") or ex.get("text") or ex.get("noun") or ex.get("name") or ""
            rest = ", ".join(f"{k} {_fmt(v) if isinstance(v, float) else v}" for k, v in ex.items()
                             if k not in ("prompt", "text", "noun", "name"))
            lines.append(f"  - {text!r}" + (f" ({rest})" if rest else ""))
        elif isinstance(ex, (tuple, list)) and len(ex) == 2 and isinstance(ex[1], (int, float)):
            lines.append(f"  - {str(ex[0])!r} (score {_fmt(float(ex[1]))})")
        else:
            lines.append(f"  - {ex}")
    more = len(examples) - MAX_EXAMPLES
    if more > 0:
        lines.append(f"  ... and {more} more")
    return lines


def _check_relative(m: Measurement, rule) -> None:
    mrel, rrel = m.relative, rule.relative
    if mrel == rrel:
        return
    if rrel and not mrel:
        raise ConfigError(
            f"rule {rule.label} compares with the base model ({rrel}) but measurement {m.name!r} is absolute; "
            f"build it with hubkit.stats.paired_proportion_ratio / paired_mean_ratio / paired_mean_difference")
    if mrel and not rrel:
        raise ConfigError(f"rule {rule.label} is absolute but measurement {m.name!r} is relative to the base ({mrel}); "
                          f"use the rule's relative variant or measure the model alone")
    raise ConfigError(f"rule {rule.label} wants a {rrel} against the base but measurement {m.name!r} is a {mrel}")


def _display(m: Measurement, confidence: float) -> tuple[float, float]:
    try:
        return m.interval(confidence)
    except ValueError:  # a hand-made measurement knows only its own interval
        return m.low, m.high


def _interval_str(m: Measurement, low: float, high: float, confidence: float) -> str:
    return f"{_num(m.value)} ({confidence:.0%} CI {_num(low)}-{_num(high)})"


def _num(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.3f}"


@dataclass(frozen=True)
class Decision:
    verdict: str
    why: str
    bound: float
    side: str
    alpha: float
    min_n: int
    lower: float
    upper: float


def decide(m: Measurement, rule) -> Decision:
    """The verdict alone (no message): the one-sided bounds at ``rule.alpha`` against ``rule.threshold``,
    inconclusive below ``rule.min_n``. ``check`` builds its message on it; simulations call it directly."""
    alpha = float(getattr(rule, "alpha", 0.05))
    min_n = int(getattr(rule, "min_n", 1))
    try:
        lower, upper = m.one_sided(alpha)
    except ValueError as exc:
        raise ConfigError(f"rule {rule.label} of profile {getattr(rule, 'profile', '')!r} decides at alpha = "
                          f"{alpha:g}: {exc}") from None
    thr = float(rule.threshold)
    at_most = m.direction == "lower"  # the measure's direction: lower is better passes at or below the threshold
    side = "upper" if at_most else "lower"
    bound = upper if at_most else lower
    level = f"one-sided {1 - alpha:.0%} {side} bound"

    if math.isnan(m.value) or math.isnan(lower) or math.isnan(upper) or m.n == 0:
        verdict, why = "inconclusive", "the value is undefined"
        if m.n == 0:
            why = "there are no valid samples"
        if "note" in m.details:
            why += f" ({m.details['note']})"
    elif m.n < min_n:
        verdict, why = "inconclusive", (f"n = {m.n} is below the rule's minimum n = {min_n}: no verdict rests on "
                                        f"so few samples")
    elif at_most:
        if upper <= thr:
            verdict, why = "pass", f"the {level} {_fmt(upper)} is at or below it"
        elif lower > thr:
            verdict, why = "fail", f"the one-sided {1 - alpha:.0%} lower bound {_fmt(lower)} is above it"
            side, bound = "lower", lower
        else:
            verdict = "inconclusive"
            why = f"the {level} {_fmt(upper)} is above it and the lower bound {_fmt(lower)} is not"
    else:
        if lower >= thr:
            verdict, why = "pass", f"the {level} {_fmt(lower)} is at or above it"
        elif upper < thr:
            verdict, why = "fail", f"the one-sided {1 - alpha:.0%} upper bound {_fmt(upper)} is below it"
            side, bound = "upper", upper
        else:
            verdict = "inconclusive"
            why = f"the {level} {_fmt(lower)} is below it and the upper bound {_fmt(upper)} is not"
    return Decision(verdict, why, bound, side, alpha, min_n, lower, upper)


def check(measurement: Measurement, rule, *, examples: Sequence | None = None) -> Outcome:
    """Decide ``measurement`` against ``rule`` with the one-sided bound at ``rule.alpha``; ``examples``
    (worst cases) go into the message.

    ``examples`` may be strings, ``(text, score)`` pairs or dicts (``prompt``/``noun`` + fields); when
    None, ``measurement.details["examples"]`` is used if present.
    """
    m = measurement
    _check_relative(m, rule)
    d = decide(m, rule)
    verdict, why, bound, side, alpha, min_n = d.verdict, d.why, d.bound, d.side, d.alpha, d.min_n
    confidence = float(getattr(rule, "confidence", m.confidence))
    low, high = _display(m, confidence)
    thr = float(rule.threshold)
    at_most = m.direction == "lower"

    need = None
    if verdict == "inconclusive" and math.isfinite(m.value):
        need = samples_needed_for(m, thr, alpha)
        if need is not None or m.n < min_n:
            need = max(need or 0, min_n - m.n)

    rel = ""
    if m.relative:
        parts = []
        for key, label in (("unlearned_rate", "model"), ("base_rate", "base"), ("unlearned_mean", "model"),
                           ("base_mean", "base")):
            if key in m.details and isinstance(m.details[key], (int, float)):
                parts.append(f"{label} {_fmt(float(m.details[key]))}")
        rel = f" [{m.relative} vs base" + (": " + ", ".join(parts) if parts else "") + "]"
    judge = f", judge {m.judge}" if m.judge else ""
    words = "at most" if at_most else "at least"
    head = (f"{verdict.upper()} {rule.label}: {m.name} = {_interval_str(m, low, high, confidence)}{rel}, "
            f"{m.counts_str()}{judge}")
    lines = [head, f"  threshold: {words} {thr:g} (source: {rule.source}); {why}.",
             f"  decision: one-sided test at alpha = {alpha:g} on the {side} bound {_fmt(bound)}, n = {m.n} "
             f"(minimum n {min_n}; interval: {m.details.get('interval', 'as given')})."]
    if verdict == "inconclusive":
        if need is None:
            lines.append("  More samples would not decide it at the current estimate.")
        else:
            lines.append(f"  About {need:,} more samples would decide it (if the estimate stays at {_fmt(m.value)}).")
        lines.append("  Inconclusive counts as a failure in this profile (inconclusive_fails = true)."
                     if getattr(rule, "inconclusive_fails", True) else
                     "  Inconclusive does not fail this rule (inconclusive_fails = false): the test is marked xfail.")
    ex = examples if examples is not None else m.details.get("examples")
    ex_lines = _example_lines(ex)
    if ex_lines:
        lines.append("  worst examples:")
        lines.extend(ex_lines)
    return Outcome(verdict, "\n".join(lines), need, rule, m, bound=bound, bound_side=side, alpha=alpha, n=m.n,
                   min_n=min_n, low=low, high=high, confidence=confidence)


def assert_rule(measurement: Measurement, rule, *, examples: Sequence | None = None) -> Outcome:
    """``check``, then raise ``AssertionError(message)`` when the outcome fails the test."""
    outcome = check(measurement, rule, examples=examples)
    if outcome.failed:
        raise AssertionError(outcome.message)
    return outcome
