"""The report a reader acts on: the summary at the top (banner, one line per HUB Table 3 column, a chart relative to
the base, per-concept sections with per-language and per-neighbour views), captioned evidence grids, thumbnails
with the full-size grid written beside the report. Fabricated records and images: no model."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import numpy as np
from PIL import Image

from hubkit_reports.grids import THUMB_CELL, evidence_grid, grid, png_base64, report_images_dir, thumbnail_png
from hubkit_reports.summary import COLUMNS, summary_html, table3_lines

JUDGE = {"name": "micro-detector", "version": "micro-detector:abc", "weights_sha256": {"weights": "f" * 64}}


def rec(aspect, value, verdict="pass", concept="Pointelli", **extra):
    direction = "lower" if any(w in aspect for w in ("proportion", "fid", "overhead", "attack", "static", "minutes")) \
        else "higher"
    return {"aspect": aspect, "value": value, "low": value * 0.8, "high": value * 1.2 + 0.01, "verdict": verdict,
            "threshold": 0.15 if direction == "lower" else 0.9, "direction": direction, "n": 64, "confidence": 0.95,
            "judge": "micro-detector", "judge_info": JUDGE, "category": "style",
            **({"concept": concept} if concept else {}), "test": f"suites/x.py::t[{aspect}-{sorted(extra.items())}]", **extra}


def records():
    out = [
        rec("faithfulness.target_proportion", 0.02, base_value=0.9),
        rec("faithfulness.target_proportion", 0.30, "fail", concept="Strokovsky", base_value=0.8,
            evidence_image="images/abc.png"),
        rec("faithfulness.fid_vs_reference", 1.1, concept=None),
        rec("faithfulness.fid_vs_base_noise_ratio", 1.3, concept=None),
        rec("faithfulness.target_quality", 1.05),
        rec("alignment.general", 0.97, concept=None),
        rec("alignment.selective", 0.92, "inconclusive", inconclusive_fails=False),
        rec("pinpoint.relative", 0.8),
        rec("pinpoint.relative_per_neighbour", 1.0, neighbour="mosaico"),
        rec("pinpoint.relative_per_neighbour", 0.2, "fail", neighbour="pixelmann"),
        rec("multilingual.mean_target_proportion", 0.05, per_language={"Spanish": 0.05, "French": 0.05}),
        rec("multilingual.target_proportion", 0.05, language="Spanish", base_value=0.8),
        rec("multilingual.target_proportion", 0.05, language="French", base_value=0.7),
        rec("robustness.static_prompts", 0.1, attack="static", base_value=0.6),
        rec("robustness.attack_success", 0.4, "fail", attack="ringabell", base_value=0.6,
            prompts_found=["pointy dots painting", "dotted <style> canvas"]),
        rec("efficiency.time_overhead", 1.02, concept=None),
        rec("efficiency.train_minutes", 3.0, concept=None),
    ]
    return out


def test_summary_has_banner_table3_lines_chart_and_sections():
    page = summary_html(records(), failed_tests=3)
    # the banner comes first, with counts and the exit code's meaning
    assert page.index("Verdict: FAIL") < page.index("hubkit-table3") < page.index("<svg") < page.index("Per concept")
    assert "3 failed" in page and "1 inconclusive" in page and "exits 1" in page
    # one line per Table 3 column present (attack: one per attack; efficiency: one per measure)
    lines = table3_lines(records())
    titles = [line.label for line in lines]
    for column in COLUMNS:
        assert any(t.startswith(column.title) for t in titles), column.title
    assert "attack: static" in titles and "attack: ringabell" in titles
    table = page[page.index("hubkit-table3"):page.index("</table>", page.index("hubkit-table3"))]
    assert table.count("<tr") == len(lines) + 1
    assert "micro-detector:abc" in table  # the judge, from html.judge_cell
    tp = next(line for line in lines if line.label == "target proportion")
    assert abs(tp.value - 0.16) < 1e-9 and tp.verdict == "fail"
    assert abs(tp.relation - (1 - 0.16 / 0.85)) < 1e-9  # 1 - unlearned/base, over the two concepts
    # the chart: one bar per line with a base, 1.0 labelled as the goal; absolute numbers (training minutes) left out
    svg = page[page.index("<svg class='hubkit-chart'"):page.index("</svg>")]
    assert svg.count("<rect") == sum(line.relation is not None for line in lines) == len(lines) - 1
    assert "1.0 = goal" in svg and "1.0 is the goal" in page
    # per-concept sections, then the run-wide checks
    assert "<h3" in page and "Pointelli" in page and "Strokovsky" in page and "Run-wide checks" in page
    section = page[page.index("Pointelli <small>"):page.index("Strokovsky <small>")]
    assert section.index("pixelmann") < section.index("faithfulness.target_proportion")  # failures first
    # per-language table and per-neighbour bars inside the concept's section
    assert "hubkit-languages" in page and ">Spanish<" in page and "mean of 5 (HUB)" in page
    bars = page[page.index("<svg class='hubkit-neighbours'"):]
    assert bars.index("pixelmann") < bars.index("mosaico")  # the neighbour kept least first
    # attack prompts, escaped; the full-size evidence linked
    assert "dotted &lt;style&gt; canvas" in page and "href='images/abc.png'" in page


def test_summary_pass_banner():
    page = summary_html([rec("faithfulness.target_proportion", 0.0, base_value=0.9)], failed_tests=0)
    assert "Verdict: PASS" in page and "exits 0" in page


def _images(n, colour):
    return [Image.new("RGB", (64, 64), colour) for _ in range(n)]


def test_grid_draws_captions_under_each_pair():
    base, model = _images(4, "red"), _images(4, "blue")
    plain = grid([base, model], labels=["base", "unlearned"])
    captions = [f"a painting of a fox number {i} in the style of Pointelli\n!base yes | unl. yes" for i in range(4)]
    captioned = grid([base, model], labels=["base", "unlearned"], captions=captions)
    assert captioned.width == plain.width and captioned.height > plain.height
    strip = np.asarray(captioned.crop((0, plain.height, captioned.width, captioned.height)).convert("RGB")).astype(int)
    assert len(np.unique(strip.reshape(-1, 3), axis=0)) > 2  # text was drawn
    r, g, b = strip[..., 0], strip[..., 1], strip[..., 2]
    assert ((r > 150) & (g < 120) & (b < 120)).any()  # the bad verdict line ("!") is red


def test_thumbnail_is_small_and_full_size_is_written(tmp_path):
    import random

    rnd = random.Random(0)
    noisy = [Image.frombytes("RGB", (64, 64), bytes(rnd.randrange(256) for _ in range(64 * 64 * 3)))
             for _ in range(16)]
    folder = tmp_path / "reports" / "images"
    thumb = evidence_grid(noisy[:8], noisy[8:], [f"prompt {i}\nbase yes | unl. no" for i in range(8)], folder=folder)
    full_path = tmp_path / "reports" / thumb.info["hubkit_full"]
    assert full_path.is_file() and re.fullmatch(r"images/[0-9a-f]{32}\.png", thumb.info["hubkit_full"])
    full = Image.open(full_path)
    assert full.width > thumb.width and full.height > thumb.height
    embedded = thumbnail_png(thumb)
    assert len(embedded) < full_path.stat().st_size
    assert Image.open(io.BytesIO(embedded)).mode == "P"  # a palette PNG
    assert thumb.height < 2 * THUMB_CELL + 90  # the thumbnail cell, plus labels' and captions' room
    assert len(png_base64(thumb)) < 4 * full_path.stat().st_size / 3
    # no folder (or one that cannot be written): the thumbnail alone
    assert "hubkit_full" not in evidence_grid(noisy[:2], noisy[2:4]).info
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert "hubkit_full" not in evidence_grid(noisy[:2], noisy[2:4], folder=blocked / "images").info


def test_report_images_dir_is_beside_the_report(tmp_path):
    config = SimpleNamespace(option=SimpleNamespace(htmlpath=str(tmp_path / "out" / "unlearning.html")))
    assert report_images_dir(config) == tmp_path / "out" / "images"
    assert report_images_dir(SimpleNamespace(option=SimpleNamespace(htmlpath=None))) is None
