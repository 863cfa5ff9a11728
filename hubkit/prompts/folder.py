"""A prompt folder in HUB's published layout (reference §3.3), loaded, cleaned and validated.

    root/
      target_image/<concept>.csv             no header, one prompt per line; Prompt.index = line number (0-based)
      multilingual_robustness/<concept>.csv  Original,Spanish,French,German,Italian,Portuguese,Index
      selective_alignment/<concept>.json     [{prompt, nouns[], index}]
      pinpoint_ness/<concept or NSFW>.csv    noun,similarity
      attack_robustness/<concept>.csv        no header, one adversarial prompt per line
      MS-COCO_val2014_30k_captions.csv       image_id,text
      hubkit.toml                            optional manifest (overrides the HUB catalogue)

Manifest (``hubkit.toml``; the micro world writes one)::

    pinpoint_template = "a photo of {noun}"
    image_size = 64
    general = "captions.csv"          # optional: the general-caption file (default: the COCO list)
    [concepts."red circle"]
    category = "ip"
    judge = "micro-detector"
    model_key = "red circle"          # optional (default: the name; "NSFW" for nsfw in the catalogue)
    keywords = ["red circle"]         # optional

Defects handled (reference §10.6): Git-LFS pointer files and missing files raise ``PromptSetError``
subclasses with the reason (a fixture turns them into a skip); CSV-quoted lines, list markers, CRLF and
trailing blanks are cleaned; duplicate prompts are removed keeping the first line's index; multilingual
and selective ``Index`` values are checked against the target file and rows that do not match are
left out and reported in ``validation``; noun lists are cleaned and capped; stray files such as
``Andy_Warhol.csv`` next to ``Andy Warhol.csv`` are ignored (the exact name wins).
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, TypeVar

from hubkit.errors import PromptSetError
from hubkit.prompts.catalogue import CATEGORIES, ConceptInfo, fold, lookup
from hubkit.prompts.clean import (
    clean_nouns,
    clean_prompt,
    clean_translation,
    dedupe_key,
    is_lfs_pointer,
    match_key,
    read_csv_rows,
    read_lines,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

LANGUAGES = ("English", "Spanish", "French", "German", "Italian", "Portuguese")
NON_ENGLISH = LANGUAGES[1:]
ORIGINAL_COLUMN = "Original"  # HUB's column for the English prompt
MANIFEST = "hubkit.toml"
COCO_FILE = "MS-COCO_val2014_30k_captions.csv"
HUB_PINPOINT_TEMPLATE = "a photo of {noun}"

SETS = {
    "target": "target_image",
    "multilingual": "multilingual_robustness",
    "selective": "selective_alignment",
    "pinpoint": "pinpoint_ness",
    "attack": "attack_robustness",
}


class MissingPromptFile(PromptSetError):
    """A prompt file the suite needs is not in the folder."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path
        self.reason = message


