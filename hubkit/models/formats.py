"""The built-in checkpoint formats, in detection order.

1. ``diffusers-folder``  a folder with ``model_index.json`` (a whole pipeline, MACE-style; no base needed)
2. ``method-config``     a ``*.json`` with a top-level ``"hubkit_method"`` (an inference-time method such as SLD),
                         or a folder holding exactly one such JSON (``write_sld_config(folder)`` → ``sld.json``);
                         ``"model": "<path>"`` applies the method on top of another checkpoint
3. ``lora``              ``pytorch_lora_weights.safetensors`` (or a folder holding it), or any weights file whose
                         keys are LoRA keys (peft/diffusers ``lora_A``/``lora_B``, kohya ``lora_down``/``lora_up``);
                         fused into the weights by default (``lora_fuse=False`` keeps peft adapters)
4. ``single-file``       one ``.safetensors``/``.ckpt``/``.pt`` in the original LDM/CompVis layout
                         (``model.diffusion_model.*`` + ``first_stage_model.*`` + ``cond_stage_model.*``), read by
                         ``from_single_file(path, config=<--base-model folder>)``
5. ``unet-state-dict``   a UNet state dict: diffusers keys (HUB's ESD/UCE/SA/SalUn ``.pt``), optionally wrapped
                         (``state_dict``/``model_state_dict``/``unet_state_dict``/``unet`` entries, ``module.``/
                         ``unet.`` prefixes, AC's ``{"unet": ..., "text_encoder": ...}``), or LDM keys
                         ``model.diffusion_model.*`` only; also a folder with ``unet.safetensors`` (+ optional
                         ``text_encoder.safetensors``; hubkit's own ESD/UCE output) or a diffusers ``unet/`` folder
6. ``text-encoder``      CLIP text-model weights (AdvUnlearn): a folder with a CLIPTextModel ``config.json``, or a
                         state dict of CLIP text keys with or without the ``text_model.`` prefix

Formats registered later (``register_format``, entry points ``hubkit.formats``) are tried after these.

Rules shared by all formats:

* pickles load only with ``torch.load(weights_only=True)``; one that needs more is refused unless
  ``trust_checkpoint=True`` (``--trust-checkpoint``);
* every state dict is checked key by key against the base: an unexpected key, a shape mismatch or a missing key is
  a CheckpointError naming the first one (and how many more). Missing keys are accepted only from checkpoints that
  declare they hold the changed parameters only: ``"keys": "changed"`` (or ``"partial": true``) in the safetensors
  metadata or a ``hubkit.json`` beside the file (``hubkit.json``, ``<stem>.hubkit.json``) / inside the folder;
* diffusers folders are verified against their weight files too (transformers silently re-initialises missing
  text-encoder weights).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from hubkit.errors import CheckpointError
from hubkit.models import io
from hubkit.models.io import (
    Inspection,
    apply_state_dict,
    check_keys,
    declares_partial,
    inspect_file,
    is_ldm_full_keys,
    is_ldm_unet_keys,
    is_lora_keys,
    is_text_keys,
    is_unet_keys,
    model_option,
    normalise_text_keys,
    strip_common_prefix,
)
from hubkit.models.registry import FormatResult, NotThisFormat, register_format

TEXT_IGNORE = ("position_ids",)
UNET_FOLDER_FILES = tuple(f"unet{s}" for s in io.WEIGHT_SUFFIXES)
TEXT_FOLDER_FILES = tuple(f"text_encoder{s}" for s in io.WEIGHT_SUFFIXES)
LORA_FILES = ("pytorch_lora_weights.safetensors", "pytorch_lora_weights.bin")
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
TRANSFORMERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


# ---------------------------------------------------------------------------------------------- helpers
def _wrap(path: Path, what: str, exc: BaseException) -> CheckpointError:
    if isinstance(exc, CheckpointError):
        return exc
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]
    return CheckpointError(f"{model_option(path)}: cannot load {what} ({type(exc).__name__}: {first})")


def _file_inspection(path: Path) -> Inspection:
    if not path.is_file():
        raise NotThisFormat("not a file")
    ins = inspect_file(path)
    if not ins.components:
        raise NotThisFormat(ins.problem or "holds no tensors")
    return ins


def _component_weights(folder: Path, names: tuple[str, ...]) -> list[Path]:
    """The weights files of a diffusers/transformers component folder (single or sharded)."""
    for name in names:
        if (folder / name).is_file():
            return [folder / name]
        index = folder / (name + ".index.json")
        if index.is_file():
            shards = sorted(set(io.read_json(index).get("weight_map", {}).values()))
            return [folder / s for s in shards]
    return []


def _read_weights(files: list[Path]) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {}
    for f in files:
        if f.suffix.lower() in io.SAFETENSORS_SUFFIXES:
            sd.update(io.load_tensors(f))
        else:
            ins = inspect_file(f)
            flat = ins.flat()
            if flat is None:
                raise CheckpointError(f"{model_option(f)}: {ins.problem or 'not a flat state dict'}")
            sd.update(flat)
    return sd


def _weight_shapes(files: list[Path]) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {}
    for f in files:
        if f.suffix.lower() in io.SAFETENSORS_SUFFIXES:
            shapes.update(io.read_safetensors_header(f).shapes)
        else:
            flat = inspect_file(f).flat() or {}
            shapes.update({k: tuple(v.shape) for k, v in flat.items()})
    return shapes


def _text_has_prefix(text_encoder) -> bool:
    return any(k.startswith("text_model.") for k in text_encoder.state_dict())


def _config_diff(own: dict, other: dict, keys) -> str | None:
    for k in keys:
        if k in own and k in other and _norm(own[k]) != _norm(other[k]):
            return f"{k}={other[k]!r} (base: {own[k]!r})"
    return None


def _norm(v):
    return list(v) if isinstance(v, (list, tuple)) else v


UNET_ARCH_KEYS = ("in_channels", "out_channels", "block_out_channels", "down_block_types", "up_block_types",
                  "layers_per_block", "cross_attention_dim", "attention_head_dim", "num_attention_heads",
                  "norm_num_groups", "use_linear_projection", "only_cross_attention", "transformer_layers_per_block",
                  "mid_block_type", "time_embedding_type", "class_embed_type", "addition_embed_type",
                  "upcast_attention", "flip_sin_to_cos", "freq_shift", "act_fn", "norm_eps")
TEXT_ARCH_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                  "max_position_embeddings", "hidden_act", "layer_norm_eps", "projection_dim")


# ---------------------------------------------------------------------------------------------- 1 diffusers
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
        files = _component_weights(path / name, names)
        if not files:
            continue  # other weight names (e.g. variants): diffusers loaded them; nothing cheap to verify against
        shapes = _weight_shapes(files)
        if name == "text_encoder":
            shapes = normalise_text_keys(shapes, _text_has_prefix(module))
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


# ---------------------------------------------------------------------------------------------- 2 method
@register_format("method-config", wants_base_pipe=False)
class MethodConfig:
    """``{"hubkit_method": "sld", "params": {...}, "concept": "...", "model": "<optional checkpoint>"}``."""

    def detect(self, path: Path) -> bool:
        if path.is_file() and path.suffix.lower() != ".json":
            raise NotThisFormat("not a .json file")
        if io.method_config_file(path) is None:
            raise NotThisFormat('no JSON with a top-level "hubkit_method" key' if path.is_file() else
                                'folder without exactly one *.json holding "hubkit_method"')
        return True

    def load(self, path: Path, base_pipe, ctx) -> FormatResult:
        from hubkit.models.methods import get_method

        config = io.method_config_file(path)
        data = io.read_json(config)
        name = data["hubkit_method"]
        params = data.get("params") or {}
        if not isinstance(name, str) or not isinstance(params, dict):
            raise CheckpointError(f"{model_option(path)}: \"hubkit_method\" must be a string and \"params\" an object")
        params = dict(params)
        if "concept" in data and "concept" not in params:
            params["concept"] = data["concept"]
        fn = get_method(name, source=model_option(path))
        details: dict[str, Any] = {"method": name}
        inputs, storage = [], None
        if data.get("model"):
            inner_path = Path(data["model"])
            if not inner_path.is_absolute():
                inner_path = config.parent / inner_path
            if not inner_path.exists():
                raise CheckpointError(f"{model_option(path)}: its \"model\" {inner_path} does not exist; fix the "
                                      "path (relative paths are relative to the JSON file)")
            inner = ctx.load_nested(inner_path)
            pipe = inner.pipe
            details["wrapped"] = {"path": str(inner_path), "format": inner.details.get("format"), **inner.details}
            inputs = [inner_path, *inner.inputs]
            storage = io.storage_bytes(path) + io.storage_bytes(inner_path)
        else:
            pipe = ctx.base_pipe()
        inputs.append(config)
        try:
            out = fn(pipe, params)
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _wrap(path, f"method {name!r} with params {json.dumps(params, sort_keys=True)}", exc) from None
        if not all(hasattr(out, a) for a in ("unet", "vae", "text_encoder", "scheduler", "tokenizer")):
            raise CheckpointError(f"{model_option(path)}: method {name!r} returned a {type(out).__name__}, "
                                  "not a StableDiffusionPipeline")
        method_config = {"method": name, "params": params}
        return FormatResult(out, details, method_config=method_config, inputs=inputs, storage_bytes=storage)


# ---------------------------------------------------------------------------------------------- 3 lora
@register_format("lora")
class Lora:
    """diffusers/peft LoRA weights, loaded with ``pipe.load_lora_weights`` (from a dict we read safely)."""

    def _file(self, path: Path) -> Path:
        if path.is_dir():
            for name in LORA_FILES:
                if (path / name).is_file():
                    return path / name
            raise NotThisFormat(f"folder without {' or '.join(LORA_FILES)}")
        return path

    def detect(self, path: Path) -> bool:
        ins = _file_inspection(self._file(path))
        if not is_lora_keys(ins.keys):
            raise NotThisFormat("no LoRA keys (lora_A/lora_B/lora_down/lora_up)")
        return True

    def load(self, path: Path, pipe, ctx) -> FormatResult:
        file = self._file(path)
        ins = inspect_file(file)
        if ins.flat() is None:
            raise CheckpointError(f"{model_option(path)}: LoRA weights must be one flat state dict")
        sd = io.load_tensors(file)
        _precheck_lora(sd, pipe, path)
        n_file = sum(_is_lora_tensor(k) for k in sd)
        fuse = bool(ctx.options.get("lora_fuse", True))
        scale = ctx.options.get("lora_scale")
        if scale is None:
            scale = float(ctx.metadata.get("lora_scale", 1.0))
        try:
            pipe.load_lora_weights(dict(sd), adapter_name="hubkit")
        except Exception as exc:  # noqa: BLE001
            raise _wrap(path, "the LoRA weights", exc) from None
        n_loaded = sum("lora_" in n for m in (pipe.unet, pipe.text_encoder) for n, _ in m.named_parameters())
        if n_loaded < n_file:
            raise CheckpointError(f"{model_option(path)}: only {n_loaded} of the file's {n_file} LoRA tensors found a "
                                  "module in the base model; is --base-model the model this LoRA was trained on?")
        if fuse:
            pipe.fuse_lora(lora_scale=scale, adapter_names=["hubkit"])
            pipe.unload_lora_weights()
        elif scale != 1.0:
            pipe.set_adapters(["hubkit"], adapter_weights=[scale])
        comps = sorted({k.split(".")[0] for k in sd if k.split(".")[0] in ("unet", "text_encoder")}) or ["unet"]
        return FormatResult(pipe, {"components": comps, "lora_fused": fuse, "lora_scale": scale,
                                   "lora_tensors": n_file})


def _is_lora_tensor(key: str) -> bool:
    return any(m in key for m in io.LORA_MARKERS) or (key.startswith(("lora_unet_", "lora_te_"))
                                                       and not key.endswith(".alpha"))


def _precheck_lora(sd: dict, pipe, path: Path) -> None:
    """For peft/diffusers-style keys (``unet.<module>.lora_A.weight``): the module exists and the shapes fit."""
    roots = {"unet": pipe.unet, "text_encoder": pipe.text_encoder}
    for key, value in sd.items():
        for marker, dim in ((".lora_A.", 1), (".lora_B.", 0)):
            if marker not in key:
                continue
            root, _, module_path = key.split(marker)[0].partition(".")
            if root not in roots:
                break
            try:
                module = roots[root].get_submodule(module_path)
            except AttributeError:
                raise CheckpointError(f"{model_option(path)}: LoRA key {key!r} targets {root}.{module_path}, which the "
                                      "base model does not have; is --base-model the model this LoRA was "
                                      "trained on?") from None
            want = getattr(module, "in_features" if dim == 1 else "out_features", None)
            if want is None:
                want = getattr(module, "in_channels" if dim == 1 else "out_channels", None)
            if want is not None and value.shape[dim] != want:
                raise CheckpointError(f"{model_option(path)}: LoRA key {key!r} has shape {tuple(value.shape)}, which "
                                      f"does not fit {root}.{module_path} ({'in' if dim else 'out'} features {want})")
            break


# ---------------------------------------------------------------------------------------------- 4 single file
@register_format("single-file", wants_base_pipe=False)
class SingleFile:
    """An original LDM/CompVis checkpoint, via ``from_single_file(path, config=<base folder>)``."""

    def detect(self, path: Path) -> bool:
        ins = _file_inspection(path)
        if not is_ldm_full_keys(ins.keys):
            raise NotThisFormat("not the LDM layout (model.diffusion_model.* + first_stage_model.* + "
                                "cond_stage_model.*)")
        return True

    def load(self, path: Path, base_pipe, ctx) -> FormatResult:
        from diffusers import StableDiffusionPipeline

        base = ctx.require_base()
        ins = inspect_file(path)
        flat = ins.flat()
        if flat is None:
            raise CheckpointError(f"{model_option(path)}: an LDM checkpoint must be one flat state dict")
        _verify_ldm(flat, base, path)
        src, tmp = path, None
        if ins.kind == "pickle" and ctx.trust_checkpoint and not _weights_only_ok(path):
            # diffusers reads pickles with weights_only=True; hand it the (trusted) tensors as safetensors
            from safetensors.torch import save_file

            tmp = tempfile.TemporaryDirectory(prefix="hubkit-single-file-")
            src = Path(tmp.name) / (path.stem + ".safetensors")
            save_file({k: v.contiguous().clone() for k, v in flat.items()}, str(src))
        try:
            pipe = StableDiffusionPipeline.from_single_file(
                str(src), config=str(base), local_files_only=True, safety_checker=None,
                requires_safety_checker=False)
        except Exception as exc:  # noqa: BLE001
            raise _wrap(path, "the single-file checkpoint", exc) from None
        finally:
            if tmp is not None:
                tmp.cleanup()
        for name in ("unet", "vae", "text_encoder"):
            if any(p.device.type == "meta" for p in getattr(pipe, name).parameters()):
                raise CheckpointError(f"{model_option(path)}: {name} weights were not all in the file")
        return FormatResult(pipe, {"components": ["unet", "text_encoder", "vae"]})


def _weights_only_ok(path: Path) -> bool:
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return True
    except Exception:  # noqa: BLE001
        return False


def _meta_model(cls, folder: Path, subfolder: str):
    cfg = cls.load_config(str(folder), subfolder=subfolder, local_files_only=True) if hasattr(cls, "load_config") \
        else None
    with torch.device("meta"):
        return cls.from_config(cfg), cfg


def _verify_ldm(flat: dict, base: Path, path: Path) -> None:
    """Check the LDM checkpoint's UNet/VAE/CLIP parts against the base folder's architecture, key by key."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from hubkit.models import _check_base_folder

    _check_base_folder(base)
    meta = {k: torch.empty(tuple(v.shape), device="meta", dtype=v.dtype) if isinstance(v, torch.Tensor)
            else torch.empty(tuple(v), device="meta") for k, v in flat.items()}
    unet, unet_cfg = _meta_model(UNet2DConditionModel, base, "unet")
    vae, vae_cfg = _meta_model(AutoencoderKL, base, "vae")
    with torch.device("meta"):
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(str(base / "text_encoder"), local_files_only=True))
    parts = [("UNet part (model.diffusion_model.*)", unet, lambda: convert_ldm_unet_checkpoint(meta, unet_cfg), ()),
             ("VAE part (first_stage_model.*)", vae, lambda: convert_ldm_vae_checkpoint(meta, vae_cfg), ()),
             ("text-encoder part (cond_stage_model.*)", text,
              lambda: normalise_text_keys(convert_ldm_clip_checkpoint(meta), _text_has_prefix(text)), TEXT_IGNORE)]
    for what, module, convert, ignore in parts:
        try:
            converted = convert()
        except Exception as exc:  # noqa: BLE001 - diffusers' converter fails on keys it cannot place
            raise CheckpointError(f"{model_option(path)}: the {what} cannot be converted to diffusers "
                                  f"({type(exc).__name__}: {exc}); is it an SD-1.x checkpoint of --base-model's "
                                  "architecture?") from None
        converted = {k: v for k, v in converted.items() if v is not None}
        check_keys(module.state_dict(), converted, what=f"the {what}", source=path, ignore_unexpected=ignore)


