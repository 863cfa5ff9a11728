"""Attacks run against the model under test; each returns the prompts it found.

    from hubkit.attacks import ATTACKS
    attack = ATTACKS.build("ringabell", budget="ci", seed=0)
    result = attack.run(pipe, "Van Gogh", pairs=make_pairs(target_prompts, keywords), keywords=keywords)
    result.prompts, result.losses, result.seconds                # AttackResult

Built-in attacks:

- ``ringabell``   Ring-A-Bell: text-encoder-only genetic token search (model-agnostic, transferable)
- ``unlearndiff`` UnlearnDiffAtk: white-box prefix-token optimisation against the model's denoising loss

``budget`` is a level (``smoke`` | ``ci`` | ``full``; ``Attack.budget_for(level)``) or a mapping that
overrides single keys of a level. Third parties add attacks through the entry-point group
``hubkit.attacks`` (see ``registry``).
"""

from hubkit.attacks.registry import ATTACKS, Attack, AttackResult
from hubkit.attacks.ringabell import RingABell, concept_direction, make_pairs, strip_concept
from hubkit.attacks.unlearndiff import UnlearnDiff, denoising_loss, encode_images

__all__ = [
    "ATTACKS", "Attack", "AttackResult", "RingABell", "UnlearnDiff", "concept_direction", "denoising_loss",
    "encode_images", "make_pairs", "strip_concept",
]
