"""The registry of measures: every number a suite test asserts on is declared here once.

A measure's name is the key of its threshold rule in every profile (``hub_asserts/profiles/*.toml``);
its direction (which way is better) and its aggregation (a metric from ``hubkit.metrics.METRICS``)
live in the declaration and nowhere else::

    TARGET_PROPORTION = measure("faithfulness.target_proportion", better="lower",
                                aggregation=METRICS["proportion"])

    def target_proportion(hub, concept):
        ...
        m = TARGET_PROPORTION.aggregate(verdicts, f"target proportion of {concept}", judge=judge.configured_name)
        return TARGET_PROPORTION.evidence(m, category=..., base_images=..., model_images=...)

``aggregate`` passes the declared direction to the metric; ``evidence`` names the rule after the
measure, so a number cannot be judged by another measure's threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hubkit.registry import Registry

DIRECTIONS = ("lower", "higher")

MEASURES: Registry["Measure"] = Registry("measure", group="hubkit.measures", builtins=(
    "hubkit.aspects.canary", "hubkit.aspects.faithfulness", "hubkit.aspects.alignment", "hubkit.aspects.pinpoint",
    "hubkit.aspects.multilingual", "hubkit.aspects.robustness", "hubkit.aspects.efficiency",
))


@dataclass(frozen=True)
class Measure:
    name: str                 # also the key of its rule in every profile
    better: str               # "lower" or "higher"
    aggregation: Callable     # a metric: samples -> Measurement
    description: str = ""

    def __post_init__(self):
        if self.better not in DIRECTIONS:
            raise ValueError(f"measure {self.name!r}: better must be one of {DIRECTIONS}, got {self.better!r}")
        if not callable(self.aggregation):
            raise TypeError(f"measure {self.name!r}: aggregation must be a callable metric, got {self.aggregation!r}")

    def aggregate(self, *samples, **options):
        """The metric applied to ``samples``, with this measure's direction."""
        return self.aggregation(*samples, direction=self.better, **options)

    def evidence(self, measurement, *, category: str | None = None, base_images=(), model_images=(), examples=(),
                 extra: dict | None = None, captions=()):
        return Evidence(measurement, self.name, category, list(base_images), list(model_images), list(examples),
                        dict(extra or {}), list(captions))


@dataclass
class Evidence:
    """What one suite test hands to its verdict: the number, the rule that judges it, and the pictures."""

    measurement: object
    rule: str
    category: str | None = None
    base_images: list = field(default_factory=list)
    model_images: list = field(default_factory=list)
    examples: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    # one per (base, unlearned) pair of images, in their order: "prompt\nbase yes | unl. no" (the report's grid draws
    # it under the pair; a verdict line starting with "!" marks a bad outcome). Aspects order pairs worst first.
    captions: list = field(default_factory=list)


def measure(name: str, *, better: str, aggregation: Callable, description: str = "") -> Measure:
    """Declare and register a measure (see the module docstring)."""
    return MEASURES.register(name, obj=Measure(name, better, aggregation, description))
