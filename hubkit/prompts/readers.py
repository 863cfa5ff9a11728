"""One reader per prompt-set file of HUB's layout: parse, clean, and count the defects.

Each reader returns what it read, the defects it found as ``Defect(kind, count, total, examples, message)``
in a fixed order (``kind`` is a rule of ``hubkit.prompts.clean.RULES``; an empty message means the rule's
text), and how many lines/rows/items it read; ``PromptFolder`` files the defects as ``ValidationIssue`` under
the concept and set. Every line or row read is either kept or counted by a rule that dropped or joined it.
Readers that point back into the target file (multilingual, selective) take an ``index_ok(index, text)``
callable that says why a row does not match the target line at its ``Index``: None when it does, else
(rule kind, explanation).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

from hubkit.languages import LANGUAGES, NON_ENGLISH
from hubkit.prompts.catalogue import ConceptInfo, fold
from hubkit.prompts.clean import (
    OVERLONG_RATIO,
    OVERLONG_SLACK,
    RULES,
    clean_nouns,
    clean_prompt,
    clean_translation,
    collapse_ws,
    continues,
    count_controls,
    dedupe_key,
    is_section_header,
    read_csv_rows,
    read_lines,
    read_text,
    rejoin_split_lines,
    repetition_loop,
    strip_controls,
    written_in_sentences,
)
from hubkit.prompts.records import ORIGINAL_COLUMN, MalformedFile, Neighbour, Prompt, SelectiveItem

IndexCheck = Callable[[Any, str], "tuple[str, str] | None"]


class _IndexFilter:
    """Rows that point into the target file by ``Index``: keeps the first row of each Index whose text is the
    target line there, and counts the rest by rule."""

    def __init__(self, index_ok: IndexCheck):
        self.index_ok = index_ok
        self.rejected: dict[str, list[str]] = {"Index mismatches": [], "Index on a dropped line": []}
        self.duplicates = 0
        self._seen: set[int] = set()

    def accept(self, index: Any, text: str) -> int | None:
        """The row's Index when it is kept, else None."""
        why = self.index_ok(index, text)
        if why:
            kind, message = why
            self.rejected.setdefault(kind, []).append(message)
            return None
        idx = int(index)
        if idx in self._seen:
            self.duplicates += 1
            return None
        self._seen.add(idx)
        return idx

    def defects(self, n: int) -> list["Defect"]:
        return ([Defect(kind, len(msgs), n, tuple(msgs[:3])) for kind, msgs in self.rejected.items()]
                + [Defect("duplicate Index rows", self.duplicates, n)])


class Defect(NamedTuple):
    kind: str
    count: int
    total: int
    examples: tuple = ()
    message: str = ""


@dataclass(frozen=True)
class TargetFile:
    kept: list[Prompt]       # de-duplicated prompts, index = first line with that text
    by_line: dict[int, str]  # every prompt line -> its cleaned text (duplicates included; a wrapped prompt whole)
    rejected: dict[int, str] = field(default_factory=dict)  # line -> why it is no prompt (header, loop, fragment)
    wrapped: frozenset = frozenset()  # first lines of wrapped prompts (their published line is only a fragment)


def _first_of_each_text(prompts: list[Prompt]) -> tuple[list[Prompt], int]:
    """The first prompt of each text (up to case and spacing, ``dedupe_key``) and how many repeats were dropped."""
    kept, seen = [], set()
    for p in prompts:
        k = dedupe_key(p.text)
        if k not in seen:
            seen.add(k)
            kept.append(p)
    return kept, len(prompts) - len(kept)


def _around_control(text: str) -> str:
    """The text around its first control character, escaped (``...asco\\x00 sbywalt...``)."""
    at = next(i for i, c in enumerate(text) if count_controls(c))
    start = max(0, at - 25)
    return ("..." if start else "") + repr(text[start:at + 25])[1:-1] + ("..." if at + 25 < len(text) else "")


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[:n] + f"... ({len(text):,} characters)"


