"""FID as functions of feature rows: statistics, the Fréchet distance, reference files, paired intervals.

HUB computes FID against precomputed COCO statistics with InceptionV3 and "FID-SD" against the base
model's images (reference §5.1). Here the feature rows come from whichever judge fills the
``FeatureExtractor`` role (``hubkit.judges.roles``); the reference side is either rows of the base
model's images or a statistics file (``.npz`` with ``mu``, ``sigma`` and optionally ``n``).

FID depends strongly on n (it is biased upward at small n) and on the feature network, so the aspects
report it as a ratio to a floor measured at the same n with the same features.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hubkit import atomic
from hubkit.errors import ConfigError


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


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between two Gaussians (torchmetrics' eigenvalue form, float64)."""
    mu1, mu2 = (torch.as_tensor(np.asarray(m), dtype=torch.float64) for m in (mu1, mu2))
    s1, s2 = (torch.as_tensor(np.asarray(s), dtype=torch.float64) for s in (sigma1, sigma2))
    if torch.equal(mu1, mu2) and torch.equal(s1, s2):
        return 0.0  # identical Gaussians: exactly 0, not the BLAS-dependent float dust of the eigenvalues
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
    buffer = io.BytesIO()
    np.savez(buffer, mu=np.asarray(mu), sigma=np.asarray(sigma), n=np.array(int(n)))
    return atomic.write_bytes(path, buffer.getvalue())


def fid_from_features(real, fake: np.ndarray) -> float:
    """FID of feature rows ``fake`` against feature rows ``real`` (or fixed statistics ``(mu, sigma)``)."""
    mu_r, s_r = real if isinstance(real, tuple) else feature_statistics(real)
    if np.shape(mu_r)[-1] != fake.shape[1]:
        raise ConfigError(f"FID statistics have {np.shape(mu_r)[-1]} features, the feature network gives {fake.shape[1]}: "
                          f"they were computed with other features")
    return max(0.0, frechet_distance(mu_r, s_r, *feature_statistics(fake)))  # tiny negatives are rounding


def image_features(module: torch.nn.Module, images: Any) -> np.ndarray:
    """Rows of a feature network that maps uint8 ``(N, 3, H, W)`` to ``(N, d)`` (float64 [n, d])."""
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
