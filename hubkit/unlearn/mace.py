"""MACE — Mass Concept Erasure in Diffusion Models (Lu, Wang, Li, Liu, Kong; CVPR 2024), for any SD-1.x pipeline.

MACE erases one or many concepts by editing only the cross-attention key/value projections (``attn2.to_k``,
``attn2.to_v``) in three stages:

(a) **closed-form refinement** (MACE's "cfr", built on UCE's code): every ``W ∈ {to_k, to_v}`` is refined so that
    the concept's tokens *and the co-existing words after them* (which absorb the concept through CLIP's causal
    attention) map to the keys/values of an anchor, while preserved concepts keep theirs::

        min_W  s_e Σ_i ‖W c_i − W_old a_i‖² + s_p Σ_j ‖W p_j − W_old p_j‖² + λ ‖W − W_old‖²_F

    ``c_i``: the text-embedding rows of each erase prompt (``templates`` filled with a keyword) from the keyword's
    last token to the end of the sequence, aligned with the rows ``a_i`` of the same template filled with the
    ``anchor`` (UCE's "aligned" token mode, which MACE's code uses); ``p_j``: every row of the preserved prompts.
    Solved by :func:`hubkit.unlearn.uce.uce_edit` (``tokens="aligned"``).  Its change ``ΔW = W − W_old`` has rank
    at most the number of erase rows, so it is stored *exactly* as a low-rank (SVD) LoRA-compatible delta.
(b) **one LoRA per concept** on ``attn2.to_k``/``to_v`` of the refined model, trained with MACE's attention-map
    loss: images the base makes from the concept's prompts (a pool of ``pool_size`` latents per prompt, noised to a
    random timestep) are run through the refined UNet with the LoRA, and the cross-attention probabilities of the
    concept's tokens are pushed to zero, ``mean_layers ‖A_l[:, :, concept tokens] ⊙ M‖²``.
(c) **closed-form fusion** of the per-concept LoRAs (several keywords = several concepts): the fused delta
    ``ΔW`` minimises ``Σ_i ‖(ΔW − ΔW_i) E_iᵀ‖² + s_p ‖ΔW E_pᵀ‖² + λ ‖ΔW‖²`` (``E_i``: the embedding rows of concept
    i's prompts, ``E_p``: of the preserved prompts), i.e. ``ΔW = Σ_i ΔW_i E_iᵀE_i M⁻¹``, which is again exactly
    low-rank (``up_i``, ``down_i E_iᵀE_i M⁻¹``).  For one concept the single LoRA is used as is.

The checkpoint is MACE's attention-processor LoRA layout (diffusers ≤ 0.24 ``unet.save_attn_procs``, as MACE's
``lora/<concept>`` folders): ``OUT/pytorch_lora_weights.safetensors`` with keys
``<attn2 module>.processor.{to_k,to_v}_lora.{down,up}.weight`` (``down`` ``(r, in)``, ``up`` ``(out, r)``, scale 1),
plus ``OUT/hubkit.json``; ``--model OUT`` loads it with the ``attn-procs-lora`` format, which fuses
``W + up @ down``.  Each processor's LoRA concatenates stage (a)'s exact delta with stage (b)/(c)'s LoRA factors
(ranks padded with zeros to one rank for all modules), so the fused model is ``W_old + ΔW_cfr + ΔW_lora``.

Simplified with respect to the paper / official code (``Shilin-LU/MACE``):

* no Grounded-SAM segmentation: the attention-loss mask ``M`` is the whole image (``mask="none"``, default) or the
  base model's own cross-attention map of the concept tokens on the same ``x_t`` thresholded at
  ``mask_threshold`` (``mask="attention"``);
* the images of stage (b) are a small pool of base samples (DDIM, ``sample_steps``) instead of 8 × 512² SD images
  per concept, and the preservation sets of (a) and (c) are ``preserve`` (default: the world's neighbours) instead
  of MACE's large cache of MS-COCO / celebrity embeddings;
* the LoRA is a plain ``up @ down`` (rank ``rank``, scale 1) on ``to_k``/``to_v`` only; the attention loss leaves
  ``to_v``'s LoRA at zero, as in MACE.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import torch

from hubkit.unlearn.common import (
    META_FILE, Measure, add_common_arguments, atomic_write_json, base_metadata, cli_kwargs, concept_arg,
    encode_texts, load_base, resolve_concept, set_threads,
)
from hubkit.unlearn.finetune import seed_all
from hubkit.unlearn.registry import UNLEARNING, UnlearningMethod

LORA_FILE = "pytorch_lora_weights.safetensors"
MASKS = ("none", "attention")
PROJECTIONS = ("to_k", "to_v")


# --------------------------------------------------------------------------------------------
# cross-attention with recorded probabilities (shared with Receler)
# --------------------------------------------------------------------------------------------
def attn2_modules(unet) -> list[tuple[str, torch.nn.Module]]:
    """``(name, Attention)`` of every cross-attention (``...attn2``) of a diffusers UNet, in module order."""
    from diffusers.models.attention_processor import Attention

    found = [(n, m) for n, m in unet.named_modules() if n.endswith(".attn2") and isinstance(m, Attention)]
    if not found:
        raise ValueError("the UNet has no cross-attention modules (attn2)")
    return found


class RecordingProcessor:
    """Plain attention (diffusers' ``AttnProcessor`` math) that appends each call's probabilities
    ``[batch, heads, queries, keys]`` to ``store`` and adds LoRA deltas ``x @ downᵀ @ upᵀ`` to ``to_k``/``to_v``
    (``lora = {"to_k": (down, up), ...}``).  Not an ``nn.Module``: setting it leaves the UNet's state dict alone."""

    def __init__(self, store: list | None = None, lora: dict | None = None):
        self.store = store
        self.lora = lora or {}

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args,
                 **kwargs):
        if hidden_states.ndim != 3 or attn.group_norm is not None or attn.spatial_norm is not None:
            raise ValueError("RecordingProcessor handles SD-1.x cross-attention (3-d inputs, no group/spatial norm)")
        batch = hidden_states.shape[0]
        ctx = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            ctx = attn.norm_encoder_hidden_states(ctx)
        attention_mask = attn.prepare_attention_mask(attention_mask, ctx.shape[1], batch)
        query = attn.to_q(hidden_states)
        key = attn.to_k(ctx)
        value = attn.to_v(ctx)
        if "to_k" in self.lora:
            down, up = self.lora["to_k"]
            key = key + (ctx @ down.T) @ up.T
        if "to_v" in self.lora:
            down, up = self.lora["to_v"]
            value = value + (ctx @ down.T) @ up.T
        query, key, value = (attn.head_to_batch_dim(v) for v in (query, key, value))
        probs = attn.get_attention_scores(query, key, attention_mask)
        if self.store is not None:
            self.store.append(probs.view(batch, attn.heads, probs.shape[1], probs.shape[2]))
        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


