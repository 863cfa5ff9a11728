"""One registry idiom for every pluggable kind, in the spirit of lm-evaluation-harness' ``api/registry.py``.

Each kind (judges, attacks, metrics, checkpoint formats, inference-time methods, measures, budgets,
unlearning methods, worlds, commands) is one ``Registry`` instance::

    JUDGES = Registry("judge", group="hubkit.judges", builtins=("hubkit.judges.nudity", ...))

    @JUDGES.register("my-judge")            # a class, a function or any object
    class MyJudge(Judge): ...

    JUDGES.get("my_judge")                  # names are matched case-, '-'/'_'- and space-insensitively
    JUDGES.names()                          # canonical names, sorted

Built-ins register on first lookup (their modules are imported then, so listing stays cheap to import).
Third-party packages add entries without editing hubkit through the entry-point group of the kind; an
entry point's name is the entry's name and its object is either the entry itself or a module whose import
registers it::

    [project.entry-points."hubkit.judges"]
    my-judge = "my_package.judges:MyJudge"

An unknown name and a broken entry point raise the same ``RegistryError``, naming the kind and listing
what is registered. A broken entry point breaks only its own name, never the built-ins.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Generic, TypeVar

from hubkit.errors import RegistryError

T = TypeVar("T")


def normalise(name: str) -> str:
    """The lookup key of a name: case, surrounding space and the '-'/'_' spelling do not matter."""
    return str(name).strip().casefold().replace("_", "-")


class Registry(Generic[T]):
    """Names -> entries of one kind, filled by ``register``, built-in modules and entry points."""

    def __init__(self, kind: str, *, group: str | None = None, builtins: tuple[str, ...] = (),
                 check: Callable[[str, T], None] | None = None, where: str = ""):
        self.kind = kind
        self.where = where  # the registry's import path, for the "how to add one" hint
        self.group = group or f"hubkit.{kind.replace(' ', '_')}s"
        self._builtins = tuple(builtins)
        self._check = check
        self._entries: dict[str, T] = {}        # normalised name -> entry
        self._canonical: dict[str, str] = {}    # normalised name -> the name it was registered under
        self._aliases: set[str] = set()         # normalised names that are not canonical
        self._broken: dict[str, str] = {}       # normalised entry-point name -> why it failed to import
        self._builtins_loaded = not self._builtins
        self._entry_points_loaded = False

    # ------------------------------------------------------------------ registering
    def register(self, *names: str, obj: T | None = None):
        """Register ``obj`` under ``names`` (the first is canonical); without ``obj``, a decorator."""
        if not names:
            raise ValueError(f"registering a {self.kind} needs at least one name")

        def add(entry: T) -> T:
            if self._check is not None:
                self._check(names[0], entry)
            for i, name in enumerate(names):
                key = normalise(name)
                old = self._entries.get(key)
                if old is not None and old is not entry and _qualname(old) != _qualname(entry):
                    raise RegistryError(f"{self.kind} name {name!r} is already registered to {_qualname(old)}")
                self._entries[key] = entry
                self._canonical[key] = str(name).strip()
                if i:
                    self._aliases.add(key)
                else:
                    self._aliases.discard(key)
                self._broken.pop(key, None)
            if isinstance(entry, type) and not entry.__dict__.get("name"):
                try:
                    entry.name = str(names[0]).strip()
                except (AttributeError, TypeError):  # pragma: no cover - a class that forbids it
                    pass
            return entry

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        key = normalise(name)
        entry = self._entries.pop(key, None)
        self._canonical.pop(key, None)
        self._aliases.discard(key)
        for other in [k for k, v in self._entries.items() if v is entry]:
            self._entries.pop(other)
            self._canonical.pop(other, None)
            self._aliases.discard(other)

    # ------------------------------------------------------------------ looking up
    def get(self, name: str) -> T:
        key = normalise(name)
        if key not in self._entries:
            self._load_builtins()
        if key not in self._entries:
            self._load_entry_points()
        if key in self._broken:
            raise RegistryError(self._broken[key])
        if key not in self._entries:
            known = ", ".join(self.names()) or "none"
            how = f"{self.where}.register or " if self.where else ""
            raise RegistryError(f"unknown {self.kind} {name!r}; registered {self.kind}s: {known} "
                                f"(add one with {how}an entry point in the group {self.group!r})")
        return self._entries[key]

    __getitem__ = get

    def build(self, name: str, **options):
        """An instance of the class registered as ``name``, built with ``options`` (checked against its signature)."""
        import inspect

        cls = self.get(name)
        try:
            inspect.signature(cls).bind(**options)
        except TypeError as exc:
            raise RegistryError(f"{self.kind} {name!r} does not accept options {sorted(options)}: {exc}") from exc
        return cls(**options)

    def canonical(self, name: str) -> str:
        """The name ``name`` was registered under (aliases resolve to their entry's first name)."""
        entry = self.get(name)
        for key, value in self._entries.items():
            if value is entry and key not in self._aliases:
                return self._canonical[key]
        return self._canonical[normalise(name)]  # pragma: no cover - every entry has a canonical name

    def __contains__(self, name: object) -> bool:
        try:
            self.get(str(name))
        except RegistryError:
            return False
        return True

    def names(self) -> list[str]:
        """The canonical names of every entry (built-in, registered and entry-point ones), sorted."""
        self._load_builtins()
        self._load_entry_points()
        return sorted(self._canonical[k] for k in self._entries if k not in self._aliases)

    def broken(self) -> list[str]:
        """Why each entry point of this kind that failed to import failed (its name raises this when asked for)."""
        self._load_entry_points()
        return list(self._broken.values())

    def items(self) -> list[tuple[str, T]]:
        return [(name, self.get(name)) for name in self.names()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"<registry of {self.kind}s: {len(self._entries)} loaded, group {self.group!r}>"

    # ------------------------------------------------------------------ loading
    def _load_builtins(self) -> None:
        if self._builtins_loaded:
            return
        self._builtins_loaded = True
        for module in self._builtins:
            importlib.import_module(module)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=self.group):
            key = normalise(ep.name)
            if key in self._entries:
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - reported when this name is asked for
                self._broken[key] = (f"{self.kind} {ep.name!r} (entry point {ep.value} in the group {self.group!r}) "
                                     f"failed to import: {type(exc).__name__}: {exc}; fix or uninstall that package")
                continue
            if key not in self._entries and not _is_module(obj):
                self.register(ep.name, obj=obj)


def _qualname(obj: object) -> str:
    target = obj if isinstance(obj, type) or callable(obj) and hasattr(obj, "__qualname__") else type(obj)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


def _is_module(obj: object) -> bool:
    return type(obj).__name__ == "module"
