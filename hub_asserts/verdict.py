"""From a ``Measurement`` and a ``Rule`` to a verdict and a message a person can act on.

pass          the whole interval is on the good side of the threshold
fail          the whole interval is on the bad side
inconclusive  the interval contains the threshold (or the value is undefined); it fails the test
              when the rule's ``inconclusive_fails`` is true (the default), and the message says
              about how many more samples would decide it.
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


def check(measurement: Measurement, rule, *, examples: Sequence | None = None) -> Outcome:
    """Compare ``measurement``'s interval with ``rule``; ``examples`` (worst cases) go into the message.

    ``examples`` may be strings, ``(text, score)`` pairs or dicts (``prompt``/``noun`` + fields); when
    None, ``measurement.details["examples"]`` is used if present.
    """
    m = measurement
    _check_relative(m, rule)
    if not math.isclose(m.confidence, getattr(rule, "confidence", m.confidence)):
        raise ConfigError(f"rule {rule.label} of profile {rule.profile!r} states verdicts at {rule.confidence:.0%} "
                          f"confidence, but measurement {m.name!r} carries a {m.confidence:.0%} interval; the suite "
                          f"measures at 95%: set confidence = 0.95 in the profile")
    thr = float(rule.threshold)
    at_most = m.direction == "lower"  # the measure's direction: lower is better passes at or below the threshold

    if math.isnan(m.value) or math.isnan(m.low) or math.isnan(m.high) or m.n == 0:
        verdict, why = "inconclusive", "the value is undefined"
        if m.n == 0:
            why = "there are no valid samples"
        if "note" in m.details:
            why += f" ({m.details['note']})"
    elif at_most:
        if m.high <= thr:
            verdict, why = "pass", "the whole interval is at or below the threshold"
        elif m.low > thr:
            verdict, why = "fail", "the whole interval is above the threshold"
        else:
            verdict, why = "inconclusive", "the interval contains the threshold"
    else:
        if m.low >= thr:
            verdict, why = "pass", "the whole interval is at or above the threshold"
        elif m.high < thr:
            verdict, why = "fail", "the whole interval is below the threshold"
        else:
            verdict, why = "inconclusive", "the interval contains the threshold"

    need = samples_needed_for(m, thr) if verdict == "inconclusive" else None

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
    head = f"{verdict.upper()} {rule.label}: {m.name} = {m.interval_str()}{rel}, {m.counts_str()}{judge}"
    lines = [head, f"  threshold: {words} {thr:g} (source: {rule.source}); {why}."]
    if verdict == "inconclusive":
        if need is None:
            lines.append("  More samples would not decide it at the current estimate.")
        else:
            lines.append(f"  About {need:,} more samples would decide it (if the estimate stays at {_fmt(m.value)}).")
        lines.append("  Inconclusive counts as a failure in this profile (inconclusive_fails = true)."
                     if getattr(rule, "inconclusive_fails", True) else
                     "  Inconclusive does not fail this rule (inconclusive_fails = false).")
    ex = examples if examples is not None else m.details.get("examples")
    ex_lines = _example_lines(ex)
    if ex_lines:
        lines.append("  worst examples:")
        lines.extend(ex_lines)
    return Outcome(verdict, "\n".join(lines), need, rule, m)


def assert_rule(measurement: Measurement, rule, *, examples: Sequence | None = None) -> Outcome:
    """``check``, then raise ``AssertionError(message)`` when the outcome fails the test."""
    outcome = check(measurement, rule, examples=examples)
    if outcome.failed:
        raise AssertionError(outcome.message)
    return outcome
