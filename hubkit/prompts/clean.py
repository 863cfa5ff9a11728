"""Cleaning of HUB's published prompt text (reference §3.2, §10.4 item 26, §10.6).

The published files keep LLM and export artefacts that HUB's own code feeds straight into the model:
whole lines wrapped in CSV quotes (with ``""`` escapes), list markers (``- ``, ``1. ``), trailing
whitespace and CRLF line ends, translator notes after an embedded blank line, and noun lists with
trailing spaces, capitals, repeats and runaway loops.  These helpers undo them.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

LFS_MAGIC = "version https://git-lfs.github.com/spec/v1"

_MARKER = re.compile(r"^\s*(?:[-*\u2022\u2013]\s+|\(?\d{1,3}[.)]\s+)")
_WS = re.compile(r"\s+")
_NOTE = re.compile(r"^\s*\(?\s*(note|nota|remarque|anmerkung|hinweis)\b", re.IGNORECASE)


def is_lfs_pointer(path: Path) -> bool:
    """Whether ``path`` is a Git-LFS pointer file instead of the data it stands for."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(LFS_MAGIC) + 8)
    except OSError:
        return False
    return head.lstrip(b"\xef\xbb\xbf").startswith(LFS_MAGIC.encode())


def collapse_ws(text: str) -> str:
    return _WS.sub(" ", text).strip()


def unquote(text: str) -> str:
    """Undo CSV quoting of a whole field: ``"a ""b"" c"`` -> ``a "b" c``; repeated wrapping too."""
    text = text.strip()
    for _ in range(4):
        if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
            inner = text[1:-1]
            # a properly CSV-quoted field: the inside has only doubled quotes
            if '"' in inner.replace('""', ""):
                break  # e.g. '"A" and "B"': quotes that belong to the text
            text = inner.replace('""', '"').strip()
        else:
            break
    return text


def clean_prompt(text: str, *, strip_markers: bool = True) -> str:
    """One prompt: unquote, drop list markers, collapse whitespace (newlines included)."""
    text = collapse_ws(unquote(collapse_ws(text)))
    if strip_markers:
        stripped = _MARKER.sub("", text, count=1)
        if stripped:
            text = unquote(stripped)
    return collapse_ws(text)


def clean_translation(text: str) -> tuple[str, bool]:
    """A translated prompt: drop a translator's note after an embedded line break; returns (text, had_note)."""
    paragraphs = [p for p in re.split(r"\r?\n", text)]
    kept, note = [], False
    for p in paragraphs:
        if kept and _NOTE.match(p):
            note = True
            break
        kept.append(p)
    return clean_prompt(" ".join(kept), strip_markers=False), note


def match_key(text: str) -> str:
    """Key for "is this the same prompt?": cleaned, quote characters removed, case-folded."""
    return collapse_ws(clean_prompt(text).replace('"', "").replace("\u201c", "").replace("\u201d", "")).casefold()


def dedupe_key(text: str) -> str:
    return collapse_ws(text).casefold()


def read_lines(path: Path) -> list[str]:
    """The file's lines (BOM, ``\\r`` and the final empty line removed); line i is the published index i."""
    # newline="": only "\n" ends a line (a lone "\r" inside a prompt is whitespace, not a new line)
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        text = fh.read()
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_csv_rows(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows of a CSV with a header (quoted fields may contain newlines)."""
    with open(path, encoding="utf-8-sig", newline="", errors="replace") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def clean_nouns(nouns, *, cap: int = 10, exclude=None, max_words: int = 4) -> tuple[tuple[str, ...], dict]:
    """Strip, lower-case, de-duplicate (order kept) and cap a noun list.

    ``exclude(noun) -> bool`` drops nouns (e.g. ones that name the target itself); nouns longer than
    ``max_words`` words are LLM chatter ("furs are not mentioned but fur is, so fur is kept") and
    dropped.  Returns the nouns and counts of what was removed.
    """
    seen: dict[str, None] = {}
    stats = {"raw": 0, "duplicates": 0, "excluded": 0, "too_long": 0, "capped": 0, "empty": 0}
    for noun in nouns or ():
        stats["raw"] += 1
        n = collapse_ws(str(noun)).strip(" .,;:'\"").lower()
        if not n:
            stats["empty"] += 1
        elif len(n.split()) > max_words:
            stats["too_long"] += 1
        elif exclude is not None and exclude(n):
            stats["excluded"] += 1
        elif n in seen:
            stats["duplicates"] += 1
        else:
            seen[n] = None
    out = tuple(seen)
    if cap is not None and len(out) > cap:
        stats["capped"] = len(out) - cap
        out = out[:cap]
    return out, stats
