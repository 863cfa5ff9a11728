"""Receler — Reliable Concept Erasing of Text-to-Image Diffusion Models via Lightweight Erasers (Huang, Chang,
Tsai, Lai, Yang, Wang; arXiv 2311.17717, ECCV 2024), for any SD-1.x pipeline.

Receler leaves the UNet's weights untouched and adds a lightweight *eraser* after every cross-attention:
each ``BasicTransformerBlock``'s ``attn2`` becomes ``adapter(attn2(x)) + attn2(x)`` with ``adapter`` =
Linear(dim → ``rank``) → GELU → Linear(``rank`` → dim), the up projection zero-initialised
(:class:`hubkit.models.formats.receler.AttentionWithEraser`).  Only the erasers are trained, with three parts:

* **erasing objective** (ESD's): on the concept prompt ``c`` the model with erasers predicts the frozen original's
  negatively guided noise, ``‖ε_E(x_t, c, t) − [ε*(x_t, ∅, t) − η (ε*(x_t, c, t) − ε*(x_t, ∅, t))]‖²``; ``x_t``
  as in ESD (``xt="sample"``: the eraser model's own DDIM sample of ``c`` stopped at a random step; ``xt="noise"``:
  a pool of base samples noised to a random timestep);
* **concept-localised regularisation**: the eraser outputs outside the concept's cross-attention mask are pushed
  to zero, ``reg_weight · mean_l ‖adapter_l(·) ⊙ (1 − M_l)‖²``, ``M_l`` = the original model's cross-attention map
  of the concept's tokens in layer ``l`` (same ``x_t``, mean over heads), divided by its maximum and thresholded
  at ``mask_threshold``;
* **adversarial prompt learning**: ``adv_tokens`` soft token embeddings appended to the concept prompt are
  learned (``adv_steps`` Adam steps of ``adv_lr`` every ``adv_every`` training steps, warm-started) to *maximise
  concept reappearance*, i.e. to make the model with erasers predict the original's concept noise,
  ``min ‖ε_E(x_t, c ⊕ adv, t) − ε*(x_t, c, t)‖²``; the erasers are then trained against them:
  ``adv_weight ·`` the erasing objective on ``c ⊕ adv``.  Training alternates the two.

Simplified with respect to the paper / official code (``jasper0314-huang/Receler``): the masks come from each
layer's own attention map (Receler averages maps across layers and time), the adversarial embeddings are one
warm-started set per training prompt updated a few steps at a time, and every loss is a plain mean-squared error.

The checkpoint is Receler's published layout (``save_eraser_to_diffusers_format``, HUB's
``models/receler/{target}.pt``): a ``torch.save``'d ``{prefix: {down.weight, down.bias, up.weight, up.bias}}``
with ``prefix`` the attention block (``down_blocks.1.attentions.0``; ``mid_block.attentions.0``).  ``out`` ending
in ``.pt``/``.pth``/``.bin`` is that file (metadata beside it in ``<stem>.hubkit.json``); otherwise ``out`` is a
folder holding ``receler.pt`` and ``hubkit.json``.  The function returns the ``.pt`` path ``--model`` takes
(the ``receler`` format).
"""

from __future__ import annotations

import copy
import io
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

ERASER_FILE = "receler.pt"
_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def add_erasers(unet, rank: int) -> list[tuple[str, torch.nn.Module]]:
    """Wrap every ``BasicTransformerBlock.attn2`` of ``unet`` (in place) with a fresh eraser (up projection zeroed);
    returns ``(prefix, adapter)`` in module order."""
    from diffusers.models.attention import BasicTransformerBlock

    from hubkit.models.formats.receler import AttentionWithEraser, prefix_name

    out = []
    for name, block in [(n, m) for n, m in unet.named_modules() if isinstance(m, BasicTransformerBlock)]:
        attn = block.attn2
        wrapped = AttentionWithEraser(attn, rank).to(device=attn.to_out[0].weight.device,
                                                     dtype=attn.to_out[0].weight.dtype)
        torch.nn.init.zeros_(wrapped.adapter.up.weight)
        torch.nn.init.zeros_(wrapped.adapter.up.bias)
        block.attn2 = wrapped
        prefix = prefix_name(name)
        if any(p == prefix for p, _ in out):
            raise ValueError(f"two transformer blocks share the Receler prefix {prefix!r}")
        out.append((prefix, wrapped.adapter))
    if not out:
        raise ValueError("the UNet has no BasicTransformerBlock (cross-attention) to put erasers on")
    return out


