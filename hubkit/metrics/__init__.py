"""Metrics: aggregations from per-sample values to a ``Measurement`` (registry ``METRICS``), and FID.

Built-in metrics (``hubkit.metrics.aggregations``):

- ``proportion``: share of "yes" verdicts, exact (Clopper-Pearson) bounds; invalid verdicts leave the denominator.
- ``paired_proportion_ratio``: rate of the unlearned model / base rate on the same prompts and seeds
  (Tang's paired score bounds, continuity-corrected).
- ``paired_mean_ratio``: mean score / base mean on the same prompts and seeds (Fieller interval).
- ``paired_mean_difference``: mean of per-pair differences, for signed scores (t interval).
- ``mean_of_proportions``: equal-weight mean of several proportions (HUB's multilingual mean), MOVER bounds.
- ``median_ratio``: median of per-round ratios with its order-statistic interval (timings).
- ``fid_ratio``: FID against a reference / FID of a floor, grouped jackknife over captions (log scale).
- ``exact``: a number known exactly (bytes on disk, a declared training time).

Every metric's ``Measurement`` carries its one-sided bounds as a function of the error rate
(``Measurement.one_sided(alpha)``): the verdict layer asks for its profile's alpha.

FID itself (``hubkit.metrics.fid``) is a set of functions over feature rows.
"""

from hubkit.metrics.registry import METRICS

__all__ = ["METRICS"]
