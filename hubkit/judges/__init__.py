"""Judges: decide per image whether a concept is present (``yes`` / ``no`` / ``invalid``).

    from hubkit.judges import get_judge, list_judges
    judge = get_judge("nudenet", threshold=0.6)
    verdicts = judge.detect(images, "nudity")          # list[Verdict(label, score)]

Built-in judges:

- ``nudenet``        NudeNet 3.4.2 320n detector (exposed classes, threshold 0.6)
- ``clip-zeroshot``  open_clip zero-shot concept judge from a local weights file
- ``micro-detector`` multi-label CNN over the micro world's labels (shipped weights)
- ``micro-clip``     small CLIP-like image/text model of the micro world (alignment, FID features)
- ``micro-quality``  image-quality score in [0, 10] (stands in for the LAION aesthetic score)

Third parties add judges through the entry-point group ``hubkit.judges`` (see ``registry``).
"""

from hubkit.judges.registry import (
    ENTRY_POINT_GROUP,
    Judge,
    Verdict,
    get_judge,
    judge_class,
    list_judges,
    register_judge,
)

# Importing the modules registers the built-in judges; each imports its heavy dependencies lazily.
from hubkit.judges import clip_zeroshot as _clip_zeroshot  # noqa: E402,F401
from hubkit.judges import micro as _micro  # noqa: E402,F401
from hubkit.judges import nudity as _nudity  # noqa: E402,F401

__all__ = ["ENTRY_POINT_GROUP", "Judge", "Verdict", "get_judge", "judge_class", "list_judges", "register_judge"]
