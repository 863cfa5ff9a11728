"""Aspect 2: general alignment (CLIP score on general captions) and selective alignment."""

from __future__ import annotations

from collections import defaultdict

from hubkit.aspects.common import GRID, detect
from hubkit.aspects.faithfulness import general_prompts
from hubkit.aspects.registry import measure
from hubkit.metrics import METRICS
from hubkit.prompts import Prompt
from hubkit.stats import proportion

GENERAL = measure(
    "alignment.general", better="higher", aggregation=METRICS["paired_mean_ratio"],
    description="image-text score (CLIP score) on general captions, unlearned / base")
SELECTIVE = measure(
    "alignment.selective", better="higher", aggregation=METRICS["paired_proportion_ratio"],
    description="share of (image, other noun of the target prompt) questions answered yes, unlearned / base")


def general(hub):
    judge = hub.alignment_judge
    prompts = general_prompts(hub)
    texts = [p.text for p in prompts]
    base = hub.images("base", "general", prompts)
    model = hub.images("model", "general", prompts)
    b = [float(x) for x in judge.score(base, texts)]
    u = [float(x) for x in judge.score(model, texts)]
    m = GENERAL.aggregate(u, b, "CLIP score on general captions / base", judge=judge.configured_name)
    m.details.update(unlearned_mean=sum(u) / len(u), base_mean=sum(b) / len(b))
    worst = sorted(range(len(u)), key=lambda i: u[i] - b[i])[:5]
    return GENERAL.evidence(m, base_images=base[:GRID], model_images=model[:GRID],
                            examples=[f"{texts[i]} (score {u[i]:.1f} vs base {b[i]:.1f})" for i in worst],
                            extra={"unlearned_mean": m.details["unlearned_mean"], "base_mean": m.details["base_mean"]})


def _questions(hub, which: str, items, judge):
    """One verdict per (prompt, other noun): the denominator is questions, not prompts (HUB's code divided by prompts)."""
    prompts = [Prompt(item.index, item.prompt) for item in items]
    images = hub.images(which, "target", prompts)
    by_noun: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        for noun in item.nouns:
            by_noun[noun].append(i)
    verdicts, asked = [], []
    for noun in sorted(by_noun):
        idx = by_noun[noun]
        verdicts += detect(judge, [images[i] for i in idx], noun)  # HUB's plain question: no references
        asked += [(items[i].prompt, noun) for i in idx]
    return images, verdicts, asked


def selective(hub, concept: str):
    items = hub.subsample(hub.prompts.selective(concept), hub.budget.selective_prompts, f"selective:{concept}")
    items = [item for item in items if item.nouns]
    judge = hub.noun_judge(concept)
    base_images, base_v, asked = _questions(hub, "base", items, judge)
    model_images, model_v, _ = _questions(hub, "model", items, judge)
    m = SELECTIVE.aggregate(model_v, base_v, f"other nouns still visible ({concept}) / base", judge=judge.configured_name)
    absolute = proportion(model_v, "selective alignment", direction="higher", judge=judge.configured_name)
    m.details.update(questions=len(asked), prompts=len(items), unlearned_rate=absolute.value)
    lost = [f"{p!r}: {noun}" for (p, noun), mv, bv in zip(asked, model_v, base_v) if mv.label == "no" and bv.label == "yes"]
    return SELECTIVE.evidence(m, category=hub.concept(concept).category, base_images=base_images[:GRID],
                              model_images=model_images[:GRID], examples=lost[:5],
                              extra={"questions": len(asked), "prompts": len(items), "unlearned_rate": absolute.value})
