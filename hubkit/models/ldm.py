"""Key maps between diffusers' SD-1.x layout and the original LDM/CompVis layout.

diffusers ships only the LDM → diffusers direction (``diffusers.loaders.single_file_utils``); the reverse map
lives in a repository script that is not in the wheel and assumes SD's exact 4-level, 2-layer layout. The
functions here derive the map from the model's config instead, so they work for any ``UNet2DConditionModel`` /
``AutoencoderKL`` with SD-1.x block types (the tiny test pipelines included), and the result round-trips
through ``StableDiffusionPipeline.from_single_file``.

Used to write single-file checkpoints (tests, exports) and to read UNet-only LDM state dicts (CompVis-style
ESD checkpoints that hold only ``model.diffusion_model.*``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

LDM_UNET_PREFIX = "model.diffusion_model."
LDM_VAE_PREFIX = "first_stage_model."
LDM_CLIP_PREFIX = "cond_stage_model.transformer."

_RESNET = [
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
]


def _sub(rest: str, pairs) -> str:
    for old, new in pairs:
        if rest == old or rest.startswith(old + "."):
            return new + rest[len(old):]
    return rest


def unet_key_to_ldm(key: str, layers_per_block: int) -> str:
    """One diffusers UNet key → its LDM name (without the ``model.diffusion_model.`` prefix)."""
    top = {
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
    }
    for old, new in top.items():
        if key.startswith(old + "."):
            return new + key[len(old):]
    parts = key.split(".")
    n = layers_per_block
    if parts[0] == "down_blocks":
        i, kind = int(parts[1]), parts[2]
        if kind == "downsamplers":  # down_blocks.i.downsamplers.0.conv.* -> input_blocks.k.0.op.*
            return f"input_blocks.{1 + i * (n + 1) + n}.0.op." + ".".join(parts[5:])
        j, rest = int(parts[3]), ".".join(parts[4:])
        block = 1 + i * (n + 1) + j
        if kind == "resnets":
            return f"input_blocks.{block}.0." + _sub(rest, _RESNET)
        if kind == "attentions":
            return f"input_blocks.{block}.1." + rest
    if parts[0] == "mid_block":
        kind, j, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        if kind == "resnets":
            return f"middle_block.{2 * j}." + _sub(rest, _RESNET)
        if kind == "attentions":
            return f"middle_block.{1 + 2 * j}." + rest
    if parts[0] == "up_blocks":
        i, kind = int(parts[1]), parts[2]
        if kind == "upsamplers":  # filled in by diffusers_unet_to_ldm (index depends on attention presence)
            return f"output_blocks.{i * (n + 1) + n}.UPSAMPLER." + ".".join(parts[5:])
        j, rest = int(parts[3]), ".".join(parts[4:])
        block = i * (n + 1) + j
        if kind == "resnets":
            return f"output_blocks.{block}.0." + _sub(rest, _RESNET)
        if kind == "attentions":
            return f"output_blocks.{block}.1." + rest
    raise KeyError(f"no LDM name for UNet key {key!r}")


def diffusers_unet_to_ldm(state_dict: Mapping[str, torch.Tensor], layers_per_block: int) -> dict[str, torch.Tensor]:
    """A diffusers ``UNet2DConditionModel`` state dict → LDM keys (no prefix)."""
    out = {}
    up_with_attn = {int(k.split(".")[1]) for k in state_dict if k.startswith("up_blocks.") and ".attentions." in k}
    for key, value in state_dict.items():
        ldm = unet_key_to_ldm(key, layers_per_block)
        if ".UPSAMPLER." in ldm:
            i = int(key.split(".")[1])
            ldm = ldm.replace(".UPSAMPLER.", ".2.conv." if i in up_with_attn else ".1.conv.")
        out[ldm] = value
    return out


def ldm_unet_to_diffusers(ldm_state_dict: Mapping[str, torch.Tensor], unet_config: Mapping) -> dict[str, torch.Tensor]:
    """LDM UNet keys (with or without ``model.diffusion_model.``) → diffusers keys, using diffusers' own converter."""
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    prefixed = {(k if k.startswith(LDM_UNET_PREFIX) else LDM_UNET_PREFIX + k): v for k, v in ldm_state_dict.items()}
    return convert_ldm_unet_checkpoint(prefixed, dict(unet_config))


_VAE_ATTN = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def diffusers_vae_to_ldm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A diffusers ``AutoencoderKL`` state dict → LDM keys (no prefix); attention projections become 1×1 convs."""
    n_up = len({k.split(".")[2] for k in state_dict if k.startswith("decoder.up_blocks.")})
    out = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        new = key.replace("conv_norm_out", "norm_out")
        if len(parts) > 2 and parts[1] in ("down_blocks", "up_blocks"):
            side, i, kind = parts[0], int(parts[2]), parts[3]
            level = i if side == "encoder" else n_up - 1 - i
            name = "down" if side == "encoder" else "up"
            if kind == "resnets":
                rest = ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
                new = f"{side}.{name}.{level}.block.{parts[4]}.{rest}"
            else:  # downsamplers.0.conv / upsamplers.0.conv
                new = f"{side}.{name}.{level}.{'downsample' if side == 'encoder' else 'upsample'}.conv.{parts[-1]}"
        elif len(parts) > 2 and parts[1] == "mid_block":
            side, kind, j = parts[0], parts[2], int(parts[3])
            rest = ".".join(parts[4:])
            if kind == "resnets":
                new = f"{side}.mid.block_{j + 1}.{rest.replace('conv_shortcut', 'nin_shortcut')}"
            else:
                new = f"{side}.mid.attn_1.{_sub(rest, _VAE_ATTN)}"
                if value.ndim == 2:
                    value = value[:, :, None, None]
        out[new] = value
    return out


def diffusers_to_ldm_state_dict(pipe) -> dict[str, torch.Tensor]:
    """The full LDM/CompVis single-file state dict of an SD-1.x ``StableDiffusionPipeline``.

    ``StableDiffusionPipeline.from_single_file(path, config=<diffusers folder of the same architecture>)`` reads
    it back exactly.
    """
    sd: dict[str, torch.Tensor] = {}
    unet = diffusers_unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config.layers_per_block)
    sd.update({LDM_UNET_PREFIX + k: v for k, v in unet.items()})
    sd.update({LDM_VAE_PREFIX + k: v for k, v in diffusers_vae_to_ldm(pipe.vae.state_dict()).items()})
    for k, v in pipe.text_encoder.state_dict().items():
        k = k if k.startswith("text_model.") else "text_model." + k
        sd[LDM_CLIP_PREFIX + k] = v
    return {k: v.detach().contiguous() for k, v in sd.items()}
