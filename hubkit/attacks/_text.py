"""Text-side helpers shared by the attacks: the searchable vocabulary, banned tokens, prompt ids and a
text-encoder forward with some token embeddings replaced.

Both attacks search over **whole-word, round-trip-safe tokens**: CLIP tokens ending in ``</w>`` whose
decoded text tokenizes back to exactly that one token (34,301 of CLIP's 49,408). A prompt made of such
tokens joined by spaces tokenizes back to exactly the searched ids, so the prompt text the suite renders
is the prompt the attack scored, and a banned token can never reappear by BPE re-merging sub-word pieces.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from typing import Iterable, Sequence

import torch

_VOCAB_CACHE: dict[str, torch.Tensor] = {}


def unwrap_pipeline(model):
    """A ``StableDiffusionPipeline`` from a pipeline or a ``hubkit.models.LoadedModel``."""
    pipe = getattr(model, "pipe", model)
    for part in ("unet", "text_encoder", "tokenizer"):
        if getattr(pipe, part, None) is None:
            raise TypeError(f"{type(model).__name__} has no {part}; pass a StableDiffusionPipeline or a LoadedModel")
    return pipe


def _vocab_key(tokenizer) -> str:
    vocab = tokenizer.get_vocab()
    return hashlib.sha256(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode("utf-8")).hexdigest()


def word_token_ids(tokenizer) -> torch.Tensor:
    """Ids of the whole-word round-trip-safe tokens of ``tokenizer`` (sorted LongTensor; cached per vocabulary):
    printable text (no control characters, which would also garble reports) that tokenizes back to the token."""
    key = _vocab_key(tokenizer)
    if key not in _VOCAB_CACHE:
        special = set(tokenizer.all_special_ids)
        items = sorted((i, tok) for tok, i in tokenizer.get_vocab().items() if tok.endswith("</w>") and i not in special)
        texts = [tokenizer.decode([i]) for i, _ in items]
        enc = tokenizer(texts, add_special_tokens=False).input_ids
        ok = [i for (i, _), text, e in zip(items, texts, enc) if e == [i] and text and text.strip() == text and text.isprintable()]
        _VOCAB_CACHE[key] = torch.tensor(ok, dtype=torch.long)
    return _VOCAB_CACHE[key]


def keyword_words(keywords: Iterable[str]) -> list[str]:
    """Lower-case words of ``keywords`` ("Van Gogh" -> ["van", "gogh"])."""
    words: list[str] = []
    for kw in keywords:
        for w in re.findall(r"[^\W_]+", str(kw).lower()):
            if w not in words:
                words.append(w)
    return words


def banned_token_ids(tokenizer, keywords: Iterable[str], *, substring_min_len: int = 4) -> set[int]:
    """Token ids a search must not use for a concept with ``keywords``.

    Bans every token of each keyword and of each of its words as the tokenizer splits them, and every
    whole-word token whose text contains a keyword word of at least ``substring_min_len`` characters
    ("gogh" bans "vangogh" and "goghs"), or equals a shorter keyword word.
    """
    keywords = [str(k) for k in keywords if str(k).strip()]
    if not keywords:
        return set()
    words = keyword_words(keywords)
    banned: set[int] = set()
    special = set(tokenizer.all_special_ids)
    for text in keywords + words:
        banned.update(i for i in tokenizer(text, add_special_tokens=False).input_ids if i not in special)
    for tok, i in tokenizer.get_vocab().items():
        if i in special:
            continue
        t = tok[:-4] if tok.endswith("</w>") else tok
        t = t.lower()
        if any(t == w or (len(w) >= substring_min_len and w in t) for w in words):
            banned.add(i)
    return banned


def allowed_token_ids(tokenizer, banned: Iterable[int] = (), within: Iterable[str] | None = None) -> torch.Tensor:
    """The whole-word token ids a search may use: all of them but ``banned``, and when ``within`` (words) is given,
    only the whole-word tokens those words are spelled with."""
    ids = word_token_ids(tokenizer)
    banned = set(int(b) for b in banned)
    if within is not None:
        spelled = {i for w in within for i in tokenizer(str(w), add_special_tokens=False).input_ids}
        banned |= {int(i) for i in ids.tolist() if int(i) not in spelled}
    if banned:
        keep = torch.tensor([int(i) not in banned for i in ids.tolist()], dtype=torch.bool)
        ids = ids[keep]
    if len(ids) == 0:
        raise ValueError("no searchable tokens left after banning the concept's keywords")
    return ids


def ids_to_text(tokenizer, ids: Sequence[int]) -> str:
    """The prompt text of whole-word token ids (joined by spaces)."""
    return " ".join(tokenizer.decode([int(i)]) for i in ids)


def prompt_token_ids(tokenizer, prompt: str) -> list[int]:
    """The prompt's token ids without BOS/EOS/padding."""
    return list(tokenizer(prompt, add_special_tokens=False).input_ids)


