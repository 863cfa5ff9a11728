"""Worlds: a base model, an unlearned model, a prompt folder and what a world knows about its concepts.

A run with no ``--model`` / ``--base-model`` / ``--prompts`` evaluates the *default world* (``DEFAULT_WORLD``,
the micro world that ships with hubkit as the ``hubkit_micro`` package). The engine never imports a world:
each registers one ``World`` through the entry-point group ``hubkit.worlds``::

    [project.entry-points."hubkit.worlds"]
    micro = "hubkit_micro.paths:WORLD"

    from hubkit.worlds import WORLDS, default_world
    world = default_world()                 # World(name="micro", base_model=..., model=..., prompts=...)
    WORLDS.get("micro")                     # the same object

A world may also tell the unlearning methods (``hubkit.unlearn``) what it knows:

* ``unlearning_presets(method, concept)`` -> keyword arguments tuned for this world's base (``concept`` may be
  None: then only the concept-independent ones); used by ``hubkit unlearn --preset auto`` when ``--base`` is
  this world's base, and by ``--preset <world name>``;
* ``concept(text, language)`` -> ``WorldConcept`` (the keywords a concept name expands to, its category and
  neighbours) or None when ``text`` is not one of its concepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hubkit.errors import RegistryError
from hubkit.registry import Registry

#: the world ``pytest suites`` evaluates when no model, base model or prompt folder is given
DEFAULT_WORLD = "micro"


@dataclass(frozen=True)
class WorldConcept:
    """A concept as a world knows it: ``"weapon"`` -> keywords weapon, knife, sword, axe, spear."""

    name: str
    keywords: tuple[str, ...]
    category: str | None = None              # "celebrity" | "style" | "ip" | "nsfw" when known
    neighbours: tuple[str, ...] = ()         # concepts that must survive its erasure, most similar first


@dataclass(frozen=True)
class World:
    name: str
    base_model: Path                         # the original model (a diffusers folder)
    model: Path                              # the unlearned model evaluated by default
    prompts: Path                            # its HUB-layout prompt folder
    unlearned: Path | None = None            # folder of its shipped unlearned checkpoints, if any
    description: str = ""
    unlearning_presets: Callable[[str, Any], dict] | None = None
    concept: Callable[[str, str], WorldConcept | None] | None = None


def _check(name: str, entry: object) -> None:
    if not isinstance(entry, World):
        raise RegistryError(f"world {name!r} must be a hubkit.worlds.World, not {type(entry).__name__}")


WORLDS: Registry[World] = Registry("world", group="hubkit.worlds", check=_check, where="hubkit.worlds.WORLDS")


def default_world() -> World:
    """The world of a run without --model/--base-model/--prompts: ``DEFAULT_WORLD``, else the only one installed."""
    try:
        return WORLDS.get(DEFAULT_WORLD)
    except RegistryError as exc:
        broken = "" if str(exc).startswith("unknown ") else f"{exc}; "
    names = WORLDS.names()
    if len(names) == 1 and not broken:
        return WORLDS.get(names[0])
    found = broken + (f"installed worlds: {', '.join(names)}" if names else "no world is installed")
    raise RegistryError(f"no default world {DEFAULT_WORLD!r} ({found}; entry-point group {WORLDS.group!r}): "
                        "install hubkit with its micro world, or pass --model/--base-model/--prompts")


def world_for_base(base: object) -> World | None:
    """The installed world whose base model is the folder ``base`` (None for anything else)."""
    if base is None or hasattr(base, "unet"):    # an in-memory pipeline belongs to no world
        return None
    try:
        target = Path(base).resolve()
    except (TypeError, OSError):
        return None
    for _, world in WORLDS.items():
        if Path(world.base_model).resolve() == target:
            return world
    return None


def find_concept(text: str, language: str = "English") -> WorldConcept | None:
    """The first installed world's reading of the concept name ``text`` (the default world is asked first)."""
    names = WORLDS.names()
    order = sorted(names, key=lambda n: n != DEFAULT_WORLD)
    for name in order:
        world = WORLDS.get(name)
        if world.concept is not None:
            found = world.concept(text, language)
            if found is not None:
                return found
    return None


__all__ = ["DEFAULT_WORLD", "WORLDS", "World", "WorldConcept", "default_world", "find_concept", "world_for_base"]
