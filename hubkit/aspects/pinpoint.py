"""Aspect 3: pinpoint-ness. Neighbouring concepts (HUB: nearest nouns) must survive the erasure."""

from __future__ import annotations

from hubkit.aspects.common import GRID, judge_both, no_examples, worst_first
from hubkit.aspects.registry import measure
from hubkit.metrics import METRICS
from hubkit.prompts import Prompt

RELATIVE_PER_NEIGHBOUR = measure(
    "pinpoint.relative_per_neighbour", better="higher", aggregation=METRICS["paired_proportion_ratio"],
    description="share of one neighbour's images still showing the neighbour, unlearned / base")
RELATIVE = measure(
    "pinpoint.relative", better="higher", aggregation=METRICS["paired_proportion_ratio"],
    description="share of neighbour images still showing their neighbour, unlearned / base, all neighbours pooled")


def neighbours(hub, concept: str) -> list[str]:
    """The ``budget.neighbours`` most similar neighbours of ``concept`` (HUB: top of its WordNet list)."""
    found = sorted(hub.prompts.pinpoint(concept), key=lambda nb: -nb.similarity)
    return [nb.noun for nb in found[: hub.budget.neighbours]]


def _neighbour(hub, concept: str, noun: str):
    template = hub.pinpoint_template(concept)
    prompt = Prompt(0, template.format(noun=noun))
    return judge_both(hub, f"pinpoint:{noun}", [prompt], noun, hub.noun_judge(concept), category="object",
                      per_prompt=hub.budget.images_per_neighbour)


def neighbour(hub, concept: str, noun: str):
    j = _neighbour(hub, concept, noun)
    m = RELATIVE_PER_NEIGHBOUR.aggregate(j.model_verdicts, j.base_verdicts, f"{noun} kept after erasing {concept} / base",
                                         judge=j.judge)
    base_images, model_images, captions = worst_first(j, per_prompt=hub.budget.images_per_neighbour, lost=True)
    return RELATIVE_PER_NEIGHBOUR.evidence(
        m, category=hub.concept(concept).category, base_images=base_images, model_images=model_images,
        captions=captions,
        examples=no_examples(j.prompts, j.model_verdicts, hub.budget.images_per_neighbour),
        extra={"neighbour": noun, "concept": concept})


def overall(hub, concept: str):
    base_v, model_v, lost, pairs = [], [], [], []
    judge = None
    for noun in neighbours(hub, concept):
        j = _neighbour(hub, concept, noun)
        judge = j.judge
        base_v += j.base_verdicts
        model_v += j.model_verdicts
        rate = sum(v.label == "yes" for v in j.model_verdicts) / max(1, len(j.model_verdicts))
        lost.append((rate, noun))
        b, u, c = worst_first(j, per_prompt=hub.budget.images_per_neighbour, lost=True, limit=1, tag=f"[{noun}] ")
        pairs.append((rate, len(pairs), b[:1], u[:1], c[:1]))
    pairs.sort(key=lambda p: p[:2])  # the neighbour kept least often first, each by its worst pair
    base_img = [im for p in pairs for im in p[2]]
    model_img = [im for p in pairs for im in p[3]]
    captions = [c for p in pairs for c in p[4]]
    m = RELATIVE.aggregate(model_v, base_v, f"neighbours of {concept} kept / base", judge=judge or "")
    worst = [f"{noun}: unlearned rate {rate:.2f}" for rate, noun in sorted(lost)[:5]]
    return RELATIVE.evidence(m, category=hub.concept(concept).category, base_images=base_img[:GRID],
                             model_images=model_img[:GRID], captions=captions[:GRID], examples=worst,
                             extra={"concept": concept, "neighbours": len(lost)})
