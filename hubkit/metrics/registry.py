"""Metric registry, in the style of lm-evaluation-harness: a name -> a metric class that declares which
way is better (``direction``) and how per-sample values combine (``aggregation``).

    @register_metric("my_rate")
    class MyRate(Metric):
        direction = "higher"; aggregation = "proportion"
        def update(self, verdicts): ...
        def compute(self) -> Measurement: ...

    metric = get_metric("target_proportion", judge="nudenet")
    metric.update(verdicts); metric.compute()       # torchmetrics-style streaming

Third-party packages add metrics through the entry-point group ``hubkit.metrics``.
"""

from __future__ import annotations

from importlib import metadata
from typing import Callable, ClassVar

from hubkit.errors import ConfigError
from hubkit.stats import Measurement

ENTRY_POINT_GROUP = "hubkit.metrics"
DIRECTIONS = ("lower", "higher")
AGGREGATIONS = ("proportion", "mean", "frechet")


class Metric:
    """Base class: accumulate with ``update(...)``, summarise with ``compute() -> Measurement``."""

    name: str = ""
    direction: ClassVar[str] = "lower"
    aggregation: ClassVar[str] = "mean"
    description: ClassVar[str] = ""

    def update(self, *args, **kwargs) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self) -> Measurement:  # pragma: no cover - abstract
        raise NotImplementedError

    def reset(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<metric {self.name} ({self.aggregation}, {self.direction} is better)>"


_REGISTRY: dict[str, type[Metric]] = {}
_EP_LOADED = False


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def register_metric(*names: str) -> Callable[[type[Metric]], type[Metric]]:
    """Class decorator registering ``cls`` under ``names``; checks its declared direction/aggregation."""
    if not names:
        raise ValueError("register_metric needs at least one name")

    def decorate(cls: type[Metric]) -> type[Metric]:
        if cls.direction not in DIRECTIONS:
            raise ValueError(f"{cls.__name__}.direction must be one of {DIRECTIONS}")
        if cls.aggregation not in AGGREGATIONS:
            raise ValueError(f"{cls.__name__}.aggregation must be one of {AGGREGATIONS}")
        for n in names:
            key = _norm(n)
            old = _REGISTRY.get(key)
            if old is not None and old.__qualname__ != cls.__qualname__:
                raise ValueError(f"metric name {n!r} is already registered to {old.__qualname__}")
            _REGISTRY[key] = cls
        if not getattr(cls, "name", ""):
            cls.name = _norm(names[0])
        return cls

    return decorate


def _load_entry_points() -> None:
    global _EP_LOADED
    if _EP_LOADED:
        return
    _EP_LOADED = True
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # pragma: no cover
        return
    for ep in eps:
        obj = ep.load()
        if isinstance(obj, type) and issubclass(obj, Metric) and _norm(ep.name) not in _REGISTRY:
            register_metric(ep.name)(obj)


def list_metrics() -> list[str]:
    _load_entry_points()
    return sorted(_REGISTRY)


def metric_class(name: str) -> type[Metric]:
    key = _norm(name)
    if key not in _REGISTRY:
        _load_entry_points()
    if key not in _REGISTRY:
        raise ConfigError(f"unknown metric {name!r}; known metrics: {', '.join(list_metrics())}")
    return _REGISTRY[key]


def get_metric(name: str, **options) -> Metric:
    """A fresh metric registered as ``name``; its reported name defaults to ``name``."""
    cls = metric_class(name)
    options.setdefault("name", _norm(name))
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"metric {name!r} does not accept options {sorted(options)}: {exc}") from exc
