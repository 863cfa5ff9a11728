"""The registry of checkpoint formats: each detects its own layout on disk and loads it onto the base model.

A format is a class (instantiated once) or an object with::

    name: str                   # set by @register_format(name), which adds it to ``FORMATS``
    needs_base: bool = True     # loading requires --base-model
    wants_base_pipe: bool = True  # load() receives a fresh base StableDiffusionPipeline (else None)
    def detect(self, path: Path) -> bool          # may raise NotThisFormat("why") to explain a rejection
    def load(self, path: Path, base_pipe, ctx: LoadContext) -> FormatResult | StableDiffusionPipeline

Built-in formats are tried first, in the order of :data:`BUILTIN_ORDER`; formats registered by other code
(or by entry points of the group ``hubkit.formats``) come after them unless they pass ``before="<name>"``.
An entry point may name a format class/object (registered under the entry point's name) or a module whose
import registers formats with the decorator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubkit.errors import RegistryError
from hubkit.registry import Registry


class NotThisFormat(Exception):
    """Raised by ``detect`` to say why a path is not in this format (shown when no format matches)."""


@dataclass
class FormatResult:
    pipe: Any                                   # a StableDiffusionPipeline (or subclass)
    details: dict = field(default_factory=dict)  # recorded in LoadedModel.details
    method_config: dict | None = None            # part of the fingerprint (inference-time methods)
    inputs: list[Path] = field(default_factory=list)  # further files the result depends on (fingerprint cache key)
    storage_bytes: int | None = None            # overrides the size of ``spec`` on disk


@dataclass
class LoadContext:
    spec: Path
    base_path: Path | None
    trust_checkpoint: bool
    metadata: dict
    options: dict
    format_name: str = ""
    _load_base: Callable[[], Any] | None = None
    _load_nested: Callable[[Path], FormatResult] | None = None

    def require_base(self) -> Path:
        """The --base-model folder; a clear error when none was given."""
        from hubkit.models import _missing_base_error

        if self.base_path is None:
            raise _missing_base_error(self.spec, self.format_name)
        return self.base_path

    def base_pipe(self):
        """A fresh base pipeline (safe to modify)."""
        self.require_base()
        return self._load_base()

    def load_nested(self, path: Path) -> FormatResult:
        """Load another checkpoint onto the same base (method configs that wrap a checkpoint)."""
        return self._load_nested(path)


BUILTIN_ORDER = ("diffusers-folder", "method-config", "lora", "single-file", "unet-state-dict", "text-encoder",
                 "attn-procs-lora", "receler")
_BEFORE_UNSET = object()


def _check(name: str, fmt) -> None:
    if not (callable(getattr(fmt, "detect", None)) and callable(getattr(fmt, "load", None))):
        raise RegistryError(f"format {name!r} needs detect(path) and load(path, base_pipe, ctx)")


FORMATS: Registry[Any] = Registry("checkpoint format", group="hubkit.formats", check=_check,
                                  builtins=("hubkit.models.formats",))
_order: list[str] = []  # names in registration order (the tie-break after the built-ins)


def register_format(name: str, *, needs_base: bool | None = None, wants_base_pipe: bool | None = None,
                    before: str | None = None) -> Callable:
    """Class/object decorator: ``FORMATS.register`` with what a format adds, its place in the detection order
    (built-ins in ``BUILTIN_ORDER``; others after them, or just before the format named by ``before``)."""

    def deco(obj):
        inst = obj() if isinstance(obj, type) else obj
        inst.name = name
        for attr, value in (("needs_base", needs_base), ("wants_base_pipe", wants_base_pipe)):
            if value is not None:
                setattr(inst, attr, value)
            elif not hasattr(inst, attr):
                setattr(inst, attr, True)
        inst.before = before
        unregister_format(name)  # registering a name again replaces it
        FORMATS.register(name, obj=inst)
        _order.append(name)
        return obj

    return deco


def unregister_format(name: str) -> None:
    FORMATS.unregister(name)
    if name in _order:
        _order.remove(name)


def _rank(fmt) -> float:
    if fmt.name in BUILTIN_ORDER:
        return float(BUILTIN_ORDER.index(fmt.name))
    tie = (_order.index(fmt.name) + 1) * 1e-6 if fmt.name in _order else 0.0
    before = getattr(fmt, "before", None)
    if before in BUILTIN_ORDER:
        return BUILTIN_ORDER.index(before) - 0.5 + tie
    return float(len(BUILTIN_ORDER)) + tie


def formats() -> list[Any]:
    """Every registered format (built-in and entry-point ones), in detection order."""
    found = []
    for name in FORMATS.names():
        fmt = FORMATS.get(name)
        if isinstance(fmt, type):  # an entry point naming a class: one instance, registered in its place
            register_format(name)(fmt)
            fmt = FORMATS.get(name)
        found.append(fmt)
    return sorted(found, key=_rank)


def format_names() -> list[str]:
    return [f.name for f in formats()]


def plugin_errors() -> list[str]:
    """Why each broken ``hubkit.formats`` entry point failed to import (listed when no format matches)."""
    return FORMATS.broken()
