"""Aspect 5: attack robustness. Static adversarial sets, and attacks run against the model under test."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hubkit.aspects.common import GRID, Evidence, judge_both, target_prompts, yes_examples
from hubkit.aspects.registry import measure
from hubkit.errors import NotApplicable
from hubkit.prompts import Prompt
from hubkit.stats import proportion


def attack_names(hub) -> list[str]:
    from hubkit.attacks import list_attacks

    return list_attacks()


def _keywords(hub, concept: str) -> list[str]:
    info = hub.concept(concept)
    return list(getattr(info, "keywords", ()) or ()) or [concept]


@measure("robustness.static", direction="lower", aggregation="proportion")
def static_prompts(hub, concept: str) -> Evidence:
    rows = hub.prompts.attack(concept)  # raises PromptSetError for an LFS pointer / missing file
    if not rows:
        raise NotApplicable(f"no static adversarial prompts for {concept} in {hub.config.prompts}")
    prompts = hub.subsample(rows, hub.budget.attack_prompts, f"attack:{concept}")
    j = judge_both(hub, "attack", prompts, concept, hub.concept_judge(concept))
    m = proportion(j.model_verdicts, f"attack success rate on {concept} (static set)", judge=j.judge)
    base = proportion(j.base_verdicts, "base")
    return Evidence(m, "robustness.attack_success", hub.concept(concept).category, j.base_images[:GRID],
                    j.model_images[:GRID], yes_examples(j.prompts, j.model_verdicts),
                    {"attack": "static", "base_value": base.value, "concept": concept})


def _cache_path(hub, concept: str, attack: str) -> Path:
    key = json.dumps([hub.model.fingerprint, concept, attack, hub.config.budget, hub.config.seed,
                      hub.settings.as_dict()], sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return Path(hub.config.image_cache).parent / "attacks" / f"{attack}-{digest}.json"


def run_attack(hub, concept: str, name: str) -> list[str]:
    """The prompts ``name`` finds against the model under test (cached per model fingerprint and budget)."""
    from hubkit.attacks import get_attack
    from hubkit.attacks.ringabell import make_pairs

    path = _cache_path(hub, concept, name)
    if path.is_file():
        return json.loads(path.read_text())["prompts"]
    attack = get_attack(name, budget=hub.budget.attack_level, seed=hub.config.seed)
    keywords = _keywords(hub, concept)
    sources = target_prompts(hub, concept)
    if name == "ringabell":
        result = attack.run(hub.model.pipe, concept, pairs=make_pairs([p.text for p in sources], keywords),
                            keywords=keywords)
    elif name == "unlearndiff":
        wanted = sources[: int(attack.budget["prompts"])]
        result = attack.run(hub.model.pipe, concept, prompts=[p.text for p in wanted],
                            target_images=hub.images("base", "target", wanted))
    else:
        result = attack.run(hub.model.pipe, concept, prompts=[p.text for p in sources], keywords=keywords)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.to_dict(), default=str))
    tmp.replace(path)
    return result.prompts


@measure("robustness.attack_success", direction="lower", aggregation="proportion")
def attack(hub, concept: str, name: str) -> Evidence:
    found = run_attack(hub, concept, name)
    prompts = [Prompt(i, text) for i, text in enumerate(found)]
    j = judge_both(hub, f"attack:{name}:{concept}", prompts, concept, hub.concept_judge(concept))
    m = proportion(j.model_verdicts, f"{name} attack success rate on {concept}", judge=j.judge)
    base = proportion(j.base_verdicts, "base")
    return Evidence(m, "robustness.attack_success", hub.concept(concept).category, j.base_images[:GRID],
                    j.model_images[:GRID], yes_examples(j.prompts, j.model_verdicts),
                    {"attack": name, "base_value": base.value, "concept": concept, "prompts_found": found[:20]})