def read_target(path: Path) -> tuple[TargetFile, list[Defect], int]:
    """Target prompts, one per line (rules: control characters, CSV-quoted lines, list markers, empty lines,
    wrapped prompts, section headers, repetition loops, duplicate prompts)."""
    lines = read_lines(path)
    by_line: dict[int, str] = {}
    rejected: dict[int, str] = {}
    wrapped_first: set[int] = set()
    quoted = markers = empty = controls = fffd = 0
    headers: list[str] = []
    wrapped: list[str] = []
    previous: int | None = None  # the prompt (first line) that the next line may continue
    last = -2                    # the last line that belongs to it
    stripped = [strip_controls(raw) for raw in lines]
    cleaned = [clean_prompt(raw) for raw, _ in stripped]
    sentences = written_in_sentences(cleaned)
    for i, ((raw, n_controls), text) in enumerate(zip(stripped, cleaned)):
        controls += n_controls > 0
        fffd += "\ufffd" in raw
        s = raw.strip()
        if s.startswith('"') and s.endswith('"') and len(s) > 1:
            quoted += 1
        if clean_prompt(raw, strip_markers=False) != text:
            markers += 1
        if not text:
            empty += 1
            previous = None
            continue
        if sentences and previous is not None and last == i - 1 and continues(by_line[previous], text):
            by_line[previous] = f"{by_line[previous]} {text}"
            rejected[i] = f"continues the wrapped prompt of line {previous}"
            wrapped_first.add(previous)
            wrapped.append(f"line {i} joined to line {previous}: {_short(text, 40)!r}")
            last = i
            continue
        if is_section_header(text):
            rejected[i] = "is a section header"
            headers.append(f"line {i}: {_short(text)!r}")
            previous = None
            continue
        by_line[i] = text
        previous = last = i
    loops: list[str] = []
    for i, text in list(by_line.items()):
        phrase = repetition_loop(text)
        if phrase:
            del by_line[i]
            rejected[i] = f"is a repetition loop of {phrase!r}"
            loops.append(f"line {i}: {phrase!r} repeated ({len(text):,} characters)")
    kept, dups = _first_of_each_text([Prompt(i, text) for i, text in by_line.items()])
    n = len(lines)
    return TargetFile(kept, by_line, rejected, frozenset(wrapped_first)), [
        Defect("duplicate prompts", dups, n),
        Defect("CSV-quoted lines", quoted, n),
        Defect("list markers", markers, n),
        Defect("empty lines", empty, n),
        Defect("control characters", controls, n),
        Defect("replacement characters", fffd, n),
        Defect("section headers", len(headers), n, tuple(headers[:5])),
        Defect("wrapped prompts", len(wrapped), n, tuple(wrapped[:5]),
               f"{len(wrapped_first)} prompt(s) hard-wrapped over {len(wrapped) + len(wrapped_first)} lines; "
               "continuation lines joined to the first"),
        Defect("repetition loops", len(loops), n, tuple(loops[:5])),
    ], n