def receler(
    base,
    concept: str | Sequence[str],
    out: Path,
    *,
    rank: int = 128,
    steps: int = 500,
    lr: float = 3e-4,
    eta: float = 1.0,
    reg_weight: float = 0.1,
    mask_threshold: float = 0.1,
    adv_tokens: int = 2,
    adv_steps: int = 3,
    adv_lr: float = 1e-3,
    adv_every: int = 1,
    adv_weight: float = 1.0,
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
    """Train Receler erasers for ``concept`` on ``base``; write the eraser file; return its path.

    ``adv_tokens=0`` (or ``adv_steps=0``) turns adversarial prompt learning off, ``reg_weight=0`` the
    regularisation.  HUB's settings: 500 steps, lr 3e-4, rank 128.  ``direction``: for a training prompt that puts
    the keyword in context, erase the keyword's own direction (``"keyword"``, ESD's ``erase_from``) or its
    contribution inside the prompt (``"context"``, against the prompt with the keyword removed; ESD's option of the
    same name, :mod:`hubkit.unlearn.esd`, not in either paper).  Deterministic for a seed, device and torch thread
    count.
    """
    from tqdm.auto import tqdm

    from hubkit.unlearn.advunlearn import encode_ids, plain_ids, random_token_embeddings, soft_prompt_ids
    from hubkit.unlearn.esd import _ddim_scheduler, _keyword_in, _sample_until, check_direction, esd_target
    from hubkit.unlearn.mace import (
        RecordingProcessor, attn2_modules, attn2_processors, concept_maps, threshold_masks, token_positions,
    )

    from hubkit.attacks.ringabell import strip_concept

    if xt not in ("sample", "noise"):
        raise ValueError(f"xt must be 'sample' or 'noise', not {xt!r}")
    check_direction(direction)
    spec = resolve_concept(concept, name=name)
    b = load_base(base, device=device)
    pipe = b.pipe
    prompts = expand_templates(spec.keywords, templates)
    keywords = [_keyword_in(p, spec.keywords) for p in prompts]
    positions = [token_positions(pipe, p, k) for p, k in zip(prompts, keywords)]
    sample_steps = int(sample_steps or b.steps)
    lat_h, lat_w = b.height // pipe.vae_scale_factor, b.width // pipe.vae_scale_factor
    channels = pipe.unet.config.in_channels
    adversarial = adv_tokens > 0 and adv_steps > 0 and adv_weight > 0

    rng, gen = seed_all(seed, "cpu")

    def randn(shape):
        return torch.randn(shape, generator=gen).to(device)

    with Measure(device) as m:
        original = pipe.unet                              # frozen ε*
        unet = copy.deepcopy(original)
        unet.requires_grad_(False)
        erasers = add_erasers(unet, rank)                 # ε_E: the original plus erasers
        params = [p for _, a in erasers for p in a.parameters()]
        for p in params:
            p.requires_grad_(True)
        optimizer = torch.optim.Adam(params, lr=lr)
        outputs: list[torch.Tensor] = []
        hooks = [a.register_forward_hook(lambda _m, _i, o: outputs.append(o)) for _, a in erasers]

        tok, te = pipe.tokenizer, pipe.text_encoder
        with torch.no_grad():
            emb_c = encode_ids(te, plain_ids(tok, prompts))
            emb_kw = encode_ids(te, plain_ids(tok, keywords))
            emb_0 = encode_ids(te, plain_ids(tok, [""]))
            emb_rest = (encode_ids(te, plain_ids(tok, [strip_concept(p, [k]) for p, k in zip(prompts, keywords)]))
                        if direction == "context" else None)
        adv_ids = [soft_prompt_ids(tok, p, adv_tokens, "suffix") for p in prompts] if adversarial else []
        adv = [random_token_embeddings(te, adv_tokens, gen) for _ in prompts] if adversarial else []
        adv_opt = [torch.optim.Adam([a.requires_grad_(True)], lr=adv_lr) for a in adv]
        sched = _ddim_scheduler(pipe)
        sched.set_timesteps(sample_steps, device=device)
        pool = None
        if xt == "noise":
            pool = []
            for i in range(len(prompts)):
                x = randn((pool_size, channels, lat_h, lat_w)) * sched.init_noise_sigma
                pool.append(_sample_until(original, sched, x, sample_steps, emb_c[i:i + 1].expand(pool_size, -1, -1),
                                          emb_0.expand(pool_size, -1, -1), sample_guidance))
        base_store: list[torch.Tensor] = []
        orig_mods = attn2_modules(original)
        recorders = [RecordingProcessor(base_store) for _ in orig_mods]

        losses, reg_losses, adv_losses = [], [], []
        bar = tqdm(range(steps), desc=f"Receler {spec.name}", disable=not progress, leave=False)
        try:
            for step in bar:
                i = rng.randrange(len(prompts))
                cond = emb_c[i:i + 1].expand(batch_size, -1, -1)
                uncond = emb_0.expand(batch_size, -1, -1)
                with torch.no_grad():
                    if pool is None:
                        k = rng.randrange(sample_steps)
                        x = randn((batch_size, channels, lat_h, lat_w)) * sched.init_noise_sigma
                        unet.eval()
                        x = _sample_until(unet, sched, x, k, cond, uncond, sample_guidance)
                        outputs.clear()
                        t = sched.timesteps[k]
                    else:
                        idx = torch.randint(0, pool_size, (batch_size,), generator=gen)
                        t = torch.randint(0, sched.config.num_train_timesteps, (), generator=gen)
                        x = sched.add_noise(pool[i][idx.to(device)], randn((batch_size, channels, lat_h, lat_w)),
                                            t.reshape(1).to(device))
                        t = t.to(device)
                    base_store.clear()
                    with attn2_processors(orig_mods, recorders):
                        e_c = original(x, t, encoder_hidden_states=cond).sample
                    masks = threshold_masks(concept_maps(base_store, positions[i]), mask_threshold)
                    base_store.clear()
                    target = esd_target(
                        lambda c: original(x, t, encoder_hidden_states=c.expand(batch_size, -1, -1)).sample, e_c,
                        eta=eta, in_context=prompts[i] != keywords[i], direction=direction, uncond=uncond,
                        keyword=emb_kw[i:i + 1], rest=emb_rest[i:i + 1] if emb_rest is not None else None)
                # adversarial prompt learning: soft tokens after the concept that bring the concept back
                if adversarial and step % max(1, adv_every) == 0:
                    ids_a, pos_a = adv_ids[i]
                    for _a in range(adv_steps):
                        adv_opt[i].zero_grad(set_to_none=True)
                        cond_a = encode_ids(te, ids_a, adv[i], pos_a).expand(batch_size, -1, -1)
                        outputs.clear()
                        a_loss = F.mse_loss(unet(x, t, encoder_hidden_states=cond_a).sample, e_c)
                        a_loss.backward()
                        adv_opt[i].step()
                        adv_losses.append(float(a_loss.detach()))
                    for p in params:
                        p.grad = None
                # eraser update: erase on c (with the localisation regulariser) and on c ⊕ adv
                unet.train()
                optimizer.zero_grad(set_to_none=True)
                outputs.clear()
                loss = F.mse_loss(unet(x, t, encoder_hidden_states=cond).sample, target)
                total = loss
                if reg_weight:
                    if len(outputs) != len(masks):
                        raise RuntimeError(f"{len(outputs)} eraser outputs but {len(masks)} attention maps")
                    reg = torch.stack([(o * (1.0 - mk)[:, :, None]).pow(2).mean() for o, mk in zip(outputs, masks)])
                    reg = reg.mean()
                    total = total + reg_weight * reg
                    reg_losses.append(float(reg.detach()))
                if adversarial:
                    ids_a, pos_a = adv_ids[i]
                    with torch.no_grad():
                        cond_a = encode_ids(te, ids_a, adv[i].detach(), pos_a).expand(batch_size, -1, -1)
                    total = total + adv_weight * F.mse_loss(unet(x, t, encoder_hidden_states=cond_a).sample, target)
                total.backward()
                optimizer.step()
                outputs.clear()
                losses.append(float(loss.detach()))
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
        finally:
            for h in hooks:
                h.remove()
            bar.close()
        state = {prefix: {k: v.detach().to("cpu", torch.float32).clone() for k, v in a.state_dict().items()}
                 for prefix, a in erasers}

    def tail(xs):
        xs = xs[-max(1, len(xs) // 10):] if xs else [float("nan")]
        return round(sum(xs) / len(xs), 6)

    meta = base_metadata(
        "receler", spec, b, rank=rank, steps=steps, lr=lr, eta=eta, reg_weight=reg_weight,
        mask_threshold=mask_threshold, adv_tokens=adv_tokens if adversarial else 0, adv_steps=adv_steps,
        adv_lr=adv_lr, adv_every=adv_every, adv_weight=adv_weight, prompts=prompts, direction=direction,
        batch_size=batch_size,
        sample_steps=sample_steps, sample_guidance=sample_guidance, xt=xt, seed=seed, final_loss=tail(losses),
        final_reg_loss=tail(reg_losses), final_adv_loss=tail(adv_losses), adapters=len(state),
        train_seconds=round(m.seconds, 3), train_peak_mem_mb=round(m.peak_mem_mb, 1),
        format="receler", device=str(device), threads=torch.get_num_threads(),
    )
    if pool is not None:
        meta["pool_size"] = pool_size
    return write_erasers(Path(out), state, meta)


def write_erasers(out: Path, state: dict, meta: dict) -> Path:
    """Receler's ``{prefix: adapter state dict}`` pickle (bytes independent of the file name) plus metadata;
    returns the pickle's path."""
    from hubkit.atomic import write_bytes

    if out.suffix.lower() in _FILE_SUFFIXES:
        file, side = out, out.with_name(f"{out.stem}.hubkit.json")
        out.parent.mkdir(parents=True, exist_ok=True)
    else:
        out.mkdir(parents=True, exist_ok=True)
        file, side = out / ERASER_FILE, out / META_FILE
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes(file, buf.getvalue())
    atomic_write_json(side, meta)
    return file


# --------------------------------------------------------------------------------------------
# CLI: `hubkit unlearn receler`
# --------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    add_common_arguments(parser, out_help="eraser file (.pt) or folder (receler.pt + hubkit.json) to write")
    parser.add_argument("--rank", type=int, default=None, help="eraser rank (HUB: 128)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (HUB: 500)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (HUB: 3e-4)")
    parser.add_argument("--eta", type=float, default=None, help="negative guidance η")
    parser.add_argument("--reg-weight", type=float, default=None, help="concept-localised regularisation weight")
    parser.add_argument("--mask-threshold", type=float, default=None)
    parser.add_argument("--adv-tokens", type=int, default=None, help="adversarial soft tokens (0: off)")
    parser.add_argument("--adv-steps", type=int, default=None)
    parser.add_argument("--adv-lr", type=float, default=None)
    parser.add_argument("--adv-every", type=int, default=None)
    parser.add_argument("--adv-weight", type=float, default=None)
    parser.add_argument("--template", action="append", default=None,
                        help="training prompt template with {} (repeatable)")
    parser.add_argument("--direction", choices=("keyword", "context"), default=None,
                        help="in-context prompts: erase the keyword's direction alone (default) or its contribution "
                             "inside the prompt")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--sample-steps", type=int, default=None)
    parser.add_argument("--sample-guidance", type=float, default=None)
    parser.add_argument("--xt", choices=("sample", "noise"), default=None)
    parser.add_argument("--no-progress", action="store_true")


_CLI_OPTIONS = {"rank": "rank", "steps": "steps", "lr": "lr", "eta": "eta", "reg_weight": "reg_weight",
                "mask_threshold": "mask_threshold", "adv_tokens": "adv_tokens", "adv_steps": "adv_steps",
                "adv_lr": "adv_lr", "adv_every": "adv_every", "adv_weight": "adv_weight", "template": "templates",
                "batch_size": "batch_size", "sample_steps": "sample_steps", "sample_guidance": "sample_guidance",
                "xt": "xt", "direction": "direction"}


def run(args) -> int:
    set_threads(args.threads)
    out = receler(args.base, concept_arg(args), args.out, seed=args.seed, device=args.device, name=args.name,
                  progress=not args.no_progress, **cli_kwargs(args, "receler", _CLI_OPTIONS))
    print(out)
    return 0


UNLEARNING.register("receler", obj=UnlearningMethod(
    "receler", "Receler: lightweight erasers after every cross-attention, adversarially trained", receler,
    add_arguments, run))
