"""The micro world's named styles: whole-image transforms on int16 (64, 64, 3) arrays, applied after drawing."""

from __future__ import annotations

import numpy as np

from .world import IMAGE_SIZE, STYLE_LABELS

# --------------------------------------------------------------------------------------------
# styles: whole-image transforms on uint8 (64, 64, 3)
# --------------------------------------------------------------------------------------------
_YY, _XX = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
PAPER = np.array((246, 240, 224), np.int16)


def _edges(img: np.ndarray) -> np.ndarray:
    g = np.zeros(img.shape[:2], np.int32)
    d = np.abs(np.diff(img, axis=1)).sum(-1)
    g[:, 1:] += d
    g[:, :-1] += d
    d = np.abs(np.diff(img, axis=0)).sum(-1)
    g[1:] += d
    g[:-1] += d
    return g


def _style_pointelli(img, mask, rng):
    ox, oy = rng.integers(0, 3, size=2)
    dots = (((_XX + ox) % 3) != 0) & (((_YY + oy) % 3) != 0)
    sat = img + (img - img.mean(-1, keepdims=True)) * 0.5
    noise = rng.integers(-14, 15, size=img.shape)
    dotc = np.clip(sat + noise, 0, 255)
    base = PAPER * 0.55 + img * 0.45
    return np.where(dots[..., None], dotc, base)


def _style_strokovsky(img, mask, rng):
    o = int(rng.integers(0, 5))
    bx, by = (_XX + o) // 8, (_YY + o) // 8
    flip = ((bx + by + o) % 2 == 0)
    diag = np.where(flip, _XX + _YY, _XX - _YY + 64)
    stroke = (diag % 5) < 2
    dark = img * 0.72
    light = PAPER * 0.35 + img * 0.65
    return np.where(stroke[..., None], dark, light)


def _block_means(img: np.ndarray, t: int, o: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean colour of its t×t block (grid offset o) and the block index of each row/column."""
    ix = (np.arange(IMAGE_SIZE) + o) // t
    starts = np.flatnonzero(np.r_[True, np.diff(ix) > 0])
    a = img.astype(np.float32)
    sums = np.add.reduceat(np.add.reduceat(a, starts, axis=0), starts, axis=1)
    sizes = np.diff(np.r_[starts, IMAGE_SIZE]).astype(np.float32)
    means = sums / (sizes[:, None] * sizes[None, :])[..., None]
    return means, ix


def _style_pixelmann(img, mask, rng):
    means, ix = _block_means(img, 3, int(rng.integers(0, 3)))
    means = np.round(means / 85.0) * 85.0
    return means[ix[:, None], ix[None, :]]


def _flat(img, mask):
    """The image with its background (pattern included) replaced by one flat colour: outlines only of objects."""
    return np.where(mask[..., None], img, np.array((246, 246, 244), np.int16))


def _style_lineaux(img, mask, rng):
    g = _edges(_flat(img, mask))
    line = g > 90
    ink = np.clip(img * 0.45, 0, 120)
    paper = np.array((250, 250, 246), np.int16) + rng.integers(-3, 4, size=img.shape)
    return np.where(line[..., None], ink, paper)


def _style_neonardo(img, mask, rng):
    g = _edges(_flat(img, mask))
    line = g > 90
    peak = np.maximum(img.max(-1, keepdims=True), 1)
    neon = np.clip(img * (255.0 / peak), 0, 255)
    neon = np.where((peak < 90), np.array((40, 255, 240)), neon)   # dark ink glows cyan
    neon = np.maximum(neon, 90)
    dark = np.array((14, 10, 34)) + rng.integers(0, 6, size=img.shape)
    inside = np.where(mask[..., None], dark + img * 0.22, dark)
    return np.where(line[..., None], neon, inside)


def _style_mosaico(img, mask, rng):
    t = 5
    o = int(rng.integers(0, t))
    means, ix = _block_means(img, t, o)
    tiles = means + rng.integers(-12, 13, size=(means.shape[0], means.shape[1], 1))
    out = tiles[ix[:, None], ix[None, :]] * 0.6 + img * 0.4
    grout = (((np.arange(IMAGE_SIZE) + o) % t) == 0)
    gmask = grout[:, None] | grout[None, :]
    return np.where(gmask[..., None], out * 0.45 + np.array((92, 84, 76)) * 0.55, out)


_STYLES = {
    "Pointelli": _style_pointelli, "Strokovsky": _style_strokovsky, "Pixelmann": _style_pixelmann,
    "Lineaux": _style_lineaux, "Neonardo": _style_neonardo, "Mosaico": _style_mosaico,
}
assert set(_STYLES) == set(STYLE_LABELS)
