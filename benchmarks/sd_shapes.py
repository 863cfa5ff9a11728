"""Shared by ``benchmarks/gpu_check.py`` and ``benchmarks/bench_generation.py``: SD-1.x-shaped pipelines with random
weights (built offline), HUB's own generation loop, timing, and the UNet's FLOP count against the device's peak.

Not a package module: the scripts put ``benchmarks/`` on ``sys.path`` and import it, so ``benchmarks/`` needs no
``__init__.py``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

#: SD-1.x's DDIM configuration (as the v1-4/v1-5 ``scheduler_config.json`` gives it for DDIM)
SD1_DDIM = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                set_alpha_to_one=False, steps_offset=1)

#: dense fp16 tensor-core peak FLOP/s by device name (no sparsity); the first pattern that matches wins
PEAK_FP16_FLOPS = (
    (r"\bH200\b", 989.4e12),
    (r"\bH100\b.*\bPCIE\b", 756e12),
    (r"\bH100\b.*\bNVL\b", None),          # not in the table: say so rather than guess
    (r"\bH100\b", 989.4e12),               # SXM (HBM3)
    (r"\bA100\b", 312e12),
    (r"\bL40S\b", 362e12),
    (r"\bL4\b", 121e12),
    (r"\bA10\b", 125e12),                  # not A100 (word boundary), not A10G
    (r"\bRTX 4090\b", 165.2e12),
    (r"\bV100\b", 125e12),
    (r"\bT4\b", 65e12),
)


def peak_fp16_flops(device_name: str | None) -> float | None:
    """Dense fp16 peak FLOP/s of a device named like ``torch.cuda.get_device_name`` (None: not in the table)."""
    name = (device_name or "").upper()
    for pattern, peak in PEAK_FP16_FLOPS:
        if re.search(pattern, name):
            return peak
    return None


# ------------------------------------------------------------------------------------------------ pipelines
def sd1_pipeline(tiny: bool = False, seed: int = 0):
    """An SD-1.x ``StableDiffusionPipeline`` with random weights and SD-1.x's DDIM scheduler, float32, on the CPU
    (``tiny``: hubkit's test-sized one, same classes). UNet 860 M (SD-1.x's config), VAE 84 M, CLIP ViT-L text."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from hubkit.tokenizer import clip_tokenizer

    if tiny:
        from hubkit.testing import tiny_pipeline

        return tiny_pipeline(seed)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)  # SD-1.x's config
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=512)
    tok = clip_tokenizer()
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=768, intermediate_size=3072,
                                        num_attention_heads=12, num_hidden_layers=12, max_position_embeddings=77,
                                        hidden_act="quick_gelu", bos_token_id=tok.bos_token_id,
                                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=tok,
                                   scheduler=DDIMScheduler(**SD1_DDIM), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sd_pipeline_folder(folder: Path, tiny: bool) -> Path:
    """``sd1_pipeline`` saved as a diffusers folder (float16; ``tiny``: float32), for ``hubkit.models.load_model``."""
    import torch

    from hubkit.testing import save_tiny_pipeline

    if tiny:
        return save_tiny_pipeline(folder)
    sd1_pipeline().to(dtype=torch.float16).save_pretrained(str(folder), safe_serialization=True)
    return folder


# ------------------------------------------------------------------------------------------------ generation
def hub_loop(pipe, prompts, settings, seed: int = 0) -> list:
    """HUB's generation loop: ``torch.manual_seed(seed)`` once, then one pipeline call per prompt with no
    generator (noise from the global RNG), no negative prompt, the pipeline's own ``no_grad``. Runs under the
    scheduler ``settings`` ask for (as ``hubkit.generate`` does), so both paths sample identically."""
    import torch

    from hubkit.generate import scheduler_applied

    pipe.set_progress_bar_config(disable=True)
    torch.manual_seed(seed)
    images: list = []
    with scheduler_applied(pipe, settings):
        for prompt in prompts:
            out = pipe(prompt, num_inference_steps=settings.steps, guidance_scale=settings.guidance,
                       height=settings.height, width=settings.width)
            images.extend(out.images)
    return images


