"""What the checkpoint formats share: file names, architecture keys, reading weights files, one-line errors."""

from __future__ import annotations

from pathlib import Path

import torch

from hubkit.errors import CheckpointError
from hubkit.models import io
from hubkit.models.io import Inspection, inspect_file, model_option
from hubkit.models.registry import NotThisFormat


TEXT_IGNORE = ("position_ids",)
# delta.bin: what Concept Ablation's ``CustomDiffusionPipeline.save_pretrained`` writes into its output folder (and
# ``hubkit unlearn ac``, beside its hubkit.json), so that folder is a --model as it stands
UNET_FOLDER_FILES = tuple(f"unet{s}" for s in io.WEIGHT_SUFFIXES) + ("delta.bin",)
TEXT_FOLDER_FILES = tuple(f"text_encoder{s}" for s in io.WEIGHT_SUFFIXES)
LORA_FILES = ("pytorch_lora_weights.safetensors", "pytorch_lora_weights.bin")
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
TRANSFORMERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin")



def wrap_error(path: Path, what: str, exc: BaseException) -> CheckpointError:
    if isinstance(exc, CheckpointError):
        return exc
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]
    return CheckpointError(f"{model_option(path)}: cannot load {what} ({type(exc).__name__}: {first})")


def file_inspection(path: Path) -> Inspection:
    if not path.is_file():
        raise NotThisFormat("not a file")
    ins = inspect_file(path)
    if not ins.components:
        raise NotThisFormat(ins.problem or "holds no tensors")
    return ins


def component_weights(folder: Path, names: tuple[str, ...]) -> list[Path]:
    """The weights files of a diffusers/transformers component folder (single or sharded)."""
    for name in names:
        if (folder / name).is_file():
            return [folder / name]
        index = folder / (name + ".index.json")
        if index.is_file():
            shards = sorted(set(io.read_json(index).get("weight_map", {}).values()))
            return [folder / s for s in shards]
    return []


def read_weights(files: list[Path]) -> dict[str, torch.Tensor]:
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


def weight_shapes(files: list[Path]) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {}
    for f in files:
        if f.suffix.lower() in io.SAFETENSORS_SUFFIXES:
            shapes.update(io.read_safetensors_header(f).shapes)
        else:
            flat = inspect_file(f).flat() or {}
            shapes.update({k: tuple(v.shape) for k, v in flat.items()})
    return shapes


def text_has_prefix(text_encoder) -> bool:
    return any(k.startswith("text_model.") for k in text_encoder.state_dict())


def config_diff(own: dict, other: dict, keys) -> str | None:
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


# ---------------------------------------------------------------------------------------------- HUB's methods
# The sampler HUB's ``load_model_sd`` (ml-postech/HUB, models/__init__.py) puts on each method's pipeline. hubkit
# keeps the base's scheduler unless the caller passes ``scheduler=``; formats record HUB's choice as
# ``details["hub_scheduler"]`` so a run can reproduce HUB with ``scheduler=details["hub_scheduler"]``.
HUB_SCHEDULERS = {
    "sd": "PNDMScheduler", "ac": "PNDMScheduler", "sld": "PNDMScheduler",
    "esd": "LMSDiscreteScheduler", "uce": "LMSDiscreteScheduler", "sa": "LMSDiscreteScheduler",
    "salun": "LMSDiscreteScheduler", "receler": "LMSDiscreteScheduler",
    "mace": "DPMSolverMultistepScheduler",
}


def hub_method_details(method_hint: str | None, metadata: dict) -> dict:
    """``method_hint`` (the method a layout was recognised as) and ``hub_scheduler`` (HUB's sampler for the
    recognised or declared ``"method"``), for a format's details; empty when neither is known."""
    out: dict = {}
    if method_hint:
        out["method_hint"] = method_hint
    method = str(method_hint or metadata.get("method") or "").lower()
    if method in HUB_SCHEDULERS:
        out["hub_scheduler"] = HUB_SCHEDULERS[method]
    return out
