"""The registry of metrics: how per-sample values combine into one ``Measurement`` with its interval.

A metric here is an aggregation callable, ``fn(*samples, name=..., direction=..., judge=..., ...) ->
Measurement``. A measure (``hubkit.aspects.registry``) names the metric it uses, so the way each
number is formed is declared once, beside its direction::

    from hubkit.metrics import METRICS
    METRICS["paired_proportion_ratio"](model_verdicts, base_verdicts, "kept / base", direction="higher")

Third-party packages add metrics through the entry-point group ``hubkit.metrics``.
"""

from __future__ import annotations

from collections.abc import Callable

from hubkit.registry import Registry

METRICS: Registry[Callable] = Registry("metric", group="hubkit.metrics", builtins=("hubkit.metrics.aggregations",))
