"""Registry of inference-time unlearning methods (SLD, ...), named by a JSON method config.

A method is a function ``fn(base_pipe, params) -> StableDiffusionPipeline`` (a subclass is fine)::

    from hubkit.models.methods import register_method

    @register_method("sld")
    def sld(base_pipe, params):
        return SLDPipeline(**base_pipe.components, **params)

``params`` is the config's ``"params"`` object; when the config has a top-level ``"concept"`` and ``params``
has none, ``params["concept"]`` is set to it.

Lookup of a name not registered yet imports, in this order: the module ``hubkit.models.<name>`` (so
``hubkit/models/sld.py`` registers "sld" on first use), then the entry points of the group ``hubkit.methods``
(an entry point named like the method; loading it must register the method, or it may *be* the function).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from hubkit.errors import CheckpointError

MethodFn = Callable[[Any, dict], Any]
ENTRY_POINT_GROUP = "hubkit.methods"

_METHODS: dict[str, MethodFn] = {}


def register_method(name: str) -> Callable[[MethodFn], MethodFn]:
    """Decorator: register ``fn(base_pipe, params) -> pipeline`` under ``name`` (re-registering replaces it)."""
    if not isinstance(name, str) or not name:
        raise ValueError("a method name is a non-empty string")

    def deco(fn: MethodFn) -> MethodFn:
        _METHODS[name] = fn
        return fn

    return deco


def registered_methods() -> list[str]:
    return sorted(_METHODS)


def get_method(name: str, *, source: str = "") -> MethodFn:
    """The function registered as ``name``, importing ``hubkit.models.<name>`` or an entry point if needed."""
    if name in _METHODS:
        return _METHODS[name]
    where = f"{source}: " if source else ""
    import_error = None
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        module = f"hubkit.models.{name}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the module exists but one of its imports is missing
                import_error = f"importing {module} failed: {exc}"
        except Exception as exc:  # noqa: BLE001 - a broken method module must be reported, not hidden
            import_error = f"importing {module} failed: {type(exc).__name__}: {exc}"
        if name in _METHODS:
            return _METHODS[name]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name != name:
            continue
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001
            import_error = f"entry point {ep.value} failed to load: {type(exc).__name__}: {exc}"
            continue
        if name not in _METHODS and callable(obj) and not isinstance(obj, type):
            _METHODS[name] = obj
        if name in _METHODS:
            return _METHODS[name]
    known = ", ".join(registered_methods()) or "none registered"
    detail = f" ({import_error})" if import_error else ""
    raise CheckpointError(f"{where}unknown inference-time method {name!r}{detail}; known methods: {known}; "
                          f"a method is registered with @hubkit.models.methods.register_method({name!r}) in "
                          f"hubkit/models/{name}.py or an entry point of the group {ENTRY_POINT_GROUP!r}")
