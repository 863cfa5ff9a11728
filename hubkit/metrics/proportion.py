"""Proportions of judge verdicts: target proportion (lower is better) and yes-rates (higher is better)."""

from __future__ import annotations

import math
from typing import Sequence

from hubkit.metrics.registry import Metric, register_metric
from hubkit.stats import Measurement, proportion, verdict_label

MAX_EXAMPLES = 5


class _Proportion(Metric):
    aggregation = "proportion"

    def __init__(self, judge: str = "", confidence: float = 0.95, name: str | None = None,
                 max_examples: int = MAX_EXAMPLES):
        if name:
            self.name = name
        self.judge = getattr(judge, "name", judge) or ""
        self.confidence = confidence
        self.max_examples = max_examples
        self.reset()

    def reset(self) -> None:
        self.labels: list[str] = []
        self._examples: list[tuple[str, float]] = []

    def update(self, verdicts: Sequence, prompts: Sequence[str] | None = None) -> None:
        """Add verdicts (``Verdict``, "yes"/"no"/"invalid", or bools); ``prompts`` (same length) lets the
        report show the worst examples."""
        verdicts = list(verdicts)
        if prompts is not None and len(prompts) != len(verdicts):
            raise ValueError(f"{len(prompts)} prompts for {len(verdicts)} verdicts")
        labels = [verdict_label(v) for v in verdicts]
        self.labels.extend(labels)
        if prompts is not None:
            for v, lab, p in zip(verdicts, labels, prompts):
                if lab == self._bad_label:
                    score = float(getattr(v, "score", math.nan))
                    self._examples.append((getattr(p, "text", p), score))
            key = (lambda e: -e[1] if not math.isnan(e[1]) else math.inf) if self.direction == "lower" else \
                (lambda e: e[1] if not math.isnan(e[1]) else math.inf)
            self._examples = sorted(self._examples, key=key)[: self.max_examples]

    @property
    def _bad_label(self) -> str:
        return "yes" if self.direction == "lower" else "no"

    def compute(self) -> Measurement:
        m = proportion(self.labels, self.name, direction=self.direction, judge=self.judge,
                       confidence=self.confidence)
        if self._examples:
            m.details["examples"] = list(self._examples)
        return m


@register_metric("target_proportion", "attack_success", "multilingual_target_proportion", "canary_rate")
class TargetProportion(_Proportion):
    """Share of images in which the judge sees the target concept (Wilson interval; invalid excluded).

    Lower is better for an unlearned model (as a canary on the base model, the rule says "at least").
    Examples kept: the "yes" images with the highest judge scores.
    """

    direction = "lower"
    description = "share of images showing the target concept"


@register_metric("yes_rate", "selective_alignment", "pinpoint")
class YesRate(_Proportion):
    """Share of "yes" answers where "yes" is what a good model gives (selective alignment: the noun is
    visible; pinpoint-ness: the neighbour concept is still drawn).  Examples kept: the "no" answers
    with the lowest scores."""

    direction = "higher"
    description = "share of questions answered yes"
