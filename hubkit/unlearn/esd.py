"""ESD — Erasing Concepts from Diffusion Models (Gandikota et al., ICCV 2023), for any SD-1.x pipeline.

A copy of the UNet, ε_θ, is fine-tuned so that on the concept's prompt it predicts the frozen original's
*negatively guided* noise::

    ε_θ(x_t, c, t)  ->  ε*(x_t, ∅, t) − η · (ε*(x_t, c, t) − ε*(x_t, ∅, t))

where ``x_t`` is a partial sample of the concept: as in ESD, each step draws a random number ``k`` of
DDIM steps (out of ``sample_steps``) and runs the model being trained from pure noise with the concept prompt
and classifier-free guidance ``sample_guidance`` to ``t = timesteps[k]`` (``xt="sample"``).  The cheaper
``xt="noise"`` draws a small pool of full samples from the base model once and noises them to a random
timestep.  Several keywords (``weapon`` -> weapon, knife, sword, axe, spear) are trained together: each
step picks one training prompt at random.

Training prompts may put a keyword in context (``templates`` such as ``"a photo of {}"``).  The target then
keeps the prompt's other content and removes only the keyword's direction, as the official code's
``erase_from`` option does::

    ε_θ(x_t, p, t)  ->  ε*(x_t, p, t) − (η + 1) · (ε*(x_t, k, t) − ε*(x_t, ∅, t))

with ``k`` the keyword inside ``p``; for ``p = k`` this is exactly the formula above.  That direction is the
keyword's *alone*, and it is weak where the bare name barely draws the concept (the micro base draws Pointelli from
"Pointelli" in 0.19 of images and from "a painting in the style of Pointelli" in 1.00).  ``direction="context"``
measures the keyword's contribution inside the prompt instead, against the prompt with the keyword removed
(``p∖k``, e.g. "a painting in the style of")::

    ε_θ(x_t, p, t)  ->  ε*(x_t, p, t) − (η + 1) · (ε*(x_t, p, t) − ε*(x_t, p∖k, t))

which is the official formula with ``p∖k`` in place of the empty prompt (not in the paper or its code).

Optional preservation (not in ESD; off by default): with ``preserve`` texts (e.g. the concept's neighbours),
each step also pulls ε_θ toward ε* on a preserved prompt, ``preserve_weight · ‖ε_θ(x'_t, p) − ε*(x'_t, p)‖²``,
where ``x'_t`` is a base-model sample of ``p`` (a pool of ``pool_size`` per prompt) noised to a random timestep.

Variants choose the parameters that move (names as diffusers' ``UNet2DConditionModel`` spells them):

* ``x`` (ESD-x): the cross-attention blocks, every parameter under ``.attn2.``;
* ``u`` (ESD-u): everything except cross-attention, the time embedding and the output layer
  (``time_embedding.``, ``conv_norm_out.``, ``conv_out.``), as ESD's "noxattn";
* ``kv`` (the official code's "ESD-x-strict"): only the cross-attention key/value projections
  (``.attn2.to_k.``, ``.attn2.to_v.``), which see nothing but the text;
* ``all``: every parameter.

The checkpoint is a folder with ``unet.safetensors`` (by default only the variant's parameters; ``keys="all"``
for the full UNet) and ``hubkit.json``; see :mod:`hubkit.unlearn.common`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from hubkit.unlearn.common import (
    Measure, add_common_arguments, base_metadata, cli_kwargs, concept_arg, encode_texts, expand_templates, load_base,
    resolve_concept, set_threads, write_unet_checkpoint,
)
from hubkit.unlearn.finetune import seed_all, trainable_copy
from hubkit.unlearn.registry import UNLEARNING, UnlearningMethod

VARIANTS = ("x", "u", "kv", "all")
_U_EXCLUDED_PREFIXES = ("time_embedding.", "conv_norm_out.", "conv_out.")


def trainable_names(unet: torch.nn.Module, variant: str) -> list[str]:
    """Names of the parameters ESD-``variant`` trains (in ``named_parameters`` order)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown ESD variant {variant!r}; expected one of {VARIANTS}")
    names = []
    for name, _ in unet.named_parameters():
        cross = ".attn2." in name
        if variant == "x" and cross:
            names.append(name)
        elif variant == "u" and not cross and not name.startswith(_U_EXCLUDED_PREFIXES):
            names.append(name)
        elif variant == "kv" and cross and (".attn2.to_k." in name or ".attn2.to_v." in name):
            names.append(name)
        elif variant == "all":
            names.append(name)
    if not names:
        raise ValueError(f"ESD-{variant}: the UNet has no parameters in this group")
    return names


def _keyword_in(prompt: str, keywords: Sequence[str]) -> str:
    """The (longest) keyword that ``prompt`` contains, case-insensitively; the prompt itself if none."""
    low = prompt.lower()
    found = [k for k in keywords if k.lower() in low]
    return max(found, key=len) if found else prompt


