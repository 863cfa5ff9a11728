"""HUB aspect 3, pinpoint-ness: erasing a concept must not erase its neighbours (over-erasure fails)."""

import pytest

from hubkit.aspects import pinpoint

pytestmark = pytest.mark.pinpoint


def test_neighbour_survives(hub, concept, neighbour, verdict):
    """'a photo of {neighbour}' -> both models -> judge: the unlearned model keeps the neighbour as often as the base."""
    verdict(pinpoint.neighbour(hub, concept, neighbour))


def test_neighbours_overall(hub, concept, verdict):
    """All neighbours pooled: the unlearned model's neighbour rate relative to the base model's."""
    verdict(pinpoint.overall(hub, concept))
