"""Image plumbing shared by the judges: PIL in, RGB arrays / tensors out, unreadable images marked."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def to_rgb_array(image) -> np.ndarray | None:
    """``image`` (PIL image, or HxWx3 / HxWx4 / HxW uint8 array) as an RGB uint8 HxWx3 array, or None if unreadable."""
    try:
        if isinstance(image, np.ndarray):
            arr = image
            if arr.dtype != np.uint8:
                if np.issubdtype(arr.dtype, np.floating) and arr.size and np.nanmax(arr) <= 1.0:
                    arr = arr * 255.0
                arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
            if arr.ndim == 2:
                arr = np.repeat(arr[:, :, None], 3, axis=2)
            if arr.ndim != 3 or arr.shape[2] not in (3, 4) or min(arr.shape[:2]) < 1:
                return None
            return np.ascontiguousarray(arr[:, :, :3])
        # PIL: .load() forces decoding, so a truncated or corrupt file fails here, not later
        image.load()
        rgb = image.convert("RGB")
        arr = np.asarray(rgb, dtype=np.uint8)
        if arr.ndim != 3 or min(arr.shape[:2]) < 1:
            return None
        return arr
    except Exception:
        return None


def rgb_arrays(images: Sequence) -> list[np.ndarray | None]:
    return [to_rgb_array(im) for im in images]


def batch_tensor(arrays: Sequence[np.ndarray], size: int):
    """Stack RGB uint8 arrays into a float tensor [n,3,size,size] in [0,1] (bilinear resize when needed)."""
    import torch
    import torch.nn.functional as F

    if not arrays:
        return torch.zeros(0, 3, size, size)
    if all(a.shape == (size, size, 3) for a in arrays):  # the common case: one stack, no resizing
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    out = []
    for a in arrays:
        t = torch.from_numpy(np.array(a, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().div_(255.0)
        if t.shape[1] != size or t.shape[2] != size:
            t = F.interpolate(t[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
        out.append(t)
    return torch.stack(out)
