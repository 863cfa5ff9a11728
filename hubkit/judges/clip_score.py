"""``clip-score``: CLIPScore of image-text pairs with an open_clip model from a local weights file.

CLIPScore (Hessel et al. 2021, torchmetrics' ``CLIPScore``) is ``weight * max(cos(image, text), 0)`` with
``weight = 100``. HUB reports ImageReward and PickScore for general alignment (reference §5.2a); this is
the image-text scorer the project reads general alignment with, as a ratio to the base model on the same
captions and seeds. Weights: see ``hubkit.judges.openclip`` (``pretrained``, ``arch``, ``model_config``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from hubkit.judges.openclip import OpenClipJudge
from hubkit.judges.registry import JUDGES
from hubkit.judges.roles import ImageTextScorer


@JUDGES.register("clip-score")
class ClipScoreJudge(OpenClipJudge, ImageTextScorer):
    detects = "image-text agreement: CLIPScore = 100 * max(cos(image, text), 0) (scores, decides nothing)"
    threshold = None

    def __init__(
        self,
        pretrained: str | Path | None = None,
        arch: str = "ViT-L-14-quickgelu",
        model_config: str | Path | dict | None = None,
        force_quick_gelu: bool = False,
        weight: float = 100.0,
        device: str = "cpu",
        batch_size: int = 32,
    ):
        self._load_clip(pretrained, arch, model_config=model_config, force_quick_gelu=force_quick_gelu,
                        device=device, batch_size=batch_size)
        self.weight = float(weight)
        self.version = self.clip_version

    def info(self) -> dict:
        return {**super().info(), "weight": self.weight}

    def score(self, images: Sequence, texts: Sequence[str]) -> list[float]:
        """One CLIPScore per (image, text) pair; NaN for an unreadable image (it leaves the paired mean)."""
        if len(images) != len(texts):
            raise ValueError(f"clip-score: {len(images)} images but {len(texts)} texts")
        valid, img = self.readable_features(images)
        out = [float("nan")] * len(images)
        if valid:
            txt = self.text_features([texts[i] for i in valid])
            cos = (img * txt).sum(-1).clamp(min=0)
            for i, s in zip(valid, (self.weight * cos).tolist()):
                out[i] = s
        return out
