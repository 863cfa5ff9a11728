"""HUB aspect 6, efficiency: what the unlearned model costs at inference, on disk, and to train."""

import pytest

from hubkit.aspects import efficiency

pytestmark = pytest.mark.efficiency


def test_inference_time_overhead(hub, verdict):
    """Seconds per image, unlearned / base, same settings and batch (SLD-style methods pay here)."""
    verdict(efficiency.time_overhead(hub))


def test_inference_memory_overhead(hub, verdict):
    """Peak memory while generating, unlearned / base."""
    verdict(efficiency.memory_overhead(hub))


def test_storage(hub, verdict):
    """Megabytes the unlearned checkpoint adds on disk."""
    verdict(efficiency.storage(hub))


def test_declared_training_cost(hub, verdict):
    """The method's declared training time (from the checkpoint's metadata), when declared."""
    verdict(efficiency.training_time(hub))
