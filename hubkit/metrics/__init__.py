"""Metrics: aggregations from per-sample values to a ``Measurement`` (registry ``METRICS``), and FID.

Built-in metrics (``hubkit.metrics.aggregations``):

- ``proportion``: share of "yes" verdicts, Wilson interval; invalid verdicts leave the denominator.
- ``paired_proportion_ratio``: rate of the unlearned model / base rate on the same prompts and seeds.
- ``paired_mean_ratio``: mean score / base mean on the same prompts and seeds (Fieller interval).
- ``paired_mean_difference``: mean of per-pair differences, for signed scores (t interval).
- ``mean_of_proportions``: equal-weight mean of several proportions (HUB's multilingual mean).
- ``median_ratio``: median of per-round ratios with its order-statistic interval (timings).
- ``fid_ratio``: FID against a reference / FID of a floor, paired bootstrap interval over captions.
- ``exact``: a number known exactly (bytes on disk, a declared training time).

FID itself (``hubkit.metrics.fid``) is a set of functions over feature rows.
"""

from hubkit.metrics.registry import METRICS

__all__ = ["METRICS"]
