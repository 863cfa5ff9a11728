"""Captions of micro-world scenes in HUB's six languages.

A caption is produced in two steps: a language-independent *plan* (template, which attributes are
mentioned) drawn from the rng, then its realisation in one language.  Two calls with identically
seeded rngs therefore describe the same scene the same way in different languages (multilingual sets).

Every word is the real word of the language; agreement is handled for articles, gender and the
German nominative/dative, with small simplifications (bare nouns after "a photo of").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from .descriptions import (
    NAME_DESCRIPTIONS, WEAPON_DESCRIPTIONS, all_phrases, describable, name_description, style_description,
    weapon_description,
)
from .render import Scene, SceneObject, canonical_scene, labels, render, sample_scene
from .world import (
    ADJECTIVES, ALL_LABELS, BACKGROUNDS, COLOURS, LANGUAGES, NAMES, NOUNS, OBJECT_LABELS, PHRASES, POSITIONS,
    SIZES, gender, position_phrase,
)

_OBJ_TEMPLATES = ("bare", "picture", "there_is")
_STYLE_TEMPLATES = ("suffix", "painting", "style_word", "style_only")


@dataclass(frozen=True)
class CaptionPlan:
    photo: bool                          # "a photo of {noun}" (single canonical plain object)
    template: str                        # one of _OBJ_TEMPLATES
    style_template: str                  # one of _STYLE_TEMPLATES (ignored for plain scenes)
    colour: tuple[bool, ...]             # per object: mention its colour
    size: tuple[bool, ...]
    position: tuple[bool, ...]
    background: bool
    described: bool = False              # describe styles and weapons instead of naming them (descriptions.py)
    described_names: bool = False        # and the characters and faces that have a description (with ``described``)


def is_canonical(scene: Scene) -> bool:
    """One big object in the centre in its natural colour, plain style: the ``a photo of X`` scene."""
    if len(scene.objects) != 1 or scene.style is not None:
        return False
    o = scene.objects[0]
    return o.colour is None and o.size == "big" and o.position == "centre"


def plan_caption(scene: Scene, rng: np.random.Generator | None = None) -> CaptionPlan:
    """The language-independent choices of a caption (all attributes when ``rng`` is None)."""
    n = len(scene.objects)
    if rng is None:
        return CaptionPlan(is_canonical(scene), "bare", "suffix", (True,) * n, (True,) * n,
                           (True,) * n, not is_canonical(scene))
    # always draw the same amount of randomness, whatever the scene, so plans stay aligned
    u = rng.random(4 + 3 * 3)
    photo = is_canonical(scene) and u[0] < 0.8
    template = "bare" if u[1] < 0.5 else "picture" if u[1] < 0.75 else "there_is"
    st = u[2]
    style_template = ("suffix" if st < 0.5 else "painting" if st < 0.7 else "style_word" if st < 0.9
                      else "style_only")
    background = bool(u[3] < 0.3)
    pos_p = 0.6 if n == 1 else 0.75
    colour = tuple(bool(u[4 + 3 * i] < 0.85) for i in range(n))
    size = tuple(bool(u[5 + 3 * i] < 0.6) for i in range(n))
    position = tuple(bool(u[6 + 3 * i] < pos_p) for i in range(n))
    return CaptionPlan(photo, template, style_template, colour, size, position, background)


# --------------------------------------------------------------------------------------------
# morphology
# --------------------------------------------------------------------------------------------
_FR_FEM = {"petit": "petite", "grand": "grande", "vert": "verte", "bleu": "bleue", "violet": "violette"}
_DE_INVARIANT = {"orange", "lila", "rosa", "beige"}
_DE_ENDINGS = {"nom": {"m": "er", "f": "e", "n": "es"}, "dat": {"m": "en", "f": "en", "n": "en"}}
_DE_ARTICLE = {"nom": {"m": "ein", "f": "eine", "n": "ein"}, "dat": {"m": "einem", "f": "einer", "n": "einem"}}
_ES_STRESSED_A = {"hacha", "arma"}
_VOWELS = "aeiouáéíóúàèìòùâêîôûh"


def _adj(word: str, language: str, g: str, case: str = "nom") -> str:
    base = ADJECTIVES[word][language]
    if language in ("Spanish", "Italian", "Portuguese"):
        if g == "f" and base.endswith("o"):
            return base[:-1] + "a"
        if language == "Spanish" and g == "f" and base == "pequeño":
            return "pequeña"
        return base
    if language == "French":
        return _FR_FEM.get(base, base) if g == "f" else base
    if language == "German":
        if base in _DE_INVARIANT:
            return base
        return base + _DE_ENDINGS[case][g]
    return base


def _article(noun_word: str, language: str, g: str, case: str = "nom") -> str:
    if language == "English":
        return "an" if noun_word[:1].lower() in "aeiou" else "a"
    if language == "Spanish":
        return "un" if g == "m" or noun_word in _ES_STRESSED_A else "una"
    if language == "French":
        return "une" if g == "f" else "un"
    if language == "German":
        return _DE_ARTICLE[case][g if g in ("m", "f", "n") else "m"]
    if language == "Italian":
        if g == "f":
            return "un'" if noun_word[:1] in _VOWELS[:-1] else "una"
        if re.match(r"^(s[^aeiou]|z|gn|ps|x|y)", noun_word):
            return "uno"
        return "un"
    if language == "Portuguese":
        return "uma" if g == "f" else "um"
    raise KeyError(language)


def _noun_word(label: str, language: str) -> str:
    if label in NAMES or language == "English":
        return label
    return NOUNS[label][language][0]


def noun_phrase(obj: SceneObject, language: str, *, colour: bool = True, size: bool = True,
                position: bool = True, case: str = "nom", described: bool = False,
                described_names: bool = False) -> str:
    """``a big red car on the left`` in ``language`` (names take no article or adjectives); ``described``
    replaces a weapon by its description (``a short sharp blade on the left``), ``described_names`` a character
    or a face (``a green round creature with antennae and one eye on the left``)."""
    label = obj.label
    if described and label in WEAPON_DESCRIPTIONS:
        np_ = weapon_description(label, language, case)
    elif described_names and label in NAME_DESCRIPTIONS:
        np_ = name_description(label, language, case)
    elif label in NAMES:
        np_ = label
    else:
        noun = _noun_word(label, language)
        g = gender(label, language)
        c = obj.colour if colour else None
        s = obj.size if size else None
        if language == "English":
            words = [w for w in (s, c) if w] + [noun]
            np_ = _article(words[0], language, g) + " " + " ".join(words)
        elif language in ("Spanish", "Italian", "Portuguese"):
            words = [noun] + [_adj(w, language, g) for w in (c, s) if w]
            art = _article(noun, language, g)
            np_ = (art + noun + " " + " ".join(words[1:]) if art.endswith("'") else art + " " + " ".join(words))
            np_ = np_.rstrip()
        elif language == "French":
            pre = [_adj(s, language, g)] if s else []
            post = [_adj(c, language, g)] if c else []
            np_ = " ".join([_article(noun, language, g)] + pre + [noun] + post)
        elif language == "German":
            adjs = [_adj(w, language, g, case) for w in (s, c) if w]
            np_ = " ".join([_article(noun, language, g, case)] + adjs + [noun])
        else:  # pragma: no cover
            raise KeyError(language)
    if position:
        np_ += " " + position_phrase(obj.position, language)
    return np_


def _join(parts: list[str], language: str) -> str:
    if len(parts) == 1:
        return parts[0]
    conj = "and" if language == "English" else PHRASES["and"][language]
    return ", ".join(parts[:-1]) + f" {conj} " + parts[-1]


def _phrase(key: str, language: str) -> str:
    return key if language == "English" else PHRASES[key][language]


def _background(bg: str, language: str) -> str:
    if language == "English":
        return f"on a {bg} background"
    if language == "German":
        stem = ADJECTIVES[bg]["German"]
        return f"auf einem {stem if stem in _DE_INVARIANT else stem + 'en'} Hintergrund"
    word = ADJECTIVES[bg][language]
    return f"{PHRASES['on a'][language]} {PHRASES['background'][language]} {word}"


def _style_word(style: str, language: str) -> str:
    return {"English": f"{style} style", "Spanish": f"estilo {style}", "French": f"style {style}",
            "German": f"im {style}-Stil", "Italian": f"stile {style}", "Portuguese": f"estilo {style}"}[language]


def _fix(text: str, language: str) -> str:
    if language == "French":
        text = re.sub(r"\bde (?=[aeiouéèêAEIOUÉ])", "d'", text)
    return re.sub(r"\s+", " ", text).strip()


def realise(scene: Scene, plan: CaptionPlan, language: str = "English") -> str:
    """The caption that ``plan`` describes, in ``language``."""
    if language not in LANGUAGES:
        raise KeyError(f"unknown language {language!r}; expected one of {LANGUAGES}")
    if plan.photo and is_canonical(scene):
        label = scene.objects[0].label
        what = (weapon_description(label, language, "dat") if plan.described and label in WEAPON_DESCRIPTIONS
                else name_description(label, language, "dat") if plan.described_names and label in NAME_DESCRIPTIONS
                else _noun_word(label, language))
        return _fix(f"{_phrase('a photo of', language)} {what}", language)
    style = scene.style
    if style is not None and plan.described:   # described styles follow the objects, whatever the style template
        plan = replace(plan, style_template="described")
    if style is not None and plan.style_template == "style_only":
        return _fix(f"{_phrase('a painting in the style of', language)} {style}", language)
    case = "dat" if language == "German" and (
        plan.template == "picture" or (style is not None and plan.style_template == "painting")) else "nom"
    parts = [noun_phrase(o, language, colour=plan.colour[i], size=plan.size[i], position=plan.position[i],
                         case=case, described=plan.described, described_names=plan.described_names)
             for i, o in enumerate(scene.objects)]
    objs = _join(parts, language)
    bg = (" " + _background(scene.background, language)) if plan.background else ""
    if style is not None and plan.style_template == "painting":
        return _fix(f"{_phrase('a painting by', language)} {style} {_phrase('with', language)} {objs}{bg}", language)
    if plan.template == "picture":
        body = f"{_phrase('a picture of', language)} {objs}"
    elif plan.template == "there_is":
        body = f"{_phrase('there is', language)} {objs}"
    else:
        body = objs
    body += bg
    if style is not None:
        if plan.style_template == "described":
            body += ", " + style_description(style, language)
        elif plan.style_template == "style_word":
            body += ", " + _style_word(style, language)
        else:
            body += f", {_phrase('in the style of', language)} {style}"
    return _fix(body, language)


def caption(scene: Scene, language: str = "English", rng: np.random.Generator | None = None) -> str:
    """A caption of ``scene`` in ``language``; ``rng`` picks the template and omitted attributes."""
    return realise(scene, plan_caption(scene, rng), language)


def _maybe_described(plan: CaptionPlan, scene: Scene, rng: np.random.Generator | None,
                     describe_p: float, names: bool = False) -> CaptionPlan:
    """With probability ``describe_p``, describe the scene's style and weapons (``names``: and its described
    characters and faces) instead of naming them.

    No draw at all when ``describe_p`` is 0, so the judges' data and the prompt folder keep their rng streams; one
    draw either way, so ``names`` changes which captions describe, not the stream."""
    if not describe_p or rng is None:
        return plan
    describe = rng.random() < describe_p
    has = scene.style is not None or any(describable(o.label, names) for o in scene.objects)
    return replace(plan, described=True, described_names=names) if describe and has else plan


def captions_all(scene: Scene, rng: np.random.Generator | None = None, describe_p: float = 0.0,
                 describe_names: bool = False) -> dict[str, str]:
    """The same plan realised in every language (HUB's multilingual rows)."""
    plan = _maybe_described(plan_caption(scene, rng), scene, rng, describe_p, describe_names)
    return {lang: realise(scene, plan, lang) for lang in LANGUAGES}


# --------------------------------------------------------------------------------------------
# training data
# --------------------------------------------------------------------------------------------
_LANG_P = np.array([0.5] + [0.1] * 5)


def training_example(rng: np.random.Generator, *, photo_p: float = 0.15, style_p: float = 0.35,
                     language: str | None = None, describe_p: float = 0.0,
                     describe_names: bool = False) -> tuple[Scene, int, str]:
    """One (scene, render seed, caption) drawn like the SD/judge training data (``describe_p``: the share of
    captions that describe styles and weapons, and with ``describe_names`` the target characters and faces, instead
    of naming them; only micro SD's data uses it)."""
    lang = language or LANGUAGES[int(rng.choice(len(LANGUAGES), p=_LANG_P))]
    seed = int(rng.integers(0, 2**62))
    if rng.random() < photo_p:
        scene = canonical_scene(OBJECT_LABELS[int(rng.integers(len(OBJECT_LABELS)))],
                                background=BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))])
        plan = _maybe_described(plan_caption(scene, None), scene, rng, describe_p, describe_names)
        text = realise(scene, plan, lang)
    else:
        scene = sample_scene(rng, style_probability=min(1.0, style_p / (1.0 - photo_p)))
        text = realise(scene, _maybe_described(plan_caption(scene, rng), scene, rng, describe_p, describe_names), lang)
    return scene, seed, text


