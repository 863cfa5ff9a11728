"""Format ``diffusers-folder``: a whole pipeline saved with ``save_pretrained``, every weight verified."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hubkit.errors import CheckpointError
from hubkit.models import io
from hubkit.models.formats.common import (
    DIFFUSERS_WEIGHTS,
    TEXT_IGNORE,
    TRANSFORMERS_WEIGHTS,
    component_weights,
    text_has_prefix,
    weight_shapes,
)
from hubkit.models.io import check_keys, normalise_text_keys
from hubkit.models.registry import FormatResult, NotThisFormat, register_format


@register_format("diffusers-folder", needs_base=False, wants_base_pipe=False)
class DiffusersFolder:
    """A whole pipeline saved with ``save_pretrained`` (MACE's checkpoints, a base model itself)."""

    def detect(self, path: Path) -> bool:
        if not path.is_dir():
            raise NotThisFormat("not a folder")
        if not (path / "model_index.json").is_file():
            raise NotThisFormat("no model_index.json")
        return True

    def load(self, path: Path, base_pipe, ctx) -> FormatResult:
        pipe = load_pipeline_folder(path, option="--model")
        return FormatResult(pipe, {"components": ["unet", "text_encoder", "vae", "tokenizer"]})


def load_pipeline_folder(path: Path, *, option: str):
    """``StableDiffusionPipeline.from_pretrained`` (offline, no safety checker), with every weight verified."""
    from diffusers import StableDiffusionPipeline

    extra = {}
    tok = _cached_tokenizer(path)
    if tok is not None:
        extra["tokenizer"] = tok
    try:
        pipe = StableDiffusionPipeline.from_pretrained(
            str(path), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
            local_files_only=True, **extra)
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]
        raise CheckpointError(f"{option} {path}: cannot load the diffusers pipeline folder "
                              f"({type(exc).__name__}: {first})") from None
    for name in ("unet", "vae", "text_encoder"):
        module = getattr(pipe, name, None)
        if module is None:
            raise CheckpointError(f"{option} {path}: the pipeline folder has no {name}")
        names = TRANSFORMERS_WEIGHTS if name == "text_encoder" else DIFFUSERS_WEIGHTS
        files = component_weights(path / name, names)
        if not files:
            continue  # other weight names (e.g. variants): diffusers loaded them; nothing cheap to verify against
        shapes = weight_shapes(files)
        if name == "text_encoder":
            shapes = normalise_text_keys(shapes, text_has_prefix(module))
        check_keys(module.state_dict(), shapes, what=f"{name}/ weights", source=path, option=option,
                   ignore_unexpected=TEXT_IGNORE if name == "text_encoder" else (),
                   fix=f"{name}/ is incomplete or was saved for another {name}/config.json; save the pipeline again")
    tok = getattr(pipe, "tokenizer", None)
    if tok is None or len(tok) < 100:
        raise CheckpointError(f"{option} {path}: the tokenizer has {0 if tok is None else len(tok)} tokens; "
                              "the folder's tokenizer/ files are missing or broken")
    return pipe


_TOKENIZERS: dict[tuple, Any] = {}


def _cached_tokenizer(path: Path):
    """The folder's CLIP tokenizer, parsed once per process (tokenizer.json costs ~1 s to parse).

    The object is shared by every pipeline loaded from the same tokenizer files: treat it as immutable
    (``copy.deepcopy`` it before ``add_tokens``/``load_textual_inversion``).
    """
    folder = path / "tokenizer"
    try:
        index = io.read_json(path / "model_index.json")
        entry = index.get("tokenizer") if isinstance(index, dict) else None
        if not (folder.is_dir() and isinstance(entry, list) and entry[-1] in ("CLIPTokenizer", "CLIPTokenizerFast")):
            return None
        key = io.stat_signature(folder)
        if key not in _TOKENIZERS:
            from transformers import CLIPTokenizer

            if len(_TOKENIZERS) >= 4:
                _TOKENIZERS.pop(next(iter(_TOKENIZERS)))
            _TOKENIZERS[key] = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
        return _TOKENIZERS[key]
    except Exception:  # noqa: BLE001 - let from_pretrained load (and report) it the normal way
        return None
