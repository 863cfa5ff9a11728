"""Architecture of the micro world's Stable Diffusion ("micro SD") and the builders of its parts.

The model is a real SD-1.x ``StableDiffusionPipeline`` (``AutoencoderKL`` + ``UNet2DConditionModel`` +
``CLIPTextModel`` + the real 49,408-token CLIP tokenizer + ``DDIMScheduler``), shrunk to fit 64×64 renders,
a 2-core CPU training budget and a ~15 MB folder:

* VAE: downsampling factor 4 (64 px -> 8×16×16 latents), no attention in its mid block. (2,000 steps of
  batch 16: 4 latent channels at lr 1e-3 reached 24.3 dB held-out PSNR, 8 channels at lr 2e-3 25.5 dB.)
* UNet: three levels (16, 8, 4 px of latent), cross-attention at the two lower ones, ``layers_per_block=1``.
* Text encoder: a small ``CLIPTextModel`` trained from scratch jointly with the UNet; its 49,408-row
  embedding table dominates its size.

``MicroSDConfig()`` is the shipped size; ``MicroSDConfig.tiny()`` is a test-only size that trains in
milliseconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

IMAGE_SIZE = 64


@dataclass(frozen=True)
class MicroSDConfig:
    image_size: int = IMAGE_SIZE
    # VAE: len(vae_channels) - 1 downsamplings -> factor 2 ** (len - 1)
    vae_channels: tuple[int, ...] = (16, 32, 64)
    vae_layers_per_block: int = 1
    vae_mid_attention: bool = False
    latent_channels: int = 8
    # UNet
    unet_channels: tuple[int, ...] = (32, 32, 64)
    unet_cross_attn: tuple[bool, ...] = (False, True, True)
    unet_layers_per_block: int = 1
    attention_head_dim: int = 2     # diffusers: the number of heads (head dim 16 at 32 channels)
    norm_num_groups: int = 8
    # Text encoder
    text_hidden: int = 32
    text_layers: int = 2
    text_heads: int = 2
    text_intermediate: int = 128

    @classmethod
    def tiny(cls) -> "MicroSDConfig":
        """Test-only size: 32 px images, a few k UNet/VAE parameters."""
        return cls(
            image_size=32, vae_channels=(8, 8), unet_channels=(8, 16), unet_cross_attn=(False, True),
            attention_head_dim=4, norm_num_groups=4, text_hidden=16, text_layers=1, text_heads=2,
            text_intermediate=32,
        )

    @property
    def vae_factor(self) -> int:
        return 2 ** (len(self.vae_channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.image_size // self.vae_factor

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def vae_dict(self) -> dict:
        """The fields the VAE depends on (its training cache key)."""
        d = self.to_dict()
        return {k: d[k] for k in ("image_size", "vae_channels", "vae_layers_per_block", "vae_mid_attention",
                                  "latent_channels", "norm_num_groups")}

    @classmethod
    def from_dict(cls, d: dict) -> "MicroSDConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})


def build_vae(cfg: MicroSDConfig):
    from diffusers import AutoencoderKL

    n = len(cfg.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=cfg.vae_channels,
        layers_per_block=cfg.vae_layers_per_block,
        latent_channels=cfg.latent_channels,
        norm_num_groups=cfg.norm_num_groups,
        sample_size=cfg.image_size,
        mid_block_add_attention=cfg.vae_mid_attention,
        scaling_factor=1.0,
    )


def build_unet(cfg: MicroSDConfig):
    from diffusers import UNet2DConditionModel

    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in cfg.unet_cross_attn)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(cfg.unet_cross_attn))
    return UNet2DConditionModel(
        sample_size=cfg.latent_size,
        in_channels=cfg.latent_channels,
        out_channels=cfg.latent_channels,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=cfg.unet_channels,
        layers_per_block=cfg.unet_layers_per_block,
        cross_attention_dim=cfg.text_hidden,
        attention_head_dim=cfg.attention_head_dim,
        norm_num_groups=cfg.norm_num_groups,
    )


def build_text_encoder(cfg: MicroSDConfig, tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=cfg.text_hidden,
            intermediate_size=cfg.text_intermediate,
            num_attention_heads=cfg.text_heads,
            num_hidden_layers=cfg.text_layers,
            max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


def build_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon",
    )


def build_noise_scheduler():
    """The training-time noise schedule (SD-1.x's DDPM betas)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, prediction_type="epsilon",
    )


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