def read_multilingual(path: Path, index_ok: IndexCheck) -> tuple[dict[str, list[Prompt]], list[Defect], int]:
    """Translations (rules: Index checks, control characters, translator chatter, empty translations, translation
    loops, overlong translations)."""
    header, rows = read_csv_rows(path)
    needed = [ORIGINAL_COLUMN, *NON_ENGLISH, "Index"]
    absent = [c for c in needed if c not in header]
    if absent:
        raise MalformedFile(f"{path}: missing columns {absent}; expected {', '.join(needed)}")
    out: dict[str, list[Prompt]] = {lang: [] for lang in LANGUAGES}
    rows_ok, empty, controls = _IndexFilter(index_ok), 0, 0
    chatter: list[str] = []
    loops: list[str] = []
    overlong: list[str] = []
    for row in rows:
        controls += sum(count_controls(row.get(c) or "") > 0 for c in (ORIGINAL_COLUMN, *NON_ENGLISH))
        original = clean_prompt(strip_controls(row[ORIGINAL_COLUMN] or "")[0])
        idx = rows_ok.accept(row["Index"], original)
        if idx is None:
            continue
        texts = {"English": original}
        for lang in NON_ENGLISH:
            text, removed = clean_translation(row[lang] or "")
            if removed:
                chatter.append(f"Index {idx} {lang}: removed {removed!r}")
            texts[lang] = text
        if not all(texts.values()):
            empty += 1
            continue
        looped = next(((lang, phrase) for lang, t in texts.items() if (phrase := repetition_loop(t))), None)
        if looped:
            loops.append(f"Index {idx} {looped[0]}: {looped[1]!r} repeated ({len(texts[looped[0]]):,} characters)")
            continue
        long_ = next((lang for lang, t in texts.items()
                      if len(t) > OVERLONG_RATIO * len(original) + OVERLONG_SLACK), None)
        if long_:
            overlong.append(f"Index {idx} {long_}: {len(texts[long_]):,} characters for {len(original):,} in English: "
                            f"{_short(texts[long_], 80)!r}")
            continue
        for lang in LANGUAGES:
            out[lang].append(Prompt(idx, texts[lang]))
    n = len(rows)
    return out, rows_ok.defects(n) + [
        Defect("control characters", controls, n * len(LANGUAGES)),
        Defect("translator chatter", len(chatter), n * len(NON_ENGLISH), tuple(chatter[:5])),
        Defect("empty translations", empty, n),
        Defect("translation loops", len(loops), n, tuple(loops[:5])),
        Defect("overlong translations", len(overlong), n, tuple(overlong[:5])),
    ], n


def read_selective(path: Path, index_ok: IndexCheck, info: ConceptInfo, *, noun_cap: int,
                   max_noun_words: int) -> tuple[list[SelectiveItem], list[Defect], int]:
    """Selective-alignment items (rules: malformed file/items, Index checks, items without nouns, nouns: ...)."""
    try:
        data = json.loads(read_text(path))
    except ValueError as exc:
        raise MalformedFile(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, list):
        raise MalformedFile(f"{path}: expected a JSON list of {{prompt, nouns, index}} objects")
    items: list[SelectiveItem] = []
    items_ok, no_nouns, malformed = _IndexFilter(index_ok), 0, 0
    totals = {"raw": 0, "duplicates": 0, "excluded": 0, "too_long": 0, "capped": 0, "empty": 0}
    for entry in data:
        if not isinstance(entry, dict) or "prompt" not in entry or "index" not in entry:
            malformed += 1
            continue
        prompt = clean_prompt(strip_controls(str(entry["prompt"]))[0])
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
    return items, items_ok.defects(n) + [
        Defect("malformed items", malformed, n),
        Defect("items without nouns", no_nouns, n),
    ] + [Defect(f"nouns: {kind}", totals[kind], raw, (), msg)
         for kind, msg in (("duplicates", ""),
                           ("capped", f"nouns beyond the cap of {noun_cap} per prompt are dropped"),
                           ("excluded", ""),
                           ("too_long", f"'nouns' longer than {max_noun_words} words are LLM chatter and dropped"))], n


def read_pinpoint(path: Path, concept: ConceptInfo, sharers: Sequence[ConceptInfo] = ()
                  ) -> tuple[list[Neighbour], list[Defect], int]:
    """Neighbours of ``concept`` by decreasing similarity (rules: unreadable rows, the concept itself, duplicate
    nouns, look-alike neighbours). Only a noun that *is* ``concept`` or one of ``sharers`` (the other concepts
    erased by the same model) is dropped: its full name or a declared alias, never a longer phrase."""
    header, rows = read_csv_rows(path)
    if "noun" not in header or "similarity" not in header:
        raise MalformedFile(f"{path}: expected columns noun,similarity; found {header}")
    out: list[Neighbour] = []
    seen: set[str] = set()
    bad = dup = 0
    itself: list[str] = []
    lookalike: list[str] = []
    concepts = [concept, *(c for c in sharers if c.name != concept.name)]
    words = {w for c in concepts for w in c.name_words()}
    for row in rows:
        noun = clean_prompt(strip_controls((row.get("noun") or "").replace("_", " "))[0], strip_markers=False).lower()
        try:
            sim = float(row.get("similarity") or "nan")
        except ValueError:
            sim = math.nan
        if not noun or not math.isfinite(sim):
            bad += 1
            continue
        why = next((w for c in concepts if (w := c.is_itself(noun))), None)
        if why:
            itself.append(f"{noun!r} ({why})")
            continue
        if noun in seen:
            dup += 1
            continue
        seen.add(noun)
        out.append(Neighbour(noun, sim))
        if words & set(fold(noun).split()):
            lookalike.append(noun)
    out.sort(key=lambda nb: -nb.similarity)
    n = len(rows)
    return out, [
        Defect("unreadable rows", bad, n),
        Defect("duplicate nouns", dup, n),
        Defect("the concept itself", len(itself), n, tuple(itself)),
        Defect("look-alike neighbours", len(lookalike), n, tuple(lookalike[:10])),
    ], n


