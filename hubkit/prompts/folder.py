"""A prompt folder in HUB's published layout (reference §3.3), loaded, cleaned and validated.

    root/
      target_image/<concept>.csv             no header, one prompt per line; Prompt.index = line number (0-based)
      multilingual_robustness/<concept>.csv  Original,Spanish,French,German,Italian,Portuguese,Index
      selective_alignment/<concept>.json     [{prompt, nouns[], index}]
      pinpoint_ness/<concept or NSFW>.csv    noun,similarity
      attack_robustness/<concept>.csv        no header, one adversarial prompt per line
      MS-COCO_val2014_30k_captions.csv       image_id,text
      hubkit.toml                            optional manifest (overrides the HUB catalogue)

An optional ``hubkit.toml`` manifest overrides the HUB catalogue (``hubkit.prompts.manifest``).

Defects handled (reference §10.6): Git-LFS pointer files and missing files raise ``PromptSetError``
subclasses with the reason (a fixture turns them into a skip); CSV-quoted lines, list markers, CRLF and
trailing blanks are cleaned; duplicate prompts are removed keeping the first line's index; multilingual
and selective ``Index`` values are checked against the target file and rows that do not match are
left out and reported in ``validation``; noun lists are cleaned and capped; stray files such as
``Andy_Warhol.csv`` next to ``Andy Warhol.csv`` are ignored (the exact name wins).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

from hubkit.errors import PromptSetError
from hubkit.prompts.catalogue import ConceptInfo, fold, lookup
from hubkit.prompts.clean import is_lfs_pointer, match_key
from hubkit.prompts.manifest import concept_info, declared_concepts, read_manifest
from hubkit.prompts.readers import (
    Defect,
    TargetFile,
    read_attack,
    read_general,
    read_multilingual,
    read_pinpoint,
    read_selective,
    read_target,
)
from hubkit.prompts.records import (
    COCO_FILE,
    HUB_PINPOINT_TEMPLATE,
    MANIFEST,
    SETS,
    LFSPointerError,
    MissingPromptFile,
    Neighbour,
    Prompt,
    SelectiveItem,
    ValidationIssue,
)


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
        self.manifest: dict[str, Any] = read_manifest(self.root)
        self.pinpoint_template: str = str(self.manifest.get("pinpoint_template", HUB_PINPOINT_TEMPLATE))
        self._issues: dict[tuple, ValidationIssue] = {}
        self._cache: dict[tuple, Any] = {}
        self._listing: dict[str, dict[str, Path]] = {}
        self.concepts: dict[str, ConceptInfo] = self._discover()

    # -- manifest and discovery -----------------------------------------------------------------------
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
        declared = declared_concepts(self.manifest, self.root)
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
            out[name] = concept_info(name, spec, self.root)
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

    def _issue(self, concept: str, prompt_set: str, kind: str, count: int, total: int, examples=(), message=""):
        if count:
            self._issues[(concept, prompt_set, kind)] = ValidationIssue(concept, prompt_set, kind, int(count),
                                                                        int(total), tuple(examples), message)

    def _file_defects(self, concept: str, prompt_set: str, defects: list[Defect]) -> None:
        for d in defects:
            self._issue(concept, prompt_set, d.kind, d.count, d.total, d.examples, d.message)

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

    # -- target prompts -------------------------------------------------------------------------------
    def _target_all(self, concept: str) -> TargetFile:
        info = self.concept(concept)
        key = ("target", info.name)
        if key not in self._cache:
            target, defects = read_target(self._require(SETS["target"], info.name, "target prompts"))
            self._file_defects(info.name, "target", defects)
            self._cache[key] = target
        return self._cache[key]

    def target(self, concept: str) -> list[Prompt]:
        """De-duplicated, cleaned target prompts; ``index`` = line in the published file (first occurrence)."""
        return list(self._target_all(concept).kept)

    def target_line(self, concept: str, index: int) -> str | None:
        """The cleaned prompt on line ``index`` of the target file (duplicates included), or None."""
        return self._target_all(concept).by_line.get(index)

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
            out, defects = read_multilingual(path, lambda index, text: self._index_ok(info.name, index, text))
            self._file_defects(info.name, "multilingual", defects)
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
            items, defects = read_selective(path, lambda index, text: self._index_ok(info.name, index, text), info,
                                            noun_cap=self.noun_cap, max_noun_words=self.max_noun_words)
            self._file_defects(info.name, "selective", defects)
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
            sharers = [c for c in self.concepts.values() if c.model_key == info.model_key] or [info]
            out, defects = read_pinpoint(path, sharers)
            self._file_defects(path.stem, "pinpoint", defects)
            self._cache[key] = out
        out = self._cache[key]
        if top_k is not None and len(out) < top_k:
            self._issue(path.stem, "pinpoint", "short neighbour list", top_k - len(out), top_k, (),
                        f"only {len(out)} neighbours for a top-{top_k}")
        return list(out[:top_k] if top_k is not None else out)

    # -- attack and general ---------------------------------------------------------------------------
    def attack(self, concept: str) -> list[Prompt]:
        """Ring-A-Bell prompts (one per line; whitespace and CSV quoting removed, duplicates dropped)."""
        info = self.concept(concept)
        key = ("attack", info.name)
        if key not in self._cache:
            prompts, defects = read_attack(self._require(SETS["attack"], info.name, "attack prompts"))
            self._file_defects(info.name, "attack", defects)
            self._cache[key] = prompts
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
            captions, defects = read_general(path)
            self._file_defects("*", "general", defects)
            self._cache[key] = captions
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
