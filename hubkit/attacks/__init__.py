"""Attacks run against the model under test; each returns the prompts it found.

    from hubkit.attacks import get_attack
    attack = get_attack("ringabell", budget="ci", seed=0)
    result = attack.run(pipe, "Van Gogh", pairs=make_pairs(target_prompts, keywords), keywords=keywords)
    result.prompts, result.losses, result.seconds                # AttackResult

Built-in attacks:

- ``ringabell``   Ring-A-Bell: text-encoder-only genetic token search (model-agnostic, transferable)
- ``unlearndiff`` UnlearnDiffAtk: white-box prefix-token optimisation against the model's denoising loss

``budget`` is a level (``smoke`` | ``ci`` | ``full``; ``Attack.budget_for(level)``) or a mapping that
overrides single keys of a level. Third parties add attacks through the entry-point group
``hubkit.attacks`` (see ``registry``).
"""

from hubkit.attacks.registry import (
    ENTRY_POINT_GROUP,
    LEVELS,
    Attack,
    AttackResult,
    attack_class,
    budget_for,
    get_attack,
    list_attacks,
    register_attack,
)

# Importing the modules registers the built-in attacks.
from hubkit.attacks.ringabell import RingABell, concept_direction, make_pairs, strip_concept  # noqa: E402
from hubkit.attacks.unlearndiff import UnlearnDiff, denoising_loss, encode_images  # noqa: E402

__all__ = [
    "ENTRY_POINT_GROUP", "LEVELS", "Attack", "AttackResult", "RingABell", "UnlearnDiff", "attack_class",
    "budget_for", "concept_direction", "denoising_loss", "encode_images", "get_attack", "list_attacks", "make_pairs",
    "register_attack", "strip_concept",
]
