"""The real SD-1.x CLIP tokenizer, built offline from the BPE table that ships inside open_clip's wheel.

Hub lookups are impossible here, and a missing tokenizer silently degrades to a 2-token vocabulary, so
we convert open_clip's ``bpe_simple_vocab_16e6.txt.gz`` to ``vocab.json``/``merges.txt`` once and check
the size.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from functools import lru_cache
from pathlib import Path

CLIP_VOCAB_SIZE = 49408


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level alphabet: printable bytes map to themselves, the rest to code points >= 256.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _bpe_file() -> Path:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or spec.origin is None:
        raise ImportError("open_clip_torch is not installed: `pip install open_clip_torch` provides the CLIP BPE table")
    return Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"


def write_clip_vocab(folder: Path) -> Path:
    """Write vocab.json and merges.txt (CLIP's 49,408 tokens) into ``folder`` and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = gzip.open(_bpe_file()).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    alphabet = list(_bytes_to_unicode().values())
    vocab = alphabet + [v + "</w>" for v in alphabet] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == CLIP_VOCAB_SIZE, len(vocab)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8")
    return folder


@lru_cache(maxsize=None)
def _cached_folder() -> Path:
    import tempfile

    # removed when the process ends (the object's finaliser): a folder per process used to stay in /tmp for good
    global _VOCAB_DIR
    _VOCAB_DIR = tempfile.TemporaryDirectory(prefix="hubkit-clip-vocab-")
    return write_clip_vocab(Path(_VOCAB_DIR.name))


_VOCAB_DIR = None


def clip_tokenizer(model_max_length: int = 77):
    """A ``transformers.CLIPTokenizer`` with SD-1.x's vocabulary, built without any download."""
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(_cached_folder()), model_max_length=model_max_length)
    if len(tok) != CLIP_VOCAB_SIZE:
        raise RuntimeError(f"CLIP tokenizer has {len(tok)} tokens, expected {CLIP_VOCAB_SIZE}")
    return tok
