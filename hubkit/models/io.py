"""Reading checkpoint files safely, classifying their keys, and applying state dicts strictly.

* safetensors headers are parsed by hand (keys, shapes, ``__metadata__``) without touching the tensors, and a
  file shorter than its header promises is reported as truncated;
* pickles (``.pt``, ``.pth``, ``.bin``, ``.ckpt``) load only through ``torch.load(weights_only=True,
  map_location="cpu")``; a file that needs full unpickling is refused unless the caller passes
  ``trust_checkpoint=True`` (``--trust-checkpoint``);
* :func:`apply_state_dict` refuses missing/unexpected keys and shape mismatches, naming the first offender.
"""

from __future__ import annotations

import contextvars
import json
import math
import re
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hubkit.errors import CheckpointError

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
WEIGHT_SUFFIXES = SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES
META_FILE = "hubkit.json"

TRUST_HINT = "pass --trust-checkpoint (trust_checkpoint=True) only if you trust where the file came from"

# Set by load_model for the duration of one load: detectors take only a path, but must know whether full
# unpickling is allowed.
TRUST_CHECKPOINT: contextvars.ContextVar[bool] = contextvars.ContextVar("hubkit_trust_checkpoint", default=False)


def model_option(path: Path | str) -> str:
    return f"--model {path}"


# ---------------------------------------------------------------------------------------------- safetensors
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "U16": 2,
                "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


