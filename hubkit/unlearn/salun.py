"""SalUn — Saliency Unlearning (Fan et al., ICLR 2024), diffusion variant, for any SD-1.x pipeline.

1. **Weight saliency.**  On the frozen base, the gradient of the forgetting loss (the standard denoising loss on
   base-model images of the concept prompts, with those prompts) is accumulated over ``mask_batches`` batches;
   the mask keeps the parameters (elements, over the whole UNet) whose accumulated gradient magnitude is in the
   top ``mask_ratio`` (0.5: above the median), as the official ``generate_mask.py`` does.
2. **Random labelling on the salient weights.**  Only masked elements are trained (gradients are multiplied by
   the mask; Adam without weight decay leaves the rest bit-identical)::

       L = ‖ε_θ(x_t, c_f, t) − sg(ε_θ(x_t, c_r, t))‖²  +  α · ‖ε − ε_θ(x'_t, c', t)‖²

   with ``x_t`` a noised base image of a concept prompt ``c_f``, ``c_r`` a random *different* prompt (from
   ``relabel``; default: the retain prompts), the target the current model's own (detached) prediction, as in the
   official ``certain_label.py``, and the second term the denoising loss on base images of retain prompts ``c'``
   (default: the concept's neighbours in its world, plus the empty prompt).

Defaults follow the official SD code: ``mask_ratio`` 0.5, α = 0.5, lr 1e-5, batch 8, Adam; the official code runs
5 epochs over its forget set, here ``steps`` batches (default 500, about 5 epochs of 800 images).

Simplified: the official code builds its forget / retain sets from class prompts ("an image of a {class}") with
hundreds of SD images each and computes the mask over the whole forget set; here each prompt gets ``num_images``
DDIM samples from the base and the mask uses ``mask_batches`` batches.

The checkpoint is a folder ``OUT/unet.safetensors`` + ``OUT/hubkit.json`` holding every UNet parameter tensor
with at least one salient element (``keys="changed"``, like ESD; ``keys="all"`` for the full UNet), which
``--model OUT`` loads (``unet-state-dict`` format).  ``save_mask=True`` also writes the mask as
``OUT/salun_mask.safetensors`` (bool tensors by parameter name).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from hubkit.atomic import write_bytes
from hubkit.unlearn.finetune import Diffusion, expand_pairs, loss_tail, pick, seed_all
from hubkit.unlearn.common import (
    Measure, add_common_arguments, base_metadata, cli_kwargs, concept_arg, encode_texts, expand_templates,
    load_base, resolve_concept, set_threads, write_unet_checkpoint,
)
from hubkit.unlearn.registry import UNLEARNING, UnlearningMethod

MASK_FILE = "salun_mask.safetensors"


def saliency_mask(unet, diff: Diffusion, pools: dict[str, torch.Tensor], embs: dict[str, torch.Tensor], *,
                  mask_ratio: float, batches: int, batch_size: int, gen: torch.Generator, rng
                  ) -> dict[str, torch.Tensor]:
    """Boolean masks (by parameter name) of the top ``mask_ratio`` fraction of all UNet parameter elements by
    ``|Σ ∇ℓ_forget|`` over ``batches`` batches of concept images (ties at the threshold are kept)."""
    if not 0.0 < mask_ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1], not {mask_ratio}")
    params = dict(unet.named_parameters())
    for p in params.values():
        p.requires_grad_(True)
    grads = {n: torch.zeros_like(p) for n, p in params.items()}
    texts = list(pools)
    for _ in range(batches):
        text = texts[rng.randrange(len(texts))]
        xt, t, target = diff.noised(pick(pools[text], batch_size, gen), gen)
        unet.zero_grad(set_to_none=True)
        F.mse_loss(unet(xt, t, encoder_hidden_states=embs[text].expand(batch_size, -1, -1)).sample, target).backward()
        for n, p in params.items():
            if p.grad is not None:
                grads[n] += p.grad.detach()
    unet.zero_grad(set_to_none=True)
    for p in params.values():
        p.requires_grad_(False)
    flat = torch.cat([g.abs().flatten() for g in grads.values()])
    keep = max(1, int(round(mask_ratio * flat.numel())))
    threshold = torch.topk(flat, keep, sorted=True).values[-1]
    return {n: g.abs() >= threshold for n, g in grads.items()}


def salun(
    base,
    concept: str | Sequence[str],
    out: Path,
    *,
    templates: Sequence[str] = ("{}",),
    retain: Sequence[str] | None = None,
    retain_templates: Sequence[str] | None = None,
    relabel: Sequence[str] | None = None,
    mask_ratio: float = 0.5,
    mask_batches: int = 8,
    alpha: float = 0.5,
    steps: int = 500,
    lr: float = 1e-5,
    batch_size: int = 8,
    num_images: int = 50,
    sample_steps: int | None = None,
    sample_guidance: float | None = None,
    resolution: int | None = None,
    keys: str = "changed",
    save_mask: bool = False,
    seed: int = 0,
    device: str = "cpu",
    name: str | None = None,
    progress: bool = True,
) -> Path:
    """SalUn on ``concept`` from ``base``; write the checkpoint to ``out`` and return ``out``.

    ``templates``: concept prompts (``{}`` = keyword).  ``retain``: concepts/texts to keep (``None``: the world's
    neighbours and the empty prompt; ``[]``: the empty prompt only), filled into ``retain_templates`` (default
    ``templates``).  ``relabel``: prompts a concept prompt is relabelled to (default: the retain prompts).
    ``num_images`` base samples per concept / retain prompt.  Deterministic for a given seed, device and torch
    thread count.
    """
    from tqdm.auto import tqdm

    if keys not in ("changed", "all"):
        raise ValueError(f"keys must be 'changed' or 'all', not {keys!r}")
    spec = resolve_concept(concept, name=name)
    b = load_base(base, device=device)
    pipe = b.pipe
    forget = [p for p, _ in expand_pairs(spec.keywords, templates)]
    if retain is None:
        retain = list(spec.neighbours) + [""]
    retain_texts = [p for p in expand_templates([r for r in retain if r and r not in spec.keywords],
                                                retain_templates or templates) if p not in forget]
    if "" in retain or not retain_texts:
        retain_texts.append("")
    retain_texts = list(dict.fromkeys(retain_texts))
    relabel_texts = [r for r in dict.fromkeys(relabel if relabel is not None else retain_texts) if r not in forget]
    if not relabel_texts:
        relabel_texts = [""]
    sample_steps = int(sample_steps or b.steps)
    sample_guidance = float(b.guidance if sample_guidance is None else sample_guidance)
    size = int(resolution) if resolution else None
    rng, gen = seed_all(seed, device)

    with Measure(device) as m:
        original = pipe.unet
        diff = Diffusion(pipe, device=device, sample_steps=sample_steps, guidance=sample_guidance,
                         height=size or b.height, width=size or b.width)
        forget_pools = diff.pools(original, forget, num_images, gen)
        retain_pools = diff.pools(original, retain_texts, num_images, gen)
        texts = list(dict.fromkeys(forget + retain_texts + relabel_texts))
        all_embs = encode_texts(pipe, texts)
        embs = {t: all_embs[i:i + 1] for i, t in enumerate(texts)}

        unet = copy.deepcopy(original)
        mask = saliency_mask(unet, diff, forget_pools, embs, mask_ratio=mask_ratio, batches=mask_batches,
                             batch_size=batch_size, gen=gen, rng=rng)
        named = [(n, p) for n, p in unet.named_parameters() if bool(mask[n].any())]
        masks = {n: mask[n].to(p.dtype) for n, p in named}
        for n, p in unet.named_parameters():
            p.requires_grad_(n in masks)
        optimizer = torch.optim.Adam([p for _, p in named], lr=lr)   # no weight decay: unmasked elements stay put
        losses: list[float] = []
        bar = tqdm(range(steps), desc=f"SalUn {spec.name}", disable=not progress, leave=False)
        for _ in bar:
            f_text = forget[rng.randrange(len(forget))]
            r_label = relabel_texts[rng.randrange(len(relabel_texts))]
            xt, t, _ = diff.noised(pick(forget_pools[f_text], batch_size, gen), gen)
            k_text = retain_texts[rng.randrange(len(retain_texts))]
            xr, tr, target_r = diff.noised(pick(retain_pools[k_text], batch_size, gen), gen)
            unet.train()
            with torch.no_grad():
                pseudo = unet(xt, t, encoder_hidden_states=embs[r_label].expand(batch_size, -1, -1)).sample
            optimizer.zero_grad(set_to_none=True)
            l_forget = F.mse_loss(unet(xt, t, encoder_hidden_states=embs[f_text].expand(batch_size, -1, -1)).sample,
                                  pseudo)
            l_retain = F.mse_loss(unet(xr, tr, encoder_hidden_states=embs[k_text].expand(batch_size, -1, -1)).sample,
                                  target_r)
            (l_forget + alpha * l_retain).backward()
            for n, p in named:
                if p.grad is not None:
                    p.grad.mul_(masks[n])
            optimizer.step()
            losses.append(float(l_forget.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        bar.close()
        unet.eval()
        sd = unet.state_dict()
        state = {n: sd[n] for n, _ in named} if keys == "changed" else dict(sd)

    n_masked = int(sum(int(v.sum()) for v in mask.values()))
    n_total = int(sum(v.numel() for v in mask.values()))
    meta = base_metadata(
        "salun", spec, b, prompts=forget, retain=retain_texts, relabel=relabel_texts, mask_ratio=mask_ratio,
        mask_batches=mask_batches, masked_elements=n_masked, total_elements=n_total, alpha=alpha, steps=steps,
        lr=lr, batch_size=batch_size, num_images=num_images, sample_steps=sample_steps,
        sample_guidance=sample_guidance, seed=seed, keys=keys, final_loss=loss_tail(losses),
        train_seconds=round(m.seconds, 3), train_peak_mem_mb=round(m.peak_mem_mb, 1),
        format="unet-state-dict", device=str(device), threads=torch.get_num_threads(),
    )
    weights = write_unet_checkpoint(Path(out), state, meta)
    if save_mask:
        from safetensors.torch import save

        write_bytes(weights.with_name(MASK_FILE if weights.name != MASK_FILE else "mask.safetensors"),
                    save({n: v.contiguous() for n, v in sorted(mask.items())}))
    return Path(out)


# --------------------------------------------------------------------------------------------
# CLI: `hubkit unlearn salun`
# --------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    add_common_arguments(parser, out_help="checkpoint folder to write (unet.safetensors + hubkit.json)")
    parser.add_argument("--template", action="append", default=None,
                        help="concept prompt template with {} for the keyword (repeatable; default: the keyword)")
    parser.add_argument("--retain", action="append", default=None,
                        help="concept/text to retain (repeatable; default: the world's neighbours + the empty prompt)")
    parser.add_argument("--relabel", action="append", default=None,
                        help="prompt the concept is relabelled to (repeatable; default: the retain prompts)")
    parser.add_argument("--mask-ratio", type=float, default=None, help="fraction of weights kept salient (paper: 0.5)")
    parser.add_argument("--mask-batches", type=int, default=None, help="batches of the saliency gradient")
    parser.add_argument("--alpha", type=float, default=None, help="retain-loss weight α (official: 0.5)")
    parser.add_argument("--steps", type=int, default=None, help="training batches (official: 5 epochs)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (official: 1e-5)")
    parser.add_argument("--batch-size", type=int, default=None, help="official: 8")
    parser.add_argument("--num-images", type=int, default=None, help="base samples per concept/retain prompt")
    parser.add_argument("--sample-steps", type=int, default=None, help="DDIM steps of the image sampler (default: base's)")
    parser.add_argument("--sample-guidance", type=float, default=None, help="CFG scale of the sampler (default: base's)")
    parser.add_argument("--keys", choices=("changed", "all"), default=None)
    parser.add_argument("--save-mask", action="store_true", help="also write the saliency mask")
    parser.add_argument("--no-progress", action="store_true")


_CLI_OPTIONS = {"template": "templates", "retain": "retain", "relabel": "relabel", "mask_ratio": "mask_ratio",
                "mask_batches": "mask_batches", "alpha": "alpha", "steps": "steps", "lr": "lr",
                "batch_size": "batch_size", "num_images": "num_images", "sample_steps": "sample_steps",
                "sample_guidance": "sample_guidance", "keys": "keys"}


def run(args) -> int:
    set_threads(args.threads)
    kwargs = cli_kwargs(args, "salun", _CLI_OPTIONS)
    if args.save_mask:
        kwargs["save_mask"] = True
    out = salun(args.base, concept_arg(args), args.out, seed=args.seed, device=args.device, name=args.name,
                progress=not args.no_progress, **kwargs)
    print(out)
    return 0


UNLEARNING.register("salun", obj=UnlearningMethod(
    "salun", "SalUn: random-label fine-tuning of the salient weights (gradient-saliency mask)", salun,
    add_arguments, run))
