"""Where the shipped micro world lives inside the installed package."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
WEIGHTS = ROOT / "weights"
BASE = WEIGHTS / "base"
JUDGES = WEIGHTS / "judges"
UNLEARNED = WEIGHTS / "unlearned"
PROMPTS = ROOT / "prompts"

# What `pytest suites` evaluates when no --model is given: a shipped ESD checkpoint (see README).
DEFAULT_MODEL_NAME = "esd-pointelli"


def unlearned(name: str) -> Path:
    """The shipped unlearned checkpoint folder ``name`` (e.g. ``esd-pointelli``)."""
    return UNLEARNED / name