def synchronize(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def images_per_s(run, n: int, device) -> float:
    """``n`` divided by the wall seconds of ``run()`` (device synchronised on both sides)."""
    synchronize(device)
    t0 = time.perf_counter()
    run()
    synchronize(device)
    return n / (time.perf_counter() - t0)


def measure_variants(pipe, settings, n_for, batches, device, *, hub: bool = True, seed: int = 0,
                     prompt: str = "a painting of a house by a river, number {i}") -> dict:
    """Images/s of HUB's loop and of ``hubkit.generate.generate`` at each batch size, same pipeline and settings.

    ``n_for(bs)`` is the number of images timed at batch size ``bs`` (``n_for(1)`` for HUB's loop). Each variant is
    warmed up once before it is timed: one call at its batch size with ``min(2, steps)`` steps (every shape, kernel
    and allocator block the timed call uses). Returns ``{"hub_loop": x | None, "batched": {bs: x}, "n": {...}}``."""
    from hubkit.generate import ImageRequest, generate, image_seed

    most = max([n_for(bs) for bs in batches] + [n_for(1)])
    prompts = [prompt.format(i=i) for i in range(most)]
    requests = [ImageRequest(prompt=p, seed=image_seed("bench", i, 0, seed)) for i, p in enumerate(prompts)]
    warm = settings.replace(steps=min(2, settings.steps))
    out: dict = {"hub_loop": None, "batched": {}, "n": {}}
    if hub:
        n = n_for(1)
        hub_loop(pipe, prompts[:1], warm, seed)
        out["hub_loop"] = images_per_s(lambda: hub_loop(pipe, prompts[:n], settings, seed), n, device)
        out["n"]["hub_loop"] = n
    for bs in batches:
        n = n_for(bs)
        generate(pipe, requests[:bs], warm, bs, progress=False)
        out["batched"][bs] = images_per_s(lambda: generate(pipe, requests[:n], settings, bs, progress=False), n, device)
        out["n"][bs] = n
    return out


# ------------------------------------------------------------------------------------------------ UNet FLOP/s
def unet_inputs(pipe, settings, images: int, seed: int = 0) -> tuple:
    """Fixed UNet inputs for ``images`` images at the CFG batch (2 x images): latents, a timestep, text states."""
    import torch

    unet = pipe.unet
    device, dtype = unet.device, unet.dtype
    gen = torch.Generator("cpu").manual_seed(seed)
    scale = getattr(pipe, "vae_scale_factor", 8)
    latents = torch.randn(2 * images, unet.config.in_channels, settings.height // scale, settings.width // scale,
                          generator=gen).to(device, dtype)
    length = getattr(pipe.tokenizer, "model_max_length", 77)
    text = torch.randn(2 * images, length, unet.config.cross_attention_dim, generator=gen).to(device, dtype)
    return latents, torch.tensor(500, device=device), text


def unet_flops_per_forward(pipe, settings, images: int = 1) -> int:
    """FLOPs of one UNet forward for ``images`` images at the CFG batch, as ``FlopCounterMode`` counts them
    (matmuls and convolutions). Attention runs on the math backend while counting so that its two matmuls are
    counted on every device (a fused CPU kernel would be invisible to the counter); the arithmetic is the same."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    latents, t, text = unet_inputs(pipe, settings, images)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), counter:
        pipe.unet(latents, t, encoder_hidden_states=text)
    return int(counter.get_total_flops())


def unet_seconds_per_forward(pipe, settings, images: int, iters: int, warmup: int = 2) -> float:
    """Wall seconds of one UNet forward for ``images`` images at the CFG batch: ``warmup`` untimed calls, then the
    mean of ``iters`` calls on fixed inputs (synchronised), the UNet alone (no scheduler, text encoder or VAE)."""
    import torch

    latents, t, text = unet_inputs(pipe, settings, images)
    device = pipe.unet.device
    with torch.inference_mode():
        for _ in range(warmup):
            pipe.unet(latents, t, encoder_hidden_states=text)
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            pipe.unet(latents, t, encoder_hidden_states=text)
        synchronize(device)
    return (time.perf_counter() - t0) / iters


def unet_fraction_of_peak(pipe, settings, batch: int, iters: int, peak_flops: float | None) -> dict:
    """The UNet's FLOPs per image (one forward at the CFG batch x steps), its measured seconds per image at
    ``batch`` images per forward, the FLOP/s that makes, and that as a fraction of ``peak_flops`` (None: unknown)."""
    per_forward_one = unet_flops_per_forward(pipe, settings, 1)
    seconds = unet_seconds_per_forward(pipe, settings, batch, iters)
    per_image_flops = per_forward_one * settings.steps
    per_image_s = seconds * settings.steps / batch
    achieved = per_image_flops / per_image_s
    return {"unet_flops_per_forward_cfg": per_forward_one, "unet_flops_per_image": per_image_flops,
            "unet_s_per_forward": seconds, "unet_s_per_image": per_image_s, "unet_batch": batch,
            "unet_tflops_achieved": achieved / 1e12,
            "peak_tflops": None if peak_flops is None else peak_flops / 1e12,
            "fraction_of_peak": None if not peak_flops else achieved / peak_flops}
