"""HUB aspect 1, faithfulness: is the concept gone, and is everything else still drawn as well?"""

import pytest

from hubkit.aspects import faithfulness

pytestmark = pytest.mark.faithfulness


def test_target_proportion(hub, concept, verdict):
    """Target prompts -> unlearned model -> concept judge: share of images still showing the concept (lower is better)."""
    verdict(faithfulness.target_proportion, hub, concept)  # in rounds under --budget auto


def test_target_proportion_vs_base(hub, concept, verdict):
    """The same proportion as a ratio to the base model's on identical prompts and seeds (judge-independent)."""
    verdict(faithfulness.target_proportion_vs_base, hub, concept)  # in rounds under --budget auto


def test_general_quality_fid_vs_base(hub, verdict):
    """General captions -> both models -> FID between the two image sets (HUB's FID-SD), as a ratio to the base model's
    own seed-to-seed FID at the same n: a raw FID is only comparable at HUB's n and features (lower is better)."""
    verdict(faithfulness.fid_vs_base(hub))


def test_general_quality_fid_vs_reference(hub, verdict):
    """General captions -> unlearned model -> FID against reference statistics (HUB's FID vs COCO), if given."""
    verdict(faithfulness.fid_vs_reference(hub))


def test_target_image_quality(hub, concept, verdict):
    """Target prompts -> quality judge (aesthetic stand-in): the unlearned model's images keep the base model's quality."""
    verdict(faithfulness.target_quality(hub, concept))
