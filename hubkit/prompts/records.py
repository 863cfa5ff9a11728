"""What a prompt folder yields: the records (prompts, selective items, neighbours), the defects found, and the
errors for files that cannot be read; plus the names of HUB's published files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hubkit.errors import PromptSetError

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


class LFSPointerError(PromptSetError):
    """A prompt file is a Git-LFS pointer: its content was never fetched."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path


class NotUTF8Error(PromptSetError):
    """A prompt file is not valid UTF-8 (files are never decoded with replacement characters)."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path


class MalformedFile(PromptSetError):
    """A prompt file is not in HUB's format (missing columns, not a JSON list of items)."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path


class NothingLeft(PromptSetError):
    """A prompt file holds no usable prompt (empty, or every line dropped by a cleaning rule)."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path


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
    """One kind of defect found in one file: how many lines/rows, out of how many, a few examples, what was
    done (``decision``: kept, cleaned, dropped or refused, from the rule of ``kind`` in
    ``hubkit.prompts.clean.RULES``) and the file, relative to the folder."""

    concept: str
    prompt_set: str
    kind: str
    count: int
    total: int
    examples: tuple = ()
    message: str = ""
    decision: str = ""
    unit: str = ""
    file: str = ""

    @property
    def refused(self) -> bool:
        """A file or set that cannot be used: the checks that need it cannot mean anything."""
        return self.decision == "refused"

    def as_dict(self) -> dict:
        return {"concept": self.concept, "set": self.prompt_set, "kind": self.kind, "count": self.count,
                "total": self.total, "unit": self.unit, "decision": self.decision, "file": self.file,
                "rule": self.message, "examples": list(self.examples)}

    def __str__(self) -> str:
        ex = f"; e.g. {self.examples[0]}" if self.examples else ""
        return (f"{self.prompt_set}/{self.concept}: {self.count}/{self.total} {self.kind} "
                f"({self.decision or 'noted'}) -- {self.message}{ex}")


@dataclass(frozen=True)
class SetCount:
    """What one prompt set of one concept read and kept (the rest is in its issues, by rule)."""

    concept: str
    prompt_set: str
    file: str       # relative to the folder
    unit: str       # lines, rows or items
    read: int
    kept: int

    def as_dict(self) -> dict:
        return {"concept": self.concept, "set": self.prompt_set, "file": self.file, "unit": self.unit,
                "read": self.read, "kept": self.kept}
