"""Side-by-side image grids: base model above, unlearned model below, same prompts and seeds.

Each column is one pair (same prompt, same seed); a caption under it names the prompt and the judge's verdicts on
both images. The report embeds a small thumbnail of each grid (``png_base64``: a palette PNG at ``THUMB_CELL``
pixels per image); the full-size grid is written beside the report (``images/<hash>.png``, ``evidence_grid``) and
its path rides on the thumbnail (``image.info["hubkit_full"]``) so that the report can link it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import textwrap
import warnings
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

THUMB_CELL = 96          # pixels per image in the report's embedded thumbnail
FULL_CELL = 128          # at least this many pixels per image in the full-size file (more if the images are larger)
THUMB_COLOURS = 64       # palette size of the embedded thumbnail (a grid of 16 images: ~30-45 kB)
CAPTION_LINES = 4        # prompt lines under each pair (then one line of verdicts)
BAD = "!"                # a caption whose verdict line starts with this is drawn in red (concept back, neighbour gone)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _text_width(draw, text: str, font) -> float:
    return draw.textlength(text, font=font)


def _wrap(draw, text: str, font, width: int, lines: int) -> list[str]:
    """``text`` broken into at most ``lines`` lines that fit ``width`` pixels, the last one ellipsised."""
    words = " ".join(str(text).split())
    approx = max(4, int(width / max(1.0, _text_width(draw, "n", font))))
    out: list[str] = []
    for line in textwrap.wrap(words, approx, break_long_words=True) or [""]:
        while line and _text_width(draw, line, font) > width:  # the estimate was optimistic: move words down
            line = line[:-1]
        out.append(line)
    if len(out) > lines:
        out = out[:lines]
        last = out[-1]
        while last and _text_width(draw, last + "…", font) > width:
            last = last[:-1]
        out[-1] = last + "…"
    return out


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` pixels on one line."""
    if _text_width(draw, text, font) <= width:
        return text
    while text and _text_width(draw, text + "…", font) > width:
        text = text[:-1]
    return text + "…"


def grid(rows: Sequence[Sequence[Image.Image]], labels: Sequence[str] = (), cell: int = 96, max_cols: int = 8,
         captions: Sequence[str] = ()) -> Image.Image:
    """Paste rows of images into one picture, each row optionally labelled on its left.

    ``captions`` (one per column) are drawn under the columns: the text before the first newline is the prompt
    (wrapped to ``CAPTION_LINES`` lines), the rest one line each (the verdicts), in red when it starts with ``BAD``.
    """
    rows = [list(r)[:max_cols] for r in rows if len(r)]
    cols = max((len(r) for r in rows), default=1)
    captions = [str(c) for c in list(captions)[:cols]]
    size = max(9, cell // 9)
    font = _font(size)
    line_h = size + 3
    label_w = max(70, int(cell * 0.75)) if labels else 0
    caption_h = 0
    if captions:
        extra = max((c.count("\n") for c in captions), default=0)
        caption_h = (CAPTION_LINES + max(1, extra)) * line_h + 6
    height = max(1, len(rows)) * cell
    canvas = Image.new("RGB", (label_w + cols * cell, height + caption_h), "white")
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        if i < len(labels):
            draw.text((4, i * cell + cell // 2 - size // 2), labels[i], fill="black", font=font)
        for j, img in enumerate(row):
            img = img.convert("RGB")
            method = Image.NEAREST if img.width <= cell else Image.LANCZOS  # crisp when enlarged, smooth when shrunk
            canvas.paste(img.resize((cell, cell), method), (label_w + j * cell, i * cell))
    for j, caption in enumerate(captions):
        x, y = label_w + j * cell + 3, height + 3
        prompt, _, rest = caption.partition("\n")
        if j:
            draw.line([(label_w + j * cell, height), (label_w + j * cell, height + caption_h)], fill="#cccccc")
        for line in _wrap(draw, prompt, font, cell - 6, CAPTION_LINES):
            draw.text((x, y), line, fill="#222222", font=font)
            y += line_h
        y = height + 3 + CAPTION_LINES * line_h
        for line in rest.split("\n") if rest else ():
            bad = line.startswith(BAD)
            line = line[len(BAD):].lstrip() if bad else line
            # a tinted strip behind the verdicts: large enough to keep its colour in the palette thumbnail
            draw.rectangle([x - 2, y - 1, x + cell - 5, y + line_h - 2], fill="#f8d7da" if bad else "#e3f1e6")
            draw.text((x, y), _fit(draw, line, font, cell - 6), fill="#8b0000" if bad else "#1b5e20", font=font)
            y += line_h
    return canvas


def report_images_dir(config) -> Path | None:
    """Where full-size evidence goes: ``images/`` beside the HTML report (``--html``), else None (no report)."""
    option = getattr(config, "option", None)
    path = getattr(option, "htmlpath", None)
    if not path:
        return None
    return (Path.cwd() / Path(os.path.expandvars(str(path))).expanduser()).parent / "images"


def evidence_grid(base_images: Sequence[Image.Image], model_images: Sequence[Image.Image], captions: Sequence[str] = (),
                  *, folder: Path | None = None, max_cols: int = 8) -> Image.Image:
    """The report's base-vs-unlearned picture: a thumbnail (``THUMB_CELL`` pixels per image) whose
    ``info["hubkit_full"]`` is the path, relative to the report, of the full-size grid written into ``folder``
    (``images/<sha256>.png``, atomically). Without a folder, or when it cannot be written, only the thumbnail is
    kept (``hubkit_full`` absent)."""
    rows, labels = [base_images, model_images], ["base", "unlearned"]
    thumb = grid(rows, labels=labels, cell=THUMB_CELL, max_cols=max_cols, captions=captions)
    if folder is not None:
        native = max((im.width for r in rows for im in r), default=FULL_CELL)
        full = grid(rows, labels=labels, cell=max(FULL_CELL, native), max_cols=max_cols, captions=captions)
        data = _png(full)
        name = f"{hashlib.sha256(data).hexdigest()[:32]}.png"
        try:
            from hubkit.atomic import write_bytes

            target = Path(folder) / name
            if not target.is_file():
                write_bytes(target, data)
            thumb.info["hubkit_full"] = f"{Path(folder).name}/{name}"
        except OSError as exc:  # a report in a read-only place or on a full disk: the thumbnail alone, and said so
            warnings.warn(f"hubkit: cannot write the full-size grid {Path(folder) / name} ({exc}); the report keeps "
                          f"its thumbnail only", stacklevel=2)
    return thumb


def _png(image: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **options)
    return buf.getvalue()


def thumbnail_png(image: Image.Image, max_width: int = 1000) -> bytes:
    """A small PNG of ``image`` for embedding: at most ``max_width`` pixels wide, ``THUMB_COLOURS`` colours."""
    image = image.convert("RGB")
    if image.width > max_width:
        image = image.resize((max_width, max(1, round(image.height * max_width / image.width))), Image.LANCZOS)
    quantized = image.quantize(THUMB_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return _png(quantized, optimize=True)


def png_base64(image: Image.Image) -> str:
    """The embedded thumbnail of ``image`` (``thumbnail_png``), base64-encoded."""
    return base64.b64encode(thumbnail_png(image)).decode("ascii")
