"""Side-by-side image grids: base model above, unlearned model below, same prompts and seeds."""

from __future__ import annotations

import base64
import io
from typing import Sequence

from PIL import Image, ImageDraw


def grid(rows: Sequence[Sequence[Image.Image]], labels: Sequence[str] = (), cell: int = 96, max_cols: int = 8) -> Image.Image:
    """Paste rows of images into one picture, each row optionally labelled on its left."""
    rows = [list(r)[:max_cols] for r in rows if len(r)]
    cols = max((len(r) for r in rows), default=1)
    label_w = 70 if labels else 0
    canvas = Image.new("RGB", (label_w + cols * cell, max(1, len(rows)) * cell), "white")
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        if i < len(labels):
            draw.text((4, i * cell + cell // 2 - 6), labels[i], fill="black")
        for j, img in enumerate(row):
            canvas.paste(img.convert("RGB").resize((cell, cell), Image.NEAREST), (label_w + j * cell, i * cell))
    return canvas


def png_base64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")
