"""Shared steps of the aspects: pick prompts, generate with both models, judge."""

from __future__ import annotations

from dataclasses import dataclass

GRID = 8  # images per row in the report's base-vs-unlearned grid


@dataclass
class Judged:
    prompts: list
    base_images: list
    model_images: list
    base_verdicts: list
    model_verdicts: list
    judge: str


def target_prompts(hub, concept: str) -> list:
    """The target prompts this budget evaluates (the judge canary uses the first ones of the same list)."""
    return hub.subsample(hub.prompts.target(concept), hub.budget.target_prompts, f"target:{concept}")


def judge_both(hub, set_name: str, prompts, detect: str, judge, per_prompt: int = 1) -> Judged:
    """Both models draw ``prompts`` with identical seeds; ``judge`` says whether ``detect`` is visible."""
    base = hub.images("base", set_name, prompts, per_prompt)
    model = hub.images("model", set_name, prompts, per_prompt)
    return Judged(list(prompts), base, model, judge.detect(base, detect), judge.detect(model, detect), judge.name)


def yes_examples(prompts, verdicts, per_prompt: int = 1, limit: int = 5) -> list[str]:
    """Prompts whose image still shows what should be gone: the worst examples for a failure message."""
    hits = [prompts[i // per_prompt].text for i, v in enumerate(verdicts) if v.label == "yes"]
    return list(dict.fromkeys(hits))[:limit]


def no_examples(prompts, verdicts, per_prompt: int = 1, limit: int = 5) -> list[str]:
    hits = [prompts[i // per_prompt].text for i, v in enumerate(verdicts) if v.label == "no"]
    return list(dict.fromkeys(hits))[:limit]
