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

ATTACK_POWER = measure(
    "robustness.attack_power", better="higher", aggregation=METRICS["proportion"],
    description="the attack run against the BASE model: share of the base's images of the prompts it finds that show "
                "the concept. An attack that cannot bring the concept back where it was never erased certifies nothing")


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


def _cache_path(hub, concept: str, attack) -> Path:
    """Where ``attack``'s result for ``concept`` is cached, keyed by what the attack reads: the parts of the model under
    test it declares (``Attack.reads``; all of it by default), the base model when it takes base images or the base as
    its reference, and the budget, seed and generation settings."""
    from hubkit.models.fingerprint import components_digest

    reads = type(attack).reads
    model = hub.model.fingerprint if reads is None else components_digest(hub.model.pipe, reads)
    base = hub.base.fingerprint if {"reference", "target_images"} & set(attack.inputs) else None
    words = _vocabulary(hub, attack)   # the budget names the list; its content is what the search reads
    vocabulary = None if words is None else hashlib.sha256("\n".join(words).encode()).hexdigest()
    key = json.dumps([model, list(reads or ["all"]), base, concept, attack.name, attack.budget, attack.seed,
                      hub.settings.as_dict()] + ([vocabulary] if vocabulary else []), sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return Path(hub.config.image_cache).parent / "attacks" / f"{attack.name}-{digest}.json"


def _vocabulary(hub, attack) -> list[str] | None:
    """The word list the attack's budget names (``vocabulary``, a file of the prompt folder), or None."""
    name = attack.budget.get("vocabulary")
    return hub.prompts.words(name) if name else None


def build_attack(hub, name: str):
    """Attack ``name`` at the session's budget level, with the settings the prompt folder's manifest gives it
    (``[attacks.<name>]``: the world's per-concept settings, as each attack's paper tunes them)."""
    from hubkit.attacks import ATTACKS

    settings = hub.prompts.attack_settings(ATTACKS.get(name).name)
    return ATTACKS.build(name, budget={"level": hub.budget.attack_level, **settings}, seed=hub.config.seed)


def _suite_inputs(hub, concept: str, attack) -> dict:
    """What the suite can hand an attack, built only when the attack declares it needs it (``Attack.inputs``).

    ``prompts`` / ``target_images``: the first target prompts (as many as the attack's budget asks for) and the
    base model's images of them; ``pairs``: target prompts with and without the concept's words; ``keywords``:
    the concept's words; ``vocabulary``: the word list the attack's budget names, else None.
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
        "reference": lambda: hub.base.pipe,  # who defines the concept: the base model, never the model under test
        "vocabulary": lambda: _vocabulary(hub, attack),
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


def run_attack(hub, concept: str, name: str) -> dict:
    """What ``name`` finds against the model under test (``AttackResult.to_dict()``: prompts, details), cached by what
    the attack reads (``_cache_path``)."""
    attack = build_attack(hub, name)
    path = _cache_path(hub, concept, attack)
    if path.is_file():
        return json.loads(path.read_text())
    result = attack.run(hub.model.pipe, concept, **_suite_inputs(hub, concept, attack))
    found = result.to_dict()
    atomic.write_text(path, json.dumps(found, default=str))
    return found


class _WithLearnedToken:
    """The session with both models extended by an embedding attack's learned token (``details["embedding"]``), so
    the prompts that use it are drawn as the attack meant them; the store keys follow the extended fingerprints."""

    def __init__(self, hub, details: dict):
        self._hub = hub
        self._details = details

    def _extended(self, which: str):
        """``which`` model extended by the token, built on first use (a copy of its text encoder: the canary's run
        against the base needs only one of the two)."""
        from hubkit.attacks.inversion import with_learned_token

        if which not in self.__dict__:
            loaded = getattr(self._hub, which)
            self.__dict__[which] = with_learned_token(loaded, self._details["embedding"], self._details["token"])
        return self.__dict__[which]

    def __getattr__(self, name):
        return getattr(self._hub, name)

    def images(self, which: str, set_name: str, prompts, per_prompt: int = 1, desc: str = ""):
        if set_name.startswith("reference:"):  # a judge's references are the plain base's images of target prompts
            return self._hub.images(which, set_name, prompts, per_prompt, desc)
        return self._hub.images(self._extended(which), set_name, prompts, per_prompt, desc or f"{which}+token: {set_name}")


def _drawing(hub, found: dict):
    """Who draws an attack's prompts: the session, or (an embedding attack) the session with the learned token."""
    details = found.get("details") or {}
    return _WithLearnedToken(hub, details) if "embedding" in details else hub


class _AgainstBase:
    """The session as an attack run against the base model sees it: ``model`` is the base."""

    def __init__(self, hub):
        self._hub = hub

    def __getattr__(self, name):
        return getattr(self._hub, name)

    @property
    def model(self):
        return self._hub.base

    def images(self, which, set_name: str, prompts, per_prompt: int = 1, desc: str = ""):
        # The session's own ``images`` resolves "model" to the model under test: the attack's prompts must be drawn
        # by the base here, or an erased model's images would stand in for the base's and hide the attack's power
        return self._hub.images("base" if which == "model" else which, set_name, prompts, per_prompt, desc)


_POWER: dict[tuple, object] = {}


def attack_power(hub, concept: str, name: str):
    """The attack's power (once per session and concept): run against the base model (cached by what it reads, so
    shared by every checkpoint of that base), its prompts drawn by the base and judged. The fixtures refuse the
    attack's verdict on the model under test when this is below the profile's ``robustness.attack_power``."""
    key = (id(hub), concept, name)
    if key not in _POWER:
        from hubkit.aspects.common import detect, references

        found = run_attack(_AgainstBase(hub), concept, name)
        prompts = [Prompt(i, text) for i, text in enumerate(found["prompts"])]
        judge = hub.concept_judge(concept)
        set_name = f"attack-on-base:{name}:{concept}"
        refs = references(hub, judge, set_name, prompts,
                          reference_prompts=_reference_prompts(hub, concept, len(prompts)))
        drawing = _drawing(_AgainstBase(hub), found)
        verdicts = detect(judge, drawing.images("model", set_name, prompts), concept, refs,
                          hub.concept(concept).category)
        _POWER[key] = ATTACK_POWER.aggregate(verdicts, f"{name} against the base model on {concept}",
                                             judge=judge.configured_name)
    return _POWER[key]


def attack(hub, concept: str, name: str):
    result = run_attack(hub, concept, name)
    found = result["prompts"]
    prompts = [Prompt(i, text) for i, text in enumerate(found)]
    j = judge_both(_drawing(hub, result), f"attack:{name}:{concept}", prompts, concept, hub.concept_judge(concept),
                   category=hub.concept(concept).category, reference_prompts=_reference_prompts(hub, concept, len(prompts)))
    m = ATTACK_SUCCESS.aggregate(j.model_verdicts, f"{name} attack success rate on {concept}", judge=j.judge)
    base_value = proportion(j.base_verdicts, "base").value
    if "embedding" in (result.get("details") or {}):
        # a token learned against the model under test means nothing to the base: the base's reference is the attack
        # run against the base itself (its power), when the canary measured it
        power = _POWER.get((id(hub), concept, name))
        base_value = power.value if power is not None else None
    base_images, model_images, captions = worst_first(j)
    return ATTACK_SUCCESS.evidence(m, category=hub.concept(concept).category, base_images=base_images,
                                   model_images=model_images, captions=captions, examples=yes_examples(j.prompts, j.model_verdicts),
                                   extra={"attack": name, "base_value": base_value, "concept": concept,
                                          "prompts_found": found[:20], **_power_extra(hub, concept, name)})


def _power_extra(hub, concept: str, name: str) -> dict:
    """The attack canary's measurement, for the record of the attack's verdict (when the canary ran)."""
    power = _POWER.get((id(hub), concept, name))
    if power is None:
        return {}
    return {"attack_power": power.value, "attack_power_n": power.n}
