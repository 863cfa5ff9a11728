"""The attack registry and the types every attack shares.

An attack is a class registered under a name::

    @register_attack("my-attack")
    class MyAttack(Attack):
        BUDGETS = {"smoke": {...}, "ci": {...}, "full": {...}}
        def run(self, model, concept, **inputs) -> AttackResult: ...

and built by ``get_attack("my-attack", budget="ci", seed=0)``. Third-party packages add attacks without
editing hubkit through the entry-point group ``hubkit.attacks``; an entry point's name is the attack name
and its object is either the ``Attack`` subclass or a module whose import registers it::

    [project.entry-points."hubkit.attacks"]
    my-attack = "my_package.attacks:MyAttack"

Budgets: every attack has a ``budget`` dict (how many prompts to produce, iterations, candidates, ...).
``Attack.budget_for(level)`` gives the preset of ``level`` in ``smoke | ci | full``; a mapping passed as
``budget`` overrides single keys of a preset (``{"level": "ci", "prompts": 10}``; ``level`` defaults to
``ci``). Unknown keys are a ``ConfigError``.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any, Callable, ClassVar, Mapping

from hubkit.errors import ConfigError

ENTRY_POINT_GROUP = "hubkit.attacks"
LEVELS = ("smoke", "ci", "full")


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
    and ``inputs`` (the keyword arguments ``run`` needs besides the model and the concept), and
    implement ``run``. ``run`` must be deterministic for a given ``seed`` and budget.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    inputs: ClassVar[tuple[str, ...]] = ()
    BUDGETS: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Budget keys that measure cost; they must not decrease from smoke to ci to full.
    COST_KEYS: ClassVar[tuple[str, ...]] = ()

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


_REGISTRY: dict[str, type[Attack]] = {}
_ENTRY_POINTS_LOADED = False


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def register_attack(*names: str) -> Callable[[type[Attack]], type[Attack]]:
    """Class decorator: register ``cls`` under each of ``names`` (the first is its canonical name)."""
    if not names:
        raise ValueError("register_attack needs at least one name")

    def decorate(cls: type[Attack]) -> type[Attack]:
        if not (isinstance(cls, type) and issubclass(cls, Attack)):
            raise TypeError(f"{cls!r} is not an Attack subclass")
        for n in names:
            key = _norm(n)
            existing = _REGISTRY.get(key)
            if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
                raise ValueError(f"attack name {n!r} is already registered to {existing.__module__}.{existing.__qualname__}")
            _REGISTRY[key] = cls
        if not cls.__dict__.get("name"):
            cls.name = _norm(names[0])
        return cls

    return decorate


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # pragma: no cover - broken metadata must not break the built-in attacks
        return
    for ep in eps:
        key = _norm(ep.name)
        if key in _REGISTRY:
            continue
        try:
            obj = ep.load()
        except Exception as exc:
            raise ConfigError(
                f"attack entry point {ep.name!r} ({ep.value}) in group {ENTRY_POINT_GROUP!r} failed to import: {exc}"
            ) from exc
        if isinstance(obj, type) and issubclass(obj, Attack):
            register_attack(ep.name)(obj)


def list_attacks() -> list[str]:
    """The canonical names of every known attack (built-in and entry-point ones), sorted."""
    _load_entry_points()
    return sorted({cls.name for cls in _REGISTRY.values()})


def attack_class(name: str) -> type[Attack]:
    key = _norm(name)
    if key not in _REGISTRY:
        _load_entry_points()
    if key not in _REGISTRY:
        raise ConfigError(f"unknown attack {name!r}; known attacks: {', '.join(list_attacks())}")
    return _REGISTRY[key]


def get_attack(name: str, **options) -> Attack:
    """Build the attack registered as ``name`` (options: ``budget``, ``seed``, ``progress``)."""
    cls = attack_class(name)
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as exc:
        raise ConfigError(f"attack {name!r} does not accept options {sorted(options)}: {exc}") from exc
    return cls(**options)


def budget_for(name: str, level: str) -> dict:
    """The preset budget of attack ``name`` at ``level`` (smoke | ci | full)."""
    return attack_class(name).budget_for(level)