def training_batch(rng: np.random.Generator, n: int, *, photo_p: float = 0.15, style_p: float = 0.35
                   ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(images uint8 [n,64,64,3], captions, labels float32 [n, len(ALL_LABELS)])``.

    Languages: English ~50%, the five others ~10% each; ~15% single canonical ``a photo of X``
    scenes; ~35% of scenes in a named style.
    """
    images = np.empty((n, 64, 64, 3), np.uint8)
    texts: list[str] = []
    y = np.zeros((n, len(ALL_LABELS)), np.float32)
    for i in range(n):
        scene, seed, text = training_example(rng, photo_p=photo_p, style_p=style_p)
        images[i] = render(scene, seed)
        texts.append(text)
        y[i] = labels(scene)
    return images, texts, y


# --------------------------------------------------------------------------------------------
# vocabulary (for tests and for prompt cleaning)
# --------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"[^\s,:'\-]+")


def tokens(text: str) -> list[str]:
    """Word tokens of a caption (names split into their parts)."""
    return _TOKEN.findall(text)


def vocabulary(language: str) -> frozenset[str]:
    """Every word a caption in ``language`` may contain, names excluded (lower-case)."""
    words: set[str] = set()

    def add(text: str) -> None:
        words.update(t.lower() for t in tokens(text))

    gens = ("m", "f", "n")
    for label in NOUNS:
        add(_noun_word(label, language) if label != "background" or language != "English" else "background")
    for key in PHRASES:
        add(_phrase(key, language) if language != "English" else key)
    for pos in POSITIONS:
        add(position_phrase(pos, language))
    for adj in ADJECTIVES:
        if language == "English":
            add(adj)
            continue
        for g in gens:
            for case in ("nom", "dat"):
                add(_adj(adj, language, g, case))
        add(ADJECTIVES[adj][language])
    for g in gens:
        for case in ("nom", "dat"):
            for w in ("a", "e", "s", "z", "b"):
                add(_article(w, language, g, case).rstrip("'"))
    for bg in BACKGROUNDS:
        add(_background(bg, language))
    add(_style_word("X", language))
    for phrase in all_phrases(language):
        add(phrase)
    add({"English": "on the left on the right at the top at the bottom in the centre", "French": "d",
         "Italian": "un", "Spanish": "", "German": "", "Portuguese": ""}[language])
    words.discard("x")
    return frozenset(words)


def name_tokens() -> frozenset[str]:
    return frozenset(t.lower() for n in NAMES for t in tokens(n))


__all__ = ["caption", "captions_all", "training_batch", "training_example", "plan_caption", "realise", "CaptionPlan", "noun_phrase", "is_canonical",
           "vocabulary", "tokens", "name_tokens", "COLOURS", "SIZES"]
