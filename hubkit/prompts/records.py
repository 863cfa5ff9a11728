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
