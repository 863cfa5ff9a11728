"""Shared plumbing of the judges built on an open_clip model (``clip-zeroshot``, ``clip-score``, ``q16``,
``laion-aesthetic``): load it from a local weights file only, embed images and texts.

Weights never come from a hub: ``pretrained`` is a local open_clip state dict (``.safetensors``, ``.bin``,
``.pt``; a ``[judges]`` table may name it ``hf://owner/repo/file`` to take it from the Hugging Face cache),
``arch`` an open_clip model name, or a custom one given by ``model_config`` (a JSON file or a dict with
``embed_dim``/``vision_cfg``/``text_cfg``). OpenAI's CLIP checkpoints (HUB's Q16 and aesthetic judges use
OpenAI's ViT-L/14) need QuickGELU: ``arch = "ViT-L-14-quickgelu"`` (or ``force_quick_gelu = true``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Sequence

from hubkit.errors import JudgeError
from hubkit.hashing import file_sha256
from hubkit.judges.images import rgb_arrays
from hubkit.judges.registry import Judge

#: the file options every open_clip judge resolves (``Judge.weight_options``)
OPEN_CLIP_WEIGHTS = {
    "pretrained": "an open_clip state dict of the CLIP model (OpenAI ViT-L/14 for HUB: "
                  "hf://timm/vit_large_patch14_clip_224.openai/open_clip_model.safetensors, fetched once with "
                  "`hf download timm/vit_large_patch14_clip_224.openai open_clip_model.safetensors`)",
    "model_config": "an open_clip model config JSON (embed_dim, vision_cfg, text_cfg) for a custom arch",
}


def register_config(who: str, arch: str, model_config) -> None:
    """Make ``arch`` a known open_clip model name with ``model_config`` (a JSON file or a dict)."""
    import open_clip

    if isinstance(model_config, (str, Path)):
        path = Path(model_config)
        if not path.is_file():
            raise JudgeError(f"{who}: model_config {path} not found (a JSON file with embed_dim/vision_cfg/text_cfg)")
        cfg = json.loads(path.read_text())
    else:
        cfg = dict(model_config)
    # open_clip reads the file at once (add_model_config rescans), so the folder need not outlive this call
    with tempfile.TemporaryDirectory(prefix="hubkit-openclip-cfg-") as folder:
        (Path(folder) / f"{arch}.json").write_text(json.dumps(cfg))
        open_clip.add_model_config(Path(folder))


class OpenClipJudge(Judge):
    """Base of the open_clip judges (not registered itself): ``_load_clip`` in ``__init__``, then
    ``image_features`` / ``text_features`` (L2-normalised) and ``num_features``."""

    weight_options = dict(OPEN_CLIP_WEIGHTS)

    def _load_clip(self, pretrained, arch: str, *, model_config=None, force_quick_gelu: bool = False,
                   device: str = "cpu", batch_size: int = 32, hint: str = "") -> None:
        who = self.name or type(self).__name__
        if not pretrained:
            raise JudgeError(f"{who} needs local CLIP weights and never downloads: set pretrained=<open_clip state "
                             f"dict file> in its [judges] entry (hubkit judges check --judges FILE tests it){hint}")
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise JudgeError(f"{who}: weights file {path} not found; set pretrained=<local open_clip state dict "
                             f"file> (hub names such as 'openai' are not accepted)")
        import open_clip
        import torch

        if model_config is not None:
            register_config(who, arch, model_config)
        if open_clip.get_model_config(arch) is None:
            raise JudgeError(f"{who}: unknown open_clip architecture {arch!r}; pass model_config=<json> for a custom one")
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=str(path), device=device, force_quick_gelu=force_quick_gelu, pretrained_text=False
            )
        except Exception as exc:
            raise JudgeError(f"{who}: cannot load {path} as open_clip {arch!r}: {exc}") from exc
        model.eval()
        self._torch = torch
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.device = device
        self.batch_size = int(batch_size)
        self.arch = arch
        self.weights = {"pretrained": path}
        if model_config is not None and not isinstance(model_config, dict):
            self.weights["model_config"] = Path(model_config)
        self.clip_version = f"open_clip-{open_clip.__version__}:{arch}:{file_sha256(path)[:16]}"
        visual = getattr(model, "visual", None)
        self.num_features = int(getattr(visual, "output_dim", 0) or open_clip.get_model_config(arch)["embed_dim"])

    def info(self) -> dict:
        return {**super().info(), "arch": self.arch}

    # -- embeddings -------------------------------------------------------------------------------
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

    def readable_features(self, images: Sequence):
        """(indices of the readable images, their L2-normalised embeddings); unreadable ones are left out."""
        arrays = rgb_arrays(images)
        valid = [i for i, a in enumerate(arrays) if a is not None]
        return valid, self._encode_images([arrays[i] for i in valid])

    def image_features(self, images: Sequence):
        """L2-normalised image embeddings [n, num_features]; an unreadable image raises JudgeError."""
        arrays = rgb_arrays(images)
        bad = [i for i, a in enumerate(arrays) if a is None]
        if bad:
            raise JudgeError(f"{self.name}: images {bad} are unreadable")
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
