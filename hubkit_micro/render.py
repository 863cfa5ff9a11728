"""Procedural renderer of micro-world scenes: 64×64 RGB, numpy + PIL only, deterministic in (scene, seed).

Objects are drawn with ``PIL.ImageDraw`` on a 2× canvas (cheap anti-aliasing), reduced to 64 px, and a
named style (a whole-image transform in numpy) is applied last.  Rendering takes well under a
millisecond per image on one core.

This module composes the picture: :mod:`hubkit_micro.scene` says what is in it and where,
:mod:`hubkit_micro.drawing` draws each object, :mod:`hubkit_micro.styles` applies the style.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .drawing import _DRAW, DEFAULT_COLOUR, F, RGB, Pen, _background, _background64
from .scene import RANDOM, Scene, SceneObject, _layout, canonical_scene, labels, object_boxes, sample_scene
from .styles import _STYLES
from .world import ALL_LABELS, CONCEPTS, IMAGE_SIZE, kind

# --------------------------------------------------------------------------------------------
# render
# --------------------------------------------------------------------------------------------
def _colour(obj: SceneObject, rng: np.random.Generator) -> tuple[int, int, int]:
    base = RGB[obj.colour] if obj.colour is not None else DEFAULT_COLOUR.get(obj.label, (128, 128, 128))
    j = rng.integers(-10, 11, size=3)
    return tuple(int(min(255, max(0, b + d))) for b, d in zip(base, j))  # type: ignore[return-value]


def render(scene: Scene, seed: int) -> np.ndarray:
    """uint8 (64, 64, 3) image of ``scene``; deterministic in (scene, seed), jitter drawn from ``seed``."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFFFFFF, 11])
    canvas = Image.fromarray(_background(scene.background))
    draw = ImageDraw.Draw(canvas)
    for obj, (cx, cy, side) in zip(scene.objects, _layout(scene, seed)):
        fn, angle = _DRAW[obj.label]
        angle = angle + float(rng.uniform(-0.12, 0.12) if angle else rng.uniform(-0.04, 0.04))
        fn(Pen(draw, cx, cy, side, angle), _colour(obj, rng))
    img = np.asarray(canvas.reduce(F))
    if scene.style is None:
        return img.copy()
    a = img.astype(np.int16)
    mask = np.abs(a - _background64(scene.background)).sum(-1) > 24
    out = _STYLES[scene.style](a, mask, rng)
    return np.clip(out, 0, 255).astype(np.uint8)


def render_pil(scene: Scene, seed: int) -> Image.Image:
    return Image.fromarray(render(scene, seed))


def contact_sheet(seed: int = 0, *, scale: int = 2) -> Image.Image:
    """One canonical render per label (objects plain; styles applied to a fixed two-object scene)."""
    tiles = []
    for label in ALL_LABELS:
        if kind(label) == "style":
            scene = Scene((SceneObject("house", None, "big", "left"), SceneObject("Zorbo", None, "big", "right")),
                          "white", label)
        else:
            scene = canonical_scene(label)
        tiles.append((label, render(scene, seed)))
    cols = 8
    rows = math.ceil(len(tiles) / cols)
    cell = IMAGE_SIZE * scale
    sheet = Image.new("RGB", (cols * cell, rows * (cell + 12)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for i, (label, img) in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet.paste(Image.fromarray(img).resize((cell, cell), Image.NEAREST), (c * cell, r * (cell + 12)))
        d.text((c * cell + 2, r * (cell + 12) + cell), label[:21], fill=(0, 0, 0))
    return sheet


__all__ = ["RANDOM", "SceneObject", "Scene", "sample_scene", "render", "labels", "canonical_scene",
           "object_boxes", "contact_sheet", "render_pil", "CONCEPTS"]
