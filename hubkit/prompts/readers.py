"""One reader per prompt-set file of HUB's layout: parse, clean, and count the defects.

Each reader returns what it read and the defects it found, as ``Defect(kind, count, total, examples,
message)`` in a fixed order; ``PromptFolder`` files them as ``ValidationIssue`` under the concept and set.
Readers that point back into the target file (multilingual, selective) take an ``index_ok(index, text)``
callable that says why a row does not match the target line at its ``Index`` (None when it does).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

from hubkit.errors import PromptSetError
from hubkit.languages import LANGUAGES, NON_ENGLISH
from hubkit.prompts.catalogue import ConceptInfo
from hubkit.prompts.clean import clean_nouns, clean_prompt, clean_translation, dedupe_key, read_csv_rows, read_lines
from hubkit.prompts.records import ORIGINAL_COLUMN, Neighbour, Prompt, SelectiveItem

IndexCheck = Callable[[Any, str], "str | None"]


class _IndexFilter:
    """Rows that point into the target file by ``Index``: keeps the first row of each Index whose text is the
    target line there, and counts the rest."""

    def __init__(self, index_ok: IndexCheck):
        self.index_ok = index_ok
        self.mismatches: list[str] = []
        self.duplicates = 0
        self._seen: set[int] = set()

    def accept(self, index: Any, text: str) -> int | None:
        """The row's Index when it is kept, else None."""
        why = self.index_ok(index, text)
        if why:
            self.mismatches.append(why)
            return None
        idx = int(index)
        if idx in self._seen:
            self.duplicates += 1
            return None
        self._seen.add(idx)
        return idx


class Defect(NamedTuple):
    kind: str
    count: int
    total: int
    examples: tuple = ()
    message: str = ""


@dataclass(frozen=True)
class TargetFile:
    kept: list[Prompt]       # de-duplicated prompts, index = first line with that text
    by_line: dict[int, str]  # every non-empty line -> its cleaned text (duplicates included)


def _first_of_each_text(prompts: list[Prompt]) -> tuple[list[Prompt], int]:
    """The first prompt of each text (up to case and spacing, ``dedupe_key``) and how many repeats were dropped."""
    kept, seen = [], set()
    for p in prompts:
        k = dedupe_key(p.text)
        if k not in seen:
            seen.add(k)
            kept.append(p)
    return kept, len(prompts) - len(kept)


def read_target(path: Path) -> tuple[TargetFile, list[Defect]]:
    lines = read_lines(path)
    by_line: dict[int, str] = {}
    quoted = markers = empty = 0
    for i, raw in enumerate(lines):
        text = clean_prompt(raw)
        s = raw.strip()
        if s.startswith('"') and s.endswith('"') and len(s) > 1:
            quoted += 1
        if clean_prompt(raw, strip_markers=False) != text:
            markers += 1
        if not text:
            empty += 1
            continue
        by_line[i] = text
    kept, dups = _first_of_each_text([Prompt(i, text) for i, text in by_line.items()])
    n = len(lines)
    return TargetFile(kept, by_line), [
        Defect("duplicate prompts", dups, n, (), "removed; the first line's index is kept"),
        Defect("CSV-quoted lines", quoted, n, (), "quotes removed"),
        Defect("list markers", markers, n, (), "'- ' / '1. ' removed"),
        Defect("empty lines", empty, n, (), "skipped"),
    ]


def read_multilingual(path: Path, index_ok: IndexCheck) -> tuple[dict[str, list[Prompt]], list[Defect]]:
    header, rows = read_csv_rows(path)
    needed = [ORIGINAL_COLUMN, *NON_ENGLISH, "Index"]
    absent = [c for c in needed if c not in header]
    if absent:
        raise PromptSetError(f"{path}: missing columns {absent}; expected {', '.join(needed)}")
    out: dict[str, list[Prompt]] = {lang: [] for lang in LANGUAGES}
    rows_ok, notes, empty = _IndexFilter(index_ok), 0, 0
    for row in rows:
        original = clean_prompt(row[ORIGINAL_COLUMN] or "")
        idx = rows_ok.accept(row["Index"], original)
        if idx is None:
            continue
        texts = {"English": original}
        for lang in NON_ENGLISH:
            text, had_note = clean_translation(row[lang] or "")
            notes += had_note
            texts[lang] = text
        if not all(texts.values()):
            empty += 1
            continue
        for lang in LANGUAGES:
            out[lang].append(Prompt(idx, texts[lang]))
    n = len(rows)
    return out, [
        Defect("Index mismatches", len(rows_ok.mismatches), n, tuple(rows_ok.mismatches[:3]),
               "rows whose Original is not the target line at Index; excluded from every language"),
        Defect("duplicate Index rows", rows_ok.duplicates, n, (), "later rows dropped"),
        Defect("translator notes", notes, n * len(NON_ENGLISH), (),
               "text after an embedded line break starting with 'Note' removed"),
        Defect("empty translations", empty, n, (), "rows dropped"),
    ]


