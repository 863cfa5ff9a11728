"""Judges: say per image whether a concept is present, score image-text pairs, extract FID features, score quality.

    from hubkit.judges import JUDGES
    judge = JUDGES.build("nudenet", threshold=0.6)
    verdicts = judge.detect(images, "nudity")          # list[Verdict(label, score)]

Built-in judges (the micro world adds ``micro-detector``, ``micro-clip`` and ``micro-quality`` through
entry points):

- ``nudenet``        NudeNet 3.4.2 320n detector (exposed classes, threshold 0.6)          Detector
- ``clip-zeroshot``  open_clip zero-shot concept judge from a local weights file            Detector,
                     ImageTextScorer, FeatureExtractor

What each role means is in ``hubkit.judges.roles``; third parties add judges through the entry-point group
``hubkit.judges`` (see ``hubkit.registry``).
"""

from hubkit.judges.registry import JUDGES, Judge, Verdict
from hubkit.judges.roles import ROLES, Detector, FeatureExtractor, ImageTextScorer, QualityScorer, roles_of

__all__ = ["JUDGES", "ROLES", "Detector", "FeatureExtractor", "ImageTextScorer", "Judge", "QualityScorer", "Verdict",
           "roles_of"]
