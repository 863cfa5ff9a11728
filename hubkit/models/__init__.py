"""Load any common SD-1.x checkpoint format onto the base model: ``load_model(spec, base=...) -> LoadedModel``.

The format is detected from what is on disk, by the registry in :mod:`hubkit.models.registry`; the built-in
formats, in detection order, are documented in :mod:`hubkit.models.formats`.

Every loaded model:

* has ``safety_checker=None`` and the **base model's scheduler** (class + config) unless the caller passes
  ``scheduler=`` (HUB silently used a different sampler per method; we do not). Without a base, a diffusers
  folder keeps its own scheduler. ``details["scheduler"]`` records which one and where it came from;
* carries a ``fingerprint`` over its effective weights, tokenizer, scheduler and method config
  (:mod:`hubkit.models.fingerprint`), cached on disk by file stat;
* reports ``metadata`` (safetensors header + ``hubkit.json``) and ``storage_bytes`` (bytes of ``spec`` on disk).

Errors are one-line :class:`hubkit.errors.CheckpointError`\\ s naming ``--model``/``--base-model`` and the fix.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hubkit.errors import CheckpointError
from hubkit.models import io
from hubkit.generate import scheduler_record
from hubkit.models.fingerprint import cached_fingerprint, fingerprint
from hubkit.models.io import read_metadata
from hubkit.models.methods import METHODS
from hubkit.models import registry
from hubkit.models.registry import (
    FORMATS,
    FormatResult,
    LoadContext,
    NotThisFormat,
    format_names,
    register_format,
    unregister_format,
)

__all__ = [
    "LoadedModel", "load_model", "load_model_cached", "clear_model_cache", "detect_format", "read_metadata",
    "register_format", "unregister_format", "format_names", "NotThisFormat", "FormatResult", "LoadContext",
    "FORMATS", "METHODS", "fingerprint",
]


@dataclass
class LoadedModel:
    pipe: Any                          # StableDiffusionPipeline (safety_checker=None); SLD is a subclass of it
    fingerprint: str                   # sha256 hex of weights + tokenizer + scheduler config + method config
    format: str                        # "diffusers-folder" | "single-file" | "unet-state-dict" | "text-encoder" | "lora" | "method-config" | plugin name
    source: Path                       # what --model pointed at
    metadata: dict                     # e.g. {"method": "esd", "concept": "...", "train_seconds": 12.3, "train_peak_mem_mb": ...}
    storage_bytes: int                 # bytes on disk of what --model pointed at (not the base)
    details: dict = field(default_factory=dict)  # how it was loaded: base, scheduler (+source), components, lora_fused, ...

    @property
    def scheduler(self) -> dict:
        """``{"class", "config", "source"}`` of the scheduler the pipeline uses."""
        return self.details.get("scheduler", {})


# ---------------------------------------------------------------------------------------------- errors
def _missing_base_error(spec: Path, fmt: str) -> CheckpointError:
    return CheckpointError(f"--model {spec} is a {fmt} checkpoint, which is applied onto a base model: pass "
                           "--base-model <the SD-1.x diffusers folder it was made from>")


def _check_base_folder(base: Path) -> None:
    if not base.exists():
        raise CheckpointError(f"--base-model {base}: no such file or folder; pass the SD-1.x diffusers folder "
                              "(the one with model_index.json)")
    if not (base.is_dir() and (base / "model_index.json").is_file()):
        raise CheckpointError(f"--base-model {base}: not a diffusers pipeline folder (no model_index.json); pass "
                              "the folder written by save_pretrained (e.g. a snapshot of stable-diffusion-v1-5)")


def check_paths(spec: str | Path, base: str | Path | None) -> None:
    """The cheap checks of ``load_model``, without reading a weight: ``spec`` exists and ``base`` is a diffusers
    pipeline folder (a run calls this before its first check, so a typo stops it in one line)."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise CheckpointError(f"--model {path}: no such file or folder; check the path (relative paths are "
                              f"relative to {Path.cwd()})")
    if base is not None:
        _check_base_folder(Path(base).expanduser())


