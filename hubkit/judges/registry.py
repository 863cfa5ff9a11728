"""The judge registry and the base types of every judge.

A judge is a class registered under a name, filling one or more roles (``hubkit.judges.roles``)::

    @JUDGES.register("my-judge")
    class MyJudge(Judge, Detector):
        detects = "what a 'yes' means"
        def __init__(self, threshold=0.5, **options): ...
        def detect(self, images, concept): ...

and built by ``JUDGES.build("my-judge", **options)``. Third-party packages add judges without editing
hubkit through the entry-point group ``hubkit.judges`` (see ``hubkit.registry``)::

    [project.entry-points."hubkit.judges"]
    my-judge = "my_package.judges:MyJudge"

Built-in judges import their heavy dependencies (torch, onnxruntime, open_clip) only when built, so
listing them is cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from hubkit.errors import RegistryError
from hubkit.registry import Registry

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
    """Base class of every judge; its roles (``hubkit.judges.roles``) say what it can do.

    Subclasses set ``name`` (filled in by ``JUDGES.register``), ``detects`` (a short description of what
    a "yes" means), ``threshold`` (the decision threshold on ``Verdict.score``) and ``version`` (a
    weights hash or package version, so results can be traced to the exact judge). Every method must
    be batched and deterministic (no sampling).
    """

    name: ClassVar[str] = ""
    detects: str = ""
    threshold: float | None = 0.5  # None for a scorer or feature extractor, which decides nothing
    version: str = "unversioned"
    #: option name -> what file it names and where to get it: the options a ``[judges]`` table resolves as
    #: paths (relative to the table's file, ``~``, or ``hf://owner/repo/file`` from the Hugging Face cache)
    weight_options: ClassVar[dict[str, str]] = {}
    #: option name -> what it names: a model folder or a Hugging Face repo id (resolved by the judge, cache only)
    repo_options: ClassVar[dict[str, str]] = {}
    #: option name -> the local file this instance loaded (set by the judge; hashed in ``info()``)
    weights: dict = {}
    #: what the run's [judges] table calls this configuration (a [judges.define] name), set by the session; two
    #: configurations of one judge (a VLM for concepts, another for nouns) are told apart by it in the records
    label: str = ""

    @property
    def configured_name(self) -> str:
        """The label a record names this judge by: the table's name for this configuration, else the judge's."""
        return self.label or self.name

    def info(self) -> dict:
        """What a report should record about this judge (with each weights file's sha256 when it loaded any)."""
        out = {"name": self.name, "detects": self.detects, "threshold": self.threshold, "version": self.version}
        if self.label and self.label != self.name:
            out["configured_as"] = self.label
        if self.weights:
            from hubkit.hashing import file_sha256

            out["weights"] = {k: str(v) for k, v in self.weights.items()}
            out["weights_sha256"] = {k: file_sha256(v) for k, v in self.weights.items()}
        return out

    def __repr__(self) -> str:
        return f"<judge {self.name} threshold={self.threshold} version={self.version}>"


def _check(name: str, entry) -> None:
    if not (isinstance(entry, type) and issubclass(entry, Judge)):
        raise RegistryError(f"judge {name!r} must be a subclass of hubkit.judges.Judge, got {entry!r}")


JUDGES: Registry[type[Judge]] = Registry("judge", group="hubkit.judges", check=_check, builtins=(
    "hubkit.judges.nudity", "hubkit.judges.clip_zeroshot", "hubkit.judges.clip_score", "hubkit.judges.aesthetic",
    "hubkit.judges.q16", "hubkit.judges.inception", "hubkit.judges.face", "hubkit.judges.vlm",
    "hubkit.judges.pickscore", "hubkit.judges.giphy"))
