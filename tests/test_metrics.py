"""Metrics: the registered aggregations, and FID as functions of feature rows, on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hubkit.errors import ConfigError
from hubkit.metrics import METRICS
from hubkit.metrics.fid import (
    feature_statistics,
    fid_from_features,
    image_features,
    images_to_uint8,
    paired_ratio_interval,
    read_statistics,
    write_statistics,
)


class ProjFeatures(torch.nn.Module):
    """A fixed random projection of 4x4-pooled pixels: a cheap deterministic feature network."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("w", torch.randn(3 * 4 * 4, 8, generator=g))

    def forward(self, x):
        x = torch.nn.functional.adaptive_avg_pool2d(x.float() / 255, 4).flatten(1)
        return x @ self.w


def images(n, seed=0, size=16):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, size, size, generator=g) * 255).to(torch.uint8)


# -- aggregations -------------------------------------------------------------------------------------
def test_proportion_counts_yes_among_valid_and_takes_the_direction_it_is_given():
    m = METRICS["proportion"](["yes", "no", "yes", "invalid"], "tp", direction="lower", judge="nudenet")
    assert (m.k, m.n, m.invalid, m.judge, m.direction) == (2, 3, 1, "nudenet", "lower")
    assert m.low <= 2 / 3 <= m.high


def test_mean_of_proportions_is_the_equal_weight_mean_with_its_own_interval():
    groups = {"Spanish": ["yes"] * 2 + ["no"] * 8, "French": ["no"] * 10, "German": ["invalid"]}
    m = METRICS["mean_of_proportions"](groups, "mean", direction="lower")
    assert m.value == pytest.approx(0.1) and (m.k, m.n, m.invalid) == (2, 20, 1)
    assert m.details["per_group"]["Spanish"] == pytest.approx(0.2) and m.details["per_group"]["French"] == 0.0
    assert m.low <= m.value <= m.high and "MOVER" in m.details["interval"]
    # unequal n: the interval is around the unweighted mean (0.25), not the pooled rate (5/110)
    groups = {"a": ["no"] * 100, "b": ["yes"] * 5 + ["no"] * 5}
    uneven = METRICS["mean_of_proportions"](groups, "mean", direction="lower")
    assert uneven.value == pytest.approx(0.25) and uneven.low > 5 / 110


def test_median_ratio_rests_on_order_statistics():
    m = METRICS["median_ratio"]([2.0] * 15, [1.0] * 14 + [100.0], "t", direction="lower", unit="s")
    assert m.value == pytest.approx(2.0) and m.n == 15 and m.details["unit"] == "s"


def test_exact_has_a_point_interval():
    m = METRICS["exact"](12.5, "MB", direction="lower", interval="declared", details={"format": "x"})
    assert (m.value, m.low, m.high, m.n) == (12.5, 12.5, 12.5, 1) and m.details["interval"] == "declared"


def test_fid_ratio_names_both_fids_and_brackets_its_value():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(64, 6))
    floor = real + rng.normal(scale=0.3, size=real.shape)
    m = METRICS["fid_ratio"](real, floor + 1.0, floor, "ratio", direction="lower", groups=16, judge="proj")
    assert m.value > 1 and m.low <= m.value <= m.high and m.judge == "proj"
    assert f"{m.details['fid']:.3g}" in m.name and m.n == 64 and "16 groups" in m.details["interval"]
    lo, hi = m.one_sided(0.05)
    assert m.low <= lo <= m.value <= hi <= m.high


def test_fid_ratio_bounds_contain_the_estimate_of_a_noise_destroyed_model():
    """Issue 14: a bootstrap resample repeats captions, which biases every resampled FID; for a noise-destroyed
    model the percentile interval lay wholly below its own estimate and was clamped to it. The jackknife leaves
    captions out instead: the estimate is strictly inside, on the log scale in the middle."""
    rng = np.random.default_rng(0)
    real = rng.normal(size=(64, 6))
    floor = real + rng.normal(scale=0.3, size=real.shape)
    noise = rng.normal(size=(64, 6)) * 5 + 3
    m = METRICS["fid_ratio"](real, noise, floor, "ratio", direction="lower")
    assert m.value > 100 and m.low < m.value < m.high
    assert m.high / m.value == pytest.approx(m.value / m.low)