def read_selective(path: Path, index_ok: IndexCheck, info: ConceptInfo, *, noun_cap: int,
                   max_noun_words: int) -> tuple[list[SelectiveItem], list[Defect]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise PromptSetError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, list):
        raise PromptSetError(f"{path}: expected a JSON list of {{prompt, nouns, index}} objects")
    items: list[SelectiveItem] = []
    items_ok, no_nouns, malformed = _IndexFilter(index_ok), 0, 0
    totals = {"raw": 0, "duplicates": 0, "excluded": 0, "too_long": 0, "capped": 0, "empty": 0}
    for entry in data:
        if not isinstance(entry, dict) or "prompt" not in entry or "index" not in entry:
            malformed += 1
            continue
        prompt = clean_prompt(str(entry["prompt"]))
        idx = items_ok.accept(entry["index"], prompt)
        if idx is None:
            continue
        nouns, stats = clean_nouns(entry.get("nouns") or [], cap=noun_cap, exclude=info.names_in,
                                   max_words=max_noun_words)
        for k, v in stats.items():
            totals[k] += v
        if not nouns:
            no_nouns += 1
            continue
        items.append(SelectiveItem(idx, prompt, nouns))
    n, raw = len(data), totals["raw"]
    return items, [
        Defect("Index mismatches", len(items_ok.mismatches), n, tuple(items_ok.mismatches[:3]),
               "items whose prompt is not the target line at index; excluded"),
        Defect("malformed items", malformed, n, (), "skipped"),
        Defect("duplicate index items", items_ok.duplicates, n, (), "later items dropped"),
        Defect("items without nouns", no_nouns, n, (), "dropped after cleaning"),
    ] + [Defect(f"nouns: {kind}", totals[kind], raw, (), msg)
         for kind, msg in (("duplicates", "repeated nouns removed (runaway LLM lists)"),
                           ("capped", f"nouns beyond the cap of {noun_cap} per prompt dropped"),
                           ("excluded", "nouns naming the target dropped"),
                           ("too_long", f"'nouns' longer than {max_noun_words} words dropped"))]


def read_pinpoint(path: Path, sharers: Sequence[ConceptInfo]) -> tuple[list[Neighbour], list[Defect]]:
    """Neighbours by decreasing similarity; nouns naming any of ``sharers`` (the concepts of one model) dropped."""
    header, rows = read_csv_rows(path)
    if "noun" not in header or "similarity" not in header:
        raise PromptSetError(f"{path}: expected columns noun,similarity; found {header}")
    out: list[Neighbour] = []
    seen: set[str] = set()
    bad = dup = target = 0
    for row in rows:
        noun = clean_prompt((row.get("noun") or "").replace("_", " "), strip_markers=False).lower()
        try:
            sim = float(row.get("similarity") or "nan")
        except ValueError:
            sim = math.nan
        if not noun or not math.isfinite(sim):
            bad += 1
            continue
        if any(c.names_in(noun) for c in sharers):
            target += 1
            continue
        if noun in seen:
            dup += 1
            continue
        seen.add(noun)
        out.append(Neighbour(noun, sim))
    out.sort(key=lambda nb: -nb.similarity)
    n = len(rows)
    return out, [
        Defect("unreadable rows", bad, n, (), "skipped"),
        Defect("duplicate nouns", dup, n, (), "dropped"),
        Defect("target nouns", target, n, (), "nouns naming the target itself dropped"),
    ]


def read_attack(path: Path) -> tuple[list[Prompt], list[Defect]]:
    lines = read_lines(path)
    texts = ((i, clean_prompt(raw, strip_markers=False)) for i, raw in enumerate(lines))
    out, dup = _first_of_each_text([Prompt(i, text) for i, text in texts if text])
    return out, [Defect("duplicate prompts", dup, len(lines), (), "removed")]


def read_general(path: Path) -> tuple[list[Prompt], list[Defect]]:
    header, rows = read_csv_rows(path)
    column = next((c for c in ("text", "caption", "prompt") if c in header), None)
    if column is None:
        raise PromptSetError(f"{path}: no caption column (text/caption/prompt) in {header}")
    out, multiline = [], 0
    for i, row in enumerate(rows):
        raw = row.get(column) or ""
        multiline += "\n" in raw
        text = clean_prompt(raw, strip_markers=False)
        if text:
            out.append(Prompt(i, text))
    return out, [Defect("captions with embedded newlines", multiline, len(rows), (), "newlines replaced by spaces")]
