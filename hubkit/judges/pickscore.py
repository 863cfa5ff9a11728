"""``pickscore``: PickScore (Kirstain et al. 2023) of image-text pairs, one of HUB's general-alignment scorers.

What HUB does (reference §5.2a)
    General alignment on the COCO captions reports ImageReward and PickScore, each the mean over the images.
    PickScore is ``yuvalkirstain/PickScore_v1`` (a CLIP-ViT-H/14 fine-tuned on Pick-a-Pic preferences, a
    transformers ``CLIPModel``) with the processor of ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``; the score of an
    image and its caption is ``logit_scale.exp() * cos(image embedding, text embedding)`` (SD 1.5: 21.475).

What hubkit does
    Exactly that score per (image, text) pair: the model's projected embeddings, each L2-normalised, their dot
    product times ``exp(logit_scale)`` (computed in float32 whatever the model's dtype); texts are tokenised with
    padding and truncation to 77 tokens like the reference. Images go through the processor's PIL backend (the
    slow ``CLIPImageProcessor`` of the reference's transformers versions). No softmax: the reference's ``calc_probs``
    softmax only ranks several images of one prompt. An unreadable image scores NaN (it leaves the paired mean).
    Batched (``batch_size`` pairs per forward pass) and deterministic.

Weights (never downloaded; ``model`` and ``processor`` are local folders or repo ids already in the HF cache)::

    hf download yuvalkirstain/PickScore_v1
    hf download laion/CLIP-ViT-H-14-laion2B-s32B-b79K preprocessor_config.json tokenizer.json tokenizer_config.json \
        vocab.json merges.txt special_tokens_map.json

``processor`` defaults to the model folder when it holds a processor (``preprocessor_config.json`` or
``processor_config.json``), else to ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K`` from the Hugging Face cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from hubkit.errors import JudgeError
from hubkit.judges.config import resolve_folder, weight_files, weights_digest
from hubkit.judges.images import rgb_arrays
from hubkit.judges.registry import JUDGES, Judge
from hubkit.judges.roles import ImageTextScorer

MODEL_REPO = "yuvalkirstain/PickScore_v1"
PROCESSOR_REPO = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
MAX_LENGTH = 77
_DTYPES = ("auto", "bfloat16", "float16", "float32")
_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def has_processor(folder: Path) -> bool:
    return any((folder / name).is_file() for name in _PROCESSOR_FILES)


def _pooled(out):
    """A ``get_*_features`` result as a tensor (transformers 5 returns an output whose ``pooler_output`` is projected)."""
    return out if hasattr(out, "shape") else out.pooler_output


@JUDGES.register("pickscore")
class PickScoreJudge(Judge, ImageTextScorer):
    detects = "image-text preference: PickScore = exp(logit_scale) * cos(image, text) (scores, decides nothing)"
    threshold = None
    repo_options = {
        "model": f"PickScore_v1 (a transformers CLIPModel checkpoint folder, or {MODEL_REPO} in the Hugging Face cache)",
        "processor": f"the CLIP-ViT-H-14 processor folder (or {PROCESSOR_REPO} in the Hugging Face cache)",
    }

    def __init__(
        self,
        model: str | Path | None = None,
        processor: str | Path | None = None,
        device: str = "auto",
        batch_size: int = 32,
        dtype: str = "float32",
    ):
        who = self.name or "pickscore"
        if dtype not in _DTYPES:
            raise JudgeError(f"{who}: dtype={dtype!r} is not one of {', '.join(_DTYPES)}")
        if int(batch_size) < 1:
            raise JudgeError(f"{who}: batch_size must be >= 1, got {batch_size}")
        if not model:
            raise JudgeError(f"{who} needs model=<the PickScore_v1 folder, or {MODEL_REPO} in the Hugging Face cache> "
                             f"and never downloads; fetch it with `hf download {MODEL_REPO}`")
        folder, name = resolve_folder(who, "model", model, f"hf download {MODEL_REPO}")
        if not (folder / "config.json").is_file():
            raise JudgeError(f"{who}: {folder} has no config.json, so it is not a transformers checkpoint folder; fix: "
                             f"`hf download {MODEL_REPO} --local-dir {folder}`")
        weights = weight_files(folder)
        if not weights:
            raise JudgeError(f"{who}: {folder} holds no *.safetensors or pytorch_model*.bin weights; fix: "
                             f"`hf download {MODEL_REPO} --local-dir {folder}`")
        if processor:
            proc_folder, proc_name = resolve_folder(who, "processor", processor, f"hf download {PROCESSOR_REPO}")
        elif has_processor(folder):
            proc_folder, proc_name = folder, name
        else:
            proc_folder, proc_name = resolve_folder(
                who, "processor (the model folder holds none, so the default)", PROCESSOR_REPO,
                f"hf download {PROCESSOR_REPO}")

        import torch
        import transformers
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        try:
            self.model = CLIPModel.from_pretrained(str(folder), local_files_only=True, dtype=torch_dtype).to(device).eval()
        except Exception as exc:
            raise JudgeError(f"{who}: cannot load {folder} as a transformers CLIPModel with transformers "
                             f"{transformers.__version__} ({type(exc).__name__}: {_first_line(exc)}); fix: "
                             f"`hf download {MODEL_REPO} --local-dir {folder}`") from exc
        try:
            self.image_processor = AutoImageProcessor.from_pretrained(str(proc_folder), local_files_only=True,
                                                                      backend="pil")
            self.tokenizer = AutoTokenizer.from_pretrained(str(proc_folder), local_files_only=True)
        except Exception as exc:
            raise JudgeError(f"{who}: cannot load the CLIP processor from {proc_folder} ({type(exc).__name__}: "
                             f"{_first_line(exc)}); fix: `hf download {PROCESSOR_REPO}` and set processor to it") from exc
        self._torch = torch
        self.folder, self.processor_folder = folder, proc_folder
        self.model_name, self.processor_name = name, proc_name
        self.device = device
        self.dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        self.batch_size = int(batch_size)
        self.logit_scale = float(self.model.logit_scale.detach().float().exp().cpu())
        self.weights = {f"model/{f.name}": f for f in weights}
        self.version = f"transformers-{transformers.__version__}:{name}:{weights_digest(weights)[:16]}"

    def info(self) -> dict:
        return {**super().info(), "model": self.model_name, "processor": self.processor_name, "dtype": self.dtype,
                "logit_scale": self.logit_scale, "image_processor": type(self.image_processor).__name__}

    # -- embeddings -------------------------------------------------------------------------------------------------
    def image_embeddings(self, arrays: Sequence):
        """L2-normalised float32 image embeddings [n, d] of RGB uint8 arrays, ``batch_size`` at a time."""
        import PIL.Image

        torch = self._torch
        out = []
        with torch.inference_mode():
            for s in range(0, len(arrays), self.batch_size):
                images = [PIL.Image.fromarray(a) for a in arrays[s : s + self.batch_size]]
                pixels = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
                f = _pooled(self.model.get_image_features(pixel_values=pixels.to(self.device, self.model.dtype)))
                out.append(torch.nn.functional.normalize(f.float(), dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.model.config.projection_dim)

    def text_embeddings(self, texts: Sequence[str]):
        """L2-normalised float32 text embeddings [n, d] (padded and truncated to 77 tokens), ``batch_size`` at a time."""
        torch = self._torch
        out = []
        with torch.inference_mode():
            for s in range(0, len(texts), self.batch_size):
                tokens = self.tokenizer(list(texts[s : s + self.batch_size]), padding=True, truncation=True,
                                        max_length=MAX_LENGTH, return_tensors="pt").to(self.device)
                f = _pooled(self.model.get_text_features(input_ids=tokens["input_ids"],
                                                         attention_mask=tokens["attention_mask"]))
                out.append(torch.nn.functional.normalize(f.float(), dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.model.config.projection_dim)

    def score(self, images: Sequence, texts: Sequence[str]) -> list[float]:
        """One PickScore per (image, text) pair; NaN for an unreadable image (it leaves the paired mean)."""
        if len(images) != len(texts):
            raise ValueError(f"{self.name}: {len(images)} images but {len(texts)} texts")
        arrays = rgb_arrays(images)
        valid = [i for i, a in enumerate(arrays) if a is not None]
        out = [float("nan")] * len(images)
        if valid:
            img = self.image_embeddings([arrays[i] for i in valid])
            txt = self.text_embeddings([str(texts[i]) for i in valid])
            for i, s in zip(valid, (self.logit_scale * (img * txt).sum(-1)).tolist()):
                out[i] = s
        return out


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""