def test_fid_ratio_interval_coverage():
    """A drifted model (4 features, n = 64): the 95% interval covers the ratio of expected FIDs >= 0.92 of 200
    runs (benchmarks/bench_verdicts.py measures 2,000 runs per n)."""
    rng = np.random.default_rng(11)

    def sample(n=64):
        real = rng.normal(size=(n, 4))
        return (real, real + rng.normal(scale=0.5, size=(n, 4)) + 0.35, real + rng.normal(scale=0.5, size=(n, 4)))

    draws = [sample() for _ in range(400)]
    truth = sum(fid_from_features(r, f) for r, f, _ in draws) / sum(fid_from_features(r, b) for r, _, b in draws)
    hits = 0
    for _ in range(200):
        lo, hi = paired_ratio_interval(*sample())
        hits += lo <= truth <= hi
    assert hits / 200 >= 0.92


# -- FID ----------------------------------------------------------------------------------------------
def test_fid_of_identical_statistics_is_exactly_zero_and_a_shift_is_larger():
    rows = image_features(ProjFeatures(), images(200))
    assert fid_from_features(rows, rows.copy()) == 0.0  # exact by definition, not BLAS float dust
    other_seed = fid_from_features(rows, image_features(ProjFeatures(), images(200, seed=1)))
    darker = fid_from_features(rows, image_features(ProjFeatures(), (images(200).float() * 0.6).to(torch.uint8)))
    assert 0 < other_seed < darker


def test_images_to_uint8_takes_pil_images_and_refuses_mixed_sizes():
    from PIL import Image

    a = images(4)
    pil = [Image.fromarray(x.permute(1, 2, 0).numpy()) for x in a]
    assert torch.equal(images_to_uint8(pil), a)
    with pytest.raises(ValueError, match="one size"):
        images_to_uint8([pil[0], pil[0].resize((8, 8))])


def test_reference_statistics_roundtrip(tmp_path):
    rows = np.random.default_rng(1).normal(size=(100, 8))
    mu, sigma = feature_statistics(rows)
    path = write_statistics(tmp_path / "ref.npz", mu, sigma, len(rows))
    data = read_statistics(path)
    assert np.array_equal(data["mu"], mu) and np.array_equal(data["sigma"], sigma) and int(data["n"]) == 100
    assert fid_from_features((data["mu"], data["sigma"]), rows) == 0.0
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def test_paired_fid_ratio_interval_keeps_the_pairing():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(96, 8))
    floor = real + rng.normal(scale=0.3, size=real.shape)
    # a model as close to the base as the seed floor: every left-out group gives 1
    low, high = paired_ratio_interval(real, floor.copy(), floor)
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)
    # a model shifted away from the base: the whole interval sits above 1
    low, high = paired_ratio_interval(real, floor + 1.0, floor)
    assert 1.0 < low <= high
    assert paired_ratio_interval(real, floor + 1.0, floor) == (low, high)  # deterministic: no random resampling
    with pytest.raises(ValueError, match="equal rows"):
        paired_ratio_interval(real, floor[:10], floor)


def test_paired_fid_ratio_interval_against_fixed_reference_statistics():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(200, 6))
    base = real[:80] + rng.normal(scale=0.2, size=(80, 6))
    low, high = paired_ratio_interval(feature_statistics(real), base + 2.0, base, groups=10)
    assert 1.0 < low <= high


def test_fid_from_features_names_a_feature_mismatch():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    assert fid_from_features(a, a) == 0.0
    assert fid_from_features(feature_statistics(a), b) == pytest.approx(fid_from_features(a, b), rel=1e-12)
    with pytest.raises(ConfigError, match="4 features, the feature network gives 6"):
        fid_from_features(feature_statistics(a), rng.normal(size=(50, 6)))


def test_reference_statistics_without_mu_or_sigma_get_a_one_line_error(tmp_path):
    path = tmp_path / "no_sigma.npz"
    np.savez(path, mu=np.zeros(8))
    with pytest.raises(ConfigError, match=r"no_sigma\.npz: needs arrays 'mu' and 'sigma'"):
        read_statistics(path)
