"""Text side of micro-clip: the real CLIP tokenizer, then a remap to the small caption vocabulary.

The 49,408-row CLIP embedding table would dominate the judge's size, so micro-clip keeps rows only for
the CLIP token ids seen in its training captions: id 0 is padding, 1 is "unknown token", 2.. are the
kept CLIP ids in ascending order (stored as ``extra.vocab_ids`` in the safetensors file).
"""

from __future__ import annotations

from typing import Sequence

import torch


def clip_token_ids(tokenizer, texts: Sequence[str], context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP ids [n, context] (BOS ... EOS, padded with EOS) and the mask of real tokens."""
    enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=context, return_tensors="pt")
    return enc["input_ids"].long(), enc["attention_mask"].bool()


def encode_texts(tokenizer, texts: Sequence[str], lookup: torch.Tensor, context: int):
    ids, mask = clip_token_ids(tokenizer, texts, context)
    small = lookup[ids]
    small = torch.where(mask, small, torch.zeros_like(small))
    return small, mask


def build_lookup(kept_ids: torch.Tensor, clip_vocab_size: int) -> torch.Tensor:
    lookup = torch.ones(clip_vocab_size, dtype=torch.long)
    lookup[kept_ids.long()] = torch.arange(2, 2 + len(kept_ids))
    return lookup
