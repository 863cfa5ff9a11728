"""FID reference statistics for the micro world: the COCO-30k analogue.

HUB measures FID against precomputed statistics of real COCO images. The micro world's "real" images are
the renderer's own drawings of the general captions' scenes, so the statistics are exact ground truth:
``micro-clip`` image features of the true render of every general caption, saved as ``mu``/``sigma``/``n``
in the prompt folder (the manifest's ``fid_reference``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_fid_reference(prompts: Path, batch: int = 256) -> Path:
    """Render every general caption's scene, embed it with the FID feature network, write the ``.npz``."""
    from PIL import Image

    from hubkit.judges import JUDGES
    from hubkit.metrics.fid import feature_statistics, write_statistics
    from hubkit_micro.prompt_sets import FID_REFERENCE, SCENES_DIR, scene_from_dict
    from hubkit_micro.render import render

    prompts = Path(prompts)
    items = json.loads((prompts / SCENES_DIR / "general.json").read_text(encoding="utf-8"))
    judge = JUDGES.build("micro-clip")
    rows = []
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        images = [Image.fromarray(render(scene_from_dict(it["scene"]), int(it["render_seed"]))) for it in chunk]
        rows.append(judge.fid_features(images))
    features = np.concatenate(rows)
    return write_statistics(prompts / FID_REFERENCE, *feature_statistics(features), len(features))