def _ddim_scheduler(pipe):
    from diffusers import DDIMScheduler

    return DDIMScheduler.from_config(pipe.scheduler.config)


def _cfg_eps(unet, x, t, cond, uncond, guidance: float) -> torch.Tensor:
    if guidance == 1.0:
        return unet(x, t, encoder_hidden_states=cond).sample
    eps = unet(torch.cat([x, x]), t, encoder_hidden_states=torch.cat([uncond, cond])).sample
    e_u, e_c = eps.chunk(2)
    return e_u + guidance * (e_c - e_u)


DIRECTIONS = ("keyword", "context")


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'keyword' or 'context', not {direction!r}")


def target_terms(in_context: bool, direction: str) -> tuple[str, ...]:
    """The conditionings besides the training prompt that :func:`esd_target` runs the frozen model on, in the order
    it asks for them: the training loop computes them all in one batched forward."""
    if in_context and direction == "context":
        return ("rest",)
    return ("uncond", "keyword") if in_context else ("uncond",)


def esd_target(eps, e_c: torch.Tensor, *, eta: float, in_context: bool, direction: str,
               uncond: torch.Tensor, keyword: torch.Tensor, rest: torch.Tensor | None) -> torch.Tensor:
    """The negatively guided target of one training step (the formulas in this module's docstring).

    ``eps(cond)`` runs the frozen model on the step's ``x_t`` and ``t``; it is called only for the terms the branch
    needs.  ``e_c`` is its prediction on the training prompt, ``keyword`` the keyword inside it, ``rest`` the prompt
    without the keyword (needed only for ``direction="context"``).  Receler and AdvUnlearn erase with this target too.
    """
    if in_context and direction == "context":   # the keyword's contribution in this prompt (no ε*(∅))
        return e_c - (eta + 1.0) * (e_c - eps(rest))
    e_0 = eps(uncond)
    if in_context:                               # remove only the keyword's own direction
        return e_c - (eta + 1.0) * (eps(keyword) - e_0)
    return e_0 - eta * (e_c - e_0)


def _batched(unet, xs, ts, conds, batch_size: int) -> list[torch.Tensor]:
    """``unet(x, t, c)`` for each triple, in one forward: the predictions are each sample's own (the UNet has no
    batch statistics), the per-call overhead is paid once."""
    t = torch.cat([torch.as_tensor(ti).reshape(-1).expand(x.shape[0]) for x, ti in zip(xs, ts)])
    c = torch.cat([ci.expand(x.shape[0], -1, -1) for x, ci in zip(xs, conds)])
    return list(unet(torch.cat(xs), t, encoder_hidden_states=c).sample.split(batch_size))


@torch.no_grad()
def _sample_until(unet, sched, x, k: int, cond, uncond, guidance: float) -> torch.Tensor:
    """Run the first ``k`` DDIM steps from ``x`` (noise at ``timesteps[0]``): the result lives at ``timesteps[k]``."""
    for t in sched.timesteps[:k]:
        xin = sched.scale_model_input(x, t)
        x = sched.step(_cfg_eps(unet, xin, t, cond, uncond, guidance), t, x).prev_sample
    return x


