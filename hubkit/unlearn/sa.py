"""SA — Selective Amnesia (Heng & Soh, NeurIPS 2023), for any SD-1.x pipeline.

SA treats forgetting as continual learning.  The whole UNet ``θ`` (starting from the base's ``θ*``) is
fine-tuned on three terms::

    L = E_{x~q, c_f} ‖ε − ε_θ(x_t, c_f, t)‖²                 surrogate: forget prompts c_f -> images of q
      + γ · E_{(x,c)~replay} ‖ε − ε_θ(x_t, c, t)‖²            generative replay of the base model
      + λ · Σ_i F_i (θ_i − θ*_i)²                              EWC, diagonal Fisher F of the base

* the surrogate distribution ``q`` is either the base model's images of a ``surrogate`` prompt (the paper's SD
  experiments: "middle aged man" for celebrities; HUB's alternatives by default: "a painting" for styles,
  "a middle aged man", "an animated character", "people" for NSFW), or ``surrogate="noise"``: uniform random
  pixel images through the VAE (the paper's random-noise surrogate);
* replay images are drawn once from the frozen base for the ``replay`` prompts (default: the concept's
  neighbours in its world, plus the empty prompt), and the replay loss is the standard denoising loss;
* the Fisher diagonal ``F_i = E[(∂ℓ/∂θ_i)²]`` is estimated on the frozen base from ``fisher_samples`` replay
  samples (one noised sample per gradient), as the official ``calculate_fisher.py`` does from base samples.

Defaults are the official SD configuration (``forget_*.yaml``): lr 1e-5, batch 4, λ = 50, γ = 1, Adam; the
official code trains 200 *epochs* over its surrogate set (HUB: 200, 500 for NSFW), here ``steps`` batches.

Simplified: the official code generates 1,000 surrogate images and a replay set from many captions with the
DDIM sampler and computes the Fisher once over a large sample set (shared across concepts); here the pools are
``num_images`` per prompt, drawn with DDIM at the base's steps/guidance, and the Fisher uses ``fisher_samples``
single-sample gradients.  No EMA, gradient checkpointing or learning-rate warm-up.

SA's published checkpoints are full models (HUB: ``models/sa/{target}.pt``, a full UNet ``state_dict``); the
checkpoint here is the full UNet as a diffusers UNet state dict, ``OUT/unet.safetensors`` + ``OUT/hubkit.json``
(``keys="all"``), which ``--model OUT`` loads (``unet-state-dict`` format).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from hubkit.unlearn.ac import ANCHORS
from hubkit.unlearn.finetune import Diffusion, expand_pairs, loss_tail, pick, seed_all
from hubkit.unlearn.common import (
    Measure, add_common_arguments, base_metadata, cli_kwargs, concept_arg, encode_texts, expand_templates,
    load_base, resolve_concept, set_threads, write_unet_checkpoint,
)
from hubkit.unlearn.registry import UNLEARNING, UnlearningMethod

#: HUB's SA alternatives by category (AC's, and "people" for NSFW)
SURROGATES = {**ANCHORS, "nsfw": "people"}


def default_surrogate(category: str | None) -> str:
    return SURROGATES.get(category or "", "noise")


@torch.no_grad()
def noise_latents(pipe, n: int, height: int, width: int, gen: torch.Generator, device) -> torch.Tensor:
    """``n`` VAE latents of uniform random pixel images in [-1, 1] (the paper's random-noise surrogate)."""
    out = []
    scale = float(getattr(pipe.vae.config, "scaling_factor", 0.18215) or 0.18215)
    for start in range(0, n, 16):
        k = min(16, n - start)
        img = torch.rand((k, 3, height, width), generator=gen, device=device) * 2 - 1
        out.append(pipe.vae.encode(img.to(pipe.vae.dtype)).latent_dist.mean * scale)
    return torch.cat(out)


def fisher_diagonal(unet, diff: Diffusion, pools: dict[str, torch.Tensor], embs: dict[str, torch.Tensor],
                    samples: int, gen: torch.Generator, rng) -> dict[str, torch.Tensor]:
    """Diagonal Fisher ``E[(∂ℓ/∂θ)²]`` of the denoising loss of ``unet`` on replay samples (one per gradient)."""
    params = {n: p for n, p in unet.named_parameters()}
    for p in params.values():
        p.requires_grad_(True)
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    texts = list(pools)
    for _ in range(samples):
        text = texts[rng.randrange(len(texts))]
        x0 = pick(pools[text], 1, gen)
        xt, t, target = diff.noised(x0, gen)
        unet.zero_grad(set_to_none=True)
        F.mse_loss(unet(xt, t, encoder_hidden_states=embs[text]).sample, target).backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2
    unet.zero_grad(set_to_none=True)
    for p in params.values():
        p.requires_grad_(False)
    return {n: f / max(1, samples) for n, f in fisher.items()}


def sa(
    base,
    concept: str | Sequence[str],
    out: Path,
    *,
    surrogate: str | None = None,
    templates: Sequence[str] = ("{}",),
    replay: Sequence[str] | None = None,
    replay_templates: Sequence[str] | None = None,
    steps: int = 200,
    lr: float = 1e-5,
    batch_size: int = 4,
    lmbda: float = 50.0,
    gamma: float = 1.0,
    num_images: int = 100,
    fisher_samples: int = 50,
    sample_steps: int | None = None,
    sample_guidance: float | None = None,
    resolution: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    name: str | None = None,
    progress: bool = True,
) -> Path:
    """Selective Amnesia on ``concept`` from ``base``; write the full UNet to ``out`` and return ``out``.

    ``surrogate``: a prompt whose base-model images replace the concept's, or ``"noise"`` (``None``: HUB's
    alternative for the concept's world category, else ``"noise"``).  ``templates``: forget prompts (``{}`` =
    keyword).  ``replay``: concepts/texts replayed (``None``: the world's neighbours and the empty prompt; ``[]``:
    the empty prompt only), filled into ``replay_templates`` (default ``templates``).  ``num_images`` base
    samples per surrogate / replay prompt.  Deterministic for a given seed, device and torch thread count.
    """
    from tqdm.auto import tqdm

    spec = resolve_concept(concept, name=name)
    b = load_base(base, device=device)
    pipe = b.pipe
    if surrogate is None:
        surrogate = default_surrogate(spec.category)
    forget = [p for p, _ in expand_pairs(spec.keywords, templates)]
    if replay is None:
        replay = list(spec.neighbours) + [""]
    replay_texts = [p for p in expand_templates([r for r in replay if r and r not in spec.keywords],
                                                replay_templates or templates) if p not in forget]
    if "" in replay or not replay_texts:
        replay_texts.append("")
    replay_texts = list(dict.fromkeys(replay_texts))
    sample_steps = int(sample_steps or b.steps)
    sample_guidance = float(b.guidance if sample_guidance is None else sample_guidance)
    height = width = int(resolution) if resolution else None
    height, width = height or b.height, width or b.width
    rng, gen = seed_all(seed, device)

    with Measure(device) as m:
        original = pipe.unet
        diff = Diffusion(pipe, device=device, sample_steps=sample_steps, guidance=sample_guidance,
                         height=height, width=width)
        if surrogate == "noise":
            q_pool = noise_latents(pipe, num_images, height, width, gen, device)
        else:
            q_pool = diff.pools(original, [surrogate], num_images, gen)[surrogate]
        replay_pools = diff.pools(original, replay_texts, num_images, gen)
        embs = encode_texts(pipe, replay_texts)
        replay_embs = {t: embs[i:i + 1] for i, t in enumerate(replay_texts)}
        emb_f = encode_texts(pipe, forget)

        unet = copy.deepcopy(original)
        fisher = fisher_diagonal(unet, diff, replay_pools, replay_embs, fisher_samples, gen, rng)
        anchor = {n: p.detach().clone() for n, p in unet.named_parameters()}
        params = []
        for p in unet.parameters():
            p.requires_grad_(True)
            params.append(p)
        named = list(unet.named_parameters())
        optimizer = torch.optim.Adam(params, lr=lr)
        losses: list[float] = []
        bar = tqdm(range(steps), desc=f"SA {spec.name}", disable=not progress, leave=False)
        for _ in bar:
            i = rng.randrange(len(forget))
            xt, t, target = diff.noised(pick(q_pool, batch_size, gen), gen)
            text = replay_texts[rng.randrange(len(replay_texts))]
            xr, tr, target_r = diff.noised(pick(replay_pools[text], batch_size, gen), gen)
            unet.train()
            optimizer.zero_grad(set_to_none=True)
            l_forget = F.mse_loss(unet(xt, t, encoder_hidden_states=emb_f[i:i + 1].expand(batch_size, -1, -1)).sample,
                                  target)
            l_replay = F.mse_loss(unet(xr, tr, encoder_hidden_states=replay_embs[text].expand(batch_size, -1, -1)
                                       ).sample, target_r)
            l_ewc = sum((fisher[n] * (p - anchor[n]) ** 2).sum() for n, p in named)
            (l_forget + gamma * l_replay + lmbda * l_ewc).backward()
            optimizer.step()
            losses.append(float(l_forget.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        bar.close()
        unet.eval()
        state = dict(unet.state_dict())

    meta = base_metadata(
        "sa", spec, b, surrogate=surrogate, prompts=forget, replay=replay_texts, steps=steps, lr=lr,
        batch_size=batch_size, lmbda=lmbda, gamma=gamma, num_images=num_images, fisher_samples=fisher_samples,
        sample_steps=sample_steps, sample_guidance=sample_guidance, seed=seed, keys="all",
        final_loss=loss_tail(losses), train_seconds=round(m.seconds, 3), train_peak_mem_mb=round(m.peak_mem_mb, 1),
        format="unet-state-dict", device=str(device), threads=torch.get_num_threads(),
    )
    write_unet_checkpoint(Path(out), state, meta)
    return Path(out)


# --------------------------------------------------------------------------------------------
# CLI: `hubkit unlearn sa`
# --------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    add_common_arguments(parser, out_help="checkpoint folder to write (full unet.safetensors + hubkit.json)")
    parser.add_argument("--surrogate", default=None,
                        help='prompt whose base images replace the concept\'s, or "noise" (default: HUB\'s '
                             'alternative for the category, e.g. "a painting" for styles)')
    parser.add_argument("--template", action="append", default=None,
                        help="forget prompt template with {} for the keyword (repeatable; default: the keyword)")
    parser.add_argument("--replay", action="append", default=None,
                        help="concept/text to replay (repeatable; default: the world's neighbours + the empty prompt)")
    parser.add_argument("--steps", type=int, default=None, help="training batches (official: 200 epochs)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (official: 1e-5)")
    parser.add_argument("--batch-size", type=int, default=None, help="official: 4")
    parser.add_argument("--lmbda", type=float, default=None, help="EWC weight λ (official: 50)")
    parser.add_argument("--gamma", type=float, default=None, help="replay weight γ (official: 1)")
    parser.add_argument("--num-images", type=int, default=None, help="base samples per surrogate/replay prompt")
    parser.add_argument("--fisher-samples", type=int, default=None, help="samples of the Fisher estimate")
    parser.add_argument("--sample-steps", type=int, default=None, help="DDIM steps of the image sampler (default: base's)")
    parser.add_argument("--sample-guidance", type=float, default=None, help="CFG scale of the sampler (default: base's)")
    parser.add_argument("--no-progress", action="store_true")


_CLI_OPTIONS = {"surrogate": "surrogate", "template": "templates", "replay": "replay", "steps": "steps", "lr": "lr",
                "batch_size": "batch_size", "lmbda": "lmbda", "gamma": "gamma", "num_images": "num_images",
                "fisher_samples": "fisher_samples", "sample_steps": "sample_steps",
                "sample_guidance": "sample_guidance"}


def run(args) -> int:
    set_threads(args.threads)
    out = sa(args.base, concept_arg(args), args.out, seed=args.seed, device=args.device, name=args.name,
             progress=not args.no_progress, **cli_kwargs(args, "sa", _CLI_OPTIONS))
    print(out)
    return 0


UNLEARNING.register("sa", obj=UnlearningMethod(
    "sa", "SA: Selective Amnesia, full fine-tuning toward a surrogate with generative replay and EWC", sa,
    add_arguments, run))
