"""Where the shipped micro world lives inside the installed package, and the ``World`` it registers.

``WORLD`` is registered with the engine through the entry-point group ``hubkit.worlds`` (``pyproject.toml``),
so ``pytest suites`` without options evaluates it; nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path

from hubkit.worlds import World, WorldConcept

ROOT = Path(__file__).resolve().parent
WEIGHTS = ROOT / "weights"
BASE = WEIGHTS / "base"
JUDGES = WEIGHTS / "judges"
UNLEARNED = WEIGHTS / "unlearned"
PROMPTS = ROOT / "prompts"

# What `pytest suites` evaluates when no --model is given: a shipped ESD checkpoint (see README).
DEFAULT_MODEL_NAME = "esd-pointelli"


def unlearned(name: str) -> Path:
    """The shipped unlearned checkpoint folder ``name`` (e.g. ``esd-pointelli``)."""
    return UNLEARNED / name


def weights_digest(folder: Path) -> str:
    """A short digest of a model folder's weight and config files (names and bytes): what a checkpoint built from it,
    or a measurement of it, depends on."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(p for p in Path(folder).rglob("*") if p.suffix in (".safetensors", ".bin", ".pt", ".json")):
        h.update(f.relative_to(folder).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _unlearning_presets(method: str, concept=None) -> dict:
    from hubkit_micro.unlearn import presets

    return presets(method, concept)


def _concept(text: str, language: str) -> WorldConcept | None:
    """A micro-world concept name (case-insensitive) -> its keywords in ``language`` (weapon -> weapon, knife, ...)."""
    from hubkit_micro.world import CONCEPTS

    for key, c in CONCEPTS.items():
        if key.lower() == text.lower():
            return WorldConcept(name=c.name, keywords=tuple(c.keywords[language]), category=c.category,
                                neighbours=tuple(c.neighbours))
    return None


WORLD = World(
    name="micro",
    base_model=BASE,
    model=unlearned(DEFAULT_MODEL_NAME),
    prompts=PROMPTS,
    unlearned=UNLEARNED,
    description="the embedded micro world: 64x64 procedural scenes, a micro SD, its judges and prompt sets",
    unlearning_presets=_unlearning_presets,
    concept=_concept,
)
