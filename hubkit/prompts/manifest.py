"""The optional ``hubkit.toml`` manifest of a prompt folder (the micro world writes one)::

    pinpoint_template = "a photo of {noun}"
    general = "captions.csv"          # optional: the general-caption file (default: the COCO list)
    fid_reference = "stats.npz"       # optional: FID reference statistics (mu, sigma), relative to the folder
    [concepts."red circle"]
    category = "ip"
    judge = "micro-detector"
    model_key = "red circle"          # optional (default: the name; "NSFW" for nsfw in the catalogue)
    keywords = ["red circle"]         # optional; or a table of lists per language
    aliases = ["the red circle"]      # optional: other full names of the concept (dropped from its neighbours)
    pinpoint_file = "NSFW.csv"        # optional: the neighbour file in pinpoint_ness/ (default: <name>.csv)

A concept declared here overrides HUB's catalogue entry of the same name. ``hubkit.session`` reads a few
more keys of the run itself (``profile``, the ``*_judge`` roles, a concept's own ``pinpoint_template``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from hubkit.errors import PromptSetError
from hubkit.prompts.catalogue import CATEGORIES, ConceptInfo, fold, lookup
from hubkit.prompts.records import MANIFEST


def read_manifest(root: Path) -> dict:
    """The parsed manifest of the folder ``root``, or ``{}`` when it has none."""
    path = root / MANIFEST
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PromptSetError(f"{path}: not valid TOML ({exc})") from exc


def declared_concepts(manifest: dict, root: Path) -> dict[str, dict]:
    """The manifest's ``[concepts]`` table (name -> spec), checked to be a table of tables."""
    declared = manifest.get("concepts", {}) or {}
    if not isinstance(declared, dict):
        raise PromptSetError(f"{root / MANIFEST}: [concepts] must be a table of tables")
    return declared


def concept_info(name: str, spec: dict, root: Path) -> ConceptInfo:
    """A declared concept; what the spec leaves out comes from HUB's catalogue (or the defaults)."""
    if not isinstance(spec, dict):
        raise PromptSetError(f"{root / MANIFEST}: [concepts.{name!r}] must be a table")
    base = lookup(name)
    category = str(spec.get("category", base.category if base else "")).lower()
    if category not in CATEGORIES:
        raise PromptSetError(f"{root / MANIFEST}: concept {name!r} has category {category!r}; "
                             f"use one of {', '.join(CATEGORIES)}")
    judge = spec.get("judge", base.judge if base else None)
    if not judge:
        raise PromptSetError(f"{root / MANIFEST}: concept {name!r} needs a judge")
    model_key = str(spec.get("model_key", base.model_key if base else name))
    keywords = spec.get("keywords", base.keywords if base else (fold(name),))
    if isinstance(keywords, dict):  # per language ({"English": [...], "Spanish": [...]}): any of them names it
        keywords = list(dict.fromkeys(k for words in keywords.values() for k in words))
    aliases = spec.get("aliases", base.aliases if base else ())
    if isinstance(aliases, str) or not all(isinstance(a, str) for a in aliases):
        raise PromptSetError(f"{root / MANIFEST}: concept {name!r}: aliases must be a list of strings")
    return ConceptInfo(name, category, str(judge), model_key, tuple(fold(k) for k in keywords),
                       tuple(fold(a) for a in aliases))
