"""Format ``single-file``: an original LDM/CompVis checkpoint, verified key by key, converted by diffusers."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from hubkit.errors import CheckpointError
from hubkit.models.formats.common import TEXT_IGNORE, file_inspection, text_has_prefix, wrap_error
from hubkit.models.io import check_keys, inspect_file, is_ldm_full_keys, model_option, normalise_text_keys
from hubkit.models.registry import FormatResult, NotThisFormat, register_format


@register_format("single-file", wants_base_pipe=False)
class SingleFile:
    """An original LDM/CompVis checkpoint, via ``from_single_file(path, config=<base folder>)``."""

    def detect(self, path: Path) -> bool:
        ins = file_inspection(path)
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
            raise wrap_error(path, "the single-file checkpoint", exc) from None
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
              lambda: normalise_text_keys(convert_ldm_clip_checkpoint(meta), text_has_prefix(text)), TEXT_IGNORE)]
    for what, module, convert, ignore in parts:
        try:
            converted = convert()
        except Exception as exc:  # noqa: BLE001 - diffusers' converter fails on keys it cannot place
            raise CheckpointError(f"{model_option(path)}: the {what} cannot be converted to diffusers "
                                  f"({type(exc).__name__}: {exc}); is it an SD-1.x checkpoint of --base-model's "
                                  "architecture?") from None
        converted = {k: v for k, v in converted.items() if v is not None}
        check_keys(module.state_dict(), converted, what=f"the {what}", source=path, ignore_unexpected=ignore)
