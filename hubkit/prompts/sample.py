"""Deterministic subsets of prompt lists (the budget's n per set)."""

from __future__ import annotations

import hashlib
from typing import Sequence, TypeVar

T = TypeVar("T")


def subsample(items: Sequence[T], n: int | None, seed: int = 0) -> list[T]:
    """A deterministic subset of ``n`` items, in their original order.

    Each item is ranked by a hash of (seed, its index and text), so the choice does not depend on the
    list's order, a smaller sample is always contained in a larger one with the same seed, and adding
    prompts to a file does not reshuffle the sample.  ``n`` None or >= len -> all items.
    """
    items = list(items)
    if n is None or n >= len(items):
        return items
    if n <= 0:
        return []

    def rank(pos_item):
        pos, item = pos_item
        ident = getattr(item, "index", pos)
        text = getattr(item, "text", None) or getattr(item, "prompt", None) or getattr(item, "noun", None) or repr(item)
        h = hashlib.sha256(f"{seed}\x00{ident}\x00{text}".encode("utf-8")).digest()
        return h, pos

    chosen = sorted(enumerate(items), key=rank)[:n]
    return [item for _, item in sorted(chosen, key=lambda pi: pi[0])]
