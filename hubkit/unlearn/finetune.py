"""Shared by the fine-tuning methods (AC, SA, SalUn, and ESD's trainable copy): the pipeline's noise schedule with a
DDIM sampler of base-model latents, batch picking, seeding, the trainable copy of a UNet, and the loss summary."""

from __future__ import annotations

import copy
import random
from typing import Sequence

import torch

from hubkit.unlearn.common import encode_texts


class Diffusion:
    """The pipeline's noise schedule (``add_noise``, the training target) and a DDIM sampler built from it."""

    def __init__(self, pipe, *, device, sample_steps: int, guidance: float, height: int, width: int):
        from diffusers import DDIMScheduler, DDPMScheduler

        self.pipe = pipe
        self.device = torch.device(device)
        self.train = DDPMScheduler.from_config(pipe.scheduler.config)
        self.num_timesteps = int(self.train.config.num_train_timesteps)
        self.prediction_type = str(pipe.scheduler.config.get("prediction_type", "epsilon"))
        self.sampler = DDIMScheduler.from_config(pipe.scheduler.config)
        self.sample_steps = int(sample_steps)
        self.guidance = float(guidance)
        self.shape = (pipe.unet.config.in_channels, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)
        self.uncond = encode_texts(pipe, [""])

    @torch.no_grad()
    def sample(self, unet, emb: torch.Tensor, n: int, gen: torch.Generator, chunk: int = 16) -> torch.Tensor:
        """``n`` clean latents of the prompt embedding ``emb`` ``[1, L, D]`` drawn by ``unet`` (DDIM, CFG)."""
        from hubkit.unlearn.esd import _sample_until

        self.sampler.set_timesteps(self.sample_steps, device=self.device)
        out = []
        for start in range(0, n, chunk):
            k = min(chunk, n - start)
            x = torch.randn((k, *self.shape), generator=gen, device=self.device) * self.sampler.init_noise_sigma
            out.append(_sample_until(unet, self.sampler, x, self.sample_steps, emb.expand(k, -1, -1),
                                     self.uncond.expand(k, -1, -1), self.guidance))
        return torch.cat(out)

    def pools(self, unet, texts: Sequence[str], n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """``n`` base-model latents per distinct text."""
        texts = list(dict.fromkeys(texts))
        if not texts:
            return {}
        embs = encode_texts(self.pipe, texts)
        return {t: self.sample(unet, embs[i:i + 1], n, gen) for i, t in enumerate(texts)}

    def noised(self, x0: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_t, t, target)``: ``x0`` noised to one random timestep per row, and the denoising target."""
        t = torch.randint(0, self.num_timesteps, (x0.shape[0],), generator=gen, device=self.device)
        noise = torch.randn(x0.shape, generator=gen, device=self.device)
        xt = self.train.add_noise(x0, noise, t)
        target = self.train.get_velocity(x0, noise, t) if self.prediction_type == "v_prediction" else noise
        return xt, t, target


def pick(pool: torch.Tensor, batch_size: int, gen: torch.Generator) -> torch.Tensor:
    idx = torch.randint(0, pool.shape[0], (batch_size,), generator=gen, device=pool.device)
    return pool[idx]


def expand_pairs(keywords: Sequence[str], templates: Sequence[str]) -> list[tuple[str, str]]:
    """``(prompt, keyword)`` for each keyword × template, duplicates dropped."""
    return list(dict.fromkeys((tpl.format(kw) if "{}" in tpl else tpl, kw) for kw in keywords for tpl in templates))


def seed_all(seed: int, device) -> tuple[random.Random, torch.Generator]:
    torch.manual_seed(seed)
    return random.Random(seed), torch.Generator(device=device).manual_seed(seed)


def loss_tail(losses: Sequence[float]) -> float:
    tail = losses[-max(1, len(losses) // 10):] if losses else [float("nan")]
    return round(sum(tail) / len(tail), 6)


def trainable_copy(unet: torch.nn.Module, names) -> tuple[torch.nn.Module, list[torch.nn.Parameter]]:
    """A deep copy of ``unet`` with only the parameters named in ``names`` trainable, and those parameters in order."""
    trained = copy.deepcopy(unet)
    wanted = set(names)
    params = []
    for n, p in trained.named_parameters():
        p.requires_grad_(n in wanted)
        if n in wanted:
            params.append(p)
    return trained, params
