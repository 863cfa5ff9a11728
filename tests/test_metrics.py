"""Metric registry and streaming metrics on synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hubkit.errors import ConfigError
from hubkit.metrics import FID, ClipScore, Metric, QualityScore, TargetProportion, YesRate, get_metric, list_metrics, register_metric
from hubkit.stats import Measurement


class ProjFeatures(torch.nn.Module):
    """A fixed random projection of 4x4-pooled pixels: a cheap deterministic feature network."""

    num_features = 8

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("w", torch.randn(3 * 4 * 4, self.num_features, generator=g))

    def forward(self, x):
        x = torch.nn.functional.adaptive_avg_pool2d(x.float() / 255, 4).flatten(1)
        return x @ self.w


def images(n, seed=0, size=16):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, size, size, generator=g) * 255).to(torch.uint8)


# -- registry -----------------------------------------------------------------------------------------
def test_registry_and_declared_directions():
    names = set(list_metrics())
    assert {"target_proportion", "attack_success", "yes_rate", "selective_alignment", "pinpoint", "fid",
            "clip_score", "quality"} <= names
    assert get_metric("target_proportion").direction == "lower"
    assert get_metric("selective_alignment").direction == "higher"
    assert get_metric("attack_success").name == "attack_success"
    assert FID.direction == "lower" and FID.aggregation == "frechet"
    assert ClipScore.direction == QualityScore.direction == "higher"
    assert TargetProportion.aggregation == YesRate.aggregation == "proportion"
    with pytest.raises(ConfigError, match="known metrics"):
        get_metric("nope")
    with pytest.raises(ValueError):
        @register_metric("bad_direction")
        class Bad(Metric):
            direction = "sideways"


def test_register_custom_metric():
    @register_metric("test_constant")
    class Constant(Metric):
        direction = "higher"
        aggregation = "mean"

        def __init__(self, name=None):
            self.name = name or "test_constant"

        def update(self, *_):
            pass

        def compute(self):
            return Measurement(self.name, 1.0, 1.0, 1.0, 1, direction="higher")

        def reset(self):
            pass

    assert get_metric("test-constant").compute().value == 1.0


# -- proportions --------------------------------------------------------------------------------------
def test_target_proportion_streams_and_keeps_worst_examples():
    from hubkit.judges import Verdict

    tp = get_metric("target_proportion", judge="nudenet")
    tp.update([Verdict("yes", 0.7), Verdict("no", 0.1)], prompts=["p1", "p2"])
    tp.update([Verdict("yes", 0.95), Verdict.invalid()], prompts=["p3", "p4"])
    m = tp.compute()
    assert (m.k, m.n, m.invalid, m.judge, m.direction) == (2, 3, 1, "nudenet", "lower")
    assert m.low < m.value < m.high
    assert m.details["examples"][0] == ("p3", 0.95)
    tp.reset()
    assert tp.compute().n == 0
    yes = YesRate(name="pinpoint")
    yes.update(["yes", "no", "no"], prompts=["a", "b", "c"])
    assert yes.compute().direction == "higher" and [e[0] for e in yes.compute().details["examples"]] == ["b", "c"]


# -- FID ----------------------------------------------------------------------------------------------
def test_fid_identical_sets_is_zero_and_shifted_is_larger():
    a = images(200)
    same = FID(ProjFeatures())
    same.update(a, real=True)
    same.update(a)
    zero = same.compute()
    assert zero.value == pytest.approx(0.0, abs=1e-6) and zero.n == 200 and zero.details["n_real"] == 200
    other_seed = FID(ProjFeatures())
    other_seed.update(a, real=True)
    other_seed.update(images(200, seed=1))
    darker = FID(ProjFeatures())
    darker.update(a, real=True)
    darker.update((a.float() * 0.6).to(torch.uint8))
    assert 0 < other_seed.compute().value < darker.compute().value
    assert darker.compute().direction == "lower"


def test_fid_from_pil_images_and_streaming():
    from PIL import Image

    a = images(60)
    pil = [Image.fromarray(x.permute(1, 2, 0).numpy()) for x in a]
    f = FID(ProjFeatures())
    f.update(pil[:30], real=True)
    f.update(pil[30:], real=True)
    for i in range(0, 60, 20):
        f.update(pil[i:i + 20])
    assert f.compute().value == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="one size"):
        f.update([pil[0], pil[0].resize((8, 8))])


def test_fid_reference_statistics_roundtrip(tmp_path):
    a, b = images(100), images(100, seed=3)
    direct = FID(ProjFeatures())
    direct.update(a, real=True)
    direct.update(b)
    path = direct.save_reference(tmp_path / "ref.npz")
    with np.load(path) as z:
        assert set(z.files) == {"mu", "sigma", "n"} and z["mu"].shape == (8,)
    via_file = FID(ProjFeatures(), reference=path)
    via_file.update(b)
    m = via_file.compute()
    assert m.value == pytest.approx(direct.compute().value, rel=1e-6)
    assert m.details["reference"] == str(path)
    via_file.reset()  # reference statistics survive a reset
    via_file.update(b)
    assert via_file.compute().value == pytest.approx(m.value, rel=1e-6)
    with pytest.raises(ConfigError, match="reference"):
        via_file.update(a, real=True)
    np.savez(tmp_path / "wrong.npz", mu=np.zeros(4), sigma=np.eye(4))
    with pytest.raises(ConfigError, match="features"):
        FID(ProjFeatures(), reference=tmp_path / "wrong.npz")
    with pytest.raises(ConfigError, match="not found"):
        FID(ProjFeatures(), reference=tmp_path / "missing.npz")


def test_fid_bootstrap_interval_contains_value():
    f = FID(ProjFeatures(), bootstrap=30, seed=0)
    f.update(images(80), real=True)
    f.update(images(80, seed=1))
    m = f.compute()
    assert m.low <= m.value <= m.high and m.high > m.low
    assert "bootstrap" in m.details["interval"]


def test_fid_with_a_judge_as_feature_network():
    class FakeJudge:
        name = "fake-clip"
        num_features = 3

        def image_features(self, imgs):
            return torch.from_numpy(np.stack([np.asarray(im, dtype=np.float32).mean(axis=(0, 1)) / 255 for im in imgs]))

    f = get_metric("fid", feature=FakeJudge())
    f.update(images(40), real=True)
    f.update(images(40))
    m = f.compute()
    assert m.value == pytest.approx(0.0, abs=1e-6) and m.details["features"] == "fake-clip"
    with pytest.raises(ConfigError):
        FID(object())


def test_fid_needs_two_images_each_side():
    f = FID(ProjFeatures())
    f.update(images(1), real=True)
    f.update(images(1))
    assert math.isnan(f.compute().value)


# -- continuous scores --------------------------------------------------------------------------------
class FeatureJudge:
    name = "fake-clip"

    def image_features(self, imgs):
        return torch.tensor([[float(np.asarray(im).mean() > 100), 1.0] for im in imgs])

    def text_features(self, texts):
        return torch.tensor([[1.0, 0.0] if "bright" in t else [0.0, 1.0] for t in texts])


def test_clip_score_from_features():
    from PIL import Image

    bright, dark = Image.new("RGB", (8, 8), (250, 250, 250)), Image.new("RGB", (8, 8), (5, 5, 5))
    cs = ClipScore(FeatureJudge())
    cs.update([bright, dark], ["a bright image", "a bright image"])
    assert cs.scores == pytest.approx([100 / math.sqrt(2), 0.0])
    m = cs.compute()
    assert m.direction == "higher" and m.n == 2 and m.low <= m.value <= m.high and m.judge == "fake-clip"

    class ScoringJudge:
        name = "scorer"

        def score(self, imgs, texts):
            return [0.3] * len(imgs)

    cs2 = get_metric("clip_score", judge=ScoringJudge())
    cs2.update([bright] * 4, ["x"] * 4)
    assert cs2.compute().value == pytest.approx(0.3)
    with pytest.raises(ConfigError):
        ClipScore(object())


def test_quality_score():
    rng = np.random.default_rng(0)
    values = iter(rng.normal(5.0, 0.5, 1000))

    class Quality:
        name = "micro-quality"

        def score(self, imgs):
            return [next(values) for _ in imgs]

    q = QualityScore(Quality())
    for _ in range(10):
        q.update([None] * 50)
    m = q.compute()
    assert m.n == 500 and m.low < 5.0 < m.high and m.direction == "higher" and m.judge == "micro-quality"
    q2 = QualityScore(lambda imgs: [1.0, float("nan")])
    q2.update([None, None])
    assert q2.compute().invalid == 1


def test_paired_fid_ratio_interval_keeps_the_pairing():
    from hubkit.metrics.fid import paired_ratio_interval

    rng = np.random.default_rng(0)
    real = rng.normal(size=(96, 8))
    floor = real + rng.normal(scale=0.3, size=real.shape)
    # a model as close to the base as the seed floor: every resample gives exactly 1
    assert paired_ratio_interval(real, floor.copy(), floor, resamples=50) == (1.0, 1.0)
    # a model shifted away from the base: the whole interval sits above 1
    low, high = paired_ratio_interval(real, floor + 1.0, floor, resamples=100, seed=1)
    assert 1.0 < low <= high
    assert paired_ratio_interval(real, floor + 1.0, floor, resamples=100, seed=1) == (low, high)  # seeded
    with pytest.raises(ValueError, match="equal rows"):
        paired_ratio_interval(real, floor[:10], floor, resamples=5)


def test_paired_fid_ratio_interval_against_fixed_reference_statistics():
    from hubkit.metrics.fid import feature_statistics, paired_ratio_interval

    rng = np.random.default_rng(2)
    real = rng.normal(size=(200, 6))
    base = real[:80] + rng.normal(scale=0.2, size=(80, 6))
    low, high = paired_ratio_interval(feature_statistics(real), base + 2.0, base, resamples=60)
    assert 1.0 < low <= high


def test_fid_from_features_names_a_feature_mismatch():
    from hubkit.metrics.fid import feature_statistics, fid_from_features

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    assert fid_from_features(a, a) == 0.0 and fid_from_features(feature_statistics(a), b) == fid_from_features(a, b)
    with pytest.raises(ConfigError, match="4 features, the feature network gives 6"):
        fid_from_features(feature_statistics(a), rng.normal(size=(50, 6)))


def test_reference_statistics_without_mu_or_sigma_get_a_one_line_error(tmp_path):
    """The suites read reference files with read_statistics, the streaming FID with its own loader: both refuse."""
    from hubkit.metrics.fid import read_statistics

    path = tmp_path / "no_sigma.npz"
    np.savez(path, mu=np.zeros(8))
    with pytest.raises(ConfigError, match=r"no_sigma\.npz: needs arrays 'mu' and 'sigma'"):
        read_statistics(path)
    with pytest.raises(ConfigError, match="needs arrays 'mu' and 'sigma'"):
        FID(ProjFeatures(), reference=path)
    with pytest.raises(ConfigError, match="needs arrays 'mu' and 'sigma'"):
        FID(ProjFeatures(), reference={"mu": np.zeros(8)})
