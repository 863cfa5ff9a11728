"""``laion-aesthetic``: LAION's improved aesthetic predictor, HUB's target image quality (reference §5.1c).

An MLP (768 -> 1024 -> 128 -> 64 -> 16 -> 1, dropout between the first four layers and no activations) on
L2-normalised CLIP ViT-L/14 image embeddings; HUB loads ``sac+logos+ava1-l14-linearMSE.pth`` and reports the
mean score of the target images. The MLP file is the state dict of LAION's ``MLP`` module (keys
``layers.0``, ``layers.2``, ``layers.4``, ``layers.6``, ``layers.7`` ``.weight``/``.bias``; a PyTorch file read
with ``weights_only=True``, or a ``.safetensors`` with the same keys). Its input size is read from the file
and must equal the CLIP model's embedding size. CLIP weights: see ``hubkit.judges.openclip``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from hubkit.errors import JudgeError
from hubkit.hashing import file_sha256
from hubkit.judges.openclip import OPEN_CLIP_WEIGHTS, OpenClipJudge
from hubkit.judges.registry import JUDGES
from hubkit.judges.roles import QualityScorer

#: (key prefix, output size) of the five Linear layers of LAION's MLP, in order; the first's input is the CLIP size
MLP_LAYERS = (("layers.0", 1024), ("layers.2", 128), ("layers.4", 64), ("layers.6", 16), ("layers.7", 1))


def aesthetic_mlp(input_size: int):
    """LAION's ``MLP`` module (improved-aesthetic-predictor) with random weights: the layout its files load into
    (a ``layers`` Sequential; the module's forward is ``layers(x)``)."""
    import torch.nn as nn

    net = nn.Module()
    net.layers = nn.Sequential(
        nn.Linear(input_size, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
        nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1),
    )
    return net


def read_tensors(path: Path, who: str) -> dict:
    """A state dict from a ``.safetensors`` file or a PyTorch file (``weights_only=True``: no code runs)."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise JudgeError(f"{who}: cannot read {path} as a state dict ({type(exc).__name__}: {exc})") from exc
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise JudgeError(f"{who}: {path} holds a {type(data).__name__}, not a state dict")
    return data


@JUDGES.register("laion-aesthetic")
class LaionAestheticJudge(OpenClipJudge, QualityScorer):
    detects = "aesthetic quality: LAION's improved aesthetic predictor (MLP on CLIP ViT-L/14), about 1-10"
    threshold = None
    weight_options = {**OPEN_CLIP_WEIGHTS, "mlp": (
        "LAION's aesthetic MLP sac+logos+ava1-l14-linearMSE.pth (github.com/christophschuhmann/"
        "improved-aesthetic-predictor, the file HUB loads)")}

    def __init__(
        self,
        mlp: str | Path | None = None,
        pretrained: str | Path | None = None,
        arch: str = "ViT-L-14-quickgelu",
        model_config: str | Path | dict | None = None,
        force_quick_gelu: bool = False,
        device: str = "cpu",
        batch_size: int = 32,
    ):
        if not mlp:
            raise JudgeError("laion-aesthetic needs mlp=<local sac+logos+ava1-l14-linearMSE.pth> and never downloads")
        mlp_path = Path(mlp).expanduser()
        if not mlp_path.is_file():
            raise JudgeError(f"laion-aesthetic: MLP file {mlp_path} not found; set mlp=<local "
                             f"sac+logos+ava1-l14-linearMSE.pth>")
        self._load_clip(pretrained, arch, model_config=model_config, force_quick_gelu=force_quick_gelu,
                        device=device, batch_size=batch_size)
        state = {k.removeprefix("module."): v for k, v in read_tensors(mlp_path, "laion-aesthetic").items()}
        want = {f"{prefix}.{p}" for prefix, _ in MLP_LAYERS for p in ("weight", "bias")}
        if set(state) != want:
            raise JudgeError(f"laion-aesthetic: {mlp_path} is not LAION's MLP state dict (keys {sorted(state)[:6]}..., "
                             f"expected {sorted(want)})")
        input_size = int(state["layers.0.weight"].shape[1])
        if input_size != self.num_features:
            raise JudgeError(f"laion-aesthetic: the MLP in {mlp_path} takes {input_size}-d embeddings but the CLIP "
                             f"model {arch!r} gives {self.num_features}-d ones; pair it with the CLIP it was trained on")
        net = aesthetic_mlp(input_size)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise JudgeError(f"laion-aesthetic: {mlp_path} does not fit LAION's MLP layout: {exc}") from exc
        self.mlp = net.eval().to(device)
        self.weights["mlp"] = mlp_path
        self.version = f"{self.clip_version}+mlp:{file_sha256(mlp_path)[:16]}"

    def quality(self, images: Sequence) -> list[float]:
        """The aesthetic score per image (NaN for an unreadable image)."""
        torch = self._torch
        valid, feats = self.readable_features(images)
        out = [float("nan")] * len(images)
        if valid:
            with torch.inference_mode():
                scores = self.mlp.layers(feats.to(self.device)).reshape(-1).float().cpu().tolist()
            for i, s in zip(valid, scores):
                out[i] = s
        return out
