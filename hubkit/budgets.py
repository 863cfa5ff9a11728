"""How many prompts, images and attack iterations each aspect gets at each ``--budget`` level.

``smoke`` answers "does it run" in seconds per aspect; ``ci`` evaluates the micro world in minutes on
two cores; ``full`` uses HUB's own counts (about 10k target prompts, 30k general captions, 1k prompts per
language, 100 neighbours x 10 images, 1k attack prompts). ``auto`` decides with the fewest images: the
image-hungry checks (target proportion, selective alignment, each language, static attack prompts) start at
``ci``'s counts and grow x1.5 per round up to ``full``'s, and each stops as soon as its anytime-valid bounds
decide it (``hubkit.sequential``); the default for a checkpoint evaluated against another base than the
embedded world's.
"""

from __future__ import annotations

import dataclasses
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
    fid_groups: int              # caption groups of the FID-ratio jackknife (two FIDs per group; at most n)
    # Interleaved timing rounds per model for inference overhead (after one warm-up each). 15 lets the median's
    # interval rest on the 4th and 12th smallest ratio, so three disturbed rounds cannot swing the verdict
    # (hubkit.aspects.efficiency); smoke only needs the aspect to run, and each round costs 2 x efficiency_images.
    efficiency_rounds: int = 15


BUDGETS: Registry[Budget] = Registry("budget", group="hubkit.budgets", where="hubkit.budgets.BUDGETS")
# ci's 128 selective prompts (about 240 image-noun questions): at 32 (58 questions) the paired ratio's interval was
# +-0.11, so a checkpoint that changes nothing (ratio 1.0) could not clear the 0.95 bar and failed as inconclusive;
# at 128 one did (0.991, lower bound 0.957; docs/base-experiments.md). 256 (about 480 questions) decides a
# checkpoint that loses 1-2% (ESD-kv on the micro base: 0.983 undecided at 128, 1.011 [0.987, 1.036] at 256).
# Images are cheap next to the attacks.
_BUILT_IN = (  # cheapest first
    Budget("smoke", 16, 16, 8, 8, 2, 4, 8, "smoke", 16, 4, 16, efficiency_rounds=3),
    Budget("ci", 64, 128, 256, 64, 5, 12, 32, "ci", 64, 16, 20),
    Budget("full", 10_000, 30_000, 1_000, 1_000, 100, 10, 1_000, "full", 300, 64, 20),
)
for _budget in _BUILT_IN:
    BUDGETS.register(_budget.name, obj=_budget)

#: the built-in budgets' names, cheapest first: the --budget choices, and the levels every attack has a preset for
LEVELS = tuple(b.name for b in _BUILT_IN)


@dataclass(frozen=True)
class SequentialBudget(Budget):
    """A budget whose ``sequential`` counts grow in rounds: round 0 has ``first``'s counts, each round ``growth``
    times more (rounded up), up to this budget's own counts (the caps). Every other count is fixed.

    Round r's prompts contain round r-1's (``hubkit.prompts.subsample`` keeps smaller samples inside larger ones)
    and every image's seed is its own, so a round only adds images: stopping never changes one. The verdict layer
    runs a check round by round (``hubkit.sequential.until_decided``) on anytime-valid bounds.
    """

    first: Budget | None = None
    growth: float = 1.5
    sequential: tuple[str, ...] = ("target_prompts", "selective_prompts", "language_prompts", "attack_prompts")

    def sizes(self, field: str) -> list[int]:
        """Round-by-round counts of one field (one entry when it does not grow)."""
        from hubkit.sequential import schedule

        cap = getattr(self, field)
        if field not in self.sequential or self.first is None:
            return [cap]
        return schedule(getattr(self.first, field), cap, self.growth)

    @property
    def rounds(self) -> int:
        return max(len(self.sizes(f)) for f in self.sequential)

    def at_round(self, r: int) -> Budget:
        """The plain budget of round ``r`` (past the last round of a field, its cap)."""
        counts = {f: self.sizes(f)[min(r, len(self.sizes(f)) - 1)] for f in self.sequential}
        plain = {f.name: getattr(self, f.name) for f in dataclasses.fields(Budget)}
        return Budget(**{**plain, **counts, "name": f"{self.name}[round {r}]"})


def _auto() -> SequentialBudget:
    ci, full = BUDGETS.get("ci"), BUDGETS.get("full")
    plain = {f.name: getattr(full, f.name) for f in dataclasses.fields(Budget)}
    # Fixed counts: FID and CLIP score are means of scores, not rates, and have no sequential form here; they
    # get 1,000 captions (HUB: 30,000 for FID). The canary, the neighbours and the timing stay at full / ci.
    plain.update(name="auto", general_prompts=1_000, efficiency_images=ci.efficiency_images)
    return SequentialBudget(**plain, first=ci, growth=1.5)


BUDGETS.register("auto", obj=_auto())


def default_budget(base_model: str | None) -> str:
    """``--budget`` when none is given: ``ci`` for the embedded world, ``auto`` for a checkpoint evaluated against
    another base model (a real Stable Diffusion checkpoint)."""
    if base_model is None:
        return "ci"
    from pathlib import Path

    from hubkit.errors import ConfigError
    from hubkit.worlds import default_world

    try:
        world_base = Path(default_world().base_model).resolve()
    except ConfigError:
        return "auto"
    return "ci" if Path(base_model).resolve() == world_base else "auto"
