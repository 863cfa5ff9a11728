"""What a judge can do, as types: a session checks at start that the judge configured for each role has it.

A judge class inherits the roles it fills, and must implement their methods (they are abstract)::

    @JUDGES.register("my-clip")
    class MyClip(Judge, Detector, ImageTextScorer, FeatureExtractor): ...

Roles of a run (``Session.check_roles``): the concept judge and the noun judge are ``Detector``s, the
alignment judge an ``ImageTextScorer``, the FID judge a ``FeatureExtractor``, the quality judge a
``QualityScorer``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence


class Detector(abc.ABC):
    """Says per image whether ``concept`` (a concept name, a noun) is visible: yes / no / invalid."""

    @abc.abstractmethod
    def detect(self, images: Sequence, concept: str) -> list:
        """One ``Verdict`` per image; batched and deterministic."""


class ImageTextScorer(abc.ABC):
    """Scores how well each image matches its text (CLIP score: 100 * max(cos, 0))."""

    @abc.abstractmethod
    def score(self, images: Sequence, texts: Sequence[str]):
        """One float per (image, text) pair."""


class FeatureExtractor(abc.ABC):
    """Maps images to feature rows for FID (HUB: InceptionV3 pool features)."""

    @abc.abstractmethod
    def fid_features(self, images: Sequence):
        """float64 numpy array [n, d]; the same images give the same rows."""


class QualityScorer(abc.ABC):
    """Scores each image's quality on its own (HUB: the LAION aesthetic predictor); higher is better."""

    @abc.abstractmethod
    def quality(self, images: Sequence):
        """One float per image (NaN for an image it cannot read)."""


ROLES: dict[str, type] = {
    "Detector": Detector, "ImageTextScorer": ImageTextScorer, "FeatureExtractor": FeatureExtractor,
    "QualityScorer": QualityScorer,
}


def roles_of(cls: type) -> list[str]:
    return [name for name, role in ROLES.items() if isinstance(cls, type) and issubclass(cls, role)]
