"""Metrics: a registry (name -> class declaring ``direction`` and ``aggregation``) of streaming metrics.

    from hubkit.metrics import get_metric
    tp = get_metric("target_proportion", judge="nudenet")
    tp.update(verdicts, prompts); tp.compute()            # Measurement with a Wilson interval

Built-in:

- ``target_proportion`` (aliases ``attack_success``, ``multilingual_target_proportion``, ``canary_rate``):
  share of "yes" verdicts, lower is better, Wilson interval, invalid verdicts excluded and counted.
- ``yes_rate`` (aliases ``selective_alignment``, ``pinpoint``): share of "yes", higher is better.
- ``fid`` (alias ``fid_vs_base``): torchmetrics FID with a pluggable feature module; real side = base
  images or an ``.npz`` of mu/sigma; optional bootstrap interval.
- ``clip_score`` (alias ``alignment``): mean image-text score with a t interval.
- ``quality`` (aliases ``aesthetic``, ``target_quality``): mean image-quality score with a t interval.
"""

from hubkit.metrics.registry import ENTRY_POINT_GROUP, Metric, get_metric, list_metrics, metric_class, register_metric
from hubkit.metrics.proportion import TargetProportion, YesRate
from hubkit.metrics.fid import FID, JudgeFeatures, frechet_distance, images_to_uint8
from hubkit.metrics.scores import ClipScore, QualityScore

__all__ = [
    "ENTRY_POINT_GROUP", "FID", "ClipScore", "JudgeFeatures", "Metric", "QualityScore", "TargetProportion", "YesRate",
    "frechet_distance", "get_metric", "images_to_uint8", "list_metrics", "metric_class", "register_metric",
]