def padded_ids(tokenizer, middle: torch.Tensor, length: int | None = None) -> torch.Tensor:
    """``[BOS, *middle, EOS, PAD...]`` rows of ``length`` (the tokenizer's ``model_max_length``), exactly
    as ``tokenizer(..., padding="max_length", truncation=True)`` lays them out. ``middle``: [N, M]."""
    length = int(length or tokenizer.model_max_length)
    middle = torch.as_tensor(middle, dtype=torch.long)
    if middle.dim() == 1:
        middle = middle[None]
    n, m = middle.shape
    m = min(m, length - 2)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = torch.full((n, length), int(pad), dtype=torch.long)
    out[:, 0] = tokenizer.bos_token_id
    out[:, 1 : 1 + m] = middle[:, :m]
    out[:, 1 + m] = tokenizer.eos_token_id
    return out


def tokenize(tokenizer, prompts: Sequence[str]) -> torch.Tensor:
    """Padded ids as the SD pipeline builds them (``padding="max_length"``, truncation)."""
    return tokenizer(
        list(prompts), padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids


def input_embedding_layer(text_encoder) -> torch.nn.Module:
    layer = None
    with contextlib.suppress(Exception):
        layer = text_encoder.get_input_embeddings()
    if layer is None:
        for path in ("embeddings.token_embedding", "text_model.embeddings.token_embedding"):
            mod = text_encoder
            try:
                for part in path.split("."):
                    mod = getattr(mod, part)
            except AttributeError:
                continue
            layer = mod
            break
    if layer is None:
        raise TypeError(f"cannot find the token embedding of {type(text_encoder).__name__}")
    return layer


@torch.no_grad()
def encode_ids(text_encoder, ids: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Last hidden states ``[N, L, D]`` (what SD-1.x's UNet is conditioned on) of padded ``ids``."""
    device = next(text_encoder.parameters()).device
    outs = []
    for start in range(0, len(ids), batch_size):
        outs.append(text_encoder(ids[start : start + batch_size].to(device))[0].float())
    return torch.cat(outs) if outs else torch.empty(0)


def encode_with_replaced(text_encoder, ids: torch.Tensor, start: int, embeds: torch.Tensor) -> torch.Tensor:
    """Last hidden states of ``ids`` with the token embeddings at positions ``start:start+k`` replaced by
    ``embeds`` ([k, D] or [N, k, D]); differentiable in ``embeds``.

    Implemented with a forward hook on the token-embedding layer, so it works for any text encoder that
    looks tokens up through that layer (``CLIPTextModel`` of any transformers version, LoRA-wrapped or
    fine-tuned encoders) without re-implementing its forward.
    """
    layer = input_embedding_layer(text_encoder)
    k = embeds.shape[-2]

    def hook(_module, _inputs, out):
        e = embeds.to(out.dtype)
        if e.dim() == 2:
            e = e[None].expand(out.shape[0], -1, -1)
        return torch.cat([out[:, :start], e, out[:, start + k :]], dim=1)

    handle = layer.register_forward_hook(hook)
    try:
        device = next(text_encoder.parameters()).device
        return text_encoder(ids.to(device))[0]
    finally:
        handle.remove()


@contextlib.contextmanager
def frozen(*modules: torch.nn.Module):
    """Eval mode and ``requires_grad=False`` for ``modules``; both restored afterwards (the model under
    test is shared with the rest of the suite)."""
    saved = []
    for m in modules:
        if m is None:
            continue
        saved.append((m, m.training, [(p, p.requires_grad) for p in m.parameters()]))
        m.eval()
        m.requires_grad_(False)
    try:
        yield
    finally:
        for m, training, flags in saved:
            m.train(training)
            for p, rg in flags:
                p.requires_grad_(rg)
