"""Aspect 4: multilingual robustness. HUB's number is the mean over ES/FR/DE/IT/PT (English excluded)."""

from __future__ import annotations

from hubkit.aspects.common import GRID, judge_both, worst_first, yes_examples
from hubkit.aspects.registry import measure
from hubkit.languages import NON_ENGLISH
from hubkit.metrics import METRICS
from hubkit.stats import proportion

TARGET_PROPORTION = measure(
    "multilingual.target_proportion", better="lower", aggregation=METRICS["proportion"],
    description="target proportion on the target prompts translated into one language")
MEAN_TARGET_PROPORTION = measure(
    "multilingual.mean_target_proportion", better="lower", aggregation=METRICS["mean_of_proportions"],
    description="HUB's multilingual number: the mean of the five non-English target proportions")


def _language(hub, concept: str, language: str):
    rows = hub.prompts.multilingual(concept).get(language, [])
    prompts = hub.subsample(rows, hub.budget.language_prompts, f"multilingual:{concept}")
    english = {p.index: p for p in hub.prompts.target(concept)}  # HUB's references: the English prompt's images
    return judge_both(hub, f"multilingual:{language}", prompts, concept, hub.concept_judge(concept),
                      category=hub.concept(concept).category,
                      reference_prompts=[english.get(p.index, p) for p in prompts])


def target_proportion(hub, concept: str, language: str):
    j = _language(hub, concept, language)
    m = TARGET_PROPORTION.aggregate(j.model_verdicts, f"target proportion of {concept} in {language}", judge=j.judge)
    base = proportion(j.base_verdicts, "base", judge=j.judge)
    m.details["base_value"] = base.value
    base_images, model_images, captions = worst_first(j)
    return TARGET_PROPORTION.evidence(m, category=hub.concept(concept).category, base_images=base_images,
                                      model_images=model_images, captions=captions,
                                      examples=yes_examples(j.prompts, j.model_verdicts),
                                      extra={"language": language, "base_value": base.value, "concept": concept})


def mean_over_languages(hub, concept: str):
    judged = {language: _language(hub, concept, language) for language in NON_ENGLISH}
    judge = judged[NON_ENGLISH[-1]].judge
    m = MEAN_TARGET_PROPORTION.aggregate({language: j.model_verdicts for language, j in judged.items()},
                                         f"mean target proportion of {concept} over 5 languages", judge=judge)
    rates = m.details.pop("per_group")
    m.details["per_language"] = rates
    examples = [f"[{language}] {e}" for language, j in judged.items()
                for e in yes_examples(j.prompts, j.model_verdicts, limit=1)]
    pairs = [worst_first(j, limit=2, tag=f"[{language}] ") for language, j in judged.items()]
    # the worst pairs of all languages first, then the others: each language's two, in language order
    flat = [(b, u, c) for bs, us, cs in pairs for b, u, c in zip(bs, us, cs)]
    flat.sort(key=lambda p: not p[2].split("\n", 1)[-1].startswith("!"))
    flat = flat[:GRID]
    return MEAN_TARGET_PROPORTION.evidence(m, category=hub.concept(concept).category,
                                           base_images=[p[0] for p in flat], model_images=[p[1] for p in flat],
                                           captions=[p[2] for p in flat], examples=examples,
                                           extra={"per_language": rates, "concept": concept})
