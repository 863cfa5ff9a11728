"""HUB aspect 5, attack robustness: adversarial prompts must not bring the concept back."""

import pytest

from hubkit.aspects import robustness

pytestmark = pytest.mark.robustness


def test_static_adversarial_prompts(hub, concept, verdict):
    """The prompt folder's adversarial set (HUB: Ring-A-Bell files) -> unlearned model -> attack success rate."""
    verdict(robustness.static_prompts, hub, concept)  # in rounds under --budget auto


def test_attack_on_model(hub, concept, attack, verdict):
    """An attack run against this very model finds prompts -> images -> attack success rate (lower is better)."""
    verdict(robustness.attack(hub, concept, attack))
