"""The micro world's judges: ``micro-detector``, ``micro-clip`` and ``micro-quality``.

Each loads ``<name>.safetensors`` + ``<name>.json`` from ``weights_dir`` (default: the shipped
``hubkit_micro/weights/judges/``), built by ``python -m hubkit_micro.train_judges``.
Weights are stored in float16 and run in float32, on the CPU, in eval mode (deterministic).

They reach the engine's judge registry through the entry-point group ``hubkit.judges`` (``pyproject.toml``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from hubkit.errors import JudgeError
from hubkit.hashing import file_sha256
from hubkit.judges import Detector, FeatureExtractor, ImageTextScorer, Judge, QualityScorer, Verdict
from hubkit.judges.images import batch_tensor, rgb_arrays


def default_weights_dir() -> Path:
    from hubkit_micro.paths import JUDGES

    return JUDGES


def load_micro_net(name: str, weights_dir: str | Path | None = None):
    """(network in eval mode, its JSON config, version string) for ``name`` in ``weights_dir``."""
    from safetensors.torch import load_file

    from hubkit_micro import judge_nets

    folder = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    wpath, cpath = folder / f"{name}.safetensors", folder / f"{name}.json"
    if not wpath.is_file() or not cpath.is_file():
        raise JudgeError(
            f"{name}: weights {wpath} not found; build them with `python -m hubkit_micro.train_judges` "
            f"(or pass weights_dir=<folder with {name}.safetensors and {name}.json>)"
        )
    cfg = json.loads(cpath.read_text())
    arch = cfg["arch"]
    if arch["type"] == "detector":
        net = judge_nets.DetectorNet(len(cfg["labels"]), tuple(arch["widths"]), dropout=0.0)
    elif arch["type"] == "quality":
        net = judge_nets.QualityNet(tuple(arch["widths"]))
    elif arch["type"] == "clip":
        net = judge_nets.MicroClipNet(
            arch["vocab"], arch["embed_dim"], tuple(arch["widths"]), arch["text_dim"], arch["text_layers"],
            arch["text_heads"], arch["context"],
        )
    else:
        raise JudgeError(f"{name}: unknown architecture type {arch['type']!r} in {cpath}")
    state = load_file(str(wpath))
    extra = {k: v for k, v in state.items() if k.startswith("extra.")}
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items() if not k.startswith("extra.")}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise JudgeError(f"{name}: {wpath} does not match the architecture in {cpath}: {exc}") from exc
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    version = f"{name}:{file_sha256(wpath)[:16]}"
    cfg["_extra"] = extra
    return net, cfg, version


def _as_batch(images) -> tuple["torch.Tensor", list[int], int]:  # noqa: F821
    """(float [k,3,64,64] in [0,1] of the readable images, their indices, n). Tensors pass through."""
    import torch

    if isinstance(images, torch.Tensor):
        x = images
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.shape[1] != 3 and x.shape[-1] == 3:
            x = x.permute(0, 3, 1, 2)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if x.shape[-1] != 64 or x.shape[-2] != 64:
            x = torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
        return x, list(range(x.shape[0])), x.shape[0]
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    arrays = rgb_arrays(images)
    valid = [i for i, a in enumerate(arrays) if a is not None]
    return batch_tensor([arrays[i] for i in valid], 64), valid, len(arrays)


class _MicroJudge(Judge):
    weights_name = ""

    def __init__(self, weights_dir: str | Path | None, batch_size: int):
        self.net, self.config, self.version = load_micro_net(self.weights_name, weights_dir)
        self.batch_size = int(batch_size)

    def _run(self, fn, x):
        import torch

        outs = []
        with torch.inference_mode():
            for s in range(0, x.shape[0], self.batch_size):
                outs.append(fn(x[s : s + self.batch_size]))
        return torch.cat(outs) if outs else None


# -------------------------------------------------------------------------------------------------
# micro-detector
# -------------------------------------------------------------------------------------------------
def _lexicon() -> dict[str, tuple[str, ...]]:
    """lower-cased word -> labels: concept names, labels, kinds ("tool", "face", ...), translated nouns."""
    from hubkit_micro import world

    table: dict[str, tuple[str, ...]] = {}
    kinds = {"thing": world.THINGS, "character": world.CHARACTERS, "face": world.FACES, "weapon": world.WEAPONS,
             "tool": world.TOOLS, "style": world.STYLES}
    for k, labels in kinds.items():
        table[k] = tuple(labels)
        table[k + "s"] = tuple(labels)
    for noun, langs in world.NOUNS.items():
        target = table.get(noun) or ((noun,) if noun in world.LABEL_INDEX else None)
        if target is None:
            continue
        for word, _gender in langs.values():
            table.setdefault(word.lower(), target)
    for name, concept in world.CONCEPTS.items():
        table[name.lower()] = tuple(concept.labels)
    for label in world.ALL_LABELS:
        table[label.lower()] = (label,)
    return table


class MicroDetectorJudge(_MicroJudge, Detector):
    """Multi-label CNN over the micro world's labels (objects, characters, faces, weapons, tools, styles)."""

    detects = "micro-world concept: any of the concept's labels (objects, characters, faces, weapons, tools, styles)"
    name = "micro-detector"
    weights_name = "micro-detector"

    def __init__(self, threshold: float | None = None, weights_dir: str | Path | None = None, batch_size: int = 256):
        super().__init__(weights_dir, batch_size)
        self.labels: tuple[str, ...] = tuple(self.config["labels"])
        self.threshold = float(self.config.get("threshold", 0.5) if threshold is None else threshold)
        self._lex = _lexicon()

    def resolve(self, concept: str) -> tuple[str, ...]:
        """The labels that count as ``concept`` (a target such as "weapon" -> its labels; a label -> itself)."""
        labels = self._lex.get(concept.strip().lower())
        if labels is None:
            raise JudgeError(
                f"micro-detector cannot see concept {concept!r}; known: concepts {', '.join(self._concepts())}; "
                f"labels {', '.join(self.labels)}; kinds thing/character/face/weapon/tool/style (case-insensitive)"
            )
        missing = [l for l in labels if l not in self.labels]
        if missing:
            raise JudgeError(f"micro-detector weights have no output for {missing}; rebuild the judge weights")
        return labels

    @staticmethod
    def _concepts():
        from hubkit_micro import world

        return world.CONCEPTS

    def probabilities(self, images):
        """Per-label probabilities [n, len(labels)] (NaN rows for unreadable images)."""
        import torch

        x, valid, n = _as_batch(images)
        out = torch.full((n, len(self.labels)), float("nan"))
        if valid:
            out[valid] = self._run(lambda b: torch.sigmoid(self.net(b)), x)
        return out

    def concept_scores(self, images, concept: str):
        """max over the concept's labels of the label probability, per image [n]."""
        idx = [self.labels.index(l) for l in self.resolve(concept)]
        return self.probabilities(images)[:, idx].amax(dim=1)

    def detect(self, images: Sequence, concept: str) -> list[Verdict]:
        idx = [self.labels.index(l) for l in self.resolve(concept)]
        p = self.probabilities(images)[:, idx].amax(dim=1)
        return [Verdict.from_score(s, self.threshold) for s in p.tolist()]


