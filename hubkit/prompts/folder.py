"""A prompt folder in HUB's published layout (reference §3.3), loaded, cleaned and validated.

    root/
      target_image/<concept>.csv             no header, one prompt per line; Prompt.index = line number (0-based)
      multilingual_robustness/<concept>.csv  Original,Spanish,French,German,Italian,Portuguese,Index
      selective_alignment/<concept>.json     [{prompt, nouns[], index}]
      pinpoint_ness/<concept>.csv            noun,similarity (NSFW.csv: HUB's shared NSFW model, a fallback)
      attack_robustness/<concept>.csv        no header, one adversarial prompt per line
      MS-COCO_val2014_30k_captions.csv       image_id,text
      hubkit.toml                            optional manifest (overrides the HUB catalogue)

An optional ``hubkit.toml`` manifest overrides the HUB catalogue (``hubkit.prompts.manifest``).

Defects handled (reference §10.6, and what HUB's complete folder was found to hold): every defect is
decided by a written rule of ``hubkit.prompts.clean.RULES`` (kept, cleaned, dropped or refused) and filed
as a ``ValidationIssue`` under the concept that reads the file. Git-LFS pointers, missing files, files that
are not UTF-8 and malformed files raise ``PromptSetError`` subclasses with the reason (a fixture turns them
into a skip) and are "refused" issues in ``validate()``; multilingual and selective ``Index`` values are
checked against the target file; stray files such as ``Andy_Warhol.csv`` next to ``Andy Warhol.csv`` are
ignored (the exact name wins). ``counts`` holds what each set read and kept; ``provenance(concept)`` the
files used and the issues, for the report and ``results.json``; ``hubkit prompts check DIR`` prints them.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

from hubkit.errors import PromptSetError
from hubkit.prompts.catalogue import ConceptInfo, fold, lookup
from hubkit.prompts.clean import RULES, is_lfs_pointer, match_key
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
    MalformedFile,
    NothingLeft,
    MissingPromptFile,
    Neighbour,
    NotUTF8Error,
    Prompt,
    SelectiveItem,
    SetCount,
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
        self.counts: dict[tuple[str, str], SetCount] = {}  # (concept, set) -> what it read and kept
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

    def attack_settings(self, attack: str) -> dict[str, Any]:
        """The manifest's ``[attacks.<attack>]`` table: budget keys this folder's world sets for ``attack`` (an
        attack's paper tunes its settings per concept, and HUB ran each with them), ``{}`` when it sets none."""
        table = self.manifest.get("attacks", {}) or {}
        settings = table.get(attack, {}) if isinstance(table, dict) else None
        if not isinstance(settings, dict):
            raise PromptSetError(f"{self.root / MANIFEST}: [attacks.{attack}] must be a table of {attack}'s budget "
                                 f"keys (e.g. eta = 3.0)")
        return dict(settings)

    def words(self, name: str) -> list[str]:
        """The word list ``name`` of the folder (one word per line, ``#`` comments): a search vocabulary."""
        key = ("words", str(name))
        if key not in self._cache:   # the attack's cache key and its input both read it
            path = self.root / str(name)
            if not path.is_file():
                raise PromptSetError(f"{path}: the word list named in {self.root / MANIFEST} does not exist; write it "
                                     f"or remove the key that names it")
            lines = path.read_text(encoding="utf-8").splitlines()
            self._cache[key] = [w.strip() for w in lines if w.strip() and not w.lstrip().startswith("#")]
        return list(self._cache[key])

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
                        tuple(unknown[:5]))
        return dict(sorted(out.items()))

    def concept(self, name: str) -> ConceptInfo:
        """The concept called ``name`` up to case, accents, Unicode form, ``_`` vs space and repeated spaces."""
        info = self.concepts.get(name) or lookup(name, self.concepts)
        if info is None:
            raise MissingPromptFile(f"concept {name!r} is not in prompt folder {self.root} "
                                    f"(available: {', '.join(self.concepts) or 'none'})")
        return info

    def _relative(self, path: Path | None) -> str:
        if path is None:
            return ""
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def _issue(self, concept: str, prompt_set: str, kind: str, count: int, total: int, examples=(), message="",
               path: Path | None = None):
        if count:
            rule = RULES.get(kind)
            self._issues[(concept, prompt_set, kind)] = ValidationIssue(
                concept, prompt_set, kind, int(count), int(total), tuple(examples), message or (rule.rule if rule else ""),
                rule.decision if rule else "kept", rule.unit if rule else "", self._relative(path))

    def _file_defects(self, concept: str, prompt_set: str, defects: list[Defect], path: Path | None = None) -> None:
        for d in defects:
            self._issue(concept, prompt_set, d.kind, d.count, d.total, d.examples, d.message, path)

    def _count(self, concept: str, prompt_set: str, path: Path, unit: str, read: int, kept: int) -> None:
        self.counts[(concept, prompt_set)] = SetCount(concept, prompt_set, self._relative(path), unit, read, kept)

    def _file(self, subdir: str, name: str, *, quiet: bool = False) -> Path | None:
        files = self._files(subdir)
        path = files.get(_nfc(name))
        if path is None:  # same name up to case, accents, "_" vs " " (exact name preferred above)
            matches = [p for stem, p in files.items() if fold(stem) == fold(name)]
            path = matches[0] if matches else None
            if path is not None and not quiet:
                set_name = next((k for k, v in SETS.items() if v == subdir), subdir)
                self._issue(name, set_name, "file name variant", 1, 1, (path.name,), f"used {path.name} for {name!r}",
                            path)
        return path

    def _spec(self, name: str) -> dict:
        """The manifest's table for concept ``name`` (matched like concept names), or {}."""
        declared = self.manifest.get("concepts", {}) or {}
        return next((spec for n, spec in declared.items() if fold(n) == fold(name) and isinstance(spec, dict)), {})

    def _require(self, subdir: str, name: str, what: str) -> Path:
        path = self._file(subdir, name)
        if path is None:
            raise MissingPromptFile(f"no {what} for {name!r}: {self.root / subdir}/{name}.* is missing "
                                    f"(this prompt folder does not ship it)", self.root / subdir)
        return self._not_lfs(path, what)

    def _not_lfs(self, path: Path, what: str) -> Path:
        if is_lfs_pointer(path):
            raise LFSPointerError(f"{path} is a Git-LFS pointer, not the {what}: run `git lfs pull` in the HUB "
                                  f"checkout (upstream ships one such file, reference §10.6)", path)
        return path

    # -- target prompts -------------------------------------------------------------------------------
    def _target_all(self, concept: str) -> TargetFile:
        info = self.concept(concept)
        key = ("target", info.name)
        if key not in self._cache:
            path = self._require(SETS["target"], info.name, "target prompts")
            target, defects, read = read_target(path)
            self._file_defects(info.name, "target", defects, path)
            self._count(info.name, "target", path, "lines", read, len(target.kept))
            self._cache[key] = target
        return self._cache[key]

    def target(self, concept: str) -> list[Prompt]:
        """De-duplicated, cleaned target prompts; ``index`` = line in the published file (first occurrence).
        A file left with no prompt is an error naming it: every check of the concept rests on this set."""
        found = self._target_all(concept)
        if not found.kept:
            path = self._require(SETS["target"], self.concept(concept).name, "target prompts")
            raise NothingLeft(f"{path}: no usable target prompt (empty, or every line dropped by a cleaning rule: "
                                 f"`hubkit prompts check {self.root}` lists why); fill it with one prompt per line or "
                                 f"remove the concept", path)
        return list(found.kept)

    def target_line(self, concept: str, index: int) -> str | None:
        """The cleaned prompt on line ``index`` of the target file (duplicates included), or None."""
        return self._target_all(concept).by_line.get(index)

    def _index_ok(self, concept: str, index: Any, text: str) -> tuple[str, str] | None:
        """None when ``text`` is the target-file line at ``index``; else (rule kind, why not)."""
        try:
            i = int(index)
        except (TypeError, ValueError):
            return "Index mismatches", f"Index {index!r} is not an integer"
        target = self._target_all(concept)
        line = target.by_line.get(i)
        if line is None:
            if i in target.rejected:
                return "Index on a dropped line", f"Index {i}: target line {i} {target.rejected[i]}"
            return "Index mismatches", f"Index {i} is not a prompt line of the target file"
        if match_key(line) != match_key(text) and i in target.wrapped:
            return "Index on a dropped line", f"Index {i}: target line {i} is the first fragment of a wrapped prompt"
        if match_key(line) != match_key(text):
            a, b = line, text
            n = 0  # show where the two texts part
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            start = max(0, n - 30)
            return "Index mismatches", (f"Index {i}: target line {('...' if start else '') + a[start:start + 90]!r} "
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
            out, defects, read = read_multilingual(path, lambda index, text: self._index_ok(info.name, index, text))
            self._file_defects(info.name, "multilingual", defects, path)
            self._count(info.name, "multilingual", path, "rows", read, len(out["English"]))
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
            items, defects, read = read_selective(path, lambda index, text: self._index_ok(info.name, index, text),
                                                  info, noun_cap=self.noun_cap, max_noun_words=self.max_noun_words)
            self._file_defects(info.name, "selective", defects, path)
            self._count(info.name, "selective", path, "rows", read, len(items))
            self._cache[key] = items
        return list(self._cache[key])

    # -- pinpoint-ness --------------------------------------------------------------------------------
    def pinpoint_file(self, concept: str) -> Path:
        """The neighbour file used for ``concept``: the manifest's choice (``pinpoint_file`` in the concept's
        table, a file of ``pinpoint_ness/``), else the concept's own ``<name>.csv``, else the documented
        fallback: the file of its model key (``NSFW.csv`` for HUB's shared NSFW model), filed as a "fallback
        pinpoint file" issue. HUB's code reads ``<concept>.csv``; its paper's identical NSFW pinpoint numbers
        (Tab. 35) suggest ``NSFW.csv`` was used: a manifest entry chooses that (reference §5.3)."""
        info = self.concept(concept)
        chosen = self._spec(info.name).get("pinpoint_file")
        if chosen:
            path = self.root / SETS["pinpoint"] / str(chosen)
            if not path.is_file():
                raise MissingPromptFile(f"{self.root / MANIFEST}: concepts.{info.name!r}.pinpoint_file {str(chosen)!r} "
                                        f"is not a file of {self.root / SETS['pinpoint']}; name one there or remove "
                                        f"the key", path)
            return self._not_lfs(path, "pinpoint neighbours")
        if self._file(SETS["pinpoint"], info.name, quiet=True) is None and info.model_key != info.name \
                and self._file(SETS["pinpoint"], info.model_key, quiet=True) is not None:
            path = self._require(SETS["pinpoint"], info.model_key, "pinpoint neighbours")
            self._issue(info.name, "pinpoint", "fallback pinpoint file", 1, 1, (path.name,),
                        f"no {info.name}.csv of its own: used {path.name}, the neighbours of its model "
                        f"{info.model_key!r}; set concepts.{info.name!r}.pinpoint_file in {MANIFEST} to choose", path)
            return path
        return self._require(SETS["pinpoint"], info.name, "pinpoint neighbours")

    def pinpoint(self, concept: str, top_k: int | None = -1) -> list[Neighbour]:
        """The ``top_k`` (default ``pinpoint_top_k``, 100 as in HUB) nearest neighbours by similarity.

        Underscores become spaces ("minnie_mouse" -> "minnie mouse"); duplicates are dropped, and so is a
        noun that *is* the concept (its full name or a declared alias) or another concept erased by the same
        model; a noun that merely contains a word of the name ("mickey finn", "watson") is a neighbour.
        """
        info = self.concept(concept)
        top_k = self.pinpoint_top_k if top_k == -1 else top_k
        path = self.pinpoint_file(concept)
        key = ("pinpoint", str(path), info.name)
        if key not in self._cache:
            sharers = [c for c in self.concepts.values() if c.model_key == info.model_key and c.name != info.name]
            out, defects, read = read_pinpoint(path, info, sharers)
            self._file_defects(info.name, "pinpoint", defects, path)
            self._count(info.name, "pinpoint", path, "rows", read, len(out))
            self._cache[key] = out
        out = self._cache[key]
        if top_k is not None and len(out) < top_k:
            self._issue(info.name, "pinpoint", "short neighbour list", top_k - len(out), top_k, (),
                        f"only {len(out)} neighbours for a top-{top_k}: all are used", path)
        return list(out[:top_k] if top_k is not None else out)

    # -- attack and general ---------------------------------------------------------------------------
    def attack(self, concept: str) -> list[Prompt]:
        """Ring-A-Bell prompts (one per line; whitespace and CSV quoting removed, duplicates dropped)."""
        info = self.concept(concept)
        key = ("attack", info.name)
        if key not in self._cache:
            path = self._require(SETS["attack"], info.name, "attack prompts")
            prompts, defects, read = read_attack(path)
            self._file_defects(info.name, "attack", defects, path)
            self._count(info.name, "attack", path, "lines", read, len(prompts))
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
            captions, defects, read = read_general(path)
            self._file_defects("*", "general", defects, path)
            self._count("*", "general", path, "rows", read, len(captions))
            self._cache[key] = captions
        return list(self._cache[key])

    # -- validation -----------------------------------------------------------------------------------
    _REFUSALS = ((LFSPointerError, "Git-LFS pointer"), (NotUTF8Error, "not UTF-8"), (MalformedFile, "malformed file"),
                 (NothingLeft, "nothing left"), (PromptSetError, "missing"))

    def _try(self, concept: str, set_name: str, loader) -> None:
        """Run ``loader``; a file it cannot use becomes a "refused" issue (one line: the file and the fix)."""
        try:
            loaded = loader()
        except PromptSetError as exc:
            kind = next(k for cls, k in self._REFUSALS if isinstance(exc, cls))
            self._issue(concept, set_name, kind, 1, 1, (), str(exc), getattr(exc, "path", None))
            return
        if not loaded or (isinstance(loaded, dict) and not any(loaded.values())):
            count = self.counts.get((concept, set_name))
            self._issue(concept, set_name, "nothing left", 1, 1, (),
                        f"no usable {set_name} prompt is left of {count.read if count else 0} read",
                        self.root / count.file if count else None)

    def validate(self, concept: str | None = None) -> list[ValidationIssue]:
        """Read every file of ``concept`` (default: of every concept, and the general captions) and return the
        issues found so far; a file that cannot be used is a "refused" issue instead of an exception."""
        loaders = (("target", self.target), ("multilingual", self.multilingual), ("selective", self.selective),
                   ("pinpoint", self.pinpoint), ("attack", self.attack))
        names = list(self.concepts) if concept is None else [self.concept(concept).name]
        for name in names:
            for set_name, loader in loaders:
                self._try(name, set_name, lambda: loader(name))
        self._try("*", "general", self.general)
        return self.validation

    def provenance(self, concept: str | None = None) -> dict:
        """What a result for ``concept`` rests on, for ``results.json`` and the report: the file used per prompt
        set (relative to the folder; the pinpoint file is the manifest's choice or its fallback) and every issue
        of those files, plus the folder-wide ones (filed under "*"). ``concept`` None: the general captions
        only, for the results that belong to no concept (FID, general alignment, efficiency)."""
        if concept is None:
            self._try("*", "general", self.general)
            name, sets = "*", {"general"}
        else:
            name = self.concept(concept).name
            self.validate(name)
            sets = set(SETS)
        files = {s: c.file for (c_name, s), c in self.counts.items() if c_name == name and s in sets}
        issues = [i.as_dict() for i in self._issues.values()
                  if i.concept == name or (i.concept == "*" and (i.prompt_set != "general") == (name != "*"))]
        return {"prompt_folder": str(self.root), "prompt_concept": name, "prompt_files": files, "prompt_issues": issues}

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
