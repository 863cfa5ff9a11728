"""``clip-zeroshot``: an open_clip zero-shot concept judge, loaded from a local weights file only.

Per image, the image embedding is compared (cosine × CLIP's logit scale) with the concept prompts
("a photo of {concept}", "a painting in the style of {concept}") and a fixed set of neutral
negatives; the softmax over all of them is taken, and the concept's probability is the sum over its
own prompts. "yes" when that probability >= ``threshold``.

Weights never come from a hub: its ``[judges]`` entry (``hubkit.judges.config``) names ``pretrained``
(a local open_clip state dict) and ``arch`` (an open_clip model name, or a custom one given by
``model_config``); see ``hubkit.judges.openclip``. Nothing else configures it (no environment variable): who
judges, with which weights, is written in one place.

Also an image-text model: ``image_features`` / ``text_features`` (L2-normalised) and ``num_features``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from hubkit.errors import JudgeError
from hubkit.judges.images import rgb_arrays
from hubkit.judges.openclip import OpenClipJudge, register_config
from hubkit.judges.registry import JUDGES, Verdict
from hubkit.judges.roles import Detector, FeatureExtractor, ImageTextScorer

DEFAULT_TEMPLATES = ("a photo of {concept}", "a painting in the style of {concept}")
DEFAULT_NEGATIVES = (
    "a photo",
    "a photo of an object",
    "a photo of a person",
    "a photo of a landscape",
    "a photo of an animal",
    "a photo of a room",
    "a painting",
    "an illustration",
)


def _register_config(arch: str, model_config) -> None:
    register_config("clip-zeroshot", arch, model_config)


@JUDGES.register("clip-zeroshot")
class ClipZeroShotJudge(OpenClipJudge, Detector, ImageTextScorer, FeatureExtractor):
    detects = "the concept, by open_clip zero-shot classification against neutral prompts"

    def __init__(
        self,
        pretrained: str | Path | None = None,
        arch: str | None = None,
        threshold: float = 0.5,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        negatives: Sequence[str] = DEFAULT_NEGATIVES,
        model_config: str | Path | dict | None = None,
        force_quick_gelu: bool = False,
        device: str = "cpu",
        batch_size: int = 32,
    ):
        arch = arch or "ViT-L-14"
        if not templates or any("{concept}" not in t for t in templates):
            raise JudgeError("clip-zeroshot: every template needs a '{concept}' placeholder")
        self._load_clip(pretrained, arch, model_config=model_config, force_quick_gelu=force_quick_gelu,
                        device=device, batch_size=batch_size)
        self.threshold = float(threshold)
        self.templates = tuple(templates)
        self.negatives = tuple(negatives)
        self.version = self.clip_version
        self._text_cache: dict[str, object] = {}

    def info(self) -> dict:
        return {**super().info(), "templates": list(self.templates), "negatives": list(self.negatives)}

    def score(self, images: Sequence, texts: Sequence[str]):
        """CLIPScore per (image, text) pair: 100 * max(cos, 0)."""
        return 100 * (self.image_features(images) * self.text_features(texts)).sum(-1).clamp(min=0)

    def fid_features(self, images: Sequence):
        """FID feature rows: the L2-normalised image embeddings, float64 [n, num_features]."""
        return self.image_features(images).double().numpy()

    # -- judge ----------------------------------------------------------------------------------
    def _prompt_features(self, concept: str):
        if concept not in self._text_cache:
            prompts = [t.format(concept=concept) for t in self.templates] + list(self.negatives)
            self._text_cache[concept] = self.text_features(prompts)
        return self._text_cache[concept]

    def probabilities(self, images: Sequence, concept: str):
        """The concept's zero-shot probability per image (NaN for an unreadable image)."""
        torch = self._torch
        arrays = rgb_arrays(images)
        valid = [i for i, a in enumerate(arrays) if a is not None]
        probs = torch.full((len(arrays),), float("nan"))
        if valid:
            img = self._encode_images([arrays[i] for i in valid])
            txt = self._prompt_features(concept)
            scale = float(self.model.logit_scale.detach().exp()) if hasattr(self.model, "logit_scale") else 100.0
            p = torch.softmax(scale * img @ txt.T, dim=-1)[:, : len(self.templates)].sum(-1)
            probs[valid] = p
        return probs

    def detect(self, images: Sequence, concept: str) -> list[Verdict]:
        return [Verdict.from_score(p, self.threshold) for p in self.probabilities(images, concept).tolist()]
