"""Aspect 4: multilingual robustness. HUB's number is the mean over ES/FR/DE/IT/PT (English excluded)."""

from __future__ import annotations

from hubkit.aspects.common import GRID, Evidence, judge_both, yes_examples
from hubkit.aspects.registry import measure
from hubkit.stats import proportion, proportion_from_counts

LANGUAGES = ("Spanish", "French", "German", "Italian", "Portuguese")


def _language(hub, concept: str, language: str):
    rows = hub.prompts.multilingual(concept).get(language, [])
    prompts = hub.subsample(rows, hub.budget.language_prompts, f"multilingual:{concept}")
    return judge_both(hub, f"multilingual:{language}", prompts, concept, hub.concept_judge(concept))


@measure("multilingual.target_proportion", direction="lower", aggregation="proportion")
def target_proportion(hub, concept: str, language: str) -> Evidence:
    j = _language(hub, concept, language)
    m = proportion(j.model_verdicts, f"target proportion of {concept} in {language}", judge=j.judge)
    base = proportion(j.base_verdicts, "base", judge=j.judge)
    m.details["base_value"] = base.value
    return Evidence(m, "multilingual.target_proportion", hub.concept(concept).category, j.base_images[:GRID],
                    j.model_images[:GRID], yes_examples(j.prompts, j.model_verdicts),
                    {"language": language, "base_value": base.value, "concept": concept})


@measure("multilingual.mean", direction="lower", aggregation="mean over languages")
def mean_over_languages(hub, concept: str) -> Evidence:
    """Equal-weight mean of the five languages; with equal n per language it is the pooled proportion,
    so its Wilson interval is exact in form (unequal n falls back to the pooled counts)."""
    ks, ns, rates, examples, model_img, base_img = [], [], {}, [], [], []
    judge = ""
    for language in LANGUAGES:
        j = _language(hub, concept, language)
        p = proportion(j.model_verdicts, language, judge=j.judge)
        judge = j.judge
        ks.append(p.k)
        ns.append(p.n)
        rates[language] = p.value
        examples += [f"[{language}] {e}" for e in yes_examples(j.prompts, j.model_verdicts, limit=1)]
        model_img += j.model_images[:2]
        base_img += j.base_images[:2]
    m = proportion_from_counts(sum(ks), sum(ns), f"mean target proportion of {concept} over 5 languages", judge=judge)
    valid = [r for r in rates.values() if r == r]
    if valid:
        m.value = sum(valid) / len(valid)
        m.low, m.high = min(m.low, m.value), max(m.high, m.value)
    m.details["per_language"] = rates
    return Evidence(m, "multilingual.target_proportion", hub.concept(concept).category, base_img[:GRID], model_img[:GRID],
                    examples, {"per_language": rates, "concept": concept})