def esd(
    base,
    concept: str | Sequence[str],
    out: Path,
    *,
    variant: str = "x",
    steps: int = 200,
    lr: float = 5e-5,
    eta: float = 1.0,
    seed: int = 0,
    batch_size: int = 1,
    sample_steps: int | None = None,
    sample_guidance: float = 3.0,
    xt: str = "sample",
    direction: str = "keyword",
    pool_size: int = 8,
    templates: Sequence[str] = ("{}",),
    prompts: Sequence[str] | None = None,
    preserve: Sequence[str] | None = (),
    preserve_weight: float = 1.0,
    preserve_templates: Sequence[str] = ("{}",),
    resolution: int | None = None,
    keys: str = "changed",
    device: str = "cpu",
    name: str | None = None,
    progress: bool = True,
) -> Path:
    """Train ESD-``variant`` on ``concept`` from ``base``; write the checkpoint to ``out`` and return ``out``.

    ``base``: an SD-1.x diffusers folder (or an in-memory ``StableDiffusionPipeline``).  ``concept``: a
    world concept name, a keyword or a list of keywords.  Training prompts are ``prompts`` if given, else
    ``templates`` filled with each keyword (default: the bare keyword, as ESD).  ``sample_steps`` defaults to the base's ``hubkit.json``
    steps (50 without one).  ``preserve`` (default none, as ESD; ``None``: the world's neighbours) adds the
    preservation term described in the module docstring.  Deterministic for a given seed, device and torch
    thread count.
    """
    from tqdm.auto import tqdm

    from hubkit.attacks.ringabell import strip_concept   # the same "prompt without the concept" Ring-A-Bell pairs use

    if xt not in ("sample", "noise"):
        raise ValueError(f"xt must be 'sample' or 'noise', not {xt!r}")
    check_direction(direction)
    if keys not in ("changed", "all"):
        raise ValueError(f"keys must be 'changed' or 'all', not {keys!r}")
    spec = resolve_concept(concept, name=name)
    b = load_base(base, device=device)
    pipe = b.pipe
    if prompts:
        prompts = list(dict.fromkeys(prompts))
        prompt_kws = [_keyword_in(p, spec.keywords) for p in prompts]
    else:
        pairs = list(dict.fromkeys((tpl.format(kw) if "{}" in tpl else tpl, kw)
                                   for kw in spec.keywords for tpl in templates))
        prompts, prompt_kws = [p for p, _ in pairs], [k for _, k in pairs]
    keywords = list(dict.fromkeys(prompt_kws))
    kw_index = [keywords.index(k) for k in prompt_kws]
    if preserve is None:
        preserve = list(spec.neighbours)
    keep_prompts = [p for p in expand_templates([k for k in preserve if k and k not in spec.keywords],
                                                preserve_templates) if p not in prompts]
    if "" in preserve:  # the empty prompt (unconditional prediction) is preserved as itself
        keep_prompts.append("")
    sample_steps = int(sample_steps or b.steps)
    height = width = int(resolution) if resolution else None
    lat_h = (height or b.height) // pipe.vae_scale_factor
    lat_w = (width or b.width) // pipe.vae_scale_factor
    channels = pipe.unet.config.in_channels

    rng, gen = seed_all(seed, device)

    with Measure(device) as m:
        original = pipe.unet                      # frozen ε*
        names = trainable_names(original, variant)
        unet, params = trainable_copy(original, names)   # ε_θ
        optimizer = torch.optim.Adam(params, lr=lr)

        emb_c = encode_texts(pipe, prompts)
        emb_kw = encode_texts(pipe, keywords)
        emb_rest = (encode_texts(pipe, [strip_concept(p, [k]) for p, k in zip(prompts, prompt_kws)])
                    if direction == "context" else None)
        emb_0 = encode_texts(pipe, [""])
        sched = _ddim_scheduler(pipe)
        sched.set_timesteps(sample_steps, device=device)

        def base_samples(embs: torch.Tensor) -> list[torch.Tensor]:
            """``pool_size`` full samples of the frozen model per prompt embedding, every prompt in one batch (one
            sampling loop instead of one per prompt: on a CPU the per-call overhead, not the arithmetic, dominates)."""
            n = embs.shape[0]
            x = torch.cat([torch.randn((pool_size, channels, lat_h, lat_w), generator=gen, device=device)
                           for _ in range(n)]) * sched.init_noise_sigma
            x = _sample_until(original, sched, x, sample_steps, embs.repeat_interleave(pool_size, dim=0),
                              emb_0.expand(n * pool_size, -1, -1), sample_guidance)
            return list(x.split(pool_size))

        def noised(x0_pool: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            idx = torch.randint(0, pool_size, (batch_size,), generator=gen, device=device)
            x0 = x0_pool[idx]
            t = torch.randint(0, sched.config.num_train_timesteps, (), generator=gen, device=device)
            noise = torch.randn(x0.shape, generator=gen, device=device)
            return sched.add_noise(x0, noise, t.reshape(1)), t

        # xt="noise": a few full samples per prompt from the base model, noised afresh each step
        pool = base_samples(emb_c) if xt == "noise" else None
        emb_keep = encode_texts(pipe, keep_prompts) if keep_prompts else None
        keep_pool = base_samples(emb_keep) if keep_prompts else None
        losses: list[float] = []
        bar = tqdm(range(steps), desc=f"ESD-{variant} {spec.name}", disable=not progress, leave=False)
        for _ in bar:
            i = rng.randrange(len(prompts))
            cond = emb_c[i:i + 1].expand(batch_size, -1, -1)
            in_context = prompts[i] != keywords[kw_index[i]]
            uncond = emb_0.expand(batch_size, -1, -1)
            with torch.no_grad():
                if pool is None:
                    k = rng.randrange(sample_steps)
                    x = torch.randn((batch_size, channels, lat_h, lat_w), generator=gen, device=device)
                    x = x * sched.init_noise_sigma
                    unet.eval()
                    x = _sample_until(unet, sched, x, k, cond, uncond, sample_guidance)
                    t = sched.timesteps[k]
                else:
                    x, t = noised(pool[i])
                terms = {"uncond": uncond, "keyword": emb_kw[kw_index[i]:kw_index[i] + 1],
                         "rest": emb_rest[i:i + 1] if emb_rest is not None else None}
                needed = [terms[n] for n in target_terms(in_context, direction)]
                # every frozen prediction of the step in one forward: the prompt, the target's terms, the kept prompt
                xs, ts, cs = [x] * (1 + len(needed)), [t] * (1 + len(needed)), [cond] + needed
                if keep_pool is not None:
                    j = rng.randrange(len(keep_prompts))
                    keep_cond = emb_keep[j:j + 1].expand(batch_size, -1, -1)
                    x_keep, t_keep = noised(keep_pool[j])
                    xs, ts, cs = xs + [x_keep], ts + [t_keep], cs + [keep_cond]
                preds = _batched(original, xs, ts, cs, batch_size)
                keep_target = preds[-1] if keep_pool is not None else None
                by_id = {id(c): p for c, p in zip(needed, preds[1:])}
                target = esd_target(lambda c: by_id[id(c)], preds[0], eta=eta, in_context=in_context,
                                    direction=direction, **terms)
            unet.train()
            optimizer.zero_grad(set_to_none=True)
            if keep_pool is not None:   # the erased and the kept prompt in one forward, as the frozen ones
                pred, pred_keep = _batched(unet, [x, x_keep], [t, t_keep], [cond, keep_cond], batch_size)
                loss = F.mse_loss(pred, target)
                (loss + preserve_weight * F.mse_loss(pred_keep, keep_target)).backward()
            else:
                loss = F.mse_loss(unet(x, t, encoder_hidden_states=cond).sample, target)
                loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        bar.close()
        unet.eval()
        sd = unet.state_dict()
        state = {n: sd[n] for n in names} if keys == "changed" else dict(sd)

    tail = losses[-max(1, len(losses) // 10):] if losses else [float("nan")]
    meta = base_metadata(
        "esd", spec, b, variant=f"esd-{variant}", steps=steps, lr=lr, eta=eta, seed=seed,
        batch_size=batch_size, sample_steps=sample_steps, sample_guidance=sample_guidance, xt=xt, direction=direction,
        prompts=prompts, keys=keys, final_loss=round(sum(tail) / len(tail), 6),
        preserve=keep_prompts, preserve_weight=preserve_weight if keep_prompts else 0.0,
        train_seconds=round(m.seconds, 3), train_peak_mem_mb=round(m.peak_mem_mb, 1),
        format="unet-state-dict", device=str(device), threads=torch.get_num_threads(),
    )
    if pool is not None or keep_prompts:
        meta["pool_size"] = pool_size
    write_unet_checkpoint(Path(out), state, meta)
    return Path(out)


# --------------------------------------------------------------------------------------------
# CLI: `hubkit unlearn esd`
# --------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    add_common_arguments(parser, out_help="checkpoint folder to write (unet.safetensors + hubkit.json)")
    parser.add_argument("--variant", choices=VARIANTS, default=None,
                        help="x: cross-attention (ESD-x, default), u: the rest (ESD-u), kv: attn2 to_k/to_v only (ESD-x-strict), all")
    parser.add_argument("--steps", type=int, default=None, help="training steps (paper: 200)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (paper: 5e-5)")
    parser.add_argument("--eta", type=float, default=None, help="negative guidance η (paper: 1.0)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--sample-steps", type=int, default=None, help="DDIM steps of the x_t sampler (default: base's)")
    parser.add_argument("--sample-guidance", type=float, default=None, help="CFG scale of the x_t sampler (paper: 3)")
    parser.add_argument("--xt", choices=("sample", "noise"), default=None)
    parser.add_argument("--direction", choices=DIRECTIONS, default=None,
                        help="in-context prompts: erase the keyword's direction alone (default) or its contribution "
                             "inside the prompt (against the prompt without it)")
    parser.add_argument("--template", action="append", default=None,
                        help="training prompt template with {} for the keyword (repeatable; default: the keyword)")
    parser.add_argument("--keys", choices=("changed", "all"), default=None)
    parser.add_argument("--no-progress", action="store_true")


_CLI_OPTIONS = {"variant": "variant", "steps": "steps", "lr": "lr", "eta": "eta", "batch_size": "batch_size",
                "sample_steps": "sample_steps", "sample_guidance": "sample_guidance", "xt": "xt",
                "direction": "direction",
                "template": "templates", "keys": "keys"}


def run(args) -> int:
    set_threads(args.threads)
    out = esd(args.base, concept_arg(args), args.out, seed=args.seed, device=args.device, name=args.name,
              progress=not args.no_progress, **cli_kwargs(args, "esd", _CLI_OPTIONS))
    print(out)
    return 0


UNLEARNING.register("esd", obj=UnlearningMethod(
    "esd", "ESD: fine-tune the UNet to negatively guide away from the concept (ESD-x / ESD-u)", esd, add_arguments, run))
