"""``clip-zeroshot``: an open_clip zero-shot concept judge, loaded from a local weights file only.

Per image, the image embedding is compared (cosine × CLIP's logit scale) with the concept prompts
("a photo of {concept}", "a painting in the style of {concept}") and a fixed set of neutral
negatives; the softmax over all of them is taken, and the concept's probability is the sum over its
own prompts. "yes" when that probability >= ``threshold``.

Weights never come from a hub: pass ``pretrained=<path to an open_clip .bin/.pt/.safetensors
state dict>`` together with the matching ``arch`` (an open_clip model name, or a custom one given by
``model_config=<json file or dict>``); ``HUBKIT_CLIP_PRETRAINED`` / ``HUBKIT_CLIP_ARCH`` are the
fallbacks. OpenAI checkpoints use QuickGELU: pass ``arch="ViT-L-14-quickgelu"`` (or
``force_quick_gelu=True``) for them.

Also an image-text model: ``image_features`` / ``text_features`` (L2-normalised) and ``num_features``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Sequence

from hubkit.errors import JudgeError
from hubkit.judges.images import rgb_arrays
from hubkit.hashing import file_sha256
from hubkit.judges.registry import JUDGES, Judge, Verdict
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
    import open_clip

    if isinstance(model_config, (str, Path)):
        path = Path(model_config)
        if not path.is_file():
            raise JudgeError(f"clip-zeroshot: model_config {path} not found (a JSON file with embed_dim/vision_cfg/text_cfg)")
        cfg = json.loads(path.read_text())
    else:
        cfg = dict(model_config)
    folder = Path(tempfile.mkdtemp(prefix="hubkit-openclip-cfg-"))
    (folder / f"{arch}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(folder)


@JUDGES.register("clip-zeroshot")
class ClipZeroShotJudge(Judge, Detector, ImageTextScorer, FeatureExtractor):
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
        pretrained = pretrained or os.environ.get("HUBKIT_CLIP_PRETRAINED")
        arch = arch or os.environ.get("HUBKIT_CLIP_ARCH") or "ViT-L-14"
        if not pretrained:
            raise JudgeError(
                "clip-zeroshot needs local weights and never downloads: "
                "JUDGES.build('clip-zeroshot', arch='ViT-L-14-quickgelu', pretrained='/path/to/open_clip_model.safetensors') "
                "or set HUBKIT_CLIP_PRETRAINED (and HUBKIT_CLIP_ARCH)"
            )
        path = Path(pretrained)
        if not path.is_file():
            raise JudgeError(
                f"clip-zeroshot: weights file {path} not found; pass pretrained=<local open_clip state dict file> "
                "(hub names such as 'openai' are not accepted)"
            )
        import open_clip
        import torch

        if model_config is not None:
            _register_config(arch, model_config)
        if open_clip.get_model_config(arch) is None:
            raise JudgeError(
                f"clip-zeroshot: unknown open_clip architecture {arch!r}; pass model_config=<json> for a custom one"
            )
        if not templates or any("{concept}" not in t for t in templates):
            raise JudgeError("clip-zeroshot: every template needs a '{concept}' placeholder")
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=str(path), device=device, force_quick_gelu=force_quick_gelu, pretrained_text=False
            )
        except Exception as exc:
            raise JudgeError(f"clip-zeroshot: cannot load {path} as open_clip {arch!r}: {exc}") from exc
        model.eval()
        self._torch = torch
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.device = device
        self.batch_size = int(batch_size)
        self.arch = arch
        self.threshold = float(threshold)
        self.templates = tuple(templates)
        self.negatives = tuple(negatives)
        self.version = f"open_clip-{open_clip.__version__}:{arch}:{file_sha256(path)[:16]}"
        visual = getattr(model, "visual", None)
        self.num_features = int(getattr(visual, "output_dim", 0) or open_clip.get_model_config(arch)["embed_dim"])
        self._text_cache: dict[str, object] = {}

    def info(self) -> dict:
        return {**super().info(), "arch": self.arch, "templates": list(self.templates), "negatives": list(self.negatives)}

    # -- image-text model interface ---------------------------------------------------------------
    def _encode_images(self, arrays):
        import PIL.Image

        torch = self._torch
        feats = []
        with torch.inference_mode():
            for s in range(0, len(arrays), self.batch_size):
                batch = torch.stack([self.preprocess(PIL.Image.fromarray(a)) for a in arrays[s : s + self.batch_size]])
                f = self.model.encode_image(batch.to(self.device)).float()
                feats.append(torch.nn.functional.normalize(f, dim=-1).cpu())
        return torch.cat(feats) if feats else torch.zeros(0, self.num_features)

    def image_features(self, images: Sequence):
        """L2-normalised image embeddings [n, num_features]; an unreadable image raises JudgeError."""
        arrays = rgb_arrays(images)
        bad = [i for i, a in enumerate(arrays) if a is None]
        if bad:
            raise JudgeError(f"clip-zeroshot: images {bad} are unreadable")
        return self._encode_images(arrays)

    def text_features(self, texts: Sequence[str]):
        """L2-normalised text embeddings [n, num_features]."""
        torch = self._torch
        feats = []
        with torch.inference_mode():
            for s in range(0, len(texts), self.batch_size):
                tokens = self.tokenizer(list(texts[s : s + self.batch_size])).to(self.device)
                f = self.model.encode_text(tokens).float()
                feats.append(torch.nn.functional.normalize(f, dim=-1).cpu())
        return torch.cat(feats) if feats else torch.zeros(0, self.num_features)

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
