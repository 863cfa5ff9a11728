"""A measure is declared once: its name is its profile rule key, its direction and aggregation live beside it."""

from __future__ import annotations

import pytest

from hubkit.aspects import MEASURES
from hubkit.metrics import METRICS
from hubkit.stats import Measurement
from hubkit_asserts import available_profiles, check, load_profile


@pytest.mark.parametrize("profile", available_profiles())
def test_every_measure_has_a_rule_and_every_rule_a_measure(profile):
    rules = set(load_profile(profile).keys())
    measures = set(MEASURES.names())
    assert not measures - rules, f"measures without a rule in {profile}.toml"
    assert not rules - measures, f"rules in {profile}.toml that no measure uses"


def test_every_measure_declares_a_direction_and_a_registered_metric():
    metrics = {id(METRICS.get(name)) for name in METRICS.names()}
    for name in MEASURES.names():
        spec = MEASURES.get(name)
        assert spec.name == name and spec.better in ("lower", "higher")
        assert id(spec.aggregation) in metrics, f"{name}: its aggregation is not a registered metric"


def test_evidence_is_judged_by_the_rule_of_its_own_measure():
    spec = MEASURES.get("faithfulness.target_proportion")
    m = spec.aggregate(["yes", "no", "no", "no"], "tp")
    assert m.direction == "lower"
    assert spec.evidence(m, category="style").rule == "faithfulness.target_proportion"


@pytest.mark.parametrize("better, value, verdict", [("lower", 0.0, "pass"), ("higher", 0.0, "fail")])
def test_the_measures_direction_decides_which_side_passes(better, value, verdict):
    rule = load_profile("default").rule("efficiency.storage_mb")  # threshold 3300 MB
    m = Measurement("x", value, value, value, 1, direction=better)
    assert check(m, rule).verdict == verdict


def test_a_profile_cannot_restate_a_direction(tmp_path):
    from hubkit.errors import ConfigError

    p = tmp_path / "p.toml"
    p.write_text('[a.b]\ndirection = "at_most"\nthreshold = 0.1\nsource = "x"\n')
    with pytest.raises(ConfigError, match="direction is declared by the measure 'a.b'"):
        load_profile(p)


def test_same_as_takes_every_value_and_override_of_the_other_rule():
    p = load_profile("micro")
    for category in ("celebrity", "style", "ip", "nsfw", None):
        a = p.rule("multilingual.target_proportion", category=category)
        b = p.rule("multilingual.mean_target_proportion", category=category)
        assert (a.threshold, a.source, a.relative) == (b.threshold, b.source, b.relative)


def test_fid_works_with_any_feature_extractor_judge():
    """FID used to call a method only micro-clip had; now any judge with the FeatureExtractor role serves."""
    from types import SimpleNamespace

    import numpy as np

    from hubkit.aspects import faithfulness
    from hubkit.judges import FeatureExtractor, Judge
    from hubkit.prompts import Prompt

    class PixelMeans(Judge, FeatureExtractor):
        name = "pixel-means"

        def fid_features(self, images):
            return np.stack([np.asarray(im, dtype=np.float64).reshape(4, -1).mean(1) for im in images])

    rng = np.random.default_rng(0)
    drawn = {}

    def images(which, set_name, prompts):
        shift = 40.0 if which == "model" else 0.0  # the unlearned model drifts away from the base
        key = (which, set_name)
        drawn[key] = [rng.normal(100 + shift, 20, size=(8, 8)) for _ in prompts]
        return drawn[key]

    hub = SimpleNamespace(
        prompts=SimpleNamespace(general=lambda: [Prompt(i, f"caption {i}") for i in range(48)]),
        budget=SimpleNamespace(general_prompts=48, fid_groups=20), config=SimpleNamespace(seed=0),
        subsample=lambda rows, n, salt: list(rows)[:n], images=images, fid_judge=PixelMeans())
    evidence = faithfulness.fid_vs_base(hub)
    m = evidence.measurement
    assert evidence.rule == "faithfulness.fid_vs_base_noise_ratio" and m.judge == "pixel-means"
    assert m.value > 3 and m.low <= m.value <= m.high and m.direction == "lower"