# ---------------------------------------------------------------------------------------------- detection
def detect_format(spec: str | Path, *, trust_checkpoint: bool = False):
    """The first registered format whose ``detect`` accepts ``spec``; CheckpointError listing every rejection."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise CheckpointError(f"--model {path}: no such file or folder; check the path (relative paths are "
                              f"relative to {Path.cwd()})")
    token = io.TRUST_CHECKPOINT.set(trust_checkpoint)
    try:
        fmt, reasons = _first_format(path)
        if fmt is not None:
            return fmt
        reasons = [" ".join(r.split()) for r in reasons]
        what = "an empty folder" if path.is_dir() and not any(path.iterdir()) else (
            "a folder" if path.is_dir() else "a file")
        plugins = "; " + "; ".join(io_err for io_err in _plugin_errors()) if _plugin_errors() else ""
        inside = _recognised_inside(path) if path.is_dir() else []
        fix = ""
        if len(inside) == 1:
            fix = f"; fix: pass the file, --model {inside[0][0]} ({inside[0][1]})"
        elif inside:
            fix = "; fix: pass one of the files it holds: " + ", ".join(f"{p.name} ({n})" for p, n in inside)
        raise CheckpointError(f"--model {path}: unknown checkpoint format ({what}); tried " + ", ".join(reasons)
                              + plugins + "; the accepted layouts are listed in hubkit/models/formats/__init__.py"
                              + fix)
    finally:
        io.TRUST_CHECKPOINT.reset(token)


def _first_format(path: Path):
    """``(format, [])`` for the first registered format that accepts ``path``, else ``(None, reasons)``."""
    reasons = []
    for fmt in registry.formats():
        try:
            if fmt.detect(path):
                return fmt, []
            reasons.append(f"{fmt.name} (not recognised)")
        except NotThisFormat as exc:
            reasons.append(f"{fmt.name} ({exc})")
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - a buggy plugin detector must not hide the others
            reasons.append(f"{fmt.name} (detect failed: {type(exc).__name__}: {exc})")
    return None, reasons


def _recognised_inside(folder: Path) -> list[tuple[Path, str]]:
    """Weight files directly inside ``folder`` that a format accepts, with its name. Some methods write a folder
    whose checkpoint is one file in it under a name no layout reads (a published ``models/esd/<target>.pt`` copied
    into a folder), so a user who passes the folder is told which file to pass instead. Only read on the error path."""
    found = []
    for child in sorted(folder.iterdir()):
        if not child.is_file() or child.suffix.lower() not in io.WEIGHT_SUFFIXES:
            continue
        try:
            fmt, _ = _first_format(child)
        except CheckpointError:  # e.g. a pickle that needs --trust-checkpoint: not a file to point at blindly
            continue
        if fmt is not None:
            found.append((child, fmt.name))
    return found


def _plugin_errors() -> list[str]:
    from hubkit.models.registry import plugin_errors

    return plugin_errors()


# ---------------------------------------------------------------------------------------------- loading
def _load_base_pipe(base: Path):
    from hubkit.models.formats import load_pipeline_folder

    _check_base_folder(base)
    return load_pipeline_folder(base, option="--base-model")


def _base_scheduler(base: Path):
    import diffusers

    index = io.read_json(base / "model_index.json")
    entry = index.get("scheduler") if isinstance(index, dict) else None
    cls_name = entry[1] if isinstance(entry, (list, tuple)) and len(entry) == 2 else None
    cls = getattr(diffusers, cls_name, None) if cls_name else None
    if cls is None:
        raise CheckpointError(f"--base-model {base}: model_index.json names no known scheduler ({entry!r})")
    try:
        return cls.from_pretrained(str(base), subfolder="scheduler", local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"--base-model {base}: cannot load scheduler/ ({type(exc).__name__}: {exc})") from None


def _make_scheduler(scheduler, current):
    """``scheduler=``: an instance, a class, or a diffusers class name (built from the current config)."""
    import diffusers

    if isinstance(scheduler, str):
        cls = getattr(diffusers, scheduler, None)
        if cls is None or not hasattr(cls, "from_config"):
            raise CheckpointError(f"scheduler={scheduler!r} is not a diffusers scheduler class name")
        return cls.from_config(current.config)
    if isinstance(scheduler, type):
        return scheduler.from_config(current.config)
    return scheduler


def _load_with(fmt, path: Path, base: Path | None, ctx: LoadContext) -> FormatResult:
    if fmt.needs_base and base is None:
        raise _missing_base_error(path, fmt.name)
    base_pipe = ctx.base_pipe() if (fmt.needs_base and fmt.wants_base_pipe) else None
    token = io.TRUST_CHECKPOINT.set(ctx.trust_checkpoint)
    try:
        result = fmt.load(path, base_pipe, ctx)
    finally:
        io.TRUST_CHECKPOINT.reset(token)
    if not isinstance(result, FormatResult):
        result = FormatResult(result)
    result.details.setdefault("format", fmt.name)
    return result


def load_model(spec: str | Path, *, base: str | Path | None, device: str = "cpu",
               dtype: torch.dtype = torch.float32, trust_checkpoint: bool = False, scheduler: Any = None,
               lora_fuse: bool = True, lora_scale: float | None = None) -> LoadedModel:
    """Detect the format of ``spec`` and load it (onto ``base`` where the format needs one).

    ``scheduler``: None (the base's scheduler; a diffusers folder without a base keeps its own), a diffusers
    scheduler instance, class, or class name. ``lora_fuse``: fuse LoRA weights into the base weights (default)
    or keep them as peft adapters. ``lora_scale``: LoRA strength (default: ``hubkit.json``'s ``lora_scale`` or 1).
    """
    from hubkit.devices import check_device

    device = check_device(device)
    path = Path(spec).expanduser()
    base_path = Path(base).expanduser() if base is not None else None
    if base_path is not None:
        _check_base_folder(base_path)
    fmt = detect_format(path, trust_checkpoint=trust_checkpoint)
    metadata = read_metadata(path)
    options = {"lora_fuse": lora_fuse, "lora_scale": lora_scale}

    def nested(p: Path) -> FormatResult:
        inner_fmt = detect_format(p, trust_checkpoint=trust_checkpoint)
        inner_ctx = LoadContext(p, base_path, trust_checkpoint, read_metadata(p), options, inner_fmt.name,
                                _load_base=lambda: _load_base_pipe(base_path), _load_nested=nested)
        return _load_with(inner_fmt, p, base_path, inner_ctx)

    ctx = LoadContext(path, base_path, trust_checkpoint, metadata, options, fmt.name,
                      _load_base=lambda: _load_base_pipe(base_path), _load_nested=nested)
    try:
        result = _load_with(fmt, path, base_path, ctx)
    finally:
        io.clear_inspection_cache()
    pipe = result.pipe
    details = dict(result.details)
    details.update(base=str(base_path) if base_path is not None else None, dtype=str(dtype).removeprefix("torch."),
                   device=device, trust_checkpoint=trust_checkpoint)

    # scheduler: the caller's, else the base's, else the model's own
    if scheduler is not None:
        pipe.scheduler = _make_scheduler(scheduler, pipe.scheduler)
        source = "caller"
    elif base_path is not None:
        pipe.scheduler = _base_scheduler(base_path)
        source = "base"
    else:
        source = "model"
    details["scheduler"] = {**scheduler_record(pipe.scheduler), "source": source}

    if hasattr(pipe, "safety_checker"):
        pipe.safety_checker = None
    pipe.set_progress_bar_config(disable=True)
    for name in ("unet", "text_encoder", "vae"):
        module = getattr(pipe, name, None)
        if module is not None:
            module.eval()
    for name in ("unet", "text_encoder", "vae"):
        module = getattr(pipe, name, None)
        if module is not None and module.dtype != dtype:
            module.to(dtype=dtype)

    key_parts = {"format": fmt.name, "spec": io.stat_signature(path),
                 "base": io.stat_signature(base_path) if (fmt.needs_base or scheduler is None) else None,
                 "inputs": [io.stat_signature(p) for p in result.inputs], "dtype": str(dtype),
                 "options": options, "scheduler": details["scheduler"], "method": result.method_config,
                 "pipeline": type(pipe).__name__}
    newest = max([io.newest_mtime(key_parts["spec"]), io.newest_mtime(key_parts["base"] or ()),
                  *(io.newest_mtime(s) for s in key_parts["inputs"])])
    try:
        fp, cached = cached_fingerprint(key_parts, newest,
                                        lambda: fingerprint(pipe, method_config=result.method_config))
    except ValueError as exc:
        raise CheckpointError(f"--model {path}: {exc}") from None
    details["fingerprint_cached"] = cached
    pipe.to(device)
    if result.method_config is not None:
        metadata.setdefault("method", result.method_config["method"])
    if "hub_scheduler" not in details:  # every format: the sampler HUB would have used for this method (recorded only)
        from hubkit.models.formats.common import hub_method_details

        details.update(hub_method_details(details.get("method_hint"), metadata))
    return LoadedModel(pipe=pipe, fingerprint=fp, format=fmt.name, source=path, metadata=metadata,
                       storage_bytes=result.storage_bytes if result.storage_bytes is not None else io.storage_bytes(path),
                       details=details)


# ---------------------------------------------------------------------------------------------- load once
_CACHE: collections.OrderedDict = collections.OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 2


def load_model_cached(spec: str | Path, *, base: str | Path | None, device: str = "cpu",
                      dtype: torch.dtype = torch.float32, trust_checkpoint: bool = False, scheduler: Any = None,
                      lora_fuse: bool = True, lora_scale: float | None = None) -> LoadedModel:
    """``load_model`` memoised per process by (resolved paths, file stats, options); holds the last CACHE_SIZE.

    Callers share the returned object: do not modify its pipeline in place (copy what you change).
    """
    path = Path(spec).expanduser()
    base_path = Path(base).expanduser() if base is not None else None
    key = (str(path.resolve()), io.stat_signature(path),
           str(base_path.resolve()) if base_path else None, io.stat_signature(base_path),
           str(device), str(dtype), trust_checkpoint, repr(scheduler) if scheduler is not None else None,
           lora_fuse, lora_scale)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    model = load_model(path, base=base_path, device=device, dtype=dtype, trust_checkpoint=trust_checkpoint,
                       scheduler=scheduler, lora_fuse=lora_fuse, lora_scale=lora_scale)
    with _CACHE_LOCK:
        _CACHE[key] = model
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return model


def clear_model_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
