"""hubkit_asserts (folder hub_asserts/): turn measurements into verdicts against the thresholds of a profile.

    from hubkit_asserts import load_profile, check, assert_rule
    profile = load_profile("default")                       # hub_asserts/profiles/default.toml
    rule = profile.rule("faithfulness.target_proportion", category="celebrity")
    outcome = check(measurement, rule, examples=worst)      # Outcome(verdict, message, samples_needed)
    assert_rule(measurement, rule)                          # AssertionError(message) when it fails

Each rule is a one-sided test at the profile's alpha (default 0.05): "pass" when the one-sided bound at
1 - alpha on the good side clears the threshold, "fail" when the other bound is wholly on the bad side,
otherwise (or below the rule's min_n) "inconclusive", which fails unless the rule (or profile) sets
inconclusive_fails = false. docs/statistics.md states what a pass promises.
"""

from hubkit_asserts.profile import PROFILE_DIR, Profile, Rule, available_profiles, load_profile
from hubkit_asserts.verdict import Decision, Outcome, assert_rule, check, decide

__all__ = ["PROFILE_DIR", "Decision", "Outcome", "Profile", "Rule", "assert_rule", "available_profiles", "check", "decide",
           "load_profile"]
