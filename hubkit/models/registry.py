"""The registry of checkpoint formats: each detects its own layout on disk and loads it onto the base model.

A format is a class (instantiated once) or an object with::

    name: str                   # set by @register_format(name)
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

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = "hubkit.formats"


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


_FORMATS: list[Any] = []
BUILTIN_ORDER = ("diffusers-folder", "method-config", "lora", "single-file", "unet-state-dict", "text-encoder")
_plugin_errors: list[str] = []
_counter = 0
_plugins_loaded = False


def register_format(name: str, *, needs_base: bool | None = None, wants_base_pipe: bool | None = None,
                    before: str | None = None) -> Callable:
    """Class/object decorator: register a checkpoint format under ``name`` (replacing one of the same name)."""

    def deco(obj):
        inst = obj() if isinstance(obj, type) else obj
        inst.name = name
        if needs_base is not None:
            inst.needs_base = needs_base
        if wants_base_pipe is not None:
            inst.wants_base_pipe = wants_base_pipe
        for attr, default in (("needs_base", True), ("wants_base_pipe", True)):
            if not hasattr(inst, attr):
                setattr(inst, attr, default)
        if not (callable(getattr(inst, "detect", None)) and callable(getattr(inst, "load", None))):
            raise TypeError(f"format {name!r} needs detect(path) and load(path, base_pipe, ctx)")
        _FORMATS[:] = [f for f in _FORMATS if f.name != name]
        global _counter
        _counter += 1
        if name in BUILTIN_ORDER:
            inst._rank = float(BUILTIN_ORDER.index(name))
        elif before is not None:
            target = next((f for f in _FORMATS if f.name == before), None)
            base_rank = target._rank if target is not None else (
                float(BUILTIN_ORDER.index(before)) if before in BUILTIN_ORDER else float(len(BUILTIN_ORDER)))
            inst._rank = base_rank - 0.5 + _counter * 1e-6
        else:
            inst._rank = float(len(BUILTIN_ORDER)) + _counter * 1e-6
        _FORMATS.append(inst)
        _FORMATS.sort(key=lambda f: f._rank)
        return obj

    return deco


def unregister_format(name: str) -> None:
    _FORMATS[:] = [f for f in _FORMATS if f.name != name]


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the built-in formats
            msg = f"format plugin {ep.name} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
            _plugin_errors.append(msg)
            warnings.warn(msg, stacklevel=2)
            continue
        if ep.name in {f.name for f in _FORMATS}:
            continue
        if hasattr(obj, "detect") and hasattr(obj, "load"):
            register_format(ep.name)(obj)


def formats() -> list[Any]:
    """Every registered format, in detection order (built-ins first)."""
    import hubkit.models.formats  # noqa: F401 - registers the built-ins

    _load_plugins()
    return list(_FORMATS)


def format_names() -> list[str]:
    return [f.name for f in formats()]


def plugin_errors() -> list[str]:
    return list(_plugin_errors)
