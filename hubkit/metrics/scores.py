"""Continuous per-image scores: CLIP score (image-text alignment) and a quality score; higher is better.

Both keep every per-sample score (``.scores``), so a suite can pair them with the base model's scores on
the same prompts and seeds (``hubkit.stats.paired_mean_ratio`` / ``paired_mean_difference``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from hubkit.errors import ConfigError
from hubkit.metrics.registry import Metric, register_metric
from hubkit.stats import Measurement, mean_measurement


class _MeanScore(Metric):
    aggregation = "mean"
    direction = "higher"

    def __init__(self, confidence: float = 0.95, name: str | None = None, judge: str = ""):
        if name:
            self.name = name
        self.confidence = confidence
        self.judge_name = judge
        self.reset()

    def reset(self) -> None:
        self.scores: list[float] = []
        self.labels: list[str] = []

    def update_scores(self, scores: Sequence[float], labels: Sequence[str] | None = None) -> None:
        """Add precomputed per-sample scores (NaN = invalid, counted but not averaged)."""
        scores = [float(s) for s in scores]
        self.scores.extend(scores)
        self.labels.extend(list(labels) if labels is not None else [""] * len(scores))

    def compute(self) -> Measurement:
        m = mean_measurement(self.scores, self.name, direction=self.direction, judge=self.judge_name,
                             confidence=self.confidence)
        pairs = [(lab, s) for lab, s in zip(self.labels, self.scores) if lab and math.isfinite(s)]
        if pairs:
            m.details["examples"] = sorted(pairs, key=lambda p: p[1])[:5]
        return m


@register_metric("clip_score", "alignment")
class ClipScore(_MeanScore):
    """Mean image-text alignment over (image, text) pairs, with a t interval.

    Uses ``judge.score(images, texts)`` when the judge has one; otherwise
    ``scale * max(cos(image_features, text_features), 0)`` (torchmetrics' CLIPScore convention, scale 100).
    """

    description = "mean image-text alignment score"

    def __init__(self, judge, scale: float = 100.0, confidence: float = 0.95, name: str | None = None):
        if not (hasattr(judge, "score") or (hasattr(judge, "image_features") and hasattr(judge, "text_features"))):
            raise ConfigError(f"judge {getattr(judge, 'name', judge)!r} cannot score image-text pairs "
                              "(needs score(images, texts) or image_features/text_features)")
        self.judge = judge
        self.scale = scale
        super().__init__(confidence, name, getattr(judge, "name", ""))

    def pair_scores(self, images: Sequence, texts: Sequence[str]) -> list[float]:
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images for {len(texts)} texts")
        if not len(images):
            return []
        if hasattr(self.judge, "score"):
            return [float(s) for s in self.judge.score(list(images), list(texts))]
        import torch

        fi = torch.as_tensor(self.judge.image_features(list(images))).float()
        ft = torch.as_tensor(self.judge.text_features(list(texts))).float()
        fi = fi / fi.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        ft = ft / ft.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        cos = (fi * ft).sum(-1)
        return [float(self.scale * max(c, 0.0)) for c in cos.tolist()]

    def update(self, images: Sequence, texts: Sequence[str]) -> None:
        self.update_scores(self.pair_scores(images, texts), [str(t) for t in texts])


def _scorer(source: Any) -> Callable[[Sequence], Sequence[float]]:
    for attr in ("score", "quality", "scores"):
        fn = getattr(source, attr, None)
        if callable(fn):
            return fn
    if hasattr(source, "detect"):
        return lambda images: [getattr(v, "score", math.nan) for v in source.detect(list(images), "")]
    if callable(source):
        return source
    raise ConfigError(f"quality scorer {source!r} needs score(images), quality(images) or detect(images, concept)")


@register_metric("quality", "aesthetic", "target_quality")
class QualityScore(_MeanScore):
    """Mean per-image quality (e.g. ``micro-quality``, LAION aesthetic) with a t interval."""

    description = "mean image quality score"

    def __init__(self, scorer, confidence: float = 0.95, name: str | None = None):
        self._score = _scorer(scorer)
        super().__init__(confidence, name, getattr(scorer, "name", ""))

    def update(self, images: Sequence, prompts: Sequence[str] | None = None) -> None:
        scores = [float(s) for s in np.asarray(self._score(list(images)), dtype=float).reshape(-1)]
        if len(scores) != len(images):
            raise ValueError(f"the quality scorer returned {len(scores)} scores for {len(images)} images")
        self.update_scores(scores, [str(getattr(p, "text", p)) for p in prompts] if prompts is not None else None)
