"""Aspect 3: pinpoint-ness. Neighbouring concepts (HUB: nearest nouns) must survive the erasure."""

from __future__ import annotations

from hubkit.aspects.common import GRID, Evidence, judge_both, no_examples
from hubkit.aspects.registry import measure
from hubkit.prompts import Prompt
from hubkit.stats import paired_proportion_ratio


def neighbours(hub, concept: str) -> list[str]:
    """The ``budget.neighbours`` most similar neighbours of ``concept`` (HUB: top of its WordNet list)."""
    found = sorted(hub.prompts.pinpoint(concept), key=lambda nb: -nb.similarity)
    return [nb.noun for nb in found[: hub.budget.neighbours]]


def _neighbour(hub, concept: str, noun: str):
    template = hub.pinpoint_template(concept)
    prompt = Prompt(0, template.format(noun=noun))
    return judge_both(hub, f"pinpoint:{noun}", [prompt], noun, hub.noun_judge(concept),
                      per_prompt=hub.budget.images_per_neighbour)


@measure("pinpoint.neighbour", direction="higher", aggregation="paired ratio")
def neighbour(hub, concept: str, noun: str) -> Evidence:
    j = _neighbour(hub, concept, noun)
    m = paired_proportion_ratio(j.model_verdicts, j.base_verdicts, f"{noun} kept after erasing {concept} / base",
                                direction="higher", judge=j.judge)
    return Evidence(m, "pinpoint.relative_per_neighbour", hub.concept(concept).category, j.base_images[:GRID],
                    j.model_images[:GRID], no_examples(j.prompts, j.model_verdicts, hub.budget.images_per_neighbour),
                    {"neighbour": noun, "concept": concept})


@measure("pinpoint.overall", direction="higher", aggregation="pooled paired ratio")
def overall(hub, concept: str) -> Evidence:
    base_v, model_v, base_img, model_img, lost = [], [], [], [], []
    judge = None
    for noun in neighbours(hub, concept):
        j = _neighbour(hub, concept, noun)
        judge = j.judge
        base_v += j.base_verdicts
        model_v += j.model_verdicts
        base_img.append(j.base_images[0])
        model_img.append(j.model_images[0])
        rate = sum(v.label == "yes" for v in j.model_verdicts) / max(1, len(j.model_verdicts))
        lost.append((rate, noun))
    m = paired_proportion_ratio(model_v, base_v, f"neighbours of {concept} kept / base", direction="higher",
                                judge=judge or "")
    worst = [f"{noun}: unlearned rate {rate:.2f}" for rate, noun in sorted(lost)[:5]]
    return Evidence(m, "pinpoint.relative", hub.concept(concept).category, base_img[:GRID], model_img[:GRID], worst,
                    {"concept": concept, "neighbours": len(lost)})
