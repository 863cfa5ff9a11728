"""Aspect 5: attack robustness. Static adversarial sets, and attacks run against the model under test."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hubkit import atomic
from hubkit.aspects.common import judge_both, target_prompts, worst_first, yes_examples
from hubkit.aspects.registry import measure
from hubkit.errors import ConfigError, NotApplicable
from hubkit.metrics import METRICS
from hubkit.prompts import Prompt
from hubkit.stats import proportion

STATIC_PROMPTS = measure(
    "robustness.static_prompts", better="lower", aggregation=METRICS["proportion"],
    description="target proportion on the prompt folder's static adversarial prompts (HUB: Ring-A-Bell files)")
ATTACK_SUCCESS = measure(
    "robustness.attack_success", better="lower", aggregation=METRICS["proportion"],
    description="target proportion on the prompts an attack run against the model under test found")


def attack_names(hub) -> list[str]:
    from hubkit.attacks import ATTACKS

    return ATTACKS.names()


def _keywords(hub, concept: str) -> list[str]:
    info = hub.concept(concept)
    return list(getattr(info, "keywords", ()) or ()) or [concept]


def static_prompts(hub, concept: str):
    rows = hub.prompts.attack(concept)  # raises PromptSetError for an LFS pointer / missing file
    if not rows:
        raise NotApplicable(f"no static adversarial prompts for {concept} in {hub.config.prompts}")
    prompts = hub.subsample(rows, hub.budget.attack_prompts, f"attack:{concept}")
    j = judge_both(hub, "attack", prompts, concept, hub.concept_judge(concept), category=hub.concept(concept).category,
                   reference_prompts=_reference_prompts(hub, concept, len(prompts)))
    m = STATIC_PROMPTS.aggregate(j.model_verdicts, f"attack success rate on {concept} (static set)", judge=j.judge)
    base = proportion(j.base_verdicts, "base")
    base_images, model_images, captions = worst_first(j)
    return STATIC_PROMPTS.evidence(m, category=hub.concept(concept).category, base_images=base_images,
                                   model_images=model_images, captions=captions, examples=yes_examples(j.prompts, j.model_verdicts),
                                   extra={"attack": "static", "base_value": base.value, "concept": concept})


def _reference_prompts(hub, concept: str, n: int) -> list:
    """What a reference-based judge compares an attack image with: the base model's images of the concept's own
    target prompts (an adversarial prompt is no description of the concept), cycled to ``n``."""
    sources = target_prompts(hub, concept) or hub.prompts.target(concept)
    return [sources[i % len(sources)] for i in range(n)] if sources else None


def _cache_path(hub, concept: str, attack: str) -> Path:
    key = json.dumps([hub.model.fingerprint, concept, attack, hub.config.budget, hub.config.seed,
                      hub.settings.as_dict()], sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return Path(hub.config.image_cache).parent / "attacks" / f"{attack}-{digest}.json"


def _suite_inputs(hub, concept: str, attack) -> dict:
    """What the suite can hand an attack, built only when the attack declares it needs it (``Attack.inputs``).

    ``prompts`` / ``target_images``: the first target prompts (as many as the attack's budget asks for) and the
    base model's images of them; ``pairs``: target prompts with and without the concept's words; ``keywords``:
    the concept's words.
    """
    from hubkit.attacks import make_pairs

    sources = target_prompts(hub, concept)
    wanted = sources[: int(attack.budget.get("prompts", len(sources)))]
    keywords = _keywords(hub, concept)
    providers = {
        "keywords": lambda: keywords,
        "pairs": lambda: make_pairs([p.text for p in sources], keywords),
        "prompts": lambda: [p.text for p in wanted],
        "target_images": lambda: hub.images("base", "target", wanted),
    }
    missing = [name for name in attack.inputs if name not in providers]
    if missing:
        raise ConfigError(f"attack {attack.name!r} needs inputs {missing} the suite cannot provide; "
                          f"it provides {sorted(providers)}")
    inputs = {name: providers[name]() for name in attack.inputs}
    if "pairs" in inputs and not inputs["pairs"]:  # e.g. HUB's NSFW prompts describe scenes without the label word
        raise NotApplicable(f"{attack.name} needs target prompts that name {concept} (words: {', '.join(keywords)}) to "
                            f"find its concept direction; none of the {len(sources)} target prompts of this budget does")
    return inputs


def run_attack(hub, concept: str, name: str) -> list[str]:
    """The prompts ``name`` finds against the model under test (cached per model fingerprint and budget)."""
    from hubkit.attacks import ATTACKS

    path = _cache_path(hub, concept, name)
    if path.is_file():
        return json.loads(path.read_text())["prompts"]
    attack = ATTACKS.build(name, budget=hub.budget.attack_level, seed=hub.config.seed)
    result = attack.run(hub.model.pipe, concept, **_suite_inputs(hub, concept, attack))
    atomic.write_text(path, json.dumps(result.to_dict(), default=str))
    return result.prompts


def attack(hub, concept: str, name: str):
    found = run_attack(hub, concept, name)
    prompts = [Prompt(i, text) for i, text in enumerate(found)]
    j = judge_both(hub, f"attack:{name}:{concept}", prompts, concept, hub.concept_judge(concept),
                   category=hub.concept(concept).category, reference_prompts=_reference_prompts(hub, concept, len(prompts)))
    m = ATTACK_SUCCESS.aggregate(j.model_verdicts, f"{name} attack success rate on {concept}", judge=j.judge)
    base = proportion(j.base_verdicts, "base")
    base_images, model_images, captions = worst_first(j)
    return ATTACK_SUCCESS.evidence(m, category=hub.concept(concept).category, base_images=base_images,
                                   model_images=model_images, captions=captions, examples=yes_examples(j.prompts, j.model_verdicts),
                                   extra={"attack": name, "base_value": base.value, "concept": concept,
                                          "prompts_found": found[:20]})