def read_attack(path: Path) -> tuple[list[Prompt], list[Defect], int]:
    """Adversarial prompts, one per line (rules: embedded carriage returns, CSV-quoted lines, control characters in
    attack prompts, replacement characters, empty lines, split prompts, duplicate prompts)."""
    lines = read_lines(path)
    n = len(lines)
    quoted = [f"line {i}: {_short(raw.strip(), 50)!r}" for i, raw in enumerate(lines)
              if clean_prompt(raw, strip_markers=False) != collapse_ws(raw)]
    returns = [i for i, raw in enumerate(lines) if "\r" in raw]
    # NUL lines first among the examples: NUL is what breaks other tools (C strings, some CSV readers)
    with_controls = sorted((i for i, raw in enumerate(lines) if count_controls(raw)), key=lambda i: "\x00" not in lines[i])
    controls = [f"line {i}: {_around_control(lines[i])}" for i in with_controls]
    nul = sum("\x00" in lines[i] for i in with_controls)
    fffd = sum("\ufffd" in raw for raw in lines)
    texts = [(i, clean_prompt(raw, strip_markers=False)) for i, raw in enumerate(lines)]
    nonempty = [(i, t) for i, t in texts if t]
    joined, joins = rejoin_split_lines(nonempty)
    out, dup = _first_of_each_text([Prompt(i, text) for i, text in joined])
    by_line = dict(nonempty)
    splits = [" + ".join(f"line {j} {_short(by_line[j], 30)!r}" for j in group) for group in joins]
    return out, [
        Defect("embedded carriage returns", len(returns), n, tuple(f"line {i}" for i in returns[:5])),
        Defect("CSV-quoted lines", len(quoted), n, tuple(quoted[:5])),
        Defect("control characters in attack prompts", len(controls), n, tuple(controls[:5]),
               f"{nul} of these lines hold NUL bytes; " + RULES["control characters in attack prompts"].rule),
        Defect("replacement characters", fffd, n),
        Defect("empty lines", n - len(nonempty), n),
        Defect("split prompts", sum(len(g) - 1 for g in joins), n, tuple(splits[:5]),
               f"{len(joins)} prompt(s) broken over {sum(len(g) for g in joins)} lines, joined"),
        Defect("duplicate prompts", dup, n),
    ], n


def read_general(path: Path) -> tuple[list[Prompt], list[Defect], int]:
    """General captions (rules: control characters, captions with embedded newlines, empty lines)."""
    header, rows = read_csv_rows(path)
    column = next((c for c in ("text", "caption", "prompt") if c in header), None)
    if column is None:
        raise MalformedFile(f"{path}: no caption column (text/caption/prompt) in {header}")
    out, multiline, controls = [], 0, 0
    for i, row in enumerate(rows):
        raw, n_controls = strip_controls(row.get(column) or "")
        controls += n_controls > 0
        multiline += "\n" in raw or "\r" in raw
        text = clean_prompt(raw, strip_markers=False)
        if text:
            out.append(Prompt(i, text))
    n = len(rows)
    return out, [Defect("captions with embedded newlines", multiline, n),
                 Defect("control characters", controls, n),
                 Defect("empty lines", n - len(out), n)], n
