"""How many prompts, images and attack iterations each aspect gets at each ``--budget`` level.

``smoke`` answers "does it run" in seconds per aspect; ``ci`` evaluates the micro world in minutes on
two cores; ``full`` uses HUB's own counts (about 10k target prompts, 30k general captions, 1k prompts per
language, 100 neighbours x 10 images, 1k attack prompts).
"""

from __future__ import annotations

from dataclasses import dataclass

from hubkit.registry import Registry


@dataclass(frozen=True)
class Budget:
    name: str
    target_prompts: int          # faithfulness target proportion / target quality
    general_prompts: int         # FID, general alignment
    selective_prompts: int       # selective alignment (prompts; questions are nouns x prompts)
    language_prompts: int        # per non-English language
    neighbours: int              # pinpoint neighbours per concept
    images_per_neighbour: int
    attack_prompts: int          # static adversarial prompts (Ring-A-Bell files)
    attack_level: str            # passed to each attack's ``budget_for``
    canary_prompts: int          # base-model images the judge must see the concept in
    efficiency_images: int       # images timed per model for inference overhead
    fid_bootstrap: int           # caption resamples for the FID-ratio intervals (two eigendecompositions each)


BUDGETS: Registry[Budget] = Registry("budget", group="hubkit.budgets", where="hubkit.budgets.BUDGETS")
_BUILT_IN = (  # cheapest first
    Budget("smoke", 16, 16, 8, 8, 2, 4, 8, "smoke", 16, 4, 50),
    Budget("ci", 64, 128, 32, 64, 5, 12, 32, "ci", 64, 16, 200),
    Budget("full", 10_000, 30_000, 1_000, 1_000, 100, 10, 1_000, "full", 300, 64, 100),
)
for _budget in _BUILT_IN:
    BUDGETS.register(_budget.name, obj=_budget)

#: the built-in budgets' names, cheapest first: the --budget choices, and the levels every attack has a preset for
LEVELS = tuple(b.name for b in _BUILT_IN)