@contextmanager
def attn2_processors(modules: Sequence[tuple[str, torch.nn.Module]], processors: Sequence):
    """Temporarily give each attention module its processor; the previous ones come back afterwards."""
    before = [m.processor for _, m in modules]
    try:
        for (_, m), p in zip(modules, processors):
            m.processor = p
        yield
    finally:
        for (_, m), p in zip(modules, before):
            m.processor = p


def token_positions(pipe, text: str, keyword: str | None) -> list[int]:
    """Positions of ``keyword``'s tokens inside ``text`` as the pipeline tokenises it (the whole text's words when
    the keyword is absent)."""
    from hubkit.unlearn.uce import _ids, _span

    s, e = _span(pipe, _ids(pipe, [text])[0], keyword)
    return list(range(s, e))


def concept_maps(store: Sequence[torch.Tensor], positions: Sequence[int]) -> list[torch.Tensor]:
    """Per recorded layer: the attention the concept's tokens get, ``[batch, queries]`` (mean over heads, sum over
    the tokens)."""
    return [p[..., list(positions)].sum(-1).mean(1) for p in store]


def threshold_masks(maps: Sequence[torch.Tensor], threshold: float) -> list[torch.Tensor]:
    """Binary masks ``[batch, queries]``: where a map, divided by its per-image maximum, exceeds ``threshold``."""
    out = []
    for a in maps:
        peak = a.amax(dim=1, keepdim=True).clamp_min(1e-12)
        out.append((a / peak > threshold).to(a.dtype))
    return out