# -------------------------------------------------------------------------------------------------
# micro-quality
# -------------------------------------------------------------------------------------------------
class MicroQualityJudge(_MicroJudge, QualityScorer, Detector):
    """Image quality in [0, 10] (higher = cleaner), the micro world's stand-in for the LAION aesthetic score.

    ``detect`` answers "is this image clean?" (score >= threshold) and ignores the concept.
    """

    detects = "a clean (undegraded) render: quality score >= threshold on a 0-10 scale"
    name = "micro-quality"
    weights_name = "micro-quality"

    def __init__(self, threshold: float = 5.0, weights_dir: str | Path | None = None, batch_size: int = 256):
        super().__init__(weights_dir, batch_size)
        self.threshold = float(threshold)

    def quality(self, images):
        """Quality per image [n] in [0, 10] (NaN for unreadable images)."""
        import torch

        x, valid, n = _as_batch(images)
        out = torch.full((n,), float("nan"))
        if valid:
            out[valid] = self._run(lambda b: 10.0 * torch.sigmoid(self.net(b)), x)
        return out

    def detect(self, images: Sequence, concept: str = "") -> list[Verdict]:
        return [Verdict.from_score(s, self.threshold) for s in self.quality(images).tolist()]


# -------------------------------------------------------------------------------------------------
# micro-clip
# -------------------------------------------------------------------------------------------------
class MicroClipJudge(_MicroJudge, Detector, ImageTextScorer, FeatureExtractor):
    """A small CLIP of the micro world (6 languages, the real CLIP tokenizer).

    ``image_features`` / ``text_features`` are L2-normalised [n, num_features]; ``score`` is CLIPScore
    (100·max(cos, 0)); ``fid_features(images)`` are the image tower's rows for FID (``fid_feature()`` is that
    tower as a torchmetrics FID/KID feature module).
    ``detect`` is zero-shot: the concept's prompts against prompts for every other micro-world label.
    """

    detects = "micro-world concept by zero-shot image-text similarity"
    name = "micro-clip"
    weights_name = "micro-clip"

    def __init__(self, threshold: float = 0.3, weights_dir: str | Path | None = None, batch_size: int = 256):
        import torch

        super().__init__(weights_dir, batch_size)
        self.threshold = float(threshold)
        self.num_features = int(self.config["arch"]["embed_dim"])
        self.context = int(self.config["arch"]["context"])
        vocab_ids = self.config["_extra"]["extra.vocab_ids"].long()  # CLIP ids, in small-vocab order from 2
        self._lookup = torch.ones(int(self.config["clip_vocab_size"]), dtype=torch.long)  # 1 = unknown token
        self._lookup[vocab_ids] = torch.arange(2, 2 + len(vocab_ids))
        self._tokenizer = None
        self._lex = None
        self._fid_module = None

    def tokenize(self, texts: Sequence[str]):
        """(ids [n, context] in the small vocabulary, mask [n, context] bool)."""
        from hubkit_micro.judge_text import encode_texts

        if self._tokenizer is None:
            from hubkit.tokenizer import clip_tokenizer

            self._tokenizer = clip_tokenizer()
        return encode_texts(self._tokenizer, list(texts), self._lookup, self.context)

    def image_features(self, images):
        import torch

        x, valid, n = _as_batch(images)
        if len(valid) != n:
            bad = sorted(set(range(n)) - set(valid))
            raise JudgeError(f"micro-clip: images {bad} are unreadable")
        if n == 0:
            return torch.zeros(0, self.num_features)
        return self._run(lambda b: torch.nn.functional.normalize(self.net.encode_image(b), dim=-1), x)

    def text_features(self, texts: Sequence[str]):
        import torch

        if len(texts) == 0:
            return torch.zeros(0, self.num_features)
        ids, mask = self.tokenize(texts)
        outs = []
        with torch.inference_mode():
            for s in range(0, ids.shape[0], self.batch_size):
                f = self.net.encode_text(ids[s : s + self.batch_size], mask[s : s + self.batch_size])
                outs.append(torch.nn.functional.normalize(f, dim=-1))
        return torch.cat(outs)

    def score(self, images, texts: Sequence[str]):
        """CLIPScore per (image, text) pair [n]: 100 * max(cos, 0)."""
        img, txt = self.image_features(images), self.text_features(texts)
        if img.shape[0] != txt.shape[0]:
            raise JudgeError(f"micro-clip score: {img.shape[0]} images but {len(texts)} texts")
        return 100.0 * (img * txt).sum(-1).clamp(min=0)

    def fid_feature(self):
        """The image tower as ``torchmetrics`` FID/KID ``feature=`` module (uint8 [n,3,H,W] in, [n, d] out)."""
        from hubkit_micro.judge_nets import MicroClipFIDFeature

        return MicroClipFIDFeature(self.net)

    def fid_features(self, images):
        """FID feature rows of ``images``: the image tower's output, float64 [n, num_features]."""
        from hubkit.metrics.fid import image_features

        if self._fid_module is None:
            self._fid_module = self.fid_feature()
        return image_features(self._fid_module, images)

    # zero-shot detection
    def _zero_shot_texts(self):
        """(candidate names, their text features). Objects: "a photo of X"; styles: "a painting in the style
        of S" against the style prompts and the object prompts (so a plain image has somewhere else to go)."""
        import torch

        from hubkit_micro import world

        objects = list(world.OBJECT_LABELS)
        styles = list(world.STYLE_LABELS)
        obj = self.text_features([f"a photo of {l}" for l in objects])
        sty = self.text_features([f"a painting in the style of {s}" for s in styles])
        # an unstyled image should prefer some "a photo of X" over every style prompt
        return {"objects": (objects, obj), "styles": (styles + objects, torch.cat([sty, obj]))}

    def detect(self, images: Sequence, concept: str) -> list[Verdict]:
        """Zero-shot: softmax over the object prompts (for a style: over the style and object prompts);
        the concept's score is the summed probability of its labels. Weaker than micro-detector (several
        objects in one image share the probability mass); use it as a cross-check."""
        import torch

        if self._lex is None:
            self._lex = _lexicon()
            self._zs = self._zero_shot_texts()
        wanted = self._lex.get(concept.strip().lower())
        if wanted is None:
            raise JudgeError(f"micro-clip cannot see concept {concept!r}; use a micro-world concept or label name")
        group = "styles" if wanted[0] in _styles() else "objects"
        names, txt = self._zs[group]
        idx = [names.index(l) for l in wanted]
        x, valid, n = _as_batch(images)
        probs = torch.full((n,), math.nan)
        if valid:
            img = self.image_features(x)
            scale = float(self.net.logit_scale.detach().exp())
            probs[valid] = torch.softmax(scale * img @ txt.T, dim=-1)[:, idx].sum(-1)
        return [Verdict.from_score(s, self.threshold) for s in probs.tolist()]


def _styles():
    from hubkit_micro import world

    return set(world.STYLES)


def micro_clip_fid_feature(weights_dir: str | Path | None = None):
    """Shortcut: the shipped micro-clip image tower as a torchmetrics FID/KID feature module."""
    return MicroClipJudge(weights_dir=weights_dir).fid_feature()
