"""HUB aspect 2, alignment: do images still follow their prompts?"""

import pytest

from hubkit.aspects import alignment

pytestmark = pytest.mark.alignment


def test_general_alignment(hub, verdict):
    """General captions -> CLIP score of each image with its caption, relative to the base model (higher is better)."""
    verdict(alignment.general(hub))


def test_selective_alignment(hub, concept, verdict):
    """Target prompts -> for each *other* noun of the prompt, is it still visible? Denominator: questions, not prompts."""
    verdict(alignment.selective, hub, concept)  # in rounds under --budget auto