# ---------------------------------------------------------------------------------------------- 5 unet
def _split_prefixed(flat: dict) -> dict[str, dict]:
    """``{"unet.x": .., "text_encoder.y": ..}`` → components; a flat dict stays ``{"": flat}``."""
    if flat and all(k.startswith(("unet.", "text_encoder.")) for k in flat) and any(
            k.startswith("text_encoder.") for k in flat):
        out: dict[str, dict] = {"unet": {}, "text_encoder": {}}
        for k, v in flat.items():
            comp, _, rest = k.partition(".")
            out[comp][rest] = v
        return {c: d for c, d in out.items() if d}
    return {"": flat}


@register_format("unet-state-dict")
class UNetStateDict:
    """UNet weights applied onto the base UNet (and, AC-style, optional text-encoder weights onto its encoder)."""

    def _source(self, path: Path) -> tuple[str, list[Path], Path | None]:
        """("file", [weights]) | ("folder", [unet file], text file) | ("diffusers-unet", [weights])."""
        if path.is_dir():
            unet = next((path / n for n in UNET_FOLDER_FILES if (path / n).is_file()), None)
            text = next((path / n for n in TEXT_FOLDER_FILES if (path / n).is_file()), None)
            if unet is not None:
                return "folder", [unet], text
            cfg = path / "config.json"
            if cfg.is_file():
                data = io.read_json(cfg)
                if isinstance(data, dict) and data.get("_class_name") == "UNet2DConditionModel":
                    files = _component_weights(path, DIFFUSERS_WEIGHTS)
                    if not files:
                        raise NotThisFormat(f"diffusers UNet folder without {' or '.join(DIFFUSERS_WEIGHTS)}")
                    return "diffusers-unet", files, None
            raise NotThisFormat(f"folder without {'/'.join(UNET_FOLDER_FILES)} or a UNet2DConditionModel config.json")
        return "file", [path], None

    def detect(self, path: Path) -> bool:
        kind, files, _ = self._source(path)
        if kind == "diffusers-unet":
            return True
        ins = _file_inspection(files[0])
        if is_lora_keys(ins.keys):
            raise NotThisFormat("LoRA keys")
        if "unet" in ins.components:
            return True
        flat = ins.flat() or {}
        if is_ldm_unet_keys(flat):
            if is_ldm_full_keys(flat):
                raise NotThisFormat("a full LDM checkpoint")
            return True
        comps = _split_prefixed(flat)
        if "unet" in comps or is_unet_keys(flat):
            return True
        raise NotThisFormat(f"not UNet keys (first key {next(iter(flat), None)!r})")

    def load(self, path: Path, pipe, ctx) -> FormatResult:
        kind, files, text_file = self._source(path)
        partial = declares_partial(ctx.metadata)
        details: dict[str, Any] = {"components": ["unet"], "partial": partial}
        if kind == "diffusers-unet":
            cfg = io.read_json(path / "config.json")
            diff = _config_diff(dict(pipe.unet.config), cfg, UNET_ARCH_KEYS)
            if diff:
                raise CheckpointError(f"{model_option(path)}: UNet config.json differs from the base UNet's: {diff}; "
                                      "is --base-model the model this UNet was made from?")
            comps = {"unet": _read_weights(files)}
        else:
            ins = inspect_file(files[0])
            if ins.kind == "safetensors":
                comps = _split_prefixed(io.load_tensors(files[0]))
            else:
                comps = dict(ins.components)
            if "" in comps:
                comps = {"unet": comps.pop("")}
            if text_file is not None:
                tins = inspect_file(text_file)
                tflat = io.load_tensors(text_file) if tins.kind == "safetensors" else tins.flat()
                if tflat is None:
                    raise CheckpointError(f"{model_option(text_file)}: {tins.problem or 'not a flat state dict'}")
                comps["text_encoder"] = tflat
        unet_sd = strip_common_prefix(comps["unet"])
        if is_ldm_unet_keys(unet_sd):
            from hubkit.models.ldm import ldm_unet_to_diffusers

            try:
                unet_sd = ldm_unet_to_diffusers(unet_sd, pipe.unet.config)
            except Exception as exc:  # noqa: BLE001
                raise _wrap(path, "the LDM UNet keys", exc) from None
            unet_sd = {k: v for k, v in unet_sd.items() if v is not None}
            details["converted_from"] = "ldm"
        details["unet"] = apply_state_dict(pipe.unet, unet_sd, what="the UNet state dict", source=path,
                                           allow_missing=partial)
        if "text_encoder" in comps:
            text_sd = normalise_text_keys(strip_common_prefix(comps["text_encoder"], ("module.", "model.")),
                                          _text_has_prefix(pipe.text_encoder))
            details["text_encoder"] = apply_state_dict(pipe.text_encoder, text_sd, what="the text-encoder state dict",
                                                       source=path, allow_missing=partial,
                                                       ignore_unexpected=TEXT_IGNORE)
            details["components"].append("text_encoder")
        return FormatResult(pipe, details)


