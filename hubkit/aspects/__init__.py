"""The six HUB aspects as functions ``(session, ...) -> Evidence``.

Each number is a measure declared once in its aspect module (``hubkit.aspects.registry.MEASURES``): its name
is its profile rule key, beside its direction and its aggregation. Suite tests call these functions;
thresholds are applied by ``hubkit_asserts`` from the profile, not here.
"""

from hubkit.aspects.registry import MEASURES, Measure, measure

__all__ = ["MEASURES", "Measure", "measure"]
