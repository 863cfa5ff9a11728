"""Drawing the micro world's objects: palette, backgrounds, a pen in object-local coordinates and one drawing
function per object label (``DRAW``), on a 2x supersampled PIL canvas.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from .world import IMAGE_SIZE, OBJECT_LABELS

# --------------------------------------------------------------------------------------------
# colours
# --------------------------------------------------------------------------------------------
RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "orange": (245, 140, 30), "yellow": (240, 205, 30), "green": (45, 165, 60),
    "blue": (40, 90, 220), "purple": (140, 60, 190), "pink": (240, 120, 180), "brown": (130, 80, 40),
}
DEFAULT_COLOUR: dict[str, tuple[int, int, int]] = {
    "tree": (45, 150, 55), "house": (215, 70, 50), "car": (40, 100, 210), "ball": (230, 50, 60),
    "cup": (240, 150, 40), "flower": (235, 100, 170), "star": (245, 200, 30), "moon": (235, 215, 90),
    "fish": (245, 130, 40), "bird": (70, 140, 225),
    "knife": (120, 75, 40), "sword": (120, 75, 40), "axe": (150, 95, 50), "spear": (150, 100, 55),
    "hammer": (150, 95, 50), "spoon": (175, 178, 190), "fork": (175, 178, 190), "wrench": (160, 165, 175),
    "key": (215, 175, 60), "saw": (40, 40, 40),
}
INK = (35, 30, 35)
METAL = (200, 205, 215)
DARK_METAL = (95, 100, 110)
WHITE = (250, 250, 250)
BLACK = (20, 20, 20)

_BG_RGB = {"white": (246, 246, 244), "grey": (196, 198, 200), "beige": (232, 218, 188),
           "pale blue": (198, 222, 244), "pale green": (204, 234, 198)}

F = 2                      # supersampling factor
CANVAS = IMAGE_SIZE * F


@lru_cache(maxsize=None)
def _background(name: str) -> np.ndarray:
    """Background at canvas resolution (read-only)."""
    y, x = np.mgrid[0:CANVAS, 0:CANVAS] // F
    if name in _BG_RGB:
        a = np.empty((CANVAS, CANVAS, 3), np.uint8)
        a[:] = _BG_RGB[name]
    elif name == "striped":
        a = np.where(((y // 4) % 2 == 0)[..., None], np.array((244, 244, 240)), np.array((214, 222, 238)))
    elif name == "checkered":
        a = np.where((((x // 8) + (y // 8)) % 2 == 0)[..., None], np.array((240, 238, 232)), np.array((206, 204, 200)))
    elif name == "dotted":
        yy, xx = np.mgrid[0:CANVAS, 0:CANVAS] / F
        d = (np.mod(xx + 0.5, 8) - 4) ** 2 + (np.mod(yy + 0.5, 8) - 4) ** 2
        a = np.where((d < 2.3)[..., None], np.array((190, 196, 214)), np.array((246, 244, 238)))
    else:
        raise ValueError(name)
    a = a.astype(np.uint8)
    a.setflags(write=False)
    return a


@lru_cache(maxsize=None)
def _background64(name: str) -> np.ndarray:
    a = np.asarray(Image.fromarray(_background(name)).reduce(F)).astype(np.int16)
    a.setflags(write=False)
    return a


# --------------------------------------------------------------------------------------------
# drawing primitives in object-local coordinates ([-0.5, 0.5]², optionally rotated)
# --------------------------------------------------------------------------------------------
class Pen:
    def __init__(self, draw: ImageDraw.ImageDraw, cx: float, cy: float, side: float, angle: float = 0.0):
        self.d = draw
        self.cx, self.cy, self.s = cx * F, cy * F, side * F
        self.cos, self.sin = math.cos(angle), math.sin(angle)

    def p(self, u: float, v: float) -> tuple[float, float]:
        x, y = u * self.cos - v * self.sin, u * self.sin + v * self.cos
        return (self.cx + x * self.s, self.cy + y * self.s)

    def w(self, width: float) -> int:
        return max(1, int(round(width * self.s)))

    def poly(self, pts, fill, outline=INK, width: float = 0.035):
        pts = [self.p(u, v) for u, v in pts]
        self.d.polygon(pts, fill=fill)
        if outline is not None:
            self.d.line(pts + [pts[0]], fill=outline, width=self.w(width), joint="curve")

    def rect(self, u0, v0, u1, v1, fill, outline=INK, width: float = 0.035):
        self.poly([(u0, v0), (u1, v0), (u1, v1), (u0, v1)], fill, outline, width)

    def ell(self, u0, v0, u1, v1, fill, outline=INK, width: float = 0.035):
        """Axis-aligned ellipse whose centre follows the rotation (its axes do not)."""
        x, y = self.p((u0 + u1) / 2, (v0 + v1) / 2)
        hx, hy = abs(u1 - u0) / 2 * self.s, abs(v1 - v0) / 2 * self.s
        self.d.ellipse((x - hx, y - hy, x + hx, y + hy), fill=fill, outline=outline,
                       width=self.w(width) if outline is not None else 0)

    def oval(self, u, v, ru, rv, fill, outline=INK, width: float = 0.035, n: int = 20):
        """Ellipse in the rotated frame (drawn as a polygon)."""
        t = np.linspace(0, 2 * math.pi, n, endpoint=False)
        self.poly(list(zip(u + ru * np.cos(t), v + rv * np.sin(t))), fill, outline, width)

    def circ(self, u, v, r, fill, outline=INK, width: float = 0.035):
        self.ell(u - r, v - r, u + r, v + r, fill, outline, width)

    def ring(self, u, v, r, colour, width: float):
        (x, y) = self.p(u, v)
        rr = r * self.s
        self.d.ellipse((x - rr, y - rr, x + rr, y + rr), outline=colour, width=self.w(width))

    def line(self, pts, fill=INK, width: float = 0.04):
        self.d.line([self.p(u, v) for u, v in pts], fill=fill, width=self.w(width), joint="curve")

    def arc(self, u0, v0, u1, v1, start, end, fill=INK, width: float = 0.04):
        (x0, y0), (x1, y1) = self.p(u0, v0), self.p(u1, v1)
        self.d.arc((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), start, end, fill=fill, width=self.w(width))


def _shade(c, f: float):
    return tuple(int(max(0, min(255, v * f))) for v in c)


# ---- things ---------------------------------------------------------------------------------
def _tree(p: Pen, c):
    p.rect(-0.08, 0.05, 0.08, 0.5, (120, 75, 40))
    p.circ(-0.2, 0.02, 0.2, c)
    p.circ(0.2, 0.02, 0.2, c)
    p.circ(0, -0.2, 0.28, c)
    p.ell(-0.17, -0.02, 0.17, 0.18, c, outline=None)


def _house(p: Pen, c):
    p.rect(-0.36, -0.06, 0.36, 0.48, c)
    p.poly([(-0.5, -0.02), (0, -0.48), (0.5, -0.02)], (95, 60, 50))
    p.rect(-0.09, 0.2, 0.09, 0.48, (70, 45, 30))
    p.rect(0.15, 0.04, 0.3, 0.18, (190, 225, 250))
    p.rect(-0.3, 0.04, -0.15, 0.18, (190, 225, 250))


def _car(p: Pen, c):
    p.poly([(-0.3, -0.05), (-0.17, -0.3), (0.2, -0.3), (0.32, -0.05)], c)
    p.poly([(-0.2, -0.07), (-0.12, -0.24), (0.0, -0.24), (0.0, -0.07)], (190, 225, 250), outline=None)
    p.poly([(0.05, -0.07), (0.05, -0.24), (0.16, -0.24), (0.24, -0.07)], (190, 225, 250), outline=None)
    p.rect(-0.5, -0.06, 0.5, 0.24, c)
    p.circ(-0.27, 0.26, 0.13, BLACK)
    p.circ(0.27, 0.26, 0.13, BLACK)
    p.circ(-0.27, 0.26, 0.05, (180, 180, 180), outline=None)
    p.circ(0.27, 0.26, 0.05, (180, 180, 180), outline=None)


def _ball(p: Pen, c):
    p.circ(0, 0, 0.46, c)
    p.arc(-0.9, -0.2, 0.3, 1.0, 280, 350, WHITE, 0.09)
    p.arc(-0.3, -1.0, 0.9, 0.2, 100, 170, WHITE, 0.09)
    p.circ(0, 0, 0.46, None)


def _cup(p: Pen, c):
    p.ring(0.3, 0.0, 0.17, INK, 0.11)
    p.ring(0.3, 0.0, 0.17, c, 0.07)
    p.poly([(-0.36, -0.34), (0.3, -0.34), (0.22, 0.38), (-0.28, 0.38)], c)
    p.ell(-0.36, -0.4, 0.3, -0.28, _shade(c, 0.6))
    p.ell(-0.48, 0.34, 0.42, 0.48, WHITE)


def _flower(p: Pen, c):
    p.line([(0, 0), (0, 0.5)], (40, 140, 50), 0.07)
    p.ell(0.0, 0.22, 0.26, 0.34, (40, 150, 55), outline=None)
    for k in range(6):
        a = k * math.pi / 3
        p.circ(0.2 * math.cos(a), -0.14 + 0.2 * math.sin(a), 0.14, c)
    centre = (130, 80, 40) if c[0] > 200 and c[1] > 180 else (245, 205, 40)
    p.circ(0, -0.14, 0.1, centre)


def _star(p: Pen, c):
    pts = []
    for k in range(10):
        r = 0.5 if k % 2 == 0 else 0.2
        a = -math.pi / 2 + k * math.pi / 5
        pts.append((r * math.cos(a), 0.05 + r * math.sin(a)))
    p.poly(pts, c, width=0.04)


def _moon(p: Pen, c):
    r, d = 0.48, 0.26
    a0 = math.radians(48)
    ex, ey = r * math.cos(a0), r * math.sin(a0)
    r2 = math.hypot(ex - d, ey)
    b0 = math.atan2(ey, ex - d)
    outer = [(r * math.cos(a), r * math.sin(a)) for a in np.linspace(a0, 2 * math.pi - a0, 24)]
    inner = [(d + r2 * math.cos(b), r2 * math.sin(b)) for b in np.linspace(2 * math.pi - b0, b0, 18)]
    p.poly(outer + inner, c, width=0.04)


def _fish(p: Pen, c):
    p.poly([(0.18, 0.0), (0.5, -0.26), (0.44, 0.0), (0.5, 0.26)], _shade(c, 0.8))
    p.ell(-0.48, -0.24, 0.28, 0.24, c)
    p.arc(-0.15, -0.2, 0.15, 0.2, 300, 60, _shade(c, 0.6), 0.04)
    p.circ(-0.3, -0.05, 0.06, BLACK, outline=None)


def _bird(p: Pen, c):
    p.line([(-0.05, 0.25), (-0.1, 0.48)], (230, 140, 30), 0.05)
    p.line([(0.08, 0.25), (0.06, 0.48)], (230, 140, 30), 0.05)
    p.poly([(-0.3, 0.0), (-0.52, -0.12), (-0.5, 0.18)], _shade(c, 0.7))
    p.ell(-0.36, -0.12, 0.24, 0.32, c)
    p.circ(0.2, -0.22, 0.17, c)
    p.poly([(0.34, -0.28), (0.52, -0.2), (0.34, -0.14)], (245, 160, 30))
    p.ell(-0.25, -0.02, 0.08, 0.18, _shade(c, 0.7))
    p.circ(0.24, -0.25, 0.04, BLACK, outline=None)


# ---- weapons and tools (drawn along a diagonal axis u, thickness v) ---------------------------
_DIAG = -math.pi / 4


def _knife(p: Pen, c):
    p.rect(-0.62, -0.09, -0.16, 0.09, c)
    p.rect(-0.18, -0.12, -0.1, 0.12, DARK_METAL)
    p.poly([(-0.1, -0.1), (0.3, -0.1), (0.62, 0.1), (-0.1, 0.1)], METAL)


def _sword(p: Pen, c):
    p.circ(-0.68, 0.0, 0.05, (190, 150, 50))
    p.rect(-0.64, -0.05, -0.42, 0.05, c)
    p.poly([(-0.42, -0.24), (-0.34, -0.24), (-0.34, 0.24), (-0.42, 0.24)], (190, 150, 50))
    p.poly([(-0.34, -0.07), (0.52, -0.07), (0.7, 0.0), (0.52, 0.07), (-0.34, 0.07)], METAL)
    p.line([(-0.3, 0.0), (0.5, 0.0)], (150, 155, 165), 0.02)


def _axe(p: Pen, c):
    p.rect(-0.68, -0.055, 0.52, 0.055, c)
    p.poly([(0.22, -0.05), (0.46, -0.05), (0.62, -0.42), (0.06, -0.42)], METAL)
    p.rect(0.36, 0.05, 0.48, 0.12, DARK_METAL)


def _spear(p: Pen, c):
    p.rect(-0.7, -0.035, 0.38, 0.035, c)
    p.rect(0.3, -0.06, 0.38, 0.06, DARK_METAL)
    p.poly([(0.36, 0.0), (0.48, -0.12), (0.72, 0.0), (0.48, 0.12)], METAL)


def _hammer(p: Pen, c):
    p.rect(-0.64, -0.06, 0.36, 0.06, c)
    p.rect(0.3, -0.34, 0.5, 0.3, DARK_METAL)


def _spoon(p: Pen, c):
    p.rect(-0.62, -0.045, 0.12, 0.045, c)
    p.oval(0.34, 0.0, 0.28, 0.19, c)
    p.oval(0.36, 0.0, 0.17, 0.1, _shade(c, 0.8), outline=None)


def _fork(p: Pen, c):
    p.rect(-0.62, -0.045, 0.12, 0.045, c)
    p.rect(0.1, -0.2, 0.26, 0.2, c)
    for v in (-0.2, -0.07, 0.06, 0.19):
        p.rect(0.26, v - 0.0, 0.64, v + 0.05, c, width=0.02)


def _wrench(p: Pen, c):
    p.rect(-0.5, -0.07, 0.34, 0.07, c)
    p.circ(-0.52, 0.0, 0.13, c)
    p.rect(0.3, -0.24, 0.44, 0.24, c)
    p.rect(0.44, -0.24, 0.64, -0.1, c)
    p.rect(0.44, 0.1, 0.64, 0.24, c)


def _key(p: Pen, c):
    p.ring(-0.42, 0.0, 0.2, INK, 0.15)
    p.ring(-0.42, 0.0, 0.2, c, 0.11)
    p.rect(-0.23, -0.055, 0.6, 0.055, c)
    p.rect(0.34, 0.05, 0.42, 0.2, c)
    p.rect(0.5, 0.05, 0.6, 0.16, c)


def _saw(p: Pen, c):
    pts = [(-0.36, -0.2), (0.62, -0.06), (0.62, 0.1)]
    n = 9
    for k in range(n + 1):
        u = 0.62 - k * (0.98 / n)
        v = 0.1 + 0.04 * (k / n) + (0.07 if k % 2 else 0.0)
        pts.append((u, v))
    p.poly(pts, METAL)
    p.poly([(-0.66, -0.22), (-0.34, -0.24), (-0.34, 0.2), (-0.66, 0.22)], c)
    p.oval(-0.5, -0.01, 0.07, 0.1, (230, 230, 230) if sum(c) < 300 else INK, outline=None)


# ---- characters (fixed signature colours) ---------------------------------------------------
def _zorbo_like(p: Pen, body, tips, feet, smile: bool):
    p.line([(-0.1, -0.15), (-0.26, -0.44)], INK, 0.05)
    p.line([(0.1, -0.15), (0.26, -0.44)], INK, 0.05)
    p.circ(-0.26, -0.44, 0.07, tips)
    p.circ(0.26, -0.44, 0.07, tips)
    p.ell(-0.3, 0.36, -0.06, 0.5, feet)
    p.ell(0.06, 0.36, 0.3, 0.5, feet)
    p.circ(0, 0.08, 0.34, body)
    p.circ(0, 0.0, 0.15, WHITE)
    p.circ(0.02, 0.01, 0.07, BLACK, outline=None)
    if smile:
        p.arc(-0.14, 0.06, 0.14, 0.3, 20, 160, INK, 0.045)
    else:
        p.line([(-0.1, 0.24), (0.1, 0.24)], INK, 0.04)


def _zorbo(p: Pen, c):
    _zorbo_like(p, (60, 190, 80), (230, 50, 160), (120, 50, 170), True)


def _zorbix(p: Pen, c):
    _zorbo_like(p, (60, 120, 225), (245, 210, 40), (110, 110, 120), False)


def _pipkin(p: Pen, c):
    yellow = (246, 212, 40)
    for s in (-1, 1):
        p.poly([(0.08 * s, -0.12), (0.34 * s, -0.5), (0.26 * s, -0.08)], yellow)
        p.poly([(0.3 * s, -0.43), (0.34 * s, -0.5), (0.32 * s, -0.38)], BLACK, outline=None)
        p.poly([(0.285 * s, -0.42), (0.34 * s, -0.5), (0.325 * s, -0.36)], BLACK, outline=BLACK, width=0.03)
    p.ell(-0.3, -0.22, 0.3, 0.5, yellow)
    p.circ(-0.1, 0.02, 0.045, BLACK, outline=None)
    p.circ(0.1, 0.02, 0.045, BLACK, outline=None)
    p.circ(-0.19, 0.15, 0.065, (230, 50, 40), outline=None)
    p.circ(0.19, 0.15, 0.065, (230, 50, 40), outline=None)
    p.arc(-0.06, 0.08, 0.06, 0.2, 20, 160, INK, 0.035)


def _mumblo(p: Pen, c):
    blue = (50, 80, 200)
    p.circ(-0.3, -0.32, 0.16, (30, 45, 130))
    p.circ(0.3, -0.32, 0.16, (30, 45, 130))
    d = p.d
    (x0, y0), (x1, y1) = p.p(-0.35, -0.3), p.p(0.35, 0.48)
    d.rounded_rectangle((x0, y0, x1, y1), radius=0.12 * p.s, fill=blue, outline=INK, width=p.w(0.035))
    p.ell(-0.2, 0.05, 0.2, 0.42, (235, 235, 245))
    for s in (-1, 1):
        p.circ(0.13 * s, -0.12, 0.08, WHITE)
        p.circ(0.13 * s, -0.11, 0.04, BLACK, outline=None)


def _fizzwick(p: Pen, c):
    orange = (245, 130, 30)
    p.poly([(-0.2, -0.1), (-0.4, -0.48), (-0.08, -0.2)], (120, 40, 30))
    p.poly([(0.2, -0.1), (0.4, -0.48), (0.08, -0.2)], (120, 40, 30))
    p.ell(-0.34, 0.38, -0.1, 0.5, BLACK)
    p.ell(0.1, 0.38, 0.34, 0.5, BLACK)
    p.poly([(0, -0.4), (-0.46, 0.42), (0.46, 0.42)], orange, width=0.04)
    for u in (-0.16, 0.0, 0.16):
        p.circ(u, 0.1, 0.065, WHITE)
        p.circ(u, 0.11, 0.03, BLACK, outline=None)
    p.line([(-0.12, 0.28), (0.12, 0.28)], INK, 0.04)


def _tootle(p: Pen, c):
    pink = (240, 130, 190)
    p.ell(-0.52, -0.22, -0.18, 0.12, WHITE)
    p.ell(0.18, -0.22, 0.52, 0.12, WHITE)
    p.circ(0, 0.06, 0.34, pink)
    for s in (-1, 1):
        p.circ(0.12 * s, -0.04, 0.06, BLACK, outline=None)
        p.circ(0.22 * s, 0.12, 0.06, (235, 70, 110), outline=None)
    p.arc(-0.1, 0.06, 0.1, 0.24, 20, 160, INK, 0.04)
    p.line([(-0.1, 0.4), (-0.12, 0.5)], INK, 0.05)
    p.line([(0.1, 0.4), (0.12, 0.5)], INK, 0.05)


def _glimmer(p: Pen, c):
    purple = (150, 70, 210)
    gold = (240, 190, 40)
    p.ell(-0.26, 0.4, -0.06, 0.5, gold)
    p.ell(0.06, 0.4, 0.26, 0.5, gold)
    p.poly([(0, -0.3), (0.4, 0.08), (0, 0.46), (-0.4, 0.08)], purple, width=0.04)
    p.poly([(-0.2, -0.22), (-0.22, -0.5), (-0.1, -0.34), (0, -0.52), (0.1, -0.34), (0.22, -0.5), (0.2, -0.22)], gold)
    for s in (-1, 1):
        p.circ(0.11 * s, 0.06, 0.06, WHITE)
        p.circ(0.11 * s, 0.07, 0.03, BLACK, outline=None)


# ---- faces ---------------------------------------------------------------------------------
LIGHT_SKIN = (242, 204, 172)
MEDIUM_SKIN = (196, 138, 96)
DARK_SKIN = (112, 72, 46)


def _eyes(p: Pen, y=-0.04, dx=0.11, colour=BLACK, r=0.04):
    p.circ(-dx, y, r, colour, outline=None)
    p.circ(dx, y, r, colour, outline=None)


def _dario(p: Pen, c):
    blond = (245, 212, 70)
    d = p.d
    (x0, y0), (x1, y1) = p.p(-0.3, -0.3), p.p(0.3, 0.38)
    d.rounded_rectangle((x0, y0, x1, y1), radius=0.08 * p.s, fill=LIGHT_SKIN, outline=INK, width=p.w(0.03))
    p.poly([(-0.34, -0.08), (-0.36, -0.3), (-0.2, -0.44), (0.12, -0.46), (0.34, -0.34), (0.36, -0.08),
            (0.28, -0.2), (0.02, -0.24), (-0.26, -0.2)], blond)
    p.line([(0.02, -0.44), (-0.06, -0.26)], (200, 160, 40), 0.03)
    p.poly([(-0.31, 0.06), (-0.2, 0.2), (0.2, 0.2), (0.31, 0.06), (0.3, 0.34), (0.12, 0.46), (-0.12, 0.46), (-0.3, 0.34)],
           (125, 72, 30))
    p.rect(-0.1, 0.25, 0.1, 0.3, (200, 90, 90), outline=None)
    _eyes(p, -0.02)
    p.line([(-0.18, -0.12), (-0.05, -0.12)], (120, 72, 30), 0.04)
    p.line([(0.05, -0.12), (0.18, -0.12)], (120, 72, 30), 0.04)


def _mina(p: Pen, c):
    red = (205, 60, 30)
    p.poly([(-0.3, -0.36), (0.3, -0.36), (0.44, -0.1), (0.44, 0.5), (-0.44, 0.5), (-0.44, -0.1)], red)
    p.ell(-0.25, -0.3, 0.25, 0.34, LIGHT_SKIN)
    p.poly([(-0.3, -0.16), (-0.26, -0.42), (0.26, -0.42), (0.3, -0.16), (0.05, -0.26), (-0.1, -0.14)], red)
    _eyes(p, -0.02, colour=(40, 150, 70), r=0.045)
    p.ell(-0.09, 0.16, 0.09, 0.23, (210, 40, 70), outline=None)


def _oskar(p: Pen, c):
    grey = (200, 200, 205)
    p.ell(-0.36, -0.44, 0.36, 0.3, LIGHT_SKIN)
    p.ell(-0.4, -0.12, -0.26, 0.08, grey)
    p.ell(0.26, -0.12, 0.4, 0.08, grey)
    p.poly([(-0.34, 0.0), (-0.2, 0.12), (0.2, 0.12), (0.34, 0.0), (0.3, 0.34), (0, 0.52), (-0.3, 0.34)], grey)
    p.ell(-0.1, 0.12, 0.1, 0.2, (180, 80, 80), outline=None)
    _eyes(p, -0.1, r=0.035)
    p.ring(-0.13, -0.1, 0.1, BLACK, 0.035)
    p.ring(0.13, -0.1, 0.1, BLACK, 0.035)
    p.line([(-0.03, -0.1), (0.03, -0.1)], BLACK, 0.035)


def _lena(p: Pen, c):
    black = (28, 26, 30)
    p.rect(-0.38, -0.3, 0.38, 0.3, black)
    p.ell(-0.38, -0.4, 0.38, 0.1, black, outline=None)
    p.ell(-0.25, -0.24, 0.25, 0.38, MEDIUM_SKIN)
    p.poly([(-0.28, -0.05), (-0.26, -0.3), (0.26, -0.3), (0.28, -0.05), (0.2, -0.14), (-0.2, -0.14)], black, outline=None)
    p.ell(-0.42, -0.52, 0.34, -0.24, (215, 30, 45))
    p.line([(0.0, -0.52), (0.04, -0.58)], INK, 0.04)
    _eyes(p, 0.02, dx=0.1)
    p.ell(-0.08, 0.2, 0.08, 0.26, (180, 30, 50), outline=None)


def _felix(p: Pen, c):
    black = (25, 22, 22)
    d = p.d
    p.circ(-0.32, 0.02, 0.07, DARK_SKIN)
    p.circ(0.32, 0.02, 0.07, DARK_SKIN)
    (x0, y0), (x1, y1) = p.p(-0.31, -0.3), p.p(0.31, 0.4)
    d.rounded_rectangle((x0, y0, x1, y1), radius=0.1 * p.s, fill=DARK_SKIN, outline=INK, width=p.w(0.03))
    p.rect(-0.32, -0.42, 0.32, -0.2, black)
    for s in (-1, 1):
        p.rect(0.04 * s, -0.12, 0.26 * s, 0.06, (120, 160, 190), outline=BLACK, width=0.06)
    p.line([(-0.04, -0.05), (0.04, -0.05)], BLACK, 0.05)
    p.arc(-0.13, 0.08, 0.13, 0.28, 20, 160, WHITE, 0.06)


def _greta(p: Pen, c):
    blond = (238, 205, 95)
    p.rect(-0.34, -0.26, 0.34, 0.24, blond)
    p.ell(-0.38, 0.12, -0.2, 0.5, blond)
    p.ell(0.2, 0.12, 0.38, 0.5, blond)
    p.ell(-0.21, -0.24, 0.21, 0.42, LIGHT_SKIN)
    p.ell(-0.5, -0.3, 0.5, -0.16, (45, 85, 200))
    p.rect(-0.26, -0.5, 0.26, -0.22, (45, 85, 200))
    p.rect(-0.26, -0.3, 0.26, -0.24, (240, 240, 240), outline=None)
    _eyes(p, 0.02, dx=0.09, colour=(40, 90, 200), r=0.04)
    p.ell(-0.07, 0.22, 0.07, 0.28, (210, 80, 100), outline=None)


_DRAW: dict[str, tuple[Callable[[Pen, tuple], None], float]] = {
    "tree": (_tree, 0.0), "house": (_house, 0.0), "car": (_car, 0.0), "ball": (_ball, 0.0),
    "cup": (_cup, 0.0), "flower": (_flower, 0.0), "star": (_star, 0.0), "moon": (_moon, 0.0),
    "fish": (_fish, 0.0), "bird": (_bird, 0.0),
    "Zorbo": (_zorbo, 0.0), "Pipkin": (_pipkin, 0.0), "Mumblo": (_mumblo, 0.0), "Fizzwick": (_fizzwick, 0.0),
    "Tootle": (_tootle, 0.0), "Glimmer": (_glimmer, 0.0), "Zorbix": (_zorbix, 0.0),
    "Dario Voss": (_dario, 0.0), "Mina Castell": (_mina, 0.0), "Oskar Brandt": (_oskar, 0.0),
    "Lena Moreau": (_lena, 0.0), "Felix Okoro": (_felix, 0.0), "Greta Lindqvist": (_greta, 0.0),
    "knife": (_knife, _DIAG), "sword": (_sword, _DIAG), "axe": (_axe, _DIAG), "spear": (_spear, _DIAG),
    "hammer": (_hammer, _DIAG), "spoon": (_spoon, _DIAG), "fork": (_fork, _DIAG), "wrench": (_wrench, _DIAG),
    "key": (_key, _DIAG), "saw": (_saw, _DIAG),
}
assert set(_DRAW) == set(OBJECT_LABELS)