class LFSPointerError(PromptSetError):
    """A prompt file is a Git-LFS pointer: its content was never fetched."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path
        self.reason = message


@dataclass(frozen=True)
class Prompt:
    index: int  # line of the published file (target set: line number; multilingual: the target-file Index)
    text: str


@dataclass(frozen=True)
class SelectiveItem:
    index: int  # line of the target file whose image is reused
    prompt: str
    nouns: tuple[str, ...]


@dataclass(frozen=True)
class Neighbour:
    noun: str
    similarity: float


@dataclass(frozen=True)
class ValidationIssue:
    """One kind of defect found in one file: how many rows, out of how many, and a few examples."""

    concept: str
    prompt_set: str
    kind: str
    count: int
    total: int
    examples: tuple = ()
    message: str = ""

    def __str__(self) -> str:
        ex = f"; e.g. {self.examples[0]}" if self.examples else ""
        return f"{self.prompt_set}/{self.concept}: {self.count}/{self.total} {self.kind} -- {self.message}{ex}"


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


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


class PromptFolder:
    """Prompt sets of one folder; files are read lazily and cached.

    ``concepts`` holds every concept with a target file (or declared in the manifest), with category,
    judge and model key from the manifest, else from HUB's catalogue.  ``validation`` lists the
    defects found (it reads every file on first access).
    """

    def __init__(self, root: str | Path, *, noun_cap: int = 10, pinpoint_top_k: int | None = 100,
                 max_noun_words: int = 4):
        self.root = Path(root)
        if not self.root.is_dir():
            raise MissingPromptFile(f"prompt folder {self.root} does not exist; point --prompts at a HUB "
                                    f"checkout's prompts/ folder or the micro world's", self.root)
        self.noun_cap = noun_cap
        self.pinpoint_top_k = pinpoint_top_k
        self.max_noun_words = max_noun_words
        self.manifest: dict[str, Any] = self._read_manifest()
        self.pinpoint_template: str = str(self.manifest.get("pinpoint_template", HUB_PINPOINT_TEMPLATE))
        size = self.manifest.get("image_size")
        self.image_size: int | None = int(size) if size is not None else None
        self._issues: dict[tuple, ValidationIssue] = {}
        self._cache: dict[tuple, Any] = {}
        self._listing: dict[str, dict[str, Path]] = {}
        self.concepts: dict[str, ConceptInfo] = self._discover()

    # -- manifest and discovery -----------------------------------------------------------------------
    def _read_manifest(self) -> dict:
        path = self.root / MANIFEST
        if not path.is_file():
            return {}
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PromptSetError(f"{path}: not valid TOML ({exc})") from exc

    @property
    def fid_reference(self) -> Path | None:
        """The manifest's ``fid_reference`` (an ``.npz`` with ``mu``/``sigma``, relative to the folder), or None."""
        value = self.manifest.get("fid_reference")
        if not value:
            return None
        path = (self.root / str(value)).resolve()
        if not path.is_file():
            raise PromptSetError(f"{self.root / MANIFEST}: fid_reference {value!r} does not exist; write it with "
                                 f"hubkit.metrics.FID.save_reference or remove the key")
        return path

    def _files(self, subdir: str) -> dict[str, Path]:
        """NFC file stem -> path, for the data files of ``subdir`` (dot-files skipped)."""
        if subdir not in self._listing:
            d = self.root / subdir
            found: dict[str, Path] = {}
            if d.is_dir():
                for p in sorted(d.iterdir()):
                    if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in (".csv", ".json", ".txt"):
                        found[_nfc(p.stem)] = p
            self._listing[subdir] = found
        return self._listing[subdir]

    def _discover(self) -> dict[str, ConceptInfo]:
        declared = self.manifest.get("concepts", {}) or {}
        if not isinstance(declared, dict):
            raise PromptSetError(f"{self.root / MANIFEST}: [concepts] must be a table of tables")
        out: dict[str, ConceptInfo] = {}
        unknown = []
        for stem in self._files(SETS["target"]):
            if any(fold(stem) == fold(d) for d in declared):
                continue
            info = lookup(stem)
            if info is None:
                unknown.append(stem)
            elif info.name not in out and self._file(SETS["target"], info.name, quiet=True) is not None:
                out[info.name] = info
        for name, spec in declared.items():
            if not isinstance(spec, dict):
                raise PromptSetError(f"{self.root / MANIFEST}: [concepts.{name!r}] must be a table")
            base = lookup(name)
            category = str(spec.get("category", base.category if base else "")).lower()
            if category not in CATEGORIES:
                raise PromptSetError(f"{self.root / MANIFEST}: concept {name!r} has category {category!r}; "
                                     f"use one of {', '.join(CATEGORIES)}")
            judge = spec.get("judge", base.judge if base else None)
            if not judge:
                raise PromptSetError(f"{self.root / MANIFEST}: concept {name!r} needs a judge")
            model_key = str(spec.get("model_key", base.model_key if base else name))
            keywords = spec.get("keywords", base.keywords if base else (fold(name),))
            if isinstance(keywords, dict):  # per language ({"English": [...], "Spanish": [...]}): any of them names it
                keywords = list(dict.fromkeys(k for words in keywords.values() for k in words))
            out[name] = ConceptInfo(name, category, str(judge), model_key, tuple(fold(k) for k in keywords))
        if unknown:
            self._issue("*", "target", "unknown concept file", len(unknown), len(self._files(SETS["target"])),
                        tuple(unknown[:5]), "files that name no HUB concept and no manifest concept; ignored")
        return dict(sorted(out.items()))

    def concept(self, name: str) -> ConceptInfo:
        info = self.concepts.get(name) or lookup(name, self.concepts)
        if info is None:
            raise MissingPromptFile(f"concept {name!r} is not in prompt folder {self.root} "
                                    f"(available: {', '.join(self.concepts) or 'none'})")
        return info

    def by_category(self, category: str) -> list[ConceptInfo]:
        return [c for c in self.concepts.values() if c.category == category]

    def _issue(self, concept: str, prompt_set: str, kind: str, count: int, total: int, examples=(), message=""):
        if count:
            self._issues[(concept, prompt_set, kind)] = ValidationIssue(concept, prompt_set, kind, int(count),
                                                                        int(total), tuple(examples), message)

    def _file(self, subdir: str, name: str, *, quiet: bool = False) -> Path | None:
        files = self._files(subdir)
        path = files.get(_nfc(name))
        if path is None:  # same name up to case, accents, "_" vs " " (exact name preferred above)
            matches = [p for stem, p in files.items() if fold(stem) == fold(name)]
            path = matches[0] if matches else None
            if path is not None and not quiet:
                self._issue(name, subdir, "file name variant", 1, 1, (path.name,), f"used {path.name} for {name!r}")
        return path

    def _require(self, subdir: str, name: str, what: str) -> Path:
        path = self._file(subdir, name)
        if path is None:
            raise MissingPromptFile(f"no {what} for {name!r}: {self.root / subdir}/{name}.* is missing "
                                    f"(this prompt folder does not ship it)", self.root / subdir)
        if is_lfs_pointer(path):
            raise LFSPointerError(f"{path} is a Git-LFS pointer, not the {what}: run `git lfs pull` in the HUB "
                                  f"checkout (upstream ships one such file, reference §10.6)", path)
        return path

    def missing(self, concept: str, prompt_set: str) -> str | None:
        """Why ``prompt_set`` ("target", "multilingual", ...) cannot be loaded for ``concept``, or None."""
        loader = {"target": self.target, "multilingual": self.multilingual, "selective": self.selective,
                  "pinpoint": self.pinpoint, "attack": self.attack}[prompt_set]
        try:
            loader(concept)
        except PromptSetError as exc:
            return str(exc)
        return None

    # -- target prompts -------------------------------------------------------------------------------
    def _target_all(self, concept: str) -> tuple[list[Prompt], dict[int, str], dict[int, int]]:
        info = self.concept(concept)
        key = ("target", info.name)
        if key not in self._cache:
            path = self._require(SETS["target"], info.name, "target prompts")
            lines = read_lines(path)
            kept: list[Prompt] = []
            by_line: dict[int, str] = {}
            line_to_kept: dict[int, int] = {}
            first: dict[str, int] = {}
            quoted = markers = empty = dups = 0
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
                k = dedupe_key(text)
                if k in first:
                    dups += 1
                    line_to_kept[i] = first[k]
                    continue
                first[k] = i
                line_to_kept[i] = i
                kept.append(Prompt(i, text))
            n = len(lines)
            self._issue(info.name, "target", "duplicate prompts", dups, n, (),
                        "removed; the first line's index is kept (target_index_map maps every line)")
            self._issue(info.name, "target", "CSV-quoted lines", quoted, n, (), "quotes removed")
            self._issue(info.name, "target", "list markers", markers, n, (), "'- ' / '1. ' removed")
            self._issue(info.name, "target", "empty lines", empty, n, (), "skipped")
            self._cache[key] = (kept, by_line, line_to_kept)
        return self._cache[key]

    def target(self, concept: str, *, naming_only: bool = False) -> list[Prompt]:
        """De-duplicated, cleaned target prompts; ``index`` = line in the published file (first occurrence).

        ``naming_only=True`` keeps only prompts that name the concept (reference §3.2: 30% of Picasso's
        prompts never do, so their images say little about erasing Picasso).
        """
        prompts = self._target_all(concept)[0]
        if naming_only:
            info = self.concept(concept)
            prompts = [p for p in prompts if info.names_in(p.text)]
        return list(prompts)

    def target_line(self, concept: str, index: int) -> str | None:
        """The cleaned prompt on line ``index`` of the target file (duplicates included), or None."""
        return self._target_all(concept)[1].get(index)

    def target_index_map(self, concept: str) -> dict[int, int]:
        """Every non-empty line of the target file -> the index of the kept prompt with the same text."""
        return dict(self._target_all(concept)[2])

    def _index_ok(self, concept: str, index: Any, text: str) -> str | None:
        """None when ``text`` is the target-file line at ``index``; else why not."""
        try:
            i = int(index)
        except (TypeError, ValueError):
            return f"Index {index!r} is not an integer"
        line = self.target_line(concept, i)
        if line is None:
            return f"Index {i} is not a prompt line of the target file"
        if match_key(line) != match_key(text):
            a, b = line, text
            n = 0  # show where the two texts part
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            start = max(0, n - 30)
            return (f"Index {i}: target line {('...' if start else '') + a[start:start + 90]!r} "
                    f"vs {('...' if start else '') + b[start:start + 90]!r}")
        return None

    # -- multilingual ---------------------------------------------------------------------------------
    def multilingual(self, concept: str) -> dict[str, list[Prompt]]:
        """language -> prompts (``English`` from HUB's ``Original`` column); ``index`` = the target-file Index.

        Rows whose ``Original`` is not the target-file line at ``Index`` are left out of every language
        (reported in ``validation``): reference images and per-index seeds rely on that mapping.
        """
        info = self.concept(concept)
        key = ("multilingual", info.name)
        if key not in self._cache:
            path = self._require(SETS["multilingual"], info.name, "multilingual prompts")
            header, rows = read_csv_rows(path)
            needed = [ORIGINAL_COLUMN, *NON_ENGLISH, "Index"]
            absent = [c for c in needed if c not in header]
            if absent:
                raise PromptSetError(f"{path}: missing columns {absent}; expected {', '.join(needed)}")
            out: dict[str, list[Prompt]] = {lang: [] for lang in LANGUAGES}
            bad, dup_idx, notes, empty = [], 0, 0, 0
            seen: set[int] = set()
            for row in rows:
                original = clean_prompt(row[ORIGINAL_COLUMN] or "")
                why = self._index_ok(info.name, row["Index"], original)
                if why:
                    bad.append(why)
                    continue
                idx = int(row["Index"])
                if idx in seen:
                    dup_idx += 1
                    continue
                seen.add(idx)
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
            self._issue(info.name, "multilingual", "Index mismatches", len(bad), n, tuple(bad[:3]),
                        "rows whose Original is not the target line at Index; excluded from every language")
            self._issue(info.name, "multilingual", "duplicate Index rows", dup_idx, n, (), "later rows dropped")
            self._issue(info.name, "multilingual", "translator notes", notes, n * len(NON_ENGLISH), (),
                        "text after an embedded line break starting with 'Note' removed")
            self._issue(info.name, "multilingual", "empty translations", empty, n, (), "rows dropped")
            self._cache[key] = out
        return {lang: list(v) for lang, v in self._cache[key].items()}

    # -- selective alignment --------------------------------------------------------------------------
    def selective(self, concept: str) -> list[SelectiveItem]:
        """Items (index, prompt, nouns): nouns stripped, lower-cased, de-duplicated, capped at ``noun_cap``;
        nouns naming the concept dropped; items whose index does not match the target file left out."""
        info = self.concept(concept)
        key = ("selective", info.name)
        if key not in self._cache:
            path = self._require(SETS["selective"], info.name, "selective-alignment items")
            try:
                data = json.loads(path.read_text(encoding="utf-8-sig"))
            except ValueError as exc:
                raise PromptSetError(f"{path}: not valid JSON ({exc})") from exc
            if not isinstance(data, list):
                raise PromptSetError(f"{path}: expected a JSON list of {{prompt, nouns, index}} objects")
            items: list[SelectiveItem] = []
            bad, no_nouns, dup_idx, malformed = [], 0, 0, 0
            totals = {"raw": 0, "duplicates": 0, "excluded": 0, "too_long": 0, "capped": 0, "empty": 0}
            seen: set[int] = set()
            for entry in data:
                if not isinstance(entry, dict) or "prompt" not in entry or "index" not in entry:
                    malformed += 1
                    continue
                prompt = clean_prompt(str(entry["prompt"]))
                why = self._index_ok(info.name, entry["index"], prompt)
                if why:
                    bad.append(why)
                    continue
                idx = int(entry["index"])
                if idx in seen:
                    dup_idx += 1
                    continue
                seen.add(idx)
                nouns, stats = clean_nouns(entry.get("nouns") or [], cap=self.noun_cap, exclude=info.names_in,
                                           max_words=self.max_noun_words)
                for k, v in stats.items():
                    totals[k] += v
                if not nouns:
                    no_nouns += 1
                    continue
                items.append(SelectiveItem(idx, prompt, nouns))
            n = len(data)
            self._issue(info.name, "selective", "Index mismatches", len(bad), n, tuple(bad[:3]),
                        "items whose prompt is not the target line at index; excluded")
            self._issue(info.name, "selective", "malformed items", malformed, n, (), "skipped")
            self._issue(info.name, "selective", "duplicate index items", dup_idx, n, (), "later items dropped")
            self._issue(info.name, "selective", "items without nouns", no_nouns, n, (), "dropped after cleaning")
            raw = totals["raw"]
            for kind, msg in (("duplicates", "repeated nouns removed (runaway LLM lists)"),
                              ("capped", f"nouns beyond the cap of {self.noun_cap} per prompt dropped"),
                              ("excluded", "nouns naming the target dropped"),
                              ("too_long", f"'nouns' longer than {self.max_noun_words} words dropped")):
                self._issue(info.name, "selective", f"nouns: {kind}", totals[kind], raw, (), msg)
            self._cache[key] = items
        return list(self._cache[key])

    # -- pinpoint-ness --------------------------------------------------------------------------------
    def pinpoint_file(self, concept: str) -> Path:
        """The neighbour file used for ``concept``: its model key's (``NSFW.csv`` for the shared NSFW
        model, reference §5.3) when that exists and differs from the concept, else the concept's own."""
        info = self.concept(concept)
        if info.model_key != info.name:
            shared = self._file(SETS["pinpoint"], info.model_key, quiet=True)
            if shared is not None:
                return self._require(SETS["pinpoint"], info.model_key, "pinpoint neighbours")
        return self._require(SETS["pinpoint"], info.name, "pinpoint neighbours")

    def pinpoint(self, concept: str, top_k: int | None = -1) -> list[Neighbour]:
        """The ``top_k`` (default ``pinpoint_top_k``, 100 as in HUB) nearest neighbours by similarity.

        Underscores become spaces ("minnie_mouse" -> "minnie mouse"); duplicates and nouns that name
        the target (or, for a shared model, any concept of that model) are dropped.
        """
        info = self.concept(concept)
        top_k = self.pinpoint_top_k if top_k == -1 else top_k
        path = self.pinpoint_file(concept)
        key = ("pinpoint", str(path))
        if key not in self._cache:
            header, rows = read_csv_rows(path)
            if "noun" not in header or "similarity" not in header:
                raise PromptSetError(f"{path}: expected columns noun,similarity; found {header}")
            sharers = [c for c in self.concepts.values() if c.model_key == info.model_key] or [info]
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
            label = path.stem
            self._issue(label, "pinpoint", "unreadable rows", bad, n, (), "skipped")
            self._issue(label, "pinpoint", "duplicate nouns", dup, n, (), "dropped")
            self._issue(label, "pinpoint", "target nouns", target, n, (), "nouns naming the target itself dropped")
            self._cache[key] = out
        out = self._cache[key]
        if top_k is not None and len(out) < top_k:
            self._issue(path.stem, "pinpoint", "short neighbour list", top_k - len(out), top_k, (),
                        f"only {len(out)} neighbours for a top-{top_k}")
        return list(out[:top_k] if top_k is not None else out)

    def pinpoint_prompts(self, concept: str, top_k: int | None = -1) -> list[Prompt]:
        """``pinpoint_template`` applied to each neighbour; ``index`` = the neighbour's rank."""
        return [Prompt(i, self.pinpoint_template.format(noun=nb.noun))
                for i, nb in enumerate(self.pinpoint(concept, top_k))]

    # -- attack and general ---------------------------------------------------------------------------
    def attack(self, concept: str) -> list[Prompt]:
        """Ring-A-Bell prompts (one per line; whitespace and CSV quoting removed, duplicates dropped)."""
        info = self.concept(concept)
        key = ("attack", info.name)
        if key not in self._cache:
            path = self._require(SETS["attack"], info.name, "attack prompts")
            lines = read_lines(path)
            out, seen, dup = [], set(), 0
            for i, raw in enumerate(lines):
                text = clean_prompt(raw, strip_markers=False)
                if not text:
                    continue
                k = dedupe_key(text)
                if k in seen:
                    dup += 1
                    continue
                seen.add(k)
                out.append(Prompt(i, text))
            self._issue(info.name, "attack", "duplicate prompts", dup, len(lines), (), "removed")
            self._cache[key] = out
        return list(self._cache[key])

    def general(self) -> list[Prompt]:
        """General captions (COCO, or the manifest's ``general`` file); ``index`` = data row number."""
        key = ("general",)
        if key not in self._cache:
            name = str(self.manifest.get("general", COCO_FILE))
            path = self.root / name
            if not path.is_file():
                raise MissingPromptFile(f"no general captions: {path} is missing", path)
            if is_lfs_pointer(path):
                raise LFSPointerError(f"{path} is a Git-LFS pointer, not the captions: run `git lfs pull`", path)
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
            self._issue("*", "general", "captions with embedded newlines", multiline, len(rows), (),
                        "newlines replaced by spaces")
            self._cache[key] = out
        return list(self._cache[key])

    # -- validation -----------------------------------------------------------------------------------
    def validate(self) -> list[ValidationIssue]:
        """Read every file of every concept and return all issues (missing/LFS files included)."""
        loaders = (("target", self.target), ("multilingual", self.multilingual), ("selective", self.selective),
                   ("pinpoint", self.pinpoint), ("attack", self.attack))
        for name in self.concepts:
            for set_name, loader in loaders:
                try:
                    loader(name)
                except LFSPointerError as exc:
                    self._issue(name, set_name, "Git-LFS pointer", 1, 1, (), str(exc))
                except PromptSetError as exc:
                    self._issue(name, set_name, "missing", 1, 1, (), str(exc))
        try:
            self.general()
        except PromptSetError as exc:
            self._issue("*", "general", "missing", 1, 1, (), str(exc))
        return self.validation

    @property
    def validation(self) -> list[ValidationIssue]:
        """Issues found in the files read so far (``validate()`` reads them all)."""
        return list(self._issues.values())

    def issues(self, concept: str | None = None, prompt_set: str | None = None) -> list[ValidationIssue]:
        return [i for i in self._issues.values()
                if (concept is None or i.concept == concept) and (prompt_set is None or i.prompt_set == prompt_set)]

    def __repr__(self) -> str:
        return f"<PromptFolder {self.root} concepts={list(self.concepts)}>"


def load_prompt_folder(root: str | Path, **options) -> PromptFolder:
    """Load a HUB-layout prompt folder (see module docstring); ``options``: noun_cap, pinpoint_top_k,
    max_noun_words."""
    return PromptFolder(root, **options)
