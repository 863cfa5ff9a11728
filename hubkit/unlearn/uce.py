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
* ``"concept"``: every token of the keyword inside each (template) text, each mapped to the destination's last
  real token (for the empty prompt: its start token); preserved texts contribute their keyword's tokens.
  With ``templates`` this covers the contexts a keyword appears in.

Erase texts are ``templates`` filled with each keyword (default: the bare keyword).  Preserved concepts
default to the concept's neighbours in its world, ``hubkit.worlds`` (pass ``preserve=[]`` for none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from hubkit.unlearn.common import (
    Measure, add_common_arguments, base_metadata, cli_kwargs, concept_arg, load_base, resolve_concept,
    set_threads, write_unet_checkpoint,
)
from hubkit.unlearn.registry import UNLEARNING, UnlearningMethod

TOKEN_MODES = ("last", "aligned", "concept")


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
    emb, _ = pipe.encode_prompt(list(texts), pipe.unet.device, 1, False)
    return emb, [len(ids) - 2 for ids in _ids(pipe, texts)]


def _ids(pipe, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text with start/end tokens, truncated like the pipeline (no padding)."""
    tok = pipe.tokenizer(list(texts), max_length=pipe.tokenizer.model_max_length, truncation=True)
    return [list(ids) for ids in tok.input_ids]


def _span(pipe, text_ids: list[int], keyword: str | None) -> tuple[int, int]:
    """Token positions ``[s, e)`` of ``keyword`` in a text (its last occurrence); the whole text without
    start/end tokens when ``keyword`` is None or absent."""
    if keyword:
        kw = list(pipe.tokenizer(keyword, add_special_tokens=False).input_ids)
        for s in range(len(text_ids) - len(kw), 0, -1):
            if text_ids[s:s + len(kw)] == kw:
                return s, s + len(kw)
    return 1, max(2, len(text_ids) - 1)


def _rows_erase(emb_e, last_e, emb_g, last_g, span, mode) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (c, destination embedding) for one erase text and its destination text."""
    if mode == "last":
        return emb_e[last_e:last_e + 1], emb_g[last_g:last_g + 1]
    if mode == "concept":
        c = emb_e[span[0]:span[1]]
        return c, emb_g[last_g:last_g + 1].expand(c.shape[0], -1)
    length = emb_e.shape[0]
    far = max(last_e, last_g)
    c = emb_e[last_e:length - max(0, far - last_e)]
    d = emb_g[last_g:length - max(0, far - last_g)]
    return c, d


def _rows_preserve(emb_p, last_p, span, mode) -> torch.Tensor:
    if mode == "last":
        return emb_p[last_p:last_p + 1]
    if mode == "concept":
        return emb_p[span[0]:span[1]]
    return emb_p


@torch.no_grad()
def uce_edit(pipe, erase_texts: Sequence[str], destinations: Sequence[str], preserve_texts: Sequence[str], *,
             erase_keywords: Sequence[str | None] | None = None,
             preserve_keywords: Sequence[str | None] | None = None,
             erase_scale: float = 1.0, preserve_scale: float = 1.0, lamb: float = 0.5, tokens: str = "last",
             with_to_k: bool = True) -> dict[str, torch.Tensor]:
    """The edited ``attn2.to_k/to_v`` weights of ``pipe.unet``; ``pipe`` is not modified.

    ``erase_keywords`` / ``preserve_keywords`` (parallel to the texts) locate the concept's tokens inside each
    text for ``tokens="concept"``; without them the whole text counts.
    """
    if tokens not in TOKEN_MODES:
        raise ValueError(f"tokens must be one of {TOKEN_MODES}, not {tokens!r}")
    if len(destinations) != len(erase_texts):
        raise ValueError("one destination per erase text")
    erase_keywords = list(erase_keywords or [None] * len(erase_texts))
    preserve_keywords = list(preserve_keywords or [None] * len(preserve_texts))
    texts = list(dict.fromkeys(list(erase_texts) + list(destinations) + list(preserve_texts)))
    emb, last = _embed(pipe, texts)
    emb = emb.double()
    ids = _ids(pipe, texts)
    row = {t: i for i, t in enumerate(texts)}

    erase_c, erase_d = [], []
    for e, g, kw in zip(erase_texts, destinations, erase_keywords):
        i, j = row[e], row[g]
        c, d = _rows_erase(emb[i], last[i], emb[j], last[j], _span(pipe, ids[i], kw), tokens)
        erase_c.append(c)
        erase_d.append(d)
    C_e = torch.cat(erase_c)                                   # [n_e, D]
    D_e = torch.cat(erase_d)                                   # [n_e, D] destination embeddings
    keep = [_rows_preserve(emb[row[p]], last[row[p]], _span(pipe, ids[row[p]], kw), tokens)
            for p, kw in zip(preserve_texts, preserve_keywords)]
    C_p = torch.cat(keep) if keep else C_e.new_zeros((0, C_e.shape[1]))

    modules = dict(pipe.unet.named_modules())
    edited: dict[str, torch.Tensor] = {}
    for name in projection_names(pipe.unet, with_to_k):
        lin: torch.nn.Linear = modules[name]
        w_old = lin.weight.double()                            # [out, D]
        v_star = D_e @ w_old.T                                 # destination outputs
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
    concept names/texts to keep (``None``: the world's neighbours of ``concept``).  ``preserve_templates``
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
        erase_texts, erase_kws, dests = [], [], []
        for kw in spec.keywords:
            for tpl in templates:
                erase_texts.append(tpl.format(kw) if "{}" in tpl else tpl)
                erase_kws.append(kw)
                dests.append(destination.format(kw) if "{}" in destination else destination)
        preserve_texts, preserve_kws = [], []
        for kw in preserve:
            for tpl in (preserve_templates or templates):
                text = tpl.format(kw) if "{}" in tpl else tpl
                if text not in preserve_texts:
                    preserve_texts.append(text)
                    preserve_kws.append(kw)
        edited = uce_edit(pipe, erase_texts, dests, preserve_texts, erase_keywords=erase_kws,
                          preserve_keywords=preserve_kws, erase_scale=erase_scale, preserve_scale=preserve_scale,
                          lamb=lamb, tokens=tokens, with_to_k=with_to_k)
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
    parser.add_argument("--destination", default=None, help='text the concept is mapped to ("" = empty prompt, default)')
    parser.add_argument("--preserve", action="append", default=None,
                        help="concept to preserve (repeatable; default: the concept's neighbours in its world)")
    parser.add_argument("--no-preserve", action="store_true", help="preserve nothing")
    parser.add_argument("--erase-scale", type=float, default=None)
    parser.add_argument("--preserve-scale", type=float, default=None)
    parser.add_argument("--lamb", type=float, default=None, help="λ, the pull toward the original weights")
    parser.add_argument("--tokens", choices=TOKEN_MODES, default=None)
    parser.add_argument("--template", action="append", default=None, help="erase-text template with {} (repeatable)")
    parser.add_argument("--keys", choices=("changed", "all"), default=None)


_CLI_OPTIONS = {"destination": "destination", "preserve": "preserve", "erase_scale": "erase_scale",
                "preserve_scale": "preserve_scale", "lamb": "lamb", "tokens": "tokens", "template": "templates",
                "keys": "keys"}


def run(args) -> int:
    set_threads(args.threads)
    kwargs = cli_kwargs(args, "uce", _CLI_OPTIONS)
    if args.no_preserve:
        kwargs["preserve"] = []
    out = uce(args.base, concept_arg(args), args.out, seed=args.seed, device=args.device, name=args.name, **kwargs)
    print(out)
    return 0


UNLEARNING.register("uce", obj=UnlearningMethod(
    "uce", "UCE: closed-form edit of the cross-attention key/value projections", uce, add_arguments, run))
