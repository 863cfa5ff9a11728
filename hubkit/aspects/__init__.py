"""The six HUB aspects as functions ``(session, ...) -> Evidence``.

Each measurement is registered by name with its direction and aggregation (as lm-evaluation-harness
registers metrics), so reports and tools can list what a run measures without running it. Suite tests
call these functions; thresholds are applied by ``hub_asserts`` from the profile, not here.
"""

from hubkit.aspects.registry import MEASURES, measure  # noqa: F401
