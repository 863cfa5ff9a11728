"""FID with a pluggable feature extractor, wrapping ``torchmetrics``' ``FrechetInceptionDistance``.

HUB computes FID against precomputed COCO statistics with InceptionV3 and "FID-SD" against the base
model's images (reference §5.1).  Here the feature network is pluggable: any ``torch.nn.Module`` with a
``num_features`` attribute that maps a uint8 ``(N, 3, H, W)`` tensor to ``(N, num_features)``, or a judge
with ``image_features(images)`` and ``num_features`` (e.g. ``micro-clip``).  The real side is either
images passed with ``real=True`` (the base model's images -> FID-SD) or a statistics file
(``.npz`` with ``mu``, ``sigma`` and optionally ``n``; write one with ``save_reference``).

FID depends strongly on n (it is biased upward at small n), so the measurement reports n and the
feature network; compare FIDs only at equal n and features.  ``bootstrap=B`` adds a percentile
interval from B resamples of the feature sets (fixed seed); without it the interval is the point.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hubkit.errors import ConfigError
from hubkit.metrics.registry import Metric, register_metric
from hubkit.stats import Measurement


def images_to_uint8(images: Any) -> torch.Tensor:
    """PIL images / HWC uint8 arrays / a (N, 3, H, W) tensor -> a uint8 (N, 3, H, W) tensor."""
    if isinstance(images, torch.Tensor):
        x = images
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dtype != torch.uint8:
            x = (x.clamp(0, 1) * 255).round().to(torch.uint8) if x.is_floating_point() else x.to(torch.uint8)
        return x
    arrays = []
    for im in images:
        if hasattr(im, "convert"):
            im = np.asarray(im.convert("RGB"))
        a = np.asarray(im)
        if a.ndim == 2:
            a = np.stack([a] * 3, -1)
        arrays.append(a.astype(np.uint8))
    if not arrays:
        return torch.zeros((0, 3, 1, 1), dtype=torch.uint8)
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"FID needs images of one size per update, got {sorted(shapes)}")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


class JudgeFeatures(torch.nn.Module):
    """Adapter: a judge's ``image_features(images)`` as a feature module for torchmetrics."""

    def __init__(self, judge):
        super().__init__()
        self.judge = judge
        self.num_features = int(judge.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from PIL import Image

        arr = x.detach().cpu().permute(0, 2, 3, 1).numpy().astype(np.uint8)
        feats = self.judge.image_features([Image.fromarray(a) for a in arr])
        return torch.as_tensor(feats).float().reshape(len(arr), -1)


def feature_module(feature) -> torch.nn.Module:
    if isinstance(feature, torch.nn.Module) and not hasattr(feature, "image_features"):
        if not hasattr(feature, "num_features"):
            raise ConfigError("an FID feature module needs a num_features attribute")
        return feature
    if hasattr(feature, "image_features") and hasattr(feature, "num_features"):
        return JudgeFeatures(feature)
    raise ConfigError(f"FID feature must be a torch Module with num_features or a judge with image_features and "
                      f"num_features, got {type(feature).__name__}")


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between two Gaussians (torchmetrics' eigenvalue form, float64)."""
    mu1, mu2 = (torch.as_tensor(np.asarray(m), dtype=torch.float64) for m in (mu1, mu2))
    s1, s2 = (torch.as_tensor(np.asarray(s), dtype=torch.float64) for s in (sigma1, sigma2))
    try:
        from torchmetrics.image.fid import _compute_fid

        return float(_compute_fid(mu1, s1, mu2, s2))
    except ImportError:  # pragma: no cover - older/newer torchmetrics
        c = torch.linalg.eigvals(s1 @ s2).sqrt().real.sum()
        return float((mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * c)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of feature rows: the Gaussian FID compares."""
    return features.mean(0), np.cov(features, rowvar=False, ddof=1)


def read_statistics(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an FID statistics ``.npz`` (``mu``, ``sigma``, optionally ``n``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"FID reference statistics {path} not found (an .npz with mu and sigma)")
    with np.load(path) as z:
        return _require_mu_sigma({k: z[k] for k in z.files}, str(path))


def _require_mu_sigma(data: dict, label: str) -> dict:
    if "mu" not in data or "sigma" not in data:
        raise ConfigError(f"FID reference {label}: needs arrays 'mu' and 'sigma', has {sorted(data)}")
    return data


def write_statistics(path: str | Path, mu, sigma, n: int) -> Path:
    """Write FID statistics as ``.npz`` (``mu``, ``sigma``, ``n``), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, mu=np.asarray(mu), sigma=np.asarray(sigma), n=np.array(int(n)))
    tmp.replace(path)
    return path


def fid_from_features(real, fake: np.ndarray) -> float:
    """FID of feature rows ``fake`` against feature rows ``real`` (or fixed statistics ``(mu, sigma)``)."""
    mu_r, s_r = real if isinstance(real, tuple) else feature_statistics(real)
    if np.shape(mu_r)[-1] != fake.shape[1]:
        raise ConfigError(f"FID statistics have {np.shape(mu_r)[-1]} features, the feature network gives {fake.shape[1]}: "
                          f"they were computed with other features")
    return max(0.0, frechet_distance(mu_r, s_r, *feature_statistics(fake)))  # tiny negatives are rounding


def image_features(feature, images: Any) -> np.ndarray:
    """The FID feature network's rows for ``images`` (float64 [n, num_features])."""
    module = feature_module(feature)
    x = images_to_uint8(images)
    param = next(module.parameters(), None)
    if param is not None:
        x = x.to(param.device)
    with torch.inference_mode():
        return module(x).detach().double().cpu().reshape(x.shape[0], -1).numpy()


def paired_ratio_interval(real, fake: np.ndarray, floor: np.ndarray, *, resamples: int, seed: int = 0,
                          confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of FID(real, fake) / FID(real, floor).

    Row i of the feature arrays comes from the same caption (and, for ``real``/``fake``, the same seed), so
    captions are resampled jointly: resampling each side on its own would break the pairing the ratio relies
    on and widen the interval with noise the comparison does not have. ``real`` may instead be reference
    statistics ``(mu, sigma)``, which stay fixed.
    """
    fixed = isinstance(real, tuple)
    if len(fake) != len(floor) or (not fixed and len(real) != len(fake)):
        raise ValueError(f"paired FID needs equal rows, got {'stats' if fixed else len(real)}, {len(fake)}, {len(floor)}")
    rng = np.random.default_rng(seed)
    n, ratios = len(fake), []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        r = real if fixed else feature_statistics(real[idx])
        num, den = fid_from_features(r, fake[idx]), fid_from_features(r, floor[idx])
        ratios.append(num / den if den > 0 else math.inf)
    alpha = 1 - confidence
    low, high = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


@register_metric("fid", "fid_vs_base")
class FID(Metric):
    """Streaming FID: ``update(images, real=...)``, ``compute() -> Measurement`` (lower is better)."""

    direction = "lower"
    aggregation = "frechet"
    description = "Fréchet distance between feature distributions of generated and real/base images"

    def __init__(self, feature, reference: str | Path | dict | None = None, *, bootstrap: int = 0, seed: int = 0,
                 confidence: float = 0.95, name: str | None = None, feature_name: str | None = None):
        from torchmetrics.image.fid import FrechetInceptionDistance

        if name:
            self.name = name
        self.module = feature_module(feature)
        self.feature_name = feature_name or getattr(feature, "name", "") or type(feature).__name__
        self.bootstrap = int(bootstrap)
        self.seed = seed
        self.confidence = confidence
        self.fid = FrechetInceptionDistance(feature=self.module, reset_real_features=reference is None)
        self.reference = None
        self._captured: dict[bool, list[np.ndarray]] = {True: [], False: []}
        self._side: bool | None = None
        if self.bootstrap:
            self.module.register_forward_hook(self._capture)
        if reference is not None:
            self._load_reference(reference)

    # -- reference statistics -------------------------------------------------------------------------
    def _load_reference(self, reference) -> None:
        data, label = ((_require_mu_sigma(reference, "dict"), "dict") if isinstance(reference, dict)
                       else (read_statistics(reference), str(reference)))
        mu = torch.as_tensor(np.asarray(data["mu"], dtype=np.float64)).reshape(-1)
        sigma = torch.as_tensor(np.asarray(data["sigma"], dtype=np.float64))
        d = int(self.fid.real_features_sum.shape[0])
        if mu.shape[0] != d or tuple(sigma.shape) != (d, d):
            raise ConfigError(f"FID reference {label}: mu/sigma have {mu.shape[0]} features, the feature network "
                              f"gives {d}; it was computed with other features")
        n = int(np.asarray(data.get("n", 50000)).item())
        # torchmetrics keeps sums; set them so that compute() recovers exactly this mu and sigma
        self.fid.real_features_sum = mu * n
        self.fid.real_features_cov_sum = sigma * (n - 1) + n * torch.outer(mu, mu)
        self.fid.real_features_num_samples = torch.tensor(n, dtype=torch.long)
        self.reference = {"label": label, "mu": mu.numpy(), "sigma": sigma.numpy(), "n": n}

    def real_stats(self) -> tuple[np.ndarray, np.ndarray, int]:
        n = int(self.fid.real_features_num_samples)
        if n < 2:
            raise ConfigError("FID: fewer than 2 real images")
        mu = (self.fid.real_features_sum / n)
        cov = (self.fid.real_features_cov_sum - n * torch.outer(mu, mu)) / (n - 1)
        return mu.numpy(), cov.numpy(), n

    def save_reference(self, path: str | Path) -> Path:
        """Write the real side's statistics as ``.npz`` (mu, sigma, n) for later runs."""
        mu, sigma, n = self.real_stats()
        return write_statistics(path, mu, sigma, n)

    # -- streaming ------------------------------------------------------------------------------------
    def _capture(self, module, inputs, output) -> None:
        if self._side is not None:
            self._captured[self._side].append(output.detach().double().cpu().reshape(output.shape[0], -1).numpy())

    def update(self, images: Any, real: bool = False) -> None:
        """Add generated images (``real=False``) or real/base images (``real=True``)."""
        if real and self.reference is not None:
            raise ConfigError("FID: real statistics come from the reference file; do not add real images too")
        x = images_to_uint8(images)
        if x.shape[0] == 0:
            return
        param = next(self.module.parameters(), None)
        if param is not None:
            x = x.to(param.device)
        self._side = bool(real)
        try:
            with torch.inference_mode():
                self.fid.update(x, real=bool(real))
        finally:
            self._side = None

    def reset(self) -> None:
        self.fid.reset()  # keeps reference statistics (reset_real_features=False when a reference is given)
        self._captured = {True: [], False: []}

    @property
    def n_fake(self) -> int:
        return int(self.fid.fake_features_num_samples)

    @property
    def n_real(self) -> int:
        return int(self.fid.real_features_num_samples)

    def compute(self) -> Measurement:
        details = {"features": self.feature_name, "num_features": int(self.fid.real_features_sum.shape[0]),
                   "n_real": self.n_real, "reference": self.reference["label"] if self.reference else "images"}
        if self.n_fake < 2 or self.n_real < 2:
            return Measurement(self.name, math.nan, math.nan, math.nan, self.n_fake, None, self.direction, "",
                               0, {**details, "note": "FID needs at least 2 images on each side"}, self.confidence)
        value = max(0.0, float(self.fid.compute()))  # FID >= 0; tiny negatives are rounding
        low = high = value
        details["interval"] = "none (point estimate; FID is biased upward at small n)"
        if self.bootstrap:
            low, high = self._bootstrap(value)
            details["interval"] = f"bootstrap percentile, {self.bootstrap} resamples, seed {self.seed}"
        return Measurement(self.name, value, low, high, self.n_fake, None, self.direction, "", 0, details,
                           self.confidence)

    def _bootstrap(self, value: float) -> tuple[float, float]:
        fake = np.concatenate(self._captured[False]) if self._captured[False] else None
        real = np.concatenate(self._captured[True]) if self._captured[True] else None
        if fake is None:
            return value, value
        rng = np.random.default_rng(self.seed)
        if real is None:  # reference statistics: only the generated side is resampled
            mu_r, s_r = self.reference["mu"], self.reference["sigma"]
        vals = []
        for _ in range(self.bootstrap):
            f = fake[rng.integers(0, len(fake), len(fake))]
            mu_f, s_f = feature_statistics(f)
            if real is not None:
                r = real[rng.integers(0, len(real), len(real))]
                mu_r, s_r = feature_statistics(r)
            vals.append(frechet_distance(mu_r, s_r, mu_f, s_f))
        alpha = 1 - self.confidence
        low, high = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
        return float(min(low, value)), float(max(high, value))
