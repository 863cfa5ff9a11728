"""AdvUnlearn — Defensive Unlearning with Adversarial Training for Robust Concept Erasure in Diffusion Models
(Zhang, Chen, Jia, Zhang, Liu, Liu; NeurIPS 2024), for any SD-1.x pipeline.

AdvUnlearn erases a concept by adversarial training of the **text encoder** (the UNet stays frozen), a bi-level
problem solved by alternating two steps at every training step:

* **inner maximisation (the attack)**: ``attack_tokens`` soft token embeddings (``attack_mode="prefix"``: put
  before the concept prompt, as AdvUnlearn's ``prefix_k`` attack; ``"suffix"``: after it) are optimised for
  ``attack_steps`` signed-gradient (FGSM-style, ``attack_lr``) steps so that the *current* model recovers the
  concept, i.e. they minimise ``‖ε(x_t, E_θ(adv ⊕ c), t) − ε*(x_t, E*(c), t)‖²`` (ε: the frozen UNet, E_θ: the text
  encoder being trained, starred: the original model);
* **outer minimisation (the defence)**: one Adam step on the text encoder's parameters with the ESD erasing loss
  on the adversarial prompt plus the utility-retaining regulariser on a retain set of ordinary prompts::

      ‖ε(x_t, E_θ(adv ⊕ c), t) − [ε*(x_t, ∅, t) − η (ε*(x_t, c, t) − ε*(x_t, ∅, t))]‖²
        + retain_weight · mean_p ‖E_θ(p) − E*(p)‖²

``x_t`` is drawn as in ESD (:mod:`hubkit.unlearn.esd`): ``xt="sample"`` runs the current model (frozen UNet,
current text encoder) with the concept prompt for a random number of DDIM steps; ``xt="noise"`` noises a small pool
of base samples of the concept prompt to a random timestep (cheaper).

Simplified with respect to the paper / official code (``OPTML-Group/AdvUnlearn``):

* the retain loss is the text-embedding preservation described above (the paper's "utility-retaining
  regularisation" on a retain set; the official code's COCO-object retain set is replaced by ``retain``: ordinary
  prompts, by default the concept's world neighbours in ``retain_templates`` plus a few generic object prompts);
* the attack is a few warm-started signed-gradient steps per training step (the paper: 30 steps of a fresh
  attack, also one-step "fast AT" as a cheaper variant); the adversarial tokens live in the token-embedding space
  (the paper's soft-prompt attack);
* ``train="full"`` (the paper's best: every text-encoder parameter), ``"layer0"`` (only the first transformer
  layer, the paper's cheaper variant) or ``"attn"`` (the self-attention projections of every layer).

The checkpoint is the text encoder as AdvUnlearn publishes it (``CLIPTextModel.save_pretrained``: a folder with
``config.json`` + ``model.safetensors``; HF ``OPTML-Group/AdvUnlearn``), plus ``hubkit.json``; ``--model`` loads
it with the ``text-encoder`` format.

This module also holds the soft-token machinery Receler's adversarial prompt learning shares
(:func:`soft_prompt_ids`, :func:`encode_ids`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from hubkit.unlearn.common import (
    META_FILE, Measure, add_common_arguments, atomic_write_json, base_metadata, cli_kwargs, concept_arg,
    expand_templates, load_base, resolve_concept, set_threads,
)
from hubkit.unlearn.finetune import seed_all
from hubkit.unlearn.registry import UNLEARNING, UnlearningMethod

TRAIN_GROUPS = ("full", "layer0", "attn")
ATTACK_MODES = ("prefix", "suffix")
GENERIC_RETAIN = ("a photo of a dog", "a photo of a car", "a photo of a tree", "a photo of a house",
                  "a photo of a person", "a landscape")


# --------------------------------------------------------------------------------------------
# soft tokens (shared with Receler)
# --------------------------------------------------------------------------------------------
def soft_prompt_ids(tokenizer, text: str, n_soft: int, where: str = "prefix") -> tuple[torch.Tensor, slice]:
    """Token ids ``[1, L]`` of ``text`` with ``n_soft`` placeholder tokens before (``prefix``) or after (``suffix``)
    its words, and the placeholders' positions.  The placeholders' embeddings are replaced by :func:`encode_ids`."""
    if where not in ATTACK_MODES:
        raise ValueError(f"where must be one of {ATTACK_MODES}, not {where!r}")
    length = tokenizer.model_max_length
    body = list(tokenizer(text, add_special_tokens=False).input_ids)[:max(0, length - 2 - n_soft)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    soft = [pad] * n_soft
    if where == "prefix":
        ids, start = [tokenizer.bos_token_id] + soft + body + [tokenizer.eos_token_id], 1
    else:
        ids, start = [tokenizer.bos_token_id] + body + soft + [tokenizer.eos_token_id], 1 + len(body)
    ids = ids + [pad] * (length - len(ids))
    return torch.tensor([ids]), slice(start, start + n_soft)


def plain_ids(tokenizer, texts: Sequence[str]) -> torch.Tensor:
    """Token ids ``[N, L]`` exactly as the pipeline tokenises prompts."""
    return tokenizer(list(texts), padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def encode_ids(text_encoder, ids: torch.Tensor, soft: torch.Tensor | None = None,
               positions: slice | None = None) -> torch.Tensor:
    """Hidden states ``[N, L, D]`` of ``ids`` (as the pipeline conditions on them), with the token embeddings at
    ``positions`` replaced by ``soft`` (``[k, D]``, differentiable) when given."""
    ids = ids.to(text_encoder.device)
    if soft is None:
        return text_encoder(ids)[0]
    layer = text_encoder.get_input_embeddings()

    def hook(_module, _inputs, output):
        s = soft.to(output.dtype).unsqueeze(0).expand(output.shape[0], -1, -1)
        return torch.cat([output[:, :positions.start], s, output[:, positions.stop:]], dim=1)

    handle = layer.register_forward_hook(hook)
    try:
        return text_encoder(ids)[0]
    finally:
        handle.remove()


def random_token_embeddings(text_encoder, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` embeddings of random vocabulary tokens (AdvUnlearn's ``attack_init="random"``)."""
    weight = text_encoder.get_input_embeddings().weight
    idx = torch.randint(0, weight.shape[0], (n,), generator=gen)
    return weight.detach()[idx.to(weight.device)].clone()


