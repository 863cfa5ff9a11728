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


def test_mean_of_proportions_is_the_equal_weight_mean_with_the_pooled_interval():
    groups = {"Spanish": ["yes"] * 2 + ["no"] * 8, "French": ["no"] * 10}
    m = METRICS["mean_of_proportions"](groups, "mean", direction="lower")
    assert m.value == pytest.approx(0.1) and (m.k, m.n) == (2, 20)
    assert m.details["per_group"] == {"Spanish": pytest.approx(0.2), "French": 0.0}
    assert m.low <= m.value <= m.high


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
    m = METRICS["fid_ratio"](real, floor + 1.0, floor, "ratio", direction="lower", resamples=40, judge="proj")
    assert m.value > 1 and m.low <= m.value <= m.high and m.judge == "proj"
    assert f"{m.details['fid']:.3g}" in m.name and m.n == 64


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
    # a model as close to the base as the seed floor: every resample gives 1
    low, high = paired_ratio_interval(real, floor.copy(), floor, resamples=50)
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)
    # a model shifted away from the base: the whole interval sits above 1
    low, high = paired_ratio_interval(real, floor + 1.0, floor, resamples=100, seed=1)
    assert 1.0 < low <= high
    assert paired_ratio_interval(real, floor + 1.0, floor, resamples=100, seed=1) == (low, high)  # seeded
    with pytest.raises(ValueError, match="equal rows"):
        paired_ratio_interval(real, floor[:10], floor, resamples=5)


def test_paired_fid_ratio_interval_against_fixed_reference_statistics():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(200, 6))
    base = real[:80] + rng.normal(scale=0.2, size=(80, 6))
    low, high = paired_ratio_interval(feature_statistics(real), base + 2.0, base, resamples=60)
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
