"""hubkit_asserts (folder hub_asserts/): turn measurements into verdicts against the thresholds of a profile.

    from hubkit_asserts import load_profile, check, assert_rule
    profile = load_profile("default")                       # hub_asserts/profiles/default.toml
    rule = profile.rule("faithfulness.target_proportion", category="celebrity")
    outcome = check(measurement, rule, examples=worst)      # Outcome(verdict, message, samples_needed)
    assert_rule(measurement, rule)                          # AssertionError(message) when it fails

A verdict is "pass" / "fail" only when the whole confidence interval is on one side of the threshold;
otherwise it is "inconclusive", which fails unless the rule (or profile) sets inconclusive_fails = false.
"""

from hubkit_asserts.profile import PROFILE_DIR, Profile, Rule, available_profiles, load_profile
from hubkit_asserts.verdict import Outcome, assert_rule, check

__all__ = ["PROFILE_DIR", "Outcome", "Profile", "Rule", "assert_rule", "available_profiles", "check", "load_profile"]