def _trainable(text_encoder, group: str) -> list[str]:
    if group not in TRAIN_GROUPS:
        raise ValueError(f"train must be one of {TRAIN_GROUPS}, not {group!r}")
    names = []
    for n, _ in text_encoder.named_parameters():
        if group == "full":
            names.append(n)
        elif group == "layer0" and ".encoder.layers.0." in f".{n}":
            names.append(n)
        elif group == "attn" and ".self_attn." in n:
            names.append(n)
    if not names:
        raise ValueError(f"the text encoder has no parameters in group {group!r}")
    return names


def advunlearn(
    base,
    concept: str | Sequence[str],
    out: Path,
    *,
    steps: int = 100,
    lr: float = 1e-5,
    eta: float = 1.0,
    train: str = "full",
    attack_tokens: int = 1,
    attack_steps: int = 5,
    attack_lr: float = 1e-3,
    attack_mode: str = "prefix",
    retain: Sequence[str] | None = None,
    retain_templates: Sequence[str] = ("a photo of {}",),
    retain_weight: float = 0.3,
    retain_batch: int = 4,
    templates: Sequence[str] = ("{}",),
    direction: str = "keyword",
    batch_size: int = 1,
    sample_steps: int | None = None,
    sample_guidance: float = 3.0,
    xt: str = "sample",
    pool_size: int = 4,
    seed: int = 0,
    device: str = "cpu",
    name: str | None = None,
    progress: bool = True,
) -> Path:
    """Adversarially unlearn ``concept`` from ``base``'s text encoder; write the text-encoder folder ``out``.

    ``retain``: ordinary concepts/prompts whose text embeddings are preserved (``None``: the concept's world
    neighbours filled into ``retain_templates``, plus a few generic object prompts; ``[]``: no retain loss).
    ``direction``: for an in-context training prompt, the ESD target removes the keyword's own direction
    (``"keyword"``) or its contribution inside the prompt (``"context"``; ESD's option, :mod:`hubkit.unlearn.esd`).
    Deterministic for a given seed, device and torch thread count.
    """
    from tqdm.auto import tqdm

    from hubkit.attacks.ringabell import strip_concept
    from hubkit.unlearn.esd import _ddim_scheduler, _keyword_in, _sample_until, check_direction, esd_target

    if xt not in ("sample", "noise"):
        raise ValueError(f"xt must be 'sample' or 'noise', not {xt!r}")
    check_direction(direction)
    if attack_mode not in ATTACK_MODES:
        raise ValueError(f"attack_mode must be one of {ATTACK_MODES}, not {attack_mode!r}")
    spec = resolve_concept(concept, name=name)
    b = load_base(base, device=device)
    pipe = b.pipe
    prompts = expand_templates(spec.keywords, templates)
    keywords = [_keyword_in(p, spec.keywords) for p in prompts]
    if retain is None:
        retain_texts = expand_templates([n for n in spec.neighbours if n not in spec.keywords], retain_templates)
        retain_texts += [p for p in GENERIC_RETAIN if p not in retain_texts]
    else:
        retain_texts = expand_templates([r for r in retain if r and r not in spec.keywords], retain_templates)
    sample_steps = int(sample_steps or b.steps)
    lat_h, lat_w = b.height // pipe.vae_scale_factor, b.width // pipe.vae_scale_factor
    channels = pipe.unet.config.in_channels

    rng, gen = seed_all(seed, "cpu")

    def randn(shape):
        return torch.randn(shape, generator=gen).to(device)

    with Measure(device) as m:
        unet = pipe.unet                                  # frozen ε (never changes)
        original = pipe.text_encoder                      # frozen E*
        te = copy.deepcopy(original)                      # E_θ
        names = set(_trainable(te, train))
        params = []
        for n, p in te.named_parameters():
            p.requires_grad_(n in names)
            if n in names:
                params.append(p)
        optimizer = torch.optim.Adam(params, lr=lr)
        tok = pipe.tokenizer
        with torch.no_grad():
            ids_c = plain_ids(tok, prompts)
            ids_kw = plain_ids(tok, keywords)
            ids_r = plain_ids(tok, retain_texts) if retain_texts else None
            emb_c = encode_ids(original, ids_c)
            emb_kw = encode_ids(original, ids_kw)
            emb_0 = encode_ids(original, plain_ids(tok, [""]))
            emb_rest = (encode_ids(original, plain_ids(tok, [strip_concept(p, [k]) for p, k in zip(prompts, keywords)]))
                        if direction == "context" else None)
            emb_r = encode_ids(original, ids_r) if ids_r is not None else None
        adv_ids = [soft_prompt_ids(tok, p, attack_tokens, attack_mode) for p in prompts]
        adv = [random_token_embeddings(original, attack_tokens, gen) for _ in prompts]   # warm-started per prompt
        sched = _ddim_scheduler(pipe)
        sched.set_timesteps(sample_steps, device=device)
        pool = None
        if xt == "noise":
            pool = []
            for i in range(len(prompts)):
                x = randn((pool_size, channels, lat_h, lat_w)) * sched.init_noise_sigma
                pool.append(_sample_until(unet, sched, x, sample_steps, emb_c[i:i + 1].expand(pool_size, -1, -1),
                                          emb_0.expand(pool_size, -1, -1), sample_guidance))

        losses, attack_losses = [], []
        bar = tqdm(range(steps), desc=f"AdvUnlearn {spec.name}", disable=not progress, leave=False)
        for _ in bar:
            i = rng.randrange(len(prompts))
            uncond = emb_0.expand(batch_size, -1, -1)
            with torch.no_grad():
                cond_now = encode_ids(te, ids_c[i:i + 1]).expand(batch_size, -1, -1)
                if pool is None:
                    k = rng.randrange(sample_steps)
                    x = randn((batch_size, channels, lat_h, lat_w)) * sched.init_noise_sigma
                    x = _sample_until(unet, sched, x, k, cond_now, uncond, sample_guidance)
                    t = sched.timesteps[k]
                else:
                    idx = torch.randint(0, pool_size, (batch_size,), generator=gen)
                    t = torch.randint(0, sched.config.num_train_timesteps, (), generator=gen)
                    x = sched.add_noise(pool[i][idx.to(device)], randn((batch_size, channels, lat_h, lat_w)),
                                        t.reshape(1).to(device))
                    t = t.to(device)
                e_c = unet(x, t, encoder_hidden_states=emb_c[i:i + 1].expand(batch_size, -1, -1)).sample
                target = esd_target(
                    lambda c: unet(x, t, encoder_hidden_states=c.expand(batch_size, -1, -1)).sample, e_c,
                    eta=eta, in_context=prompts[i] != keywords[i], direction=direction, uncond=uncond,
                    keyword=emb_kw[i:i + 1], rest=emb_rest[i:i + 1] if emb_rest is not None else None)
            # inner maximisation: adversarial soft tokens that make the current model recover the concept
            ids_a, pos = adv_ids[i]
            te.eval()
            soft = adv[i]
            for _a in range(attack_steps):
                soft = soft.detach().requires_grad_(True)
                cond_a = encode_ids(te, ids_a, soft, pos).expand(batch_size, -1, -1)
                a_loss = F.mse_loss(unet(x, t, encoder_hidden_states=cond_a).sample, e_c)
                grad, = torch.autograd.grad(a_loss, soft)
                soft = soft.detach() - attack_lr * grad.sign()
                attack_losses.append(float(a_loss.detach()))
            adv[i] = soft.detach()
            # outer minimisation: erase on the adversarial prompt, retain ordinary prompts' embeddings
            te.train()
            optimizer.zero_grad(set_to_none=True)
            cond_a = encode_ids(te, ids_a, adv[i], pos).expand(batch_size, -1, -1)
            loss = F.mse_loss(unet(x, t, encoder_hidden_states=cond_a).sample, target)
            total = loss
            if emb_r is not None and retain_weight:
                pick = rng.sample(range(len(retain_texts)), min(retain_batch, len(retain_texts)))
                r_loss = F.mse_loss(encode_ids(te, ids_r[pick]), emb_r[pick])
                total = loss + retain_weight * r_loss
            total.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        bar.close()
        te.eval()
        te.requires_grad_(False)

    out = Path(out)
    tail = losses[-max(1, len(losses) // 10):] if losses else [float("nan")]
    a_tail = attack_losses[-max(1, len(attack_losses) // 10):] if attack_losses else [float("nan")]
    meta = base_metadata(
        "advunlearn", spec, b, steps=steps, lr=lr, eta=eta, train=train, attack_tokens=attack_tokens,
        attack_steps=attack_steps, attack_lr=attack_lr, attack_mode=attack_mode, retain=retain_texts,
        retain_weight=retain_weight if retain_texts else 0.0, prompts=prompts, direction=direction,
        batch_size=batch_size,
        sample_steps=sample_steps, sample_guidance=sample_guidance, xt=xt, seed=seed,
        final_loss=round(sum(tail) / len(tail), 6), final_attack_loss=round(sum(a_tail) / len(a_tail), 6),
        train_seconds=round(m.seconds, 3), train_peak_mem_mb=round(m.peak_mem_mb, 1),
        format="text-encoder", device=str(device), threads=torch.get_num_threads(),
    )
    if pool is not None:
        meta["pool_size"] = pool_size
    write_text_encoder(out, te, meta)
    return out


def write_text_encoder(out: Path, text_encoder, meta: dict) -> Path:
    """AdvUnlearn's published layout: ``save_pretrained`` (``config.json`` + ``model.safetensors``), then
    ``hubkit.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text_encoder.to("cpu").save_pretrained(str(out), safe_serialization=True)
    atomic_write_json(out / META_FILE, meta)
    return out


# --------------------------------------------------------------------------------------------
# CLI: `hubkit unlearn advunlearn`
# --------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    add_common_arguments(parser,
                         out_help="text-encoder folder to write (config.json + model.safetensors + hubkit.json)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (outer minimisation)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate of the text encoder (paper: 1e-5)")
    parser.add_argument("--eta", type=float, default=None, help="negative guidance η of the ESD target")
    parser.add_argument("--train", choices=TRAIN_GROUPS, default=None, help="text-encoder parameters trained")
    parser.add_argument("--attack-tokens", type=int, default=None, help="adversarial soft tokens")
    parser.add_argument("--attack-steps", type=int, default=None, help="attack steps per training step")
    parser.add_argument("--attack-lr", type=float, default=None, help="attack step size (signed gradient)")
    parser.add_argument("--attack-mode", choices=ATTACK_MODES, default=None)
    parser.add_argument("--retain", action="append", default=None, help="retained concept/prompt (repeatable)")
    parser.add_argument("--retain-weight", type=float, default=None,
                        help="weight of the utility-retaining loss (paper: 0.3)")
    parser.add_argument("--template", action="append", default=None,
                        help="training prompt template with {} (repeatable)")
    parser.add_argument("--direction", choices=("keyword", "context"), default=None,
                        help="in-context prompts: erase the keyword's direction alone (default) or its contribution "
                             "inside the prompt")
    parser.add_argument("--sample-steps", type=int, default=None)
    parser.add_argument("--sample-guidance", type=float, default=None)
    parser.add_argument("--xt", choices=("sample", "noise"), default=None)
    parser.add_argument("--no-progress", action="store_true")


_CLI_OPTIONS = {"steps": "steps", "lr": "lr", "eta": "eta", "train": "train", "attack_tokens": "attack_tokens",
                "attack_steps": "attack_steps", "attack_lr": "attack_lr", "attack_mode": "attack_mode",
                "retain": "retain", "retain_weight": "retain_weight", "template": "templates",
                "sample_steps": "sample_steps", "sample_guidance": "sample_guidance", "xt": "xt",
                "direction": "direction"}


def run(args) -> int:
    set_threads(args.threads)
    out = advunlearn(args.base, concept_arg(args), args.out, seed=args.seed, device=args.device, name=args.name,
                     progress=not args.no_progress, **cli_kwargs(args, "advunlearn", _CLI_OPTIONS))
    print(out)
    return 0


UNLEARNING.register("advunlearn", obj=UnlearningMethod(
    "advunlearn", "AdvUnlearn: adversarial training of the text encoder against soft-prompt attacks", advunlearn,
    add_arguments, run))
