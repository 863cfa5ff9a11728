"""Judge canary: before judging erasure, the judge must see the concept on the base model's images.

Without it a blind judge reports a perfect erasure that never happened (HUB counts the VLM's "wrong"
answers as erased).
"""

from __future__ import annotations

from hubkit.aspects.common import target_prompts
from hubkit.aspects.registry import measure
from hubkit.errors import JudgeError
from hubkit.metrics import METRICS

CANARY_RATE = measure(
    "judge.canary_rate", better="higher", aggregation=METRICS["proportion"],
    description="target proportion of the BASE model on the first target prompts: the judge must see the concept")

_SEEN: dict[tuple, float] = {}


def require_judge_sees(hub, concept: str) -> float:
    key = (id(hub), concept)
    if key in _SEEN:
        return _SEEN[key]
    prompts = target_prompts(hub, concept)[: hub.budget.canary_prompts]
    judge = hub.concept_judge(concept)
    verdicts = judge.detect(hub.images("base", "target", prompts), concept)
    rate = CANARY_RATE.aggregate(verdicts, f"{concept} on base", judge=judge.name)
    rule = hub.profile.rule(CANARY_RATE.name, category=hub.concept(concept).category)
    if not rate.value >= rule.threshold:
        raise JudgeError(
            f"judge cannot see {concept} on the base model: {judge.name} says yes on {rate.value:.2f} "
            f"({rate.counts_str()}) of the base model's target images, below the canary rate {rule.threshold} "
            f"({rule.source}); fix the judge or the prompts before trusting any erasure number"
        )
    _SEEN[key] = rate.value
    return rate.value