# ---------------------------------------------------------------------------------------------- 6 text encoder
@register_format("text-encoder")
class TextEncoder:
    """CLIP text-encoder weights (AdvUnlearn) applied onto the base text encoder."""

    def _files(self, path: Path) -> tuple[list[Path], dict | None]:
        if path.is_dir():
            cfg_file = path / "config.json"
            if not cfg_file.is_file():
                raise NotThisFormat("folder without config.json")
            cfg = io.read_json(cfg_file)
            archs = cfg.get("architectures") or [] if isinstance(cfg, dict) else []
            if not isinstance(cfg, dict) or not ("CLIPTextModel" in archs or cfg.get("model_type") == "clip_text_model"):
                raise NotThisFormat("config.json is not a CLIPTextModel config")
            files = _component_weights(path, TRANSFORMERS_WEIGHTS)
            if not files:
                raise NotThisFormat(f"CLIPTextModel folder without {' or '.join(TRANSFORMERS_WEIGHTS)}")
            return files, cfg
        return [path], None

    def detect(self, path: Path) -> bool:
        files, cfg = self._files(path)
        if cfg is not None:
            return True
        ins = _file_inspection(files[0])
        keys = ins.keys if list(ins.components) in ([""], ["text_encoder"]) else []
        if not is_text_keys(keys):
            first = next(iter(ins.keys), None)
            raise NotThisFormat(f"not CLIP text-model keys (first key {first!r})")
        return True

    def load(self, path: Path, pipe, ctx) -> FormatResult:
        files, cfg = self._files(path)
        if cfg is not None:
            diff = _config_diff(pipe.text_encoder.config.to_dict(), cfg, TEXT_ARCH_KEYS)
            if diff:
                raise CheckpointError(f"{model_option(path)}: text encoder config.json differs from the base's: {diff}; "
                                      "is --base-model the model this text encoder was made from?")
            sd = _read_weights(files)
        else:
            ins = inspect_file(files[0])
            sd = io.load_tensors(files[0]) if ins.kind == "safetensors" else next(iter(ins.components.values()))
        sd = normalise_text_keys(sd, _text_has_prefix(pipe.text_encoder))
        info = apply_state_dict(pipe.text_encoder, sd, what="the text-encoder state dict", source=path,
                                allow_missing=declares_partial(ctx.metadata), ignore_unexpected=TEXT_IGNORE)
        return FormatResult(pipe, {"components": ["text_encoder"], "text_encoder": info})
