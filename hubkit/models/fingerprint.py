"""Content hash of a loaded model: effective weights + tokenizer + scheduler + method config.

The hash is over what the pipeline *holds after loading* (not over the files), so the same weights reached
through different formats (a diffusers folder and the single file converted from it) hash alike, and any
weight change, however small, changes it.

Cost: one sha256 per tensor over its raw bytes (threads; hashlib releases the GIL), about 2–4 s for an SD-1.5
model in float32 on a CPU. ``load_model`` caches results on disk keyed by the files' stat (see
:func:`cached_fingerprint`), so reloading unchanged files skips the hashing.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from hubkit.atomic import write_text
from hubkit.generate import scheduler_record

VERSION = "hubkit-fingerprint-v1"
COMPONENTS = ("unet", "text_encoder", "vae")


def _tensor_bytes(t: torch.Tensor):
    t = t.detach()
    if t.device.type == "meta":
        raise ValueError("a weight is still on the meta device (it was never loaded)")
    if t.device.type != "cpu":
        t = t.cpu()
    return t.contiguous().reshape(-1).view(torch.uint8).numpy()


def _sha256_tensor(t: torch.Tensor) -> str:
    return hashlib.sha256(memoryview(_tensor_bytes(t))).hexdigest()


def state_dict_digest(state_dict: Mapping[str, torch.Tensor], *, threads: int | None = None) -> str:
    """sha256 over (key, dtype, shape, sha256 of raw bytes) of every tensor, in sorted key order."""
    keys = sorted(state_dict)
    threads = threads or min(8, os.cpu_count() or 1)
    if threads > 1 and len(keys) > 1:
        with ThreadPoolExecutor(threads) as pool:
            digests = list(pool.map(lambda k: _sha256_tensor(state_dict[k]), keys))
    else:
        digests = [_sha256_tensor(state_dict[k]) for k in keys]
    h = hashlib.sha256()
    for k, d in zip(keys, digests):
        t = state_dict[k]
        h.update(f"{k}\0{str(t.dtype).removeprefix('torch.')}\0{tuple(t.shape)}\0{d}\n".encode())
    return h.hexdigest()


def module_digest(module: torch.nn.Module | None) -> str:
    if module is None:
        return "none"
    return state_dict_digest(module.state_dict())


def tokenizer_digest(tokenizer) -> str:
    """sha256 of the vocabulary (memoised on the object while its size is unchanged)."""
    if tokenizer is None:
        return "none"
    memo = getattr(tokenizer, "_hubkit_digest", None)
    if memo is not None and memo[0] == len(tokenizer):
        return memo[1]
    vocab = sorted(tokenizer.get_vocab().items())
    data = json.dumps([type(tokenizer).__name__, getattr(tokenizer, "model_max_length", None), vocab],
                      ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(data.encode()).hexdigest()
    try:
        tokenizer._hubkit_digest = (len(tokenizer), digest)
    except AttributeError:
        pass
    return digest


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def fingerprint(pipe, *, method_config: Mapping | None = None) -> str:
    """sha256 hex of the pipeline's unet/text_encoder/vae weights, tokenizer, scheduler and method config."""
    h = hashlib.sha256()
    h.update(f"{VERSION}\npipeline {type(pipe).__name__}\n".encode())
    for name in COMPONENTS:
        module = getattr(pipe, name, None)
        h.update(f"{name} {type(module).__name__} {module_digest(module)}\n".encode())
    h.update(f"tokenizer {tokenizer_digest(getattr(pipe, 'tokenizer', None))}\n".encode())
    h.update(f"scheduler {canonical_json(scheduler_record(pipe.scheduler))}\n".encode())
    h.update(f"method {canonical_json(dict(method_config) if method_config is not None else None)}\n".encode())
    return h.hexdigest()


def components_digest(pipe, parts) -> str:
    """sha256 hex of only ``parts`` of the pipeline (``unet``, ``text_encoder``, ``vae``, ``tokenizer``,
    ``scheduler``): the key of a result that reads just those, e.g. a text-encoder-only attack, which is then shared
    by every checkpoint that leaves them unchanged. Memoised on the pipeline object per part."""
    memo = getattr(pipe, "_hubkit_part_digests", None)
    if memo is None:
        memo = {}
        try:
            pipe._hubkit_part_digests = memo
        except AttributeError:
            pass
    h = hashlib.sha256(f"{VERSION}\nparts\n".encode())
    for part in sorted(set(parts)):
        if part not in memo:
            if part in COMPONENTS:
                module = getattr(pipe, part, None)
                memo[part] = f"{type(module).__name__} {module_digest(module)}"
            elif part == "tokenizer":
                memo[part] = tokenizer_digest(getattr(pipe, "tokenizer", None))
            elif part == "scheduler":
                memo[part] = canonical_json(scheduler_record(pipe.scheduler))
            else:
                raise ValueError(f"unknown pipeline part {part!r}; use {', '.join(COMPONENTS)}, tokenizer, scheduler")
        h.update(f"{part} {memo[part]}\n".encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- caching
def cache_dir() -> Path | None:
    """``$HUBKIT_CACHE_DIR/fingerprints`` (default ``~/.cache/hubkit``); None when ``HUBKIT_FINGERPRINT_CACHE=0``."""
    if os.environ.get("HUBKIT_FINGERPRINT_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    root = os.environ.get("HUBKIT_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "hubkit")
    return Path(root) / "fingerprints"


_MEMORY: dict[str, str] = {}
RACY_SECONDS = 2.0  # files written this recently may change again within the same mtime tick: don't cache


def cached_fingerprint(key_parts: Any, newest_mtime: float, compute: Callable[[], str]) -> tuple[str, bool]:
    """``compute()`` unless a fingerprint for ``key_parts`` (stat signatures + options) is cached.

    Returns ``(fingerprint, from_cache)``. Entries are stored only when every input file is older than
    ``RACY_SECONDS``, so a file rewritten within one timestamp tick is never served a stale hash.
    """
    key = hashlib.sha256(canonical_json([VERSION, _library_versions(), key_parts]).encode()).hexdigest()
    if key in _MEMORY:
        return _MEMORY[key], True
    folder = cache_dir()
    if folder is not None:
        try:
            value = (folder / key).read_text().strip()
            if len(value) == 64:
                _MEMORY[key] = value
                return value, True
        except OSError:
            pass
    value = compute()
    if time.time() - newest_mtime > RACY_SECONDS:
        _MEMORY[key] = value
        if folder is not None:
            try:
                write_text(folder / key, value + "\n")
            except OSError as exc:  # a read-only cache only costs time, but say so
                warnings.warn(f"fingerprint cache {folder} is not writable ({exc}); fingerprints are recomputed "
                              f"on every load: set HUBKIT_CACHE_DIR to a writable folder or "
                              f"HUBKIT_FINGERPRINT_CACHE=0", RuntimeWarning, stacklevel=2)
    return value, False


def _library_versions() -> dict[str, str]:
    import diffusers
    import transformers

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__}