@dataclass
class SafetensorsHeader:
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    metadata: dict[str, str]


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """Keys, shapes and ``__metadata__`` of a safetensors file, checking that the data is all there."""
    path = Path(path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise ValueError("shorter than a safetensors header")
            (n,) = struct.unpack("<Q", raw)
            if n > min(size - 8, 100_000_000):
                raise ValueError(f"header length {n} does not fit in a {size}-byte file")
            header = json.loads(f.read(n).decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise CheckpointError(f"{model_option(path)}: not a readable safetensors file ({exc}); "
                              "is it truncated or not a checkpoint?") from None
    metadata = header.pop("__metadata__", None) or {}
    shapes, dtypes, end = {}, {}, 0
    for key, info in header.items():
        try:
            shapes[key] = tuple(int(d) for d in info["shape"])
            dtypes[key] = str(info["dtype"])
            start, stop = (int(x) for x in info["data_offsets"])
            end = max(end, stop)
        except (KeyError, TypeError, ValueError, IndexError):
            raise CheckpointError(f"{model_option(path)}: malformed safetensors header entry {key!r}") from None
        width = _DTYPE_BYTES.get(dtypes[key])
        if width is not None and stop - start != math.prod(shapes[key]) * width:
            raise CheckpointError(f"{model_option(path)}: the safetensors header says {key!r} is {dtypes[key]} of "
                                  f"shape {list(shapes[key])} ({math.prod(shapes[key]) * width} bytes) but its "
                                  f"data_offsets span {stop - start} bytes, so the file is corrupt; copy or download "
                                  f"it again")
    if 8 + n + end > size:
        raise CheckpointError(f"{model_option(path)}: safetensors file is truncated ({size} bytes, its header "
                              f"needs {8 + n + end}); copy or download it again")
    return SafetensorsHeader(shapes=shapes, dtypes=dtypes, metadata=dict(metadata))


# names: stay strings even when they look like JSON scalars ("1984", "true", "null")
TEXT_FIELDS = ("method", "concept", "concepts", "safety_concept", "name", "base", "category")


def decode_metadata(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The one parser of safetensors ``__metadata__`` (whose values are all strings), for every reader.

    Writers store strings as they are and JSON-encode everything else, so a value that is valid JSON is
    decoded, except that a name field (``TEXT_FIELDS``: ``concept``, ``method``, ...) is decoded only when it
    holds a JSON object, array or string: a concept called "1984" stays the string "1984". Values that are
    not JSON stay as they are.
    """
    out = {}
    for k, v in raw.items():
        if isinstance(v, str):
            try:
                decoded = json.loads(v)
            except ValueError:
                decoded = v
            out[k] = v if (k in TEXT_FIELDS and not isinstance(decoded, (str, list, dict))) else decoded
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------------------------- pickles
def _pickle_signature_ok(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"PK":
        try:
            with zipfile.ZipFile(path) as z:
                return any(name.endswith("data.pkl") for name in z.namelist())
        except (zipfile.BadZipFile, OSError):
            return True  # a torch zip whose directory is damaged: let torch.load report it as corrupt
    # PROTO opcode and a protocol pickle knows (2-5): torch's legacy format writes protocol 2; one byte alone
    # let 1 in 256 random files through as pickles
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def load_pickle(path: Path, *, trust_checkpoint: bool = False) -> Any:
    """``torch.load`` with ``weights_only=True`` (memory-mapped when possible); full unpickling only if trusted."""
    path = Path(path)
    if not _pickle_signature_ok(path):
        raise CheckpointError(f"{model_option(path)}: not a PyTorch checkpoint (neither a torch zip archive nor "
                              "a pickle); is it truncated or a different kind of file?")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ...
        msg = str(exc)
        if "Weights only load failed" not in msg:
            raise CheckpointError(f"{model_option(path)}: cannot read the PyTorch checkpoint "
                                  f"({_first_line(msg)}); is it truncated or corrupt?") from None
        detail = re.search(r"Unsupported global: GLOBAL ([\w.]+)", msg)
        what = f"it contains {detail.group(1)}" if detail else "it is not a plain tensor container"
        if not trust_checkpoint:
            raise CheckpointError(f"{model_option(path)}: loading this pickle needs full unpickling ({what}), which "
                                  f"can run arbitrary code; {TRUST_HINT}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{model_option(path)}: cannot read the PyTorch checkpoint even with full "
                              f"unpickling ({_first_line(str(exc))}); is it truncated or corrupt?") from None


def _first_line(msg: str) -> str:
    msg = msg.strip().splitlines()[0] if msg.strip() else "no message"
    return msg[:200]


# ---------------------------------------------------------------------------------------------- state dicts
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "params", "weights")
COMPONENT_KEYS = {"unet": "unet", "unet_state_dict": "unet", "text_encoder": "text_encoder",
                  "text_encoder_state_dict": "text_encoder"}


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def unwrap_state_dicts(obj: Any, path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Find the state dict(s) in a loaded pickle.

    Returns ``{"": flat}`` for a plain (possibly wrapped) state dict, or ``{"unet": ..., "text_encoder": ...}``
    for a dict with per-component entries (AC-style ``{"unet": ..., "text_encoder": ...}``).
    """
    for _ in range(3):
        if _is_tensor_dict(obj):
            return {"": dict(obj)}
        if not isinstance(obj, Mapping):
            break
        comps = {comp: dict(obj[k]) for k, comp in COMPONENT_KEYS.items() if _is_tensor_dict(obj.get(k))}
        if comps:
            return comps
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            # a state dict with a few non-tensor extras (e.g. "global_step" next to the tensors)
            tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
            if tensors and len(tensors) >= len(obj) - 4:
                return {"": tensors}
            break
        obj = inner
    kind = type(obj).__name__
    keys = list(obj)[:5] if isinstance(obj, Mapping) else []
    raise _NoStateDict(f"holds no state dict (a {kind}{' with keys ' + repr(keys) if keys else ''})")


class _NoStateDict(Exception):
    pass


# ---------------------------------------------------------------------------------------------- key classes
LORA_MARKERS = (".lora_A.", ".lora_B.", ".lora.down.", ".lora.up.", ".lora_down.", ".lora_up.", "lora_linear_layer")
UNET_MARKERS = ("conv_in.weight", "time_embedding.linear_1.weight")
UNET_PREFIXES = ("down_blocks.", "up_blocks.", "mid_block.", "conv_in.", "conv_out.", "time_embedding.",
                 "conv_norm_out.")
TEXT_PREFIXES = ("embeddings.", "encoder.layers.", "final_layer_norm.")
STRIP_PREFIXES = ("module.", "model.", "unet.")


def is_lora_keys(keys) -> bool:
    return any(any(m in k for m in LORA_MARKERS) or k.startswith(("lora_unet_", "lora_te_")) for k in keys)


def is_ldm_unet_keys(keys) -> bool:
    return any(k.startswith("model.diffusion_model.") for k in keys)


def is_ldm_full_keys(keys) -> bool:
    keys = list(keys)
    return (is_ldm_unet_keys(keys) and any(k.startswith("first_stage_model.") for k in keys)
            and any(k.startswith("cond_stage_model.") for k in keys))


def strip_common_prefix(sd: Mapping[str, Any], prefixes=STRIP_PREFIXES) -> dict[str, Any]:
    """Strip ``module.``/``model.``/``unet.`` when every key carries it (repeatedly: ``module.unet.``)."""
    sd = dict(sd)
    changed = True
    while changed and sd:
        changed = False
        for p in prefixes:
            if all(k.startswith(p) for k in sd) and not any(k.startswith("model.diffusion_model.") for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items()}
                changed = True
    return sd


def is_unet_keys(keys) -> bool:
    keys = list(strip_common_prefix(dict.fromkeys(keys)))
    return any(k in UNET_MARKERS for k in keys) or (
        sum(k.startswith(UNET_PREFIXES) for k in keys) >= max(1, len(keys) // 2))


def normalise_text_keys(keys_or_sd, model_has_prefix: bool):
    """Map CLIP text-model keys onto the model's convention (``text_model.`` prefix or not).

    Accepts ``cond_stage_model.transformer.``/``text_encoder.``/``transformer.`` prefixes too. Works on a dict
    (returns a dict) or an iterable of keys (returns a list).
    """
    is_dict = isinstance(keys_or_sd, Mapping)
    items = keys_or_sd.items() if is_dict else ((k, None) for k in keys_or_sd)
    out = {}
    for k, v in items:
        for p in ("cond_stage_model.transformer.", "text_encoder.", "transformer."):
            if k.startswith(p):
                k = k[len(p):]
                break
        if model_has_prefix and not k.startswith("text_model."):
            k = "text_model." + k
        elif not model_has_prefix and k.startswith("text_model."):
            k = k[len("text_model."):]
        out[k] = v
    return out if is_dict else list(out)


def is_text_keys(keys) -> bool:
    keys = normalise_text_keys(list(keys), model_has_prefix=False)
    return bool(keys) and any(k.startswith("embeddings.token_embedding") for k in keys) and all(
        k.startswith(TEXT_PREFIXES) or k == "text_projection.weight" for k in keys)


# ---------------------------------------------------------------------------------------------- inspection
@dataclass
class Inspection:
    """What a checkpoint path holds, read once per load and shared by the format detectors."""

    path: Path
    kind: str                                   # "safetensors" | "pickle" | "other"
    components: dict[str, dict[str, Any]] = field(default_factory=dict)   # "" = flat; values: tensors or shapes
    metadata: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None                 # why no state dict could be found (shown in "unknown format")

    @property
    def keys(self) -> list[str]:
        return [k for comp in self.components.values() for k in comp]

    def flat(self) -> dict[str, Any] | None:
        return self.components.get("") if list(self.components) == [""] else None


_INSPECT_CACHE: dict[tuple, Inspection] = {}


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def inspect_file(path: Path) -> Inspection:
    """Read a weights file once (safetensors: the header only; pickles: the whole object, memory-mapped)."""
    path = Path(path)
    trust = TRUST_CHECKPOINT.get()
    key = (*_stat_key(path), trust)
    if key in _INSPECT_CACHE:
        return _INSPECT_CACHE[key]
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        header = read_safetensors_header(path)
        ins = Inspection(path, "safetensors", {"": dict(header.shapes)}, decode_metadata(header.metadata))
        if not header.shapes:
            ins.problem = "the safetensors file holds no tensors"
            ins.components = {}
    elif suffix in PICKLE_SUFFIXES:
        obj = load_pickle(path, trust_checkpoint=trust)
        try:
            ins = Inspection(path, "pickle", unwrap_state_dicts(obj, path))
        except _NoStateDict as exc:
            ins = Inspection(path, "pickle", {}, problem=str(exc))
    else:
        ins = Inspection(path, "other", {}, problem=f"{suffix or 'no'} suffix is not one of {', '.join(WEIGHT_SUFFIXES)}")
    _INSPECT_CACHE.clear()  # hold at most one (it may be a multi-GB pickle)
    _INSPECT_CACHE[key] = ins
    return ins


def clear_inspection_cache() -> None:
    _INSPECT_CACHE.clear()


def load_tensors(path: Path, component: str = "") -> dict[str, torch.Tensor]:
    """The tensors of one component of a weights file (safetensors memory-mapped; pickles from the inspection)."""
    path = Path(path)
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own SafetensorError
            raise CheckpointError(f"{model_option(path)}: cannot read the safetensors file ({_first_line(str(exc))})") from None
    return dict(inspect_file(path).components[component])


# ---------------------------------------------------------------------------------------------- strict apply
def _shape(v) -> tuple[int, ...]:
    return tuple(v.shape) if hasattr(v, "shape") else tuple(v)


def check_keys(expected: Mapping[str, Any], given: Mapping[str, Any], *, what: str, source: Path | str,
               allow_missing: bool = False, ignore_unexpected: tuple[str, ...] = (), fix: str | None = None,
               option: str = "--model") -> int:
    """Raise CheckpointError on missing/unexpected keys or shape mismatches; return the number of missing keys."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected and not k.endswith(ignore_unexpected or ("\0",))]
    mismatched = [k for k in given if k in expected and _shape(given[k]) != _shape(expected[k])]
    problems = []
    if unexpected:
        problems.append(f"unexpected key {unexpected[0]!r}" + _more(unexpected))
    if mismatched:
        k = mismatched[0]
        problems.append(f"key {k!r} has shape {_shape(given[k])} in the checkpoint but {_shape(expected[k])} in the "
                        f"base model" + _more(mismatched, "mismatched"))
    if missing and not allow_missing:
        problems.append(f"missing key {missing[0]!r}" + _more(missing))
    if problems:
        if fix is None:
            fix = ("is --base-model the model this checkpoint was made from?" if (unexpected or mismatched) else
                   'if it stores only the changed parameters (AC, hubkit ESD/UCE), declare {"keys": "changed"} in '
                   "a hubkit.json beside it or in its safetensors metadata")
        target = "the base model" if option == "--model" else "its config"
        raise CheckpointError(f"{option} {source}: {what} does not match {target}: {'; '.join(problems)}; {fix}")
    return len(missing)


def _more(items: list, word: str = "others") -> str:
    return f" (and {len(items) - 1} {word})" if len(items) > 1 else ""


def apply_state_dict(module: torch.nn.Module, sd: Mapping[str, torch.Tensor], *, what: str, source: Path | str,
                     allow_missing: bool = False, ignore_unexpected: tuple[str, ...] = ()) -> dict[str, int]:
    """Copy ``sd`` into ``module`` after :func:`check_keys`; return ``{"keys": n, "missing": m}``."""
    own = module.state_dict()
    n_missing = check_keys(own, sd, what=what, source=source, allow_missing=allow_missing,
                           ignore_unexpected=ignore_unexpected)
    for k, v in sd.items():  # a NaN or Inf weight turns every image into noise, silently: refuse it here
        if k in own and v.is_floating_point() and not bool(torch.isfinite(v).all()):
            nan, inf = int(torch.isnan(v).sum()), int(torch.isinf(v).sum())
            raise CheckpointError(f"{model_option(source)}: {what} has non-finite values in {k!r} ({nan} NaN, "
                                  f"{inf} Inf); the checkpoint is broken: re-export it from a good training state")
    with torch.no_grad():
        for k, v in sd.items():
            if k in own:
                own[k].copy_(v.to(dtype=own[k].dtype, device=own[k].device))
    return {"keys": sum(k in own for k in sd), "missing": n_missing}


def declares_partial(metadata: Mapping[str, Any]) -> bool:
    """A checkpoint that stores only changed parameters says so: ``"keys": "changed"`` or ``"partial": true``."""
    return str(metadata.get("keys", "")).lower() == "changed" or metadata.get("partial") is True


# ---------------------------------------------------------------------------------------------- metadata, size
def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({_first_line(str(exc))}); fix or remove the file") from None


def sidecar_files(path: Path) -> list[Path]:
    """The ``hubkit.json`` files that describe ``path``, least specific first."""
    path = Path(path)
    if path.is_dir():
        return [p for p in (path / META_FILE,) if p.is_file()]
    out = [path.with_name(META_FILE), path.with_name(path.stem + "." + META_FILE),
           path.with_name(path.name + "." + META_FILE)]
    return [p for p in dict.fromkeys(out) if p.is_file() and p != path]


def method_config_file(path: Path) -> Path | None:
    """The JSON method config ``path`` is (a ``*.json`` with ``"hubkit_method"``) or holds (the only such file)."""
    path = Path(path)
    candidates = [path] if path.is_file() else (
        sorted(p for p in path.glob("*.json") if p.name != META_FILE) if path.is_dir() else [])
    found = []
    for p in candidates:
        if p.suffix.lower() != ".json" or p.stat().st_size > 1_000_000:
            continue
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            if p == path:
                raise CheckpointError(f"{model_option(path)}: not valid JSON; fix the method config") from None
            continue
        if isinstance(data, dict) and "hubkit_method" in data:
            found.append(p)
    return found[0] if len(found) == 1 else None


def read_metadata(path: Path | str) -> dict[str, Any]:
    """Cheap metadata read (no weights): safetensors header ``__metadata__`` (JSON-decoded), then ``hubkit.json``
    beside the file (``hubkit.json``, ``<stem>.hubkit.json``) or inside the folder, later ones overriding."""
    path = Path(path)
    meta: dict[str, Any] = {}
    weights = [path] if path.is_file() else []
    if path.is_dir():
        weights = [p for p in sorted(path.glob("*.safetensors"))]
    for w in weights:
        if w.suffix.lower() in SAFETENSORS_SUFFIXES:
            try:
                meta.update(decode_metadata(read_safetensors_header(w).metadata))
            except CheckpointError:
                pass  # reported by the loader
    if meta.get("format") == "pt":  # written by save_file/diffusers as bookkeeping, not a property of the model
        del meta["format"]
    config = method_config_file(path) if (path.is_dir() or path.suffix.lower() == ".json") else None
    if config is not None:
        data = read_json(config)
        meta.update(data.get("metadata") or {})
        meta.setdefault("method", data["hubkit_method"])
        if "concept" in data:
            meta.setdefault("concept", data["concept"])
    for side in sidecar_files(path):
        data = read_json(side)
        if not isinstance(data, dict):
            raise CheckpointError(f"{side}: hubkit.json must hold a JSON object")
        meta.update(data)
    return meta


def storage_bytes(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def stat_signature(path: Path | str | None) -> tuple:
    """(path, size, mtime_ns, ino) of every file under ``path``: changes whenever any file is rewritten."""
    if path is None:
        return ()
    path = Path(path)
    if not path.exists():
        return (str(path), "missing")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    out = []
    for p in files:
        st = p.stat()
        out.append((str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def newest_mtime(signature: tuple) -> float:
    times = [entry[2] for entry in signature if isinstance(entry, tuple) and len(entry) == 4]
    return max(times, default=0) / 1e9