# --------------------------------------------------------------------------------------------
# MACE
# --------------------------------------------------------------------------------------------
def _low_rank(delta: torch.Tensor, rank: int | None, rtol: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """``(up, down)`` with ``up @ down ≈ delta``: the SVD truncated at ``rank`` (default: the numerical rank)."""
    u, s, vh = torch.linalg.svd(delta.double(), full_matrices=False)
    keep = int((s > rtol * max(float(s[0]), 1e-30)).sum()) if s.numel() else 0
    if rank is not None:
        keep = min(keep, int(rank))
    keep = max(keep, 1)
    return (u[:, :keep] * s[:keep]).float(), vh[:keep].float()


def _pad_rank(up: torch.Tensor, down: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    extra = rank - up.shape[1]
    if extra <= 0:
        return up, down
    return (torch.cat([up, up.new_zeros(up.shape[0], extra)], 1),
            torch.cat([down, down.new_zeros(extra, down.shape[1])]))


def mace(
    base,
    concept: str | Sequence[str],
    out: Path,
    *,
    anchor: str = "",
    templates: Sequence[str] = ("{}",),
    preserve: Sequence[str] | None = None,
    preserve_templates: Sequence[str] | None = None,
    cfr: bool = True,
    erase_scale: float = 1.0,
    preserve_scale: float = 1.0,
    lamb: float = 0.1,
    cfr_rank: int | None = None,
    lora: bool = True,
    rank: int = 1,
    steps: int = 50,
    lr: float = 1e-4,
    batch_size: int = 1,
    pool_size: int = 4,
    sample_steps: int | None = None,
    sample_guidance: float | None = None,
    mask: str = "none",
    mask_threshold: float = 0.5,
    fuse_preserve_scale: float = 1.0,
    fuse_lamb: float = 0.1,
    seed: int = 0,
    device: str = "cpu",
    name: str | None = None,
    progress: bool = True,
) -> Path:
    """Erase ``concept`` (each keyword one concept) from ``base`` with MACE; write the LoRA folder ``out``; return it.

    ``anchor``: the text the concept maps to in stage (a), filled into each template in place of the keyword
    ("" = the template without the keyword).  ``preserve``: concepts kept (``None``: the world's neighbours;
    ``[]``: none).  ``cfr=False`` / ``lora=False`` skip stage (a) / (b).  ``steps`` are per concept.
    ``sample_guidance`` defaults to the base's guidance.  Deterministic for a seed, device and thread count.
    """
    from tqdm.auto import tqdm

    from hubkit.unlearn.esd import _ddim_scheduler, _sample_until
    from hubkit.unlearn.uce import projection_names, uce_edit

    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, not {mask!r}")
    if not (cfr or (lora and steps > 0)):
        raise ValueError("MACE needs at least one stage: cfr and/or lora (with steps > 0)")
    spec = resolve_concept(concept, name=name)
    b = load_base(base, device=device)
    pipe = b.pipe
    if preserve is None:
        preserve = list(spec.neighbours)
    preserve = [p for p in dict.fromkeys(preserve) if p and p not in spec.keywords]

    def fill(tpl: str, word: str) -> str:
        return " ".join(tpl.format(word).split()) if "{}" in tpl else tpl

    erase_texts, erase_kws, dests = [], [], []
    for kw in spec.keywords:
        for tpl in templates:
            erase_texts.append(fill(tpl, kw))
            erase_kws.append(kw)
            dests.append(fill(tpl, anchor))
    preserve_texts, preserve_kws = [], []
    for kw in preserve:
        for tpl in (preserve_templates or templates):
            text = fill(tpl, kw)
            if text not in preserve_texts and text not in erase_texts:
                preserve_texts.append(text)
                preserve_kws.append(kw)
    sample_steps = int(sample_steps or b.steps)
    guidance = float(b.guidance if sample_guidance is None else sample_guidance)
    lat_h, lat_w = b.height // pipe.vae_scale_factor, b.width // pipe.vae_scale_factor
    channels = pipe.unet.config.in_channels

    rng, gen = seed_all(seed, "cpu")

    def randn(shape):
        return torch.randn(shape, generator=gen).to(device)

    factors: dict[tuple[str, str], list[tuple[torch.Tensor, torch.Tensor]]] = {}
    losses: dict[str, float] = {}
    with Measure(device) as m:
        modules = attn2_modules(pipe.unet)
        names = [n for n, _ in modules]
        assert set(projection_names(pipe.unet)) == {f"{n}.{p}" for n in names for p in PROJECTIONS}
        # ---- (a) closed-form refinement
        cfr_ranks = []
        if cfr:
            edited = uce_edit(pipe, erase_texts, dests, preserve_texts, erase_keywords=erase_kws,
                              preserve_keywords=preserve_kws, erase_scale=erase_scale, preserve_scale=preserve_scale,
                              lamb=lamb, tokens="aligned", with_to_k=True)
            for n, mod in modules:
                for p in PROJECTIONS:
                    w_old = getattr(mod, p).weight
                    up, down = _low_rank(edited[f"{n}.{p}.weight"].double() - w_old.double(), cfr_rank)
                    factors.setdefault((n, p), []).append((up.to(device), down.to(device)))
                    cfr_ranks.append(up.shape[1])
        # the refined model that stage (b) trains on
        unet = copy.deepcopy(pipe.unet)
        ref_mods = attn2_modules(unet)
        with torch.no_grad():
            for n, mod in ref_mods:
                for p in PROJECTIONS:
                    for up, down in factors.get((n, p), []):
                        getattr(mod, p).weight += up @ down
        # ---- (b) one LoRA per concept, attention-map loss
        concept_loras: list[dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]]] = []
        concept_rows: list[torch.Tensor] = []
        if lora and steps > 0:
            sched = _ddim_scheduler(pipe)
            sched.set_timesteps(sample_steps, device=device)
            emb_0 = encode_texts(pipe, [""])
            for kw in spec.keywords:
                texts = [t for t, k in zip(erase_texts, erase_kws) if k == kw]
                embs = encode_texts(pipe, texts)
                positions = [token_positions(pipe, t, kw) for t in texts]
                concept_rows.append(embs.reshape(-1, embs.shape[-1]))
                pool = []
                for i in range(len(texts)):
                    x = randn((pool_size, channels, lat_h, lat_w)) * sched.init_noise_sigma
                    pool.append(_sample_until(pipe.unet, sched, x, sample_steps,
                                              embs[i:i + 1].expand(pool_size, -1, -1),
                                              emb_0.expand(pool_size, -1, -1), guidance))
                params: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
                for n, mod in ref_mods:
                    for p in PROJECTIONS:
                        lin = getattr(mod, p)
                        down = (torch.randn((rank, lin.in_features), generator=gen) / rank).to(device)
                        params[(n, p)] = (down.requires_grad_(True),
                                          torch.zeros((lin.out_features, rank), device=device, requires_grad=True))
                optimizer = torch.optim.Adam([t for pair in params.values() for t in pair], lr=lr)
                store: list[torch.Tensor] = []
                base_store: list[torch.Tensor] = []
                procs = [RecordingProcessor(store, {p: params[(n, p)] for p in PROJECTIONS}) for n, _ in ref_mods]
                base_procs = [RecordingProcessor(base_store) for _ in ref_mods]
                kw_losses = []
                bar = tqdm(range(steps), desc=f"MACE {kw}", disable=not progress, leave=False)
                for _ in bar:
                    i = rng.randrange(len(texts))
                    idx = torch.randint(0, pool_size, (batch_size,), generator=gen)
                    t = torch.randint(0, sched.config.num_train_timesteps, (), generator=gen)
                    x = sched.add_noise(pool[i][idx.to(device)], randn((batch_size, channels, lat_h, lat_w)),
                                        t.reshape(1).to(device))
                    t = t.to(device)
                    cond = embs[i:i + 1].expand(batch_size, -1, -1)
                    masks = None
                    if mask == "attention":
                        base_store.clear()
                        with torch.no_grad(), attn2_processors(attn2_modules(pipe.unet), base_procs):
                            pipe.unet(x, t, encoder_hidden_states=cond)
                        masks = threshold_masks(concept_maps(base_store, positions[i]), mask_threshold)
                    store.clear()
                    optimizer.zero_grad(set_to_none=True)
                    with attn2_processors(ref_mods, procs):
                        unet(x, t, encoder_hidden_states=cond)
                    terms = []
                    for layer, probs in enumerate(store):
                        a = probs[..., positions[i]]                                   # [B, heads, HW, n_tok]
                        if masks is not None:
                            a = a * masks[layer][:, None, :, None]
                        terms.append(a.pow(2).sum(-1).mean())
                    loss = torch.stack(terms).mean()
                    loss.backward()
                    optimizer.step()
                    kw_losses.append(float(loss.detach()))
                    bar.set_postfix(loss=f"{kw_losses[-1]:.5f}")
                bar.close()
                store.clear()
                base_store.clear()
                tail = kw_losses[-max(1, len(kw_losses) // 10):]
                losses[kw] = round(sum(tail) / len(tail), 8)
                concept_loras.append({k: (d.detach(), u.detach()) for k, (d, u) in params.items()})
        # ---- (c) closed-form fusion of the per-concept LoRAs
        if len(concept_loras) == 1:
            for key, (down, up) in concept_loras[0].items():
                factors.setdefault(key, []).append((up, down))
        elif concept_loras:
            keep_rows = encode_texts(pipe, preserve_texts).reshape(-1, concept_rows[0].shape[-1]).double() \
                if preserve_texts else None
            grams = [r.double().T @ r.double() for r in concept_rows]
            dim = grams[0].shape[0]
            mat = sum(grams) + fuse_lamb * torch.eye(dim, dtype=torch.float64, device=grams[0].device)
            if keep_rows is not None:
                mat = mat + fuse_preserve_scale * keep_rows.T @ keep_rows
            for key in concept_loras[0]:
                for gram, lor in zip(grams, concept_loras):
                    down, up = lor[key]
                    fused_down = torch.linalg.solve(mat, (down.double() @ gram).T).T   # down G M⁻¹ (M symmetric)
                    factors.setdefault(key, []).append((up, fused_down.float()))
        # ---- the attention-processor LoRA layout
        total = {k: sum(u.shape[1] for u, _ in v) for k, v in factors.items()}
        lora_rank = max(total.values())
        tensors: dict[str, torch.Tensor] = {}
        for (n, p), parts in sorted(factors.items()):
            up = torch.cat([u for u, _ in parts], 1)
            down = torch.cat([d for _, d in parts], 0)
            up, down = _pad_rank(up, down, lora_rank)
            tensors[f"{n}.processor.{p}_lora.down.weight"] = down.detach().to("cpu", torch.float32).contiguous()
            tensors[f"{n}.processor.{p}_lora.up.weight"] = up.detach().to("cpu", torch.float32).contiguous()

    meta = base_metadata(
        "mace", spec, b, anchor=anchor, templates=list(templates), erase_texts=erase_texts, destinations=dests,
        preserve=preserve_texts, cfr=cfr, erase_scale=erase_scale, preserve_scale=preserve_scale, lamb=lamb,
        cfr_rank=max(cfr_ranks) if cfr_ranks else 0, lora=lora, rank=rank, steps=steps if lora else 0, lr=lr,
        batch_size=batch_size, pool_size=pool_size, sample_steps=sample_steps, sample_guidance=guidance, mask=mask,
        mask_threshold=mask_threshold, fuse_preserve_scale=fuse_preserve_scale, fuse_lamb=fuse_lamb,
        fused=len(concept_loras) > 1, lora_rank=lora_rank, final_loss=losses, seed=seed,
        train_seconds=round(m.seconds, 3), train_peak_mem_mb=round(m.peak_mem_mb, 1),
        format="attn-procs-lora", device=str(device), threads=torch.get_num_threads(),
    )
    return write_attn_procs_lora(Path(out), tensors, meta)


def write_attn_procs_lora(out: Path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """``out/pytorch_lora_weights.safetensors`` (header: ``{"format": "pt"}`` only, as diffusers wrote it; the
    bytes depend on the weights alone) and ``out/hubkit.json``."""
    from safetensors.torch import save

    from hubkit.atomic import write_bytes

    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / LORA_FILE, save(dict(sorted(tensors.items())), metadata={"format": "pt"}))
    atomic_write_json(out / META_FILE, meta)
    return out


# --------------------------------------------------------------------------------------------
# CLI: `hubkit unlearn mace`
# --------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    add_common_arguments(parser, out_help="LoRA folder to write (pytorch_lora_weights.safetensors + hubkit.json)")
    parser.add_argument("--anchor", default=None,
                        help='text the concept is mapped to in the closed-form stage ("" default)')
    parser.add_argument("--template", action="append", default=None, help="prompt template with {} (repeatable)")
    parser.add_argument("--preserve", action="append", default=None, help="concept to preserve (repeatable)")
    parser.add_argument("--no-preserve", action="store_true", help="preserve nothing")
    parser.add_argument("--no-cfr", action="store_true", help="skip the closed-form refinement (stage a)")
    parser.add_argument("--no-lora", action="store_true", help="skip the LoRA training (stage b)")
    parser.add_argument("--erase-scale", type=float, default=None)
    parser.add_argument("--preserve-scale", type=float, default=None)
    parser.add_argument("--lamb", type=float, default=None, help="λ of the closed-form refinement")
    parser.add_argument("--rank", type=int, default=None, help="LoRA rank per concept")
    parser.add_argument("--steps", type=int, default=None, help="LoRA training steps per concept (paper: 50)")
    parser.add_argument("--lr", type=float, default=None, help="LoRA learning rate (paper: 1e-4)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--pool-size", type=int, default=None, help="base samples per concept prompt")
    parser.add_argument("--sample-steps", type=int, default=None)
    parser.add_argument("--mask", choices=MASKS, default=None, help="attention-loss mask (MACE: Grounded-SAM)")
    parser.add_argument("--no-progress", action="store_true")


_CLI_OPTIONS = {"anchor": "anchor", "template": "templates", "preserve": "preserve", "erase_scale": "erase_scale",
                "preserve_scale": "preserve_scale", "lamb": "lamb", "rank": "rank", "steps": "steps", "lr": "lr",
                "batch_size": "batch_size", "pool_size": "pool_size", "sample_steps": "sample_steps", "mask": "mask"}


def run(args) -> int:
    set_threads(args.threads)
    kwargs = cli_kwargs(args, "mace", _CLI_OPTIONS)
    if args.no_preserve:
        kwargs["preserve"] = []
    if args.no_cfr:
        kwargs["cfr"] = False
    if args.no_lora:
        kwargs["lora"] = False
    out = mace(args.base, concept_arg(args), args.out, seed=args.seed, device=args.device, name=args.name,
               progress=not args.no_progress, **kwargs)
    print(out)
    return 0


UNLEARNING.register("mace", obj=UnlearningMethod(
    "mace", "MACE: closed-form refinement + attention-suppressing LoRAs on the cross-attention keys/values", mace,
    add_arguments, run))
