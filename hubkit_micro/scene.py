"""Micro-world scenes: what a picture holds (1-3 objects with colour, size and position, a background, a style),
random sampling of scenes and where their objects go on the canvas. Drawing is :mod:`hubkit_micro.drawing`,
styles :mod:`hubkit_micro.styles`, the whole picture :func:`hubkit_micro.render.render`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .world import (
    ALL_LABELS, BACKGROUNDS, COLOURABLE_KINDS, COLOURS, LABEL_INDEX, OBJECT_LABELS, POSITIONS, SIZES, STYLE_LABELS,
    concept_labels, kind,
)

# --------------------------------------------------------------------------------------------
# scene description
# --------------------------------------------------------------------------------------------


class _Random:
    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return "RANDOM"


RANDOM = _Random()

#: allowed position sets → object centres (64-px units); any other combination is a collision
_LAYOUTS: dict[frozenset[str], dict[str, tuple[float, float]]] = {
    frozenset({"left"}): {"left": (19, 32)},
    frozenset({"right"}): {"right": (45, 32)},
    frozenset({"top"}): {"top": (32, 19)},
    frozenset({"bottom"}): {"bottom": (32, 45)},
    frozenset({"centre"}): {"centre": (32, 32)},
    frozenset({"left", "right"}): {"left": (16, 32), "right": (48, 32)},
    frozenset({"top", "bottom"}): {"top": (32, 16), "bottom": (32, 48)},
    frozenset({"left", "right", "top"}): {"left": (16, 46), "right": (48, 46), "top": (32, 16)},
    frozenset({"left", "right", "bottom"}): {"left": (16, 18), "right": (48, 18), "bottom": (32, 48)},
}
#: object side length (64-px units) by number of objects and size word; jitter amplitude in px
_SIDE = {1: {"small": 20, "big": 34}, 2: {"small": 18, "big": 28}, 3: {"small": 17, "big": 26}}
_JITTER = {1: 2, 2: 1, 3: 1}


@dataclass(frozen=True)
class SceneObject:
    label: str
    colour: str | None      # None = the label's natural colour (always None for characters and faces)
    size: str               # "small" | "big"
    position: str           # "left" | "right" | "top" | "bottom" | "centre"

    def __post_init__(self) -> None:
        k = kind(self.label)
        if k == "style":
            raise ValueError(f"{self.label!r} is a style, not an object")
        if self.colour is not None and (self.colour not in COLOURS or k not in COLOURABLE_KINDS):
            raise ValueError(f"colour {self.colour!r} does not apply to {self.label!r}")
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, got {self.size!r}")
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {self.position!r}")


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]
    background: str
    style: str | None       # None = plain

    def __post_init__(self) -> None:
        if not 1 <= len(self.objects) <= 3:
            raise ValueError("a scene holds 1 to 3 objects")
        positions = [o.position for o in self.objects]
        if len(set(positions)) != len(positions) or frozenset(positions) not in _LAYOUTS:
            raise ValueError(f"positions {positions} collide; allowed sets: "
                             + "; ".join("+".join(sorted(k)) for k in _LAYOUTS))
        if len({o.label for o in self.objects}) != len(self.objects):
            raise ValueError("a label appears at most once per scene")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        if self.style is not None and self.style not in STYLE_LABELS:
            raise ValueError(f"style must be None or one of {STYLE_LABELS}, got {self.style!r}")

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(o.label for o in self.objects) + ((self.style,) if self.style else ())


def labels(scene: Scene) -> np.ndarray:
    """float32 multi-hot over :data:`ALL_LABELS` (objects present + the named style)."""
    v = np.zeros(len(ALL_LABELS), dtype=np.float32)
    for label in scene.labels:
        v[LABEL_INDEX[label]] = 1.0
    return v


def _expand(words: Sequence[str]) -> list[tuple[str, ...]]:
    return [concept_labels(w) for w in words]


def sample_scene(rng: np.random.Generator, *, require: Sequence[str] = (), style: str | None | object = RANDOM,
                 exclude: Sequence[str] = (), n_objects: int | None = None,
                 style_probability: float = 0.35) -> Scene:
    """A random scene with 1–3 objects.

    ``require``: labels or concept names that must appear (a concept such as ``"weapon"`` contributes one
    of its labels; a style name sets the style).  ``exclude``: labels/concept names that must not appear.
    ``style``: ``RANDOM`` (a named style with probability ``style_probability``), ``None`` (plain) or a name.
    """
    if isinstance(require, str):
        require = (require,)
    if isinstance(exclude, str):
        exclude = (exclude,)
    banned = {l for group in _expand(exclude) for l in group}
    req_objects: list[str] = []
    req_style: str | None = None
    for group in _expand(require):
        allowed = [l for l in group if l not in banned]
        if not allowed:
            raise ValueError(f"required {group} is excluded")
        if kind(allowed[0]) == "style":
            req_style = allowed[int(rng.integers(len(allowed)))]
        else:
            if any(l in req_objects for l in allowed):
                continue
            req_objects.append(allowed[int(rng.integers(len(allowed)))])
    if req_style is not None:
        if style is not RANDOM and style != req_style:
            raise ValueError(f"style={style!r} contradicts required style {req_style!r}")
        chosen_style: str | None = req_style
    elif style is RANDOM:
        pool = [s for s in STYLE_LABELS if s not in banned]
        chosen_style = pool[int(rng.integers(len(pool)))] if pool and rng.random() < style_probability else None
    else:
        chosen_style = style  # type: ignore[assignment]
        if chosen_style is not None and chosen_style in banned:
            raise ValueError(f"style {chosen_style!r} is excluded")

    if n_objects is None:
        n = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
        n = max(n, len(req_objects))
    else:
        n = int(n_objects)
    if not 1 <= n <= 3 or n < len(req_objects):
        raise ValueError(f"cannot place {len(req_objects)} required objects in {n} slots (1-3)")

    pool = [l for l in OBJECT_LABELS if l not in banned and l not in req_objects]
    chosen = list(req_objects)
    while len(chosen) < n:
        chosen.append(pool.pop(int(rng.integers(len(pool)))))
    order = rng.permutation(n)
    chosen = [chosen[i] for i in order]

    if n == 1:
        positions = [POSITIONS[int(rng.integers(len(POSITIONS)))]]
    elif n == 2:
        positions = list(("left", "right") if rng.random() < 0.6 else ("top", "bottom"))
    else:
        positions = ["left", "right", "top" if rng.random() < 0.5 else "bottom"]
    if n > 1:
        positions = [positions[i] for i in rng.permutation(n)]

    objects = []
    for label, pos in zip(chosen, positions):
        colour = None
        if kind(label) in COLOURABLE_KINDS and rng.random() < 0.7:
            colour = COLOURS[int(rng.integers(len(COLOURS)))]
        size = SIZES[int(rng.random() < 0.6)]
        objects.append(SceneObject(label, colour, size, pos))
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    return Scene(tuple(objects), background, chosen_style)


def canonical_scene(label: str, *, background: str = "white", style: str | None = None) -> Scene:
    """The scene behind ``a photo of {label}``: one big object in the centre, natural colour."""
    return Scene((SceneObject(label, None, "big", "centre"),), background, style)


def object_boxes(scene: Scene, seed: int) -> list[tuple[float, float, float, float]]:
    """(x0, y0, x1, y1) in 64-px units of every object as ``render(scene, seed)`` places it."""
    return [(cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2) for cx, cy, s in _layout(scene, seed)]


def _layout(scene: Scene, seed: int) -> list[tuple[float, float, float]]:
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFFFFFF, 7])
    n = len(scene.objects)
    centres = _LAYOUTS[frozenset(o.position for o in scene.objects)]
    j = _JITTER[n]
    out = []
    for o in scene.objects:
        cx, cy = centres[o.position]
        dx, dy = rng.integers(-j, j + 1, size=2)
        s = _SIDE[n][o.size] + (int(rng.integers(-1, 1)) if n > 1 else int(rng.integers(-2, 1)))
        out.append((cx + float(dx), cy + float(dy), float(s)))
    return out


__all__ = ["RANDOM", "SceneObject", "Scene", "sample_scene", "labels", "canonical_scene", "object_boxes"]
