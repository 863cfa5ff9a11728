"""HUB-layout prompt folders: load, clean, validate; the concept catalogue with categories.

    from hubkit.prompts import load_prompt_folder, subsample
    folder = load_prompt_folder("/path/to/HUB/prompts")
    folder.concepts["Van Gogh"]        # ConceptInfo(name, category, judge, model_key, keywords)
    folder.target("Van Gogh")          # [Prompt(index, text)], index = line in the published file
    folder.multilingual("Van Gogh")    # {"English": [...], "Spanish": [...], ...}, index = target-file Index
    folder.selective("Van Gogh")       # [SelectiveItem(index, prompt, nouns)]
    folder.pinpoint("Van Gogh")        # [Neighbour(noun, similarity)], top 100
    folder.attack("Van Gogh")          # [Prompt]
    folder.general()                   # [Prompt] COCO captions
    folder.validate()                  # [ValidationIssue] every defect, its rule and decision (reads every file)
    folder.counts                      # {(concept, set): SetCount(file, unit, read, kept)}
    folder.provenance("Van Gogh")      # files used and their issues, as results.json records them

Modules: ``folder`` (the PromptFolder API: finding files, caching, validation), ``readers`` (one parser
per prompt-set file), ``manifest`` (``hubkit.toml``), ``records`` (Prompt, SelectiveItem, Neighbour,
ValidationIssue, SetCount, errors), ``clean`` (the cleaning rules, ``RULES``), ``catalogue`` (HUB's concepts),
``sample`` (subsample), ``check`` (``hubkit prompts check DIR``).
"""

from hubkit.languages import LANGUAGES, NON_ENGLISH
from hubkit.prompts.catalogue import CATEGORIES, HUB_CONCEPTS, ConceptInfo, fold, lookup, strip_accents
from hubkit.prompts.folder import PromptFolder, load_prompt_folder
from hubkit.prompts.records import (
    COCO_FILE,
    HUB_PINPOINT_TEMPLATE,
    MANIFEST,
    LFSPointerError,
    MalformedFile,
    MissingPromptFile,
    Neighbour,
    NotUTF8Error,
    Prompt,
    SelectiveItem,
    SetCount,
    ValidationIssue,
)
from hubkit.prompts.sample import subsample

__all__ = [
    "CATEGORIES", "COCO_FILE", "HUB_CONCEPTS", "HUB_PINPOINT_TEMPLATE", "LANGUAGES", "MANIFEST", "NON_ENGLISH",
    "ConceptInfo", "LFSPointerError", "MalformedFile", "MissingPromptFile", "Neighbour", "NotUTF8Error", "Prompt",
    "PromptFolder", "SelectiveItem", "SetCount", "ValidationIssue", "fold", "load_prompt_folder", "lookup", "strip_accents", "subsample",
]
