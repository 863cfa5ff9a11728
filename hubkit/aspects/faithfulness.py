"""Aspect 1: target proportion, general image quality (FID), target image quality."""

from __future__ import annotations

from hubkit.aspects.common import GRID, judge_both, target_prompts, worst_first, yes_examples
from hubkit.aspects.registry import measure
from hubkit.errors import NotApplicable
from hubkit.metrics import METRICS
from hubkit.metrics.fid import read_statistics
from hubkit.stats import proportion

TARGET_PROPORTION = measure(
    "faithfulness.target_proportion", better="lower", aggregation=METRICS["proportion"],
    description="share of target-prompt images in which the concept judge still sees the concept")
TARGET_PROPORTION_RELATIVE = measure(
    "faithfulness.target_proportion_relative", better="lower", aggregation=METRICS["paired_proportion_ratio"],
    description="the target proportion as a ratio to the base model's, same prompts and seeds")
FID_VS_BASE_NOISE_RATIO = measure(
    "faithfulness.fid_vs_base_noise_ratio", better="lower", aggregation=METRICS["fid_ratio"],
    description="FID(unlearned, base) / FID(base, base with other seeds) on the general captions")
FID_VS_REFERENCE = measure(
    "faithfulness.fid_vs_reference", better="lower", aggregation=METRICS["fid_ratio"],
    description="FID(unlearned, reference statistics) / FID(base, reference statistics) on the general captions")
TARGET_QUALITY = measure(
    "faithfulness.target_quality", better="higher", aggregation=METRICS["paired_mean_ratio"],
    description="quality score of target-prompt images, unlearned / base")


def _target(hub, concept):
    judge = hub.concept_judge(concept)
    return judge_both(hub, "target", target_prompts(hub, concept), concept, judge,
                      category=hub.concept(concept).category)


def target_proportion(hub, concept: str):
    j = _target(hub, concept)
    m = TARGET_PROPORTION.aggregate(j.model_verdicts, f"target proportion of {concept}", judge=j.judge)
    base = proportion(j.base_verdicts, "base", judge=j.judge)
    m.details["base_value"] = base.value
    base_images, model_images, captions = worst_first(j)
    return TARGET_PROPORTION.evidence(m, category=hub.concept(concept).category, base_images=base_images,
                                      model_images=model_images, captions=captions,
                                      examples=yes_examples(j.prompts, j.model_verdicts),
                                      extra={"base_value": base.value, "concept": concept})


def target_proportion_vs_base(hub, concept: str):
    j = _target(hub, concept)
    m = TARGET_PROPORTION_RELATIVE.aggregate(j.model_verdicts, j.base_verdicts,
                                             f"target proportion of {concept} / base", judge=j.judge)
    base_images, model_images, captions = worst_first(j)
    return TARGET_PROPORTION_RELATIVE.evidence(m, category=hub.concept(concept).category,
                                               base_images=base_images, model_images=model_images, captions=captions,
                                               examples=yes_examples(j.prompts, j.model_verdicts),
                                               extra={"concept": concept})


def general_prompts(hub) -> list:
    return hub.subsample(hub.prompts.general(), hub.budget.general_prompts, "general")


def _fid_ratio(hub, spec, name: str, real, fake, floor, **details):
    return spec.aggregate(real, fake, floor, name, judge=hub.fid_judge.configured_name, groups=hub.budget.fid_groups,
                          details=details)


def fid_vs_base(hub):
    """FID(unlearned, base) on the same captions and seeds, divided by FID(base, base with other seeds).

    FID has a large small-sample bias and its scale depends on the feature extractor, so the raw number
    is only comparable at identical n and features. The base model's own seed-to-seed FID at the same n
    is the floor an unchanged model reaches; the ratio to it is comparable across worlds and budgets.
    """
    prompts = general_prompts(hub)
    base = hub.images("base", "general", prompts)
    model = hub.images("model", "general", prompts)
    base_b = hub.images("base", "general:reseeded", prompts)
    features = [hub.fid_judge.fid_features(images) for images in (base, model, base_b)]
    m = _fid_ratio(hub, FID_VS_BASE_NOISE_RATIO, "FID(unlearned, base) / FID(base, base reseeded)", *features)
    return FID_VS_BASE_NOISE_RATIO.evidence(m, base_images=base[:GRID], model_images=model[:GRID], extra={
        "fid": m.details["fid"], "fid_seed_floor": m.details["fid_floor"], "images": len(prompts)})


def fid_vs_reference(hub):
    """FID(unlearned, reference statistics) / FID(base, reference statistics) on the same captions and seeds.

    HUB reports FID against COCO-30k (SD 1.5: 13.2); the raw number depends on the feature network and n, so
    the verdict reads the ratio to the base model, and the report shows both FIDs.
    """
    reference = hub.fid_reference
    if not reference:
        raise NotApplicable("no FID reference statistics: set fid_reference in the [judges] table (--judges FILE; "
                            "write one with hubkit fid-reference) or in the prompt folder's hubkit.toml")
    data = read_statistics(reference)
    stats = (data["mu"], data["sigma"])
    prompts = general_prompts(hub)
    base = hub.images("base", "general", prompts)
    model = hub.images("model", "general", prompts)
    features = [hub.fid_judge.fid_features(images) for images in (model, base)]
    m = _fid_ratio(hub, FID_VS_REFERENCE, "FID(unlearned, reference) / FID(base, reference)", stats, *features,
                   reference=str(reference))
    return FID_VS_REFERENCE.evidence(m, base_images=base[:GRID], model_images=model[:GRID], extra={
        "fid": m.details["fid"], "fid_base": m.details["fid_floor"], "images": len(prompts)})


def target_quality(hub, concept: str):
    judge = hub.quality_judge
    if judge is None:
        raise NotApplicable("no image-quality judge configured for this prompt folder (quality_judge in hubkit.toml)")
    prompts = target_prompts(hub, concept)
    base = hub.images("base", "target", prompts)
    model = hub.images("model", "target", prompts)
    b = [float(x) for x in judge.quality(base)]
    u = [float(x) for x in judge.quality(model)]
    m = TARGET_QUALITY.aggregate(u, b, f"quality of {concept} target images / base", judge=judge.configured_name)
    order = sorted(range(len(u)), key=lambda i: u[i] - b[i])  # the largest loss of quality first
    worst = order[:5]
    shown = order[:GRID]
    captions = [f"{prompts[i].text}\n{'!' if u[i] < b[i] else ''}base {b[i]:.2f} | unl. {u[i]:.2f}" for i in shown]
    return TARGET_QUALITY.evidence(m, category=hub.concept(concept).category, base_images=[base[i] for i in shown],
                                   model_images=[model[i] for i in shown], captions=captions,
                                   examples=[f"{prompts[i].text} (quality {u[i]:.2f} vs base {b[i]:.2f})" for i in worst])
