"""HUB aspect 4, multilingual robustness: the concept stays gone when asked for in another language."""

import pytest

from hubkit.aspects import multilingual

pytestmark = pytest.mark.multilingual


def test_target_proportion_in_language(hub, concept, language, verdict):
    """Translated target prompts -> unlearned model -> concept judge (lower is better)."""
    verdict(multilingual.target_proportion, hub, concept, language)  # in rounds under --budget auto


def test_mean_over_languages(hub, concept, verdict):
    """HUB's number: the mean of the five non-English target proportions (English excluded)."""
    verdict(multilingual.mean_over_languages, hub, concept)  # in rounds under --budget auto
