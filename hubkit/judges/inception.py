"""``inception``: FID features from torchmetrics' InceptionV3 (``NoTrainInceptionV3``), from a local weights file.

HUB computes FID with InceptionV3 pool features (2048-d) against COCO-30k statistics (reference §5.1b).
torchmetrics builds that network from torch-fidelity's ``FeatureExtractorInceptionV3``, whose weights file is
``weights-inception-2015-12-05-6726825d.pth`` (the TensorFlow FID graph converted; torch-fidelity's release
v0.2.0). torchmetrics would download it when no path is given; this judge only takes ``weights=<local file>``
(a ``.pth`` read with ``weights_only=True`` first, so no code in it runs, or a ``.safetensors`` with the same keys).

Images go in as uint8, are resized to ``input_size`` (299, the FID standard; torchmetrics' antialiased
bilinear unless ``antialias = false``, which is torch-fidelity's TF1-compatible resize) and come out as
float64 rows [n, 2048]. ``feature`` picks another of torchmetrics' FID feature layers (64, 192, 768; 2048 is
HUB's and the default), and ``input_size`` smaller than 299 (at least 75) is for tests only: both record
themselves in ``info()`` and the version, so such statistics never pass for real ones.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from hubkit.errors import JudgeError
from hubkit.hashing import file_sha256
from hubkit.judges.images import rgb_arrays
from hubkit.judges.registry import JUDGES, Judge
from hubkit.judges.roles import FeatureExtractor

WEIGHTS_HINT = ("torch-fidelity's InceptionV3 FID weights weights-inception-2015-12-05-6726825d.pth "
                "(github.com/toshas/torch-fidelity/releases/tag/v0.2.0)")
FEATURES = (64, 192, 768, 2048)  # torchmetrics' FrechetInceptionDistance(feature=...) layers


def inception_network(weights: str | Path | None, *, antialias: bool = True, feature: int = 2048):
    """torchmetrics' ``NoTrainInceptionV3`` with the ``feature``-d output (2048: the pool features FID uses);
    ``weights=None`` gives random weights (no download: the network's own initialisation), for tests."""
    import importlib.util

    import torch

    if importlib.util.find_spec("torch_fidelity") is None:  # torchmetrics' InceptionV3 is torch-fidelity's network
        raise JudgeError("the inception judge needs torch-fidelity (torchmetrics' InceptionV3): pip install torch-fidelity")
    from torchmetrics.image.fid import NoTrainInceptionV3

    if weights is None:
        class _Random(NoTrainInceptionV3):  # skips the state dict: random initialisation, nothing is read
            def load_state_dict(self, state_dict, strict=True, assign=False):
                return None

        with tempfile.TemporaryDirectory() as tmp:
            empty = Path(tmp) / "empty.pth"
            torch.save({}, empty)
            net = _Random("inception-v3-compat", [str(feature)], feature_extractor_weights_path=str(empty),
                          antialias=antialias)
        return net
    return NoTrainInceptionV3("inception-v3-compat", [str(feature)], feature_extractor_weights_path=str(weights),
                              antialias=antialias)


@JUDGES.register("inception")
class InceptionJudge(Judge, FeatureExtractor):
    detects = "InceptionV3 features for FID (2048-d pool features by default), as torchmetrics' FID computes them"
    threshold = None
    weight_options = {"weights": WEIGHTS_HINT}

    def __init__(self, weights: str | Path | None = None, antialias: bool = True, input_size: int = 299,
                 feature: int = 2048, device: str = "cpu", batch_size: int = 32):
        if not weights:
            raise JudgeError(f"inception needs weights=<local {WEIGHTS_HINT}> and never downloads")
        path = Path(weights).expanduser()
        if not path.is_file():
            raise JudgeError(f"inception: weights file {path} not found; set weights=<local {WEIGHTS_HINT}>")
        input_size, feature = int(input_size), int(feature)
        if feature not in FEATURES:
            raise JudgeError(f"inception: feature {feature} is not one of torchmetrics' FID layers {FEATURES} (HUB: 2048)")
        if input_size < 75:
            raise JudgeError(f"inception: input_size {input_size} is below InceptionV3's minimum of 75 (FID uses 299)")
        import torch

        tmp = None
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(path))
                fd, tmp = tempfile.mkstemp(suffix=".pth")
                os.close(fd)
                torch.save(state, tmp)
                source = tmp
            else:
                torch.load(str(path), map_location="cpu", weights_only=True)  # refuses a pickle that runs code
                source = str(path)
            net = inception_network(source, antialias=antialias, feature=feature)
        except JudgeError:
            raise
        except Exception as exc:
            raise JudgeError(f"inception: cannot load {path} as {WEIGHTS_HINT} ({type(exc).__name__}: {exc})") from exc
        finally:
            if tmp:
                os.unlink(tmp)
        net.INPUT_IMAGE_SIZE = input_size
        self._torch = torch
        self.net = net.to(device)
        self.device = device
        self.batch_size = int(batch_size)
        self.antialias = bool(antialias)
        self.input_size = input_size
        self.num_features = self.feature = feature
        self.weights = {"weights": path}
        import torchmetrics

        size = ("" if input_size == 299 else f"@{input_size}px") + ("" if feature == 2048 else f"/f{feature}")
        self.version = f"torchmetrics-{torchmetrics.__version__}:inception-v3-compat{size}:{file_sha256(path)[:16]}"

    def info(self) -> dict:
        return {**super().info(), "antialias": self.antialias, "input_size": self.input_size, "feature": self.feature}

    def fid_features(self, images: Sequence) -> np.ndarray:
        """float64 rows [n, feature]; an unreadable image raises JudgeError (FID has no row to leave out)."""
        torch = self._torch
        arrays = rgb_arrays(images)
        bad = [i for i, a in enumerate(arrays) if a is None]
        if bad:
            raise JudgeError(f"inception: images {bad} are unreadable")
        rows = []
        with torch.inference_mode():
            start = 0
            while start < len(arrays):  # a batch is a run of images of one size (the network resizes each batch)
                stop = start + 1
                while stop < len(arrays) and stop - start < self.batch_size and arrays[stop].shape == arrays[start].shape:
                    stop += 1
                x = torch.from_numpy(np.stack(arrays[start:stop])).permute(0, 3, 1, 2).contiguous().to(self.device)
                rows.append(self.net(x).reshape(stop - start, -1).double().cpu().numpy())
                start = stop
        return np.concatenate(rows) if rows else np.zeros((0, self.num_features))
