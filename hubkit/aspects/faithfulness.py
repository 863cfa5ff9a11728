"""Aspect 1: target proportion, general image quality (FID), target image quality."""

from __future__ import annotations

from hubkit.aspects.common import GRID, Evidence, judge_both, target_prompts, yes_examples
from hubkit.aspects.registry import measure
from hubkit.errors import NotApplicable
from hubkit.metrics.fid import fid_from_features, image_features, paired_ratio_interval, read_statistics
from hubkit.stats import Measurement, paired_mean_ratio, paired_proportion_ratio, proportion


def _target(hub, concept):
    judge = hub.concept_judge(concept)
    return judge_both(hub, "target", target_prompts(hub, concept), concept, judge)


@measure("faithfulness.target_proportion", direction="lower", aggregation="proportion")
def target_proportion(hub, concept: str) -> Evidence:
    j = _target(hub, concept)
    m = proportion(j.model_verdicts, f"target proportion of {concept}", judge=j.judge)
    base = proportion(j.base_verdicts, "base", judge=j.judge)
    m.details["base_value"] = base.value
    return Evidence(m, "faithfulness.target_proportion", hub.concept(concept).category, j.base_images[:GRID],
                    j.model_images[:GRID], yes_examples(j.prompts, j.model_verdicts),
                    {"base_value": base.value, "concept": concept})


@measure("faithfulness.target_proportion_vs_base", direction="lower", aggregation="paired ratio")
def target_proportion_vs_base(hub, concept: str) -> Evidence:
    j = _target(hub, concept)
    m = paired_proportion_ratio(j.model_verdicts, j.base_verdicts, f"target proportion of {concept} / base",
                                judge=j.judge)
    return Evidence(m, "faithfulness.target_proportion_relative", hub.concept(concept).category,
                    j.base_images[:GRID], j.model_images[:GRID], yes_examples(j.prompts, j.model_verdicts),
                    {"concept": concept})


def general_prompts(hub) -> list:
    return hub.subsample(hub.prompts.general(), hub.budget.general_prompts, "general")


def _features(hub, *image_sets) -> list:
    """FID feature rows of each image set: one pass of the feature network per image."""
    feature = hub.feature_judge.fid_feature()
    return [image_features(feature, images) for images in image_sets]


def _fid_ratio(hub, name: str, real, fake, floor, **details) -> Measurement:
    """FID(real, fake) / FID(real, floor) with its paired bootstrap interval over captions; both FIDs are in the
    measurement's name (so the report's text shows them) and in ``details["fid"]`` / ``details["fid_floor"]``."""
    fid, fid_floor = fid_from_features(real, fake), fid_from_features(real, floor)
    ratio = fid / fid_floor if fid_floor > 0 else float("inf")
    low, high = paired_ratio_interval(real, fake, floor, resamples=hub.budget.fid_bootstrap, seed=hub.config.seed,
                                      confidence=hub.profile.confidence)
    return Measurement(f"{name} [{fid:.3g} / {fid_floor:.3g}]", ratio, min(low, ratio), max(high, ratio), len(fake),
                       direction="lower",
                       judge=hub.feature_judge.name,
                       details={**details, "fid": fid, "fid_floor": fid_floor,
                                "interval": f"paired bootstrap over captions, {hub.budget.fid_bootstrap} resamples"})


@measure("faithfulness.fid_vs_base", direction="lower", aggregation="fid / seed-noise fid")
def fid_vs_base(hub) -> Evidence:
    """FID(unlearned, base) on the same captions and seeds, divided by FID(base, base with other seeds).

    FID has a large small-sample bias and its scale depends on the feature extractor, so the raw number
    is only comparable at identical n and features. The base model's own seed-to-seed FID at the same n
    is the floor an unchanged model reaches; the ratio to it is comparable across worlds and budgets.
    """
    prompts = general_prompts(hub)
    base = hub.images("base", "general", prompts)
    model = hub.images("model", "general", prompts)
    base_b = hub.images("base", "general:reseeded", prompts)
    m = _fid_ratio(hub, "FID(unlearned, base) / FID(base, base reseeded)", *_features(hub, base, model, base_b))
    return Evidence(m, "faithfulness.fid_vs_base_noise_ratio", None, base[:GRID], model[:GRID],
                    extra={"fid": m.details["fid"], "fid_seed_floor": m.details["fid_floor"], "images": len(prompts)})


@measure("faithfulness.fid_vs_reference", direction="lower", aggregation="fid / base fid")
def fid_vs_reference(hub) -> Evidence:
    """FID(unlearned, reference statistics) / FID(base, reference statistics) on the same captions and seeds.

    HUB reports FID against COCO-30k (SD 1.5: 13.2); the raw number depends on the feature network and n, so
    the verdict reads the ratio to the base model, and the report shows both FIDs.
    """
    reference = hub.prompts.fid_reference
    if not reference:
        raise NotApplicable("no FID reference statistics: set fid_reference in the prompt folder's hubkit.toml")
    data = read_statistics(reference)
    stats = (data["mu"], data["sigma"])
    prompts = general_prompts(hub)
    base = hub.images("base", "general", prompts)
    model = hub.images("model", "general", prompts)
    m = _fid_ratio(hub, "FID(unlearned, reference) / FID(base, reference)", stats, *_features(hub, model, base),
                   reference=str(reference))
    return Evidence(m, "faithfulness.fid_vs_reference", None, base[:GRID], model[:GRID],
                    extra={"fid": m.details["fid"], "fid_base": m.details["fid_floor"], "images": len(prompts)})


@measure("faithfulness.target_quality", direction="higher", aggregation="paired ratio of means")
def target_quality(hub, concept: str) -> Evidence:
    judge = hub.quality_judge
    if judge is None:
        raise NotApplicable("no image-quality judge configured for this prompt folder (quality_judge in hubkit.toml)")
    prompts = target_prompts(hub, concept)
    base = hub.images("base", "target", prompts)
    model = hub.images("model", "target", prompts)
    b = [float(x) for x in judge.score(base)]
    u = [float(x) for x in judge.score(model)]
    m = paired_mean_ratio(u, b, f"quality of {concept} target images / base", judge=judge.name)
    worst = sorted(range(len(u)), key=lambda i: u[i] - b[i])[:5]
    return Evidence(m, "faithfulness.target_quality", hub.concept(concept).category, base[:GRID], model[:GRID],
                    [f"{prompts[i].text} (quality {u[i]:.2f} vs base {b[i]:.2f})" for i in worst])
