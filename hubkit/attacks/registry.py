"""The attack registry and the types every attack shares.

An attack is a class registered under a name::

    @ATTACKS.register("my-attack")
    class MyAttack(Attack):
        inputs = ("prompts", "target_images")          # what the suite hands ``run``
        BUDGETS = {"smoke": {...}, "ci": {...}, "full": {...}}
        def run(self, model, concept, *, prompts, target_images) -> AttackResult: ...

and built by ``ATTACKS.build("my-attack", budget="ci", seed=0)``. Third-party packages add attacks without
editing hubkit through the entry-point group ``hubkit.attacks`` (see ``hubkit.registry``)::

    [project.entry-points."hubkit.attacks"]
    my-attack = "my_package.attacks:MyAttack"

Budgets: every attack has a ``budget`` dict (how many prompts to produce, iterations, candidates, ...).
``Attack.budget_for(level)`` gives the preset of ``level`` in ``smoke | ci | full``; a mapping passed as
``budget`` overrides single keys of a preset (``{"level": "ci", "prompts": 10}``; ``level`` defaults to
``ci``). Unknown keys are a ``ConfigError``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Mapping

from hubkit.budgets import LEVELS
from hubkit.errors import ConfigError, RegistryError
from hubkit.registry import Registry


@dataclass
class AttackResult:
    """What an attack found for one concept.

    ``prompts`` are plain text prompts (the suite generates images from them, judges them and shows them
    in the report); ``losses[i]`` is the attack's own objective for ``prompts[i]`` (lower is better; its
    meaning is in ``details["objective"]``). ``details`` holds per-attack diagnostics (budget, seed,
    per-prompt histories); ``seconds`` is the wall-clock time of ``run``.
    """

    attack: str
    concept: str
    prompts: list[str]
    losses: list[float]
    details: dict = field(default_factory=dict)
    seconds: float = 0.0

    def __post_init__(self):
        if len(self.prompts) != len(self.losses):
            raise ValueError(f"{len(self.prompts)} prompts but {len(self.losses)} losses")

    def __len__(self) -> int:
        return len(self.prompts)

    def to_dict(self) -> dict:
        """JSON-serialisable form (for reports and caches)."""
        return asdict(self)


class Attack:
    """Base class of every attack.

    Subclasses set ``BUDGETS`` (one dict per level in ``LEVELS``, all with the same keys), ``description``
    and ``inputs`` (the keyword arguments the suite passes ``run`` besides the model and the concept, from
    what ``hubkit.aspects.robustness`` provides: prompts, target_images, pairs, keywords), and implement
    ``run``. ``run`` must be deterministic for a given ``seed`` and budget.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    inputs: ClassVar[tuple[str, ...]] = ()
    BUDGETS: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Budget keys that measure cost; they must not decrease from smoke to ci to full.
    COST_KEYS: ClassVar[tuple[str, ...]] = ()
    #: The parts of the model under test ``run`` reads (``None``: all of it, with any inference-time method): an
    #: attack's result is cached by these parts' content, so a checkpoint that changes none of them reuses it.
    reads: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, budget: str | Mapping[str, Any] = "ci", *, seed: int = 0, progress: bool = True):
        self.budget = self.resolve_budget(budget)
        self.seed = int(seed)
        self.progress = bool(progress)

    @classmethod
    def budget_for(cls, level: str) -> dict:
        """The preset budget of ``level`` (``smoke`` = seconds; ``ci`` = one to two minutes per concept on a
        micro model on two CPU cores, with at least 40 prompts so that 0 successes decides a 0.15 threshold
        at 95%; ``full`` = the original paper's settings)."""
        level = str(level).strip().lower()
        if level not in cls.BUDGETS:
            raise ConfigError(f"unknown budget level {level!r} for attack {cls.name!r}; use one of {', '.join(LEVELS)}")
        return dict(cls.BUDGETS[level])

    @classmethod
    def resolve_budget(cls, budget: str | Mapping[str, Any]) -> dict:
        if isinstance(budget, str):
            out = cls.budget_for(budget)
            out["level"] = budget.strip().lower()
            return out
        if not isinstance(budget, Mapping):
            raise ConfigError(f"attack {cls.name!r}: budget must be a level name or a mapping, got {type(budget).__name__}")
        overrides = dict(budget)
        level = str(overrides.pop("level", "ci")).strip().lower()
        out = cls.budget_for(level)
        unknown = sorted(set(overrides) - set(out))
        if unknown:
            raise ConfigError(f"attack {cls.name!r}: unknown budget keys {unknown}; known: {sorted(out)}")
        for k, v in overrides.items():
            default = out[k]
            if isinstance(default, bool) or default is None:
                out[k] = v
            elif isinstance(default, int) and not isinstance(v, bool):
                if int(v) != v:
                    raise ConfigError(f"attack {cls.name!r}: budget key {k!r} must be an integer, got {v!r}")
                out[k] = int(v)
            elif isinstance(default, float):
                out[k] = float(v)
            else:
                out[k] = v
        out["level"] = level
        return out

    def run(self, model, concept: str, **inputs) -> AttackResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def info(self) -> dict:
        return {"name": self.name, "budget": dict(self.budget), "seed": self.seed}

    def __repr__(self) -> str:
        return f"<attack {self.name} budget={self.budget.get('level')} seed={self.seed}>"


def derived_seed(*parts: object) -> int:
    """A stable 63-bit seed from ``parts`` (sha256 of their reprs), independent of PYTHONHASHSEED."""
    h = hashlib.sha256("\x1f".join(repr(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big") >> 1


def _check(name: str, entry) -> None:
    if not (isinstance(entry, type) and issubclass(entry, Attack)):
        raise RegistryError(f"attack {name!r} must be a subclass of hubkit.attacks.Attack, got {entry!r}")


ATTACKS: Registry[type[Attack]] = Registry("attack", group="hubkit.attacks", check=_check, builtins=(
    "hubkit.attacks.ringabell", "hubkit.attacks.unlearndiff", "hubkit.attacks.inversion"))
