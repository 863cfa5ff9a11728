"""UCE — Unified Concept Editing (Gandikota et al., WACV 2024), for any SD-1.x pipeline.

A closed-form edit of every cross-attention key/value projection ``W`` (``attn2.to_k``, ``attn2.to_v``):
with text-embedding rows ``c_i`` of the concept(s) to erase, their destination outputs ``v*_i`` (``W_old``
applied to the destination's embedding: the empty prompt by default, or an anchor such as "a painting"),
and rows ``c_j`` of concepts to preserve (destination: their own ``W_old c_j``)::

    W = (λ W_old + s_e Σ_i v*_i c_iᵀ + s_p Σ_j W_old c_j c_jᵀ) (λ I + s_e Σ_i c_i c_iᵀ + s_p Σ_j c_j c_jᵀ)⁻¹

which minimises ``s_e Σ‖W c_i − v*_i‖² + s_p Σ‖W c_j − W_old c_j‖² + λ‖W − W_old‖²_F``.

Which token rows enter the sums (``tokens``):

* ``"last"`` (the 2024 UCE code): the last real token of each text (for the empty prompt: its start token);
* ``"aligned"`` (the 2023 UCE code): from each erase text's last real token to the end of the sequence
  (end-of-text and padding tokens included), aligned with the destination's tokens from *its* last real token;
  preserved texts use all 77 rows.

Erase texts are ``templates`` filled with each keyword (default: the bare keyword).  Preserved concepts
default to the concept's micro-world neighbours (pass ``preserve=[]`` for none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from hubkit.microworld.unlearn.common import (
    Measure, add_common_arguments, base_metadata, concept_arg, expand_templates, load_base, resolve_concept,
    set_threads, write_unet_checkpoint,
)

TOKEN_MODES = ("last", "aligned")


def projection_names(unet: torch.nn.Module, with_to_k: bool = True) -> list[str]:
    """Module names of the cross-attention projections UCE edits (``...attn2.to_k`` / ``...attn2.to_v``)."""
    ends = (".attn2.to_k", ".attn2.to_v") if with_to_k else (".attn2.to_v",)
    names = [n for n, m in unet.named_modules() if n.endswith(ends) and isinstance(m, torch.nn.Linear)]
    if not names:
        raise ValueError("the UNet has no cross-attention projections (attn2.to_k / attn2.to_v)")
    return names


@torch.no_grad()
def _embed(pipe, texts: Sequence[str]) -> tuple[torch.Tensor, list[int]]:
    """Hidden states ``[N, L, D]`` and each text's last real token index (attention-mask length − 2)."""
    tok = pipe.tokenizer(list(texts), padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt")
    emb, _ = pipe.encode_prompt(list(texts), pipe.unet.device, 1, False)
    last = [int(m.sum().item()) - 2 for m in tok.attention_mask]
    return emb, last


def _erase_rows(emb_e, last_e: int, emb_g, last_g: int, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (c, destination embedding) for one erase text and its destination text."""
    if mode == "last":
        return emb_e[last_e:last_e + 1], emb_g[last_g:last_g + 1]
    length = emb_e.shape[0]
    far = max(last_e, last_g)
    c = emb_e[last_e:length - max(0, far - last_e)]
    d = emb_g[last_g:length - max(0, far - last_g)]
    return c, d


def _preserve_rows(emb_p, last_p: int, mode: str) -> torch.Tensor:
    return emb_p[last_p:last_p + 1] if mode == "last" else emb_p


@torch.no_grad()
def uce_edit(pipe, erase_texts: Sequence[str], destinations: Sequence[str], preserve_texts: Sequence[str], *,
             erase_scale: float = 1.0, preserve_scale: float = 1.0, lamb: float = 0.5, tokens: str = "last",
             with_to_k: bool = True) -> dict[str, torch.Tensor]:
    """The edited ``attn2.to_k/to_v`` weights of ``pipe.unet``; ``pipe`` is not modified."""
    if tokens not in TOKEN_MODES:
        raise ValueError(f"tokens must be one of {TOKEN_MODES}, not {tokens!r}")
    if len(destinations) != len(erase_texts):
        raise ValueError("one destination per erase text")
    texts = list(dict.fromkeys(list(erase_texts) + list(destinations) + list(preserve_texts)))
    emb, last = _embed(pipe, texts)
    emb = emb.double()
    row = {t: i for i, t in enumerate(texts)}

    erase_c, erase_d = [], []
    for e, g in zip(erase_texts, destinations):
        c, d = _erase_rows(emb[row[e]], last[row[e]], emb[row[g]], last[row[g]], tokens)
        erase_c.append(c)
        erase_d.append(d)
    C_e = torch.cat(erase_c)                                   # [n_e, D]
    D_e = torch.cat(erase_d)                                   # [n_e, D] destination embeddings
    C_p = (torch.cat([_preserve_rows(emb[row[p]], last[row[p]], tokens) for p in preserve_texts])
           if preserve_texts else C_e.new_zeros((0, C_e.shape[1])))

    modules = dict(pipe.unet.named_modules())
    edited: dict[str, torch.Tensor] = {}
    for name in projection_names(pipe.unet, with_to_k):
        lin: torch.nn.Linear = modules[name]
        w_old = lin.weight.double()                            # [out, D]
        v_star = D_e @ w_old.T                                 # destination outputs, bias-free part
        v_keep = C_p @ w_old.T
        eye = torch.eye(w_old.shape[1], dtype=torch.float64, device=w_old.device)
        mat1 = lamb * w_old + erase_scale * v_star.T @ C_e + preserve_scale * v_keep.T @ C_p
        mat2 = lamb * eye + erase_scale * C_e.T @ C_e + preserve_scale * C_p.T @ C_p
        w_new = torch.linalg.solve(mat2, mat1.T).T            # mat1 @ mat2⁻¹ (mat2 is symmetric)
        # a bias (SD has none here) is shared by W c and W_old d, so only W moves
        edited[f"{name}.weight"] = w_new.to(lin.weight.dtype)
    return edited


def uce(
    base,
    concept: str | Sequence[str],
    out: Path,
    *,
    destination: str = "",
    preserve: Sequence[str] | None = None,
    erase_scale: float = 1.0,
    preserve_scale: float = 1.0,
    lamb: float = 0.5,
    tokens: str = "last",
    templates: Sequence[str] = ("{}",),
    preserve_templates: Sequence[str] | None = None,
    with_to_k: bool = True,
    seed: int = 0,
    keys: str = "changed",
    device: str = "cpu",
    name: str | None = None,
) -> Path:
    """Edit ``base`` to erase ``concept`` toward ``destination``; write the checkpoint to ``out``; return ``out``.

    ``destination`` is a text ("" = the empty prompt; "{}" in it is filled with the keyword).  ``preserve``:
    concept names/texts to keep (``None``: the micro-world neighbours of ``concept``).  ``preserve_templates``
    default to ``templates``.  UCE has no randomness; ``seed`` is recorded only.
    """
    if keys not in ("changed", "all"):
        raise ValueError(f"keys must be 'changed' or 'all', not {keys!r}")
    spec = resolve_concept(concept, name=name)
    b = load_base(base, device=device)
    pipe = b.pipe
    if preserve is None:
        preserve = list(spec.neighbours)
    preserve = [p for p in dict.fromkeys(preserve) if p not in spec.keywords]
    with Measure(device) as m:
        erase_texts, dests = [], []
        for kw in spec.keywords:
            for tpl in templates:
                erase_texts.append(tpl.format(kw) if "{}" in tpl else tpl)
                dests.append(destination.format(kw) if "{}" in destination else destination)
        preserve_texts = expand_templates(preserve, tuple(preserve_templates or templates))
        edited = uce_edit(pipe, erase_texts, dests, preserve_texts, erase_scale=erase_scale,
                          preserve_scale=preserve_scale, lamb=lamb, tokens=tokens, with_to_k=with_to_k)
        if keys == "all":
            state = dict(pipe.unet.state_dict())
            state.update(edited)
        else:
            state = edited
    meta = base_metadata(
        "uce", spec, b, destination=destination, preserve=list(preserve), erase_scale=erase_scale,
        preserve_scale=preserve_scale, lamb=lamb, tokens=tokens, templates=list(templates),
        with_to_k=with_to_k, seed=seed, steps=0, keys=keys, erase_texts=erase_texts,
        train_seconds=round(m.seconds, 3), train_peak_mem_mb=round(m.peak_mem_mb, 1),
        format="unet-state-dict", device=str(device),
    )
    write_unet_checkpoint(Path(out), state, meta)
    return Path(out)


# --------------------------------------------------------------------------------------------
# CLI: `hubkit unlearn uce`
# --------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    add_common_arguments(parser, out_help="checkpoint folder to write (unet.safetensors + hubkit.json)")
    parser.add_argument("--destination", default="", help='text the concept is mapped to ("" = empty prompt)')
    parser.add_argument("--preserve", action="append", default=None,
                        help="concept to preserve (repeatable; default: the micro-world neighbours)")
    parser.add_argument("--no-preserve", action="store_true", help="preserve nothing")
    parser.add_argument("--erase-scale", type=float, default=1.0)
    parser.add_argument("--preserve-scale", type=float, default=1.0)
    parser.add_argument("--lamb", type=float, default=0.5, help="λ, the pull toward the original weights")
    parser.add_argument("--tokens", choices=TOKEN_MODES, default="last")
    parser.add_argument("--template", action="append", default=None, help="erase-text template with {} (repeatable)")
    parser.add_argument("--keys", choices=("changed", "all"), default="changed")


def run(args) -> Path:
    set_threads(args.threads)
    preserve = [] if args.no_preserve else args.preserve
    return uce(args.base, concept_arg(args), args.out, destination=args.destination, preserve=preserve,
               erase_scale=args.erase_scale, preserve_scale=args.preserve_scale, lamb=args.lamb,
               tokens=args.tokens, templates=tuple(args.template or ("{}",)), seed=args.seed, keys=args.keys,
               device=args.device, name=args.name)
