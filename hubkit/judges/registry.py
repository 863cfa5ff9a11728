"""The judge registry, in the style of lm-evaluation-harness' model registry.

A judge is a class registered under a name::

    @register_judge("my-judge")
    class MyJudge(Judge):
        detects = "what a 'yes' means"
        def __init__(self, threshold=0.5, **options): ...
        def detect(self, images, concept): ...

and built by ``get_judge("my-judge", **options)``. Third-party packages add judges without editing
hubkit through the entry-point group ``hubkit.judges``; an entry point's name is the judge name and
its object is either the ``Judge`` subclass or a module whose import registers it::

    [project.entry-points."hubkit.judges"]
    my-judge = "my_package.judges:MyJudge"

Built-in judges import their heavy dependencies (torch, onnxruntime, open_clip) only when built, so
``list_judges()`` is cheap.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, ClassVar, Literal, Sequence

from hubkit.errors import JudgeError

ENTRY_POINT_GROUP = "hubkit.judges"

Label = Literal["yes", "no", "invalid"]
_LABELS = ("yes", "no", "invalid")


@dataclass(frozen=True)
class Verdict:
    """One image's verdict. ``invalid`` (unreadable image, judge cannot decide) leaves the denominator.

    ``score`` is the judge's continuous evidence for "yes" (a probability or detector confidence);
    it is NaN for an invalid verdict.
    """

    label: Label
    score: float

    def __post_init__(self):
        if self.label not in _LABELS:
            raise ValueError(f"Verdict label must be one of {_LABELS}, got {self.label!r}")

    @property
    def is_yes(self) -> bool:
        return self.label == "yes"

    @property
    def is_valid(self) -> bool:
        return self.label != "invalid"

    @classmethod
    def invalid(cls) -> "Verdict":
        return cls("invalid", math.nan)

    @classmethod
    def from_score(cls, score: float, threshold: float) -> "Verdict":
        """``yes`` when ``score >= threshold``; a NaN score is ``invalid``."""
        score = float(score)
        if math.isnan(score):
            return cls.invalid()
        return cls("yes" if score >= threshold else "no", score)


class Judge:
    """Base class of every judge: decides per image whether ``concept`` is present.

    Subclasses set ``name`` (filled in by ``register_judge``), ``detects`` (a short description of what
    a "yes" means), ``threshold`` (the decision threshold on ``Verdict.score``) and ``version`` (a
    weights hash or package version, so results can be traced to the exact judge), and implement
    ``detect``. ``detect`` must be batched and deterministic (no sampling).
    """

    name: ClassVar[str] = ""
    detects: str = ""
    threshold: float = 0.5
    version: str = "unversioned"

    def detect(self, images: Sequence, concept: str) -> list[Verdict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def info(self) -> dict:
        """What a report should record about this judge."""
        return {"name": self.name, "detects": self.detects, "threshold": self.threshold, "version": self.version}

    def __repr__(self) -> str:
        return f"<judge {self.name} threshold={self.threshold} version={self.version}>"


_REGISTRY: dict[str, type[Judge]] = {}
_ENTRY_POINTS_LOADED = False


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def register_judge(*names: str) -> Callable[[type[Judge]], type[Judge]]:
    """Class decorator: register ``cls`` under each of ``names`` (the first is its canonical name)."""
    if not names:
        raise ValueError("register_judge needs at least one name")

    def decorate(cls: type[Judge]) -> type[Judge]:
        for n in names:
            key = _norm(n)
            existing = _REGISTRY.get(key)
            if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
                raise ValueError(f"judge name {n!r} is already registered to {existing.__module__}.{existing.__qualname__}")
            _REGISTRY[key] = cls
        if not cls.__dict__.get("name"):
            cls.name = _norm(names[0])
        return cls

    return decorate


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # pragma: no cover - broken metadata must not break the built-in judges
        return
    for ep in eps:
        key = _norm(ep.name)
        if key in _REGISTRY:
            continue
        try:
            obj = ep.load()
        except Exception as exc:
            raise JudgeError(
                f"judge entry point {ep.name!r} ({ep.value}) in group {ENTRY_POINT_GROUP!r} failed to import: {exc}"
            ) from exc
        if isinstance(obj, type) and issubclass(obj, Judge):
            register_judge(ep.name)(obj)
        # else: a module whose import ran @register_judge; if it did not register ep.name, it stays unknown


def list_judges() -> list[str]:
    """The names of every known judge (built-in and entry-point ones), sorted."""
    _load_entry_points()
    return sorted(_REGISTRY)


def judge_class(name: str) -> type[Judge]:
    key = _norm(name)
    if key not in _REGISTRY:
        _load_entry_points()
    if key not in _REGISTRY:
        raise JudgeError(f"unknown judge {name!r}; known judges: {', '.join(list_judges())}")
    return _REGISTRY[key]


def get_judge(name: str, **options) -> Judge:
    """Build the judge registered as ``name`` with ``options`` (e.g. ``threshold=0.6``)."""
    cls = judge_class(name)
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as exc:
        raise JudgeError(f"judge {name!r} does not accept options {sorted(options)}: {exc}") from exc
    return cls(**options)
