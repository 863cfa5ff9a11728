"""Builders of tiny checkpoints in every format ``hubkit.models.load_model`` accepts (for tests)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from hubkit.testing import tiny_pipeline

__all__ = ["tiny_pipeline", "tiny_sd_layout_pipeline", "perturb", "state", "write_single_file", "make_lora",
           "lora_reference_unet", "write_json", "generate", "saved_base", "load_folder"]


def tiny_sd_layout_pipeline(seed: int = 0):
    """A random-weight pipeline with SD-1.x's exact block structure (4 UNet levels, 2 layers each, VAE factor 8).

    64 px images (8 px latents). Used where SD's real layout matters: LDM single-file checkpoints.
    """
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from hubkit.tokenizer import clip_tokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 32, 64, 64), layers_per_block=2, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8)
    vae = AutoencoderKL(
        block_out_channels=(32, 32, 64, 64), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, sample_size=64,
        layers_per_block=1)
    tok = clip_tokenizer()
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=77, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id))
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=tok, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def perturb(module: torch.nn.Module, seed: int = 1, scale: float = 0.05, only: str | None = None) -> set[str]:
    """Add seeded noise to every parameter of ``module`` (whose name contains ``only``); return the names."""
    g = torch.Generator().manual_seed(seed)
    changed = set()
    for name, p in module.named_parameters():
        if only is None or only in name:
            p.add_(torch.randn(p.shape, generator=g) * scale)
            changed.add(name)
    return changed


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def write_single_file(pipe, path: Path) -> Path:
    """The pipeline as one LDM/CompVis-layout checkpoint (``.safetensors``, else a ``{"state_dict": ...}`` pickle)."""
    from hubkit.models.ldm import diffusers_to_ldm_state_dict

    sd = diffusers_to_ldm_state_dict(pipe)
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        torch.save({"state_dict": sd, "global_step": 0}, path)
    return path


def make_lora(unet, seed: int = 3, rank: int = 4) -> dict[str, torch.Tensor]:
    """A peft LoRA on the UNet's attention projections with non-zero B (so it changes the output)."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(unet).items()}


def lora_reference_unet(unet) -> dict[str, torch.Tensor]:
    """The state dict of a peft-adapted UNet with the LoRA merged in (the expected fused weights)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for m in unet.modules():
        if isinstance(m, BaseTunerLayer):
            m.merge()
    return {k.replace(".base_layer", ""): v.detach().clone() for k, v in unet.state_dict().items() if "lora_" not in k}


def write_json(path: Path, obj) -> Path:
    Path(path).write_text(json.dumps(obj))
    return Path(path)


def generate(pipe, size: int = 32, steps: int = 2):
    """One tiny image as a float array (checks that the loaded pipeline runs end to end)."""
    g = torch.Generator().manual_seed(0)
    return pipe("a photo of a cat", num_inference_steps=steps, height=size, width=size, generator=g,
                output_type="np", guidance_scale=2.0).images[0]


# ---------------------------------------------------------------------------------------------- shared bases
_BASES: dict[tuple, Path] = {}


def saved_base(root: Path, kind: str = "tiny") -> Path:
    """A base pipeline folder, written once per process under ``root`` ("tiny" 32 px or "sd" SD-layout 64 px)."""
    key = (str(root), kind)
    if key not in _BASES:
        folder = Path(root) / f"base-{kind}"
        pipe = tiny_pipeline(0) if kind == "tiny" else tiny_sd_layout_pipeline(0)
        pipe.save_pretrained(str(folder), safe_serialization=True)
        _BASES[key] = folder
    return _BASES[key]


def load_folder(folder: Path):
    """A pipeline read back from a folder (a modifiable copy of a base)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(folder), safety_checker=None, feature_extractor=None,
                                                   requires_safety_checker=False, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe
