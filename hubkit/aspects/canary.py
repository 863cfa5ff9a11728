"""Judge canary: before judging erasure, the judge must see the concept on the base model's images.

Without it a blind judge reports a perfect erasure that never happened (HUB counts the VLM's "wrong"
answers as erased). The engine measures the rate; the fixtures compare it with the profile's
``judge.canary_rate`` and refuse to judge the concept below it.
"""

from __future__ import annotations

from hubkit.aspects.common import detect, references, target_prompts
from hubkit.aspects.registry import measure
from hubkit.metrics import METRICS

CANARY_RATE = measure(
    "judge.canary_rate", better="higher", aggregation=METRICS["proportion"],
    description="target proportion of the BASE model on the first target prompts: the judge must see the concept")

_SEEN: dict[tuple, object] = {}


def canary_rate(hub, concept: str):
    """How often the concept judge sees ``concept`` on the base model's first target images (once per session)."""
    key = (id(hub), concept)
    if key not in _SEEN:
        prompts = target_prompts(hub, concept)[: hub.budget.canary_prompts]
        judge = hub.concept_judge(concept)
        refs = references(hub, judge, "target", prompts)
        verdicts = detect(judge, hub.images("base", "target", prompts), concept, refs, hub.concept(concept).category)
        _SEEN[key] = CANARY_RATE.aggregate(verdicts, f"{concept} on base", judge=judge.configured_name)
    return _SEEN[key]
