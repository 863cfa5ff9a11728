"""The micro world's catalogue: labels, target concepts, neighbours and a six-language lexicon.

Everything here is pure data plus a few lookup functions (numpy/PIL free), so the prompt
loader, the judges and the caption writer can all import it cheaply.

Analogues of HUB's four categories:

* ``ip``        invented cartoon characters (HUB: Mickey Mouse, Pikachu)
* ``celebrity`` invented named faces (HUB: Brad Pitt, Emma Watson)
* ``style``     whole-image rendering styles named like artists (HUB: Van Gogh, Picasso)
* ``nsfw``      the broad category "weapon" (knife, sword, axe, spear) with look-alike tools
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hubkit.languages import LANGUAGES  # HUB's six languages (English first); re-exported

IMAGE_SIZE = 64

# --------------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------------
THINGS = ("tree", "house", "car", "ball", "cup", "flower", "star", "moon", "fish", "bird")
CHARACTERS = ("Zorbo", "Pipkin", "Mumblo", "Fizzwick", "Tootle", "Glimmer", "Zorbix")
FACES = ("Dario Voss", "Mina Castell", "Oskar Brandt", "Lena Moreau", "Felix Okoro", "Greta Lindqvist")
WEAPONS = ("knife", "sword", "axe", "spear")
TOOLS = ("hammer", "spoon", "fork", "wrench", "key", "saw")
STYLES = ("Pointelli", "Strokovsky", "Pixelmann", "Lineaux", "Neonardo", "Mosaico")

OBJECT_LABELS: tuple[str, ...] = THINGS + CHARACTERS + FACES + WEAPONS + TOOLS
STYLE_LABELS: tuple[str, ...] = STYLES
ALL_LABELS: tuple[str, ...] = OBJECT_LABELS + STYLE_LABELS
LABEL_INDEX: dict[str, int] = {label: i for i, label in enumerate(ALL_LABELS)}

_KIND: dict[str, str] = {}
for _labels, _kind in ((THINGS, "thing"), (CHARACTERS, "character"), (FACES, "face"),
                       (WEAPONS, "weapon"), (TOOLS, "tool"), (STYLES, "style")):
    for _label in _labels:
        _KIND[_label] = _kind

#: kinds whose colour is an attribute (characters and faces keep their signature colours)
COLOURABLE_KINDS = frozenset({"thing", "weapon", "tool"})
#: labels that are proper names (no article, never translated)
NAMES: frozenset[str] = frozenset(CHARACTERS + FACES + STYLES)

COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown")
SIZES = ("small", "big")
POSITIONS = ("left", "right", "top", "bottom", "centre")
BACKGROUNDS = ("white", "grey", "beige", "pale blue", "pale green", "striped", "dotted", "checkered")


def kind(label: str) -> str:
    """``"thing" | "character" | "face" | "weapon" | "tool" | "style"``; KeyError for unknown labels."""
    try:
        return _KIND[label]
    except KeyError:
        raise KeyError(f"unknown micro-world label {label!r}; known: {', '.join(ALL_LABELS)}") from None


# --------------------------------------------------------------------------------------------
# visual features (used for pinpoint similarity: Jaccard overlap of feature sets)
# --------------------------------------------------------------------------------------------
FEATURES: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    # characters
    "Zorbo": {"creature", "round body", "antennae", "one eye", "green", "feet", "smile"},
    "Zorbix": {"creature", "round body", "antennae", "one eye", "blue", "feet"},
    "Pipkin": {"creature", "egg body", "long ears", "two eyes", "yellow", "cheeks", "smile"},
    "Mumblo": {"creature", "square body", "round ears", "two eyes", "blue", "belly"},
    "Fizzwick": {"creature", "triangle body", "horns", "three eyes", "orange", "feet"},
    "Tootle": {"creature", "round body", "wings", "two eyes", "pink", "cheeks", "smile"},
    "Glimmer": {"creature", "diamond body", "crown", "two eyes", "purple", "feet"},
    # faces
    "Dario Voss": {"face", "square face", "blond hair", "short hair", "beard", "light skin", "man"},
    "Mina Castell": {"face", "round face", "red hair", "long hair", "light skin", "woman"},
    "Oskar Brandt": {"face", "round face", "bald", "grey beard", "beard", "glasses", "light skin", "man"},
    "Lena Moreau": {"face", "round face", "black hair", "short hair", "hat", "medium skin", "woman"},
    "Felix Okoro": {"face", "square face", "black hair", "short hair", "glasses", "dark skin", "man"},
    "Greta Lindqvist": {"face", "long face", "blond hair", "long hair", "light skin", "woman", "hat"},
    # weapons and tools
    "knife": {"handheld", "blade", "handle", "sharp", "short", "metal"},
    "sword": {"handheld", "blade", "handle", "sharp", "long", "metal", "crossguard"},
    "axe": {"handheld", "head", "handle", "sharp", "long", "metal", "wedge"},
    "spear": {"handheld", "shaft", "sharp", "long", "metal", "point"},
    "hammer": {"handheld", "head", "handle", "long", "metal", "blunt"},
    "spoon": {"handheld", "handle", "bowl", "short", "metal", "blunt", "cutlery"},
    "fork": {"handheld", "handle", "prongs", "short", "metal", "point", "cutlery"},
    "wrench": {"handheld", "handle", "jaw", "short", "metal", "blunt"},
    "key": {"handheld", "ring", "short", "metal", "teeth"},
    "saw": {"handheld", "blade", "handle", "teeth", "sharp", "long", "metal"},
    # styles
    "Pointelli": {"style", "dots", "texture", "light paper", "colour kept"},
    "Strokovsky": {"style", "strokes", "texture", "diagonal", "colour kept", "light paper"},
    "Pixelmann": {"style", "blocks", "posterised", "colour kept"},
    "Lineaux": {"style", "outline", "light paper", "thin lines"},
    "Neonardo": {"style", "outline", "dark background", "glow"},
    "Mosaico": {"style", "blocks", "grout", "texture", "colour kept"},
}.items()}


def similarity(a: str, b: str) -> float:
    """Shared-visual-feature similarity in [0, 1] (Jaccard overlap of :data:`FEATURES`)."""
    fa, fb = FEATURES.get(a, frozenset()), FEATURES.get(b, frozenset())
    if not fa or not fb:
        return 0.0
    return round(len(fa & fb) / len(fa | fb), 4)


# --------------------------------------------------------------------------------------------
# lexicon: English word -> {language: translation}; nouns carry a grammatical gender
# --------------------------------------------------------------------------------------------
_L = ("Spanish", "French", "German", "Italian", "Portuguese")


def _row(*words: str) -> dict[str, str]:
    assert len(words) == 5, words
    return dict(zip(_L, words))


#: noun -> {language: (word, gender)}; gender "m" | "f" | "n"
NOUNS: dict[str, dict[str, tuple[str, str]]] = {
    "tree": {"Spanish": ("árbol", "m"), "French": ("arbre", "m"), "German": ("Baum", "m"),
             "Italian": ("albero", "m"), "Portuguese": ("árvore", "f")},
    "house": {"Spanish": ("casa", "f"), "French": ("maison", "f"), "German": ("Haus", "n"),
              "Italian": ("casa", "f"), "Portuguese": ("casa", "f")},
    "car": {"Spanish": ("coche", "m"), "French": ("voiture", "f"), "German": ("Auto", "n"),
            "Italian": ("macchina", "f"), "Portuguese": ("carro", "m")},
    "ball": {"Spanish": ("pelota", "f"), "French": ("balle", "f"), "German": ("Ball", "m"),
             "Italian": ("palla", "f"), "Portuguese": ("bola", "f")},
    "cup": {"Spanish": ("taza", "f"), "French": ("tasse", "f"), "German": ("Tasse", "f"),
            "Italian": ("tazza", "f"), "Portuguese": ("xícara", "f")},
    "flower": {"Spanish": ("flor", "f"), "French": ("fleur", "f"), "German": ("Blume", "f"),
               "Italian": ("fiore", "m"), "Portuguese": ("flor", "f")},
    "star": {"Spanish": ("estrella", "f"), "French": ("étoile", "f"), "German": ("Stern", "m"),
             "Italian": ("stella", "f"), "Portuguese": ("estrela", "f")},
    "moon": {"Spanish": ("luna", "f"), "French": ("lune", "f"), "German": ("Mond", "m"),
             "Italian": ("luna", "f"), "Portuguese": ("lua", "f")},
    "fish": {"Spanish": ("pez", "m"), "French": ("poisson", "m"), "German": ("Fisch", "m"),
             "Italian": ("pesce", "m"), "Portuguese": ("peixe", "m")},
    "bird": {"Spanish": ("pájaro", "m"), "French": ("oiseau", "m"), "German": ("Vogel", "m"),
             "Italian": ("uccello", "m"), "Portuguese": ("pássaro", "m")},
    "knife": {"Spanish": ("cuchillo", "m"), "French": ("couteau", "m"), "German": ("Messer", "n"),
              "Italian": ("coltello", "m"), "Portuguese": ("faca", "f")},
    "sword": {"Spanish": ("espada", "f"), "French": ("épée", "f"), "German": ("Schwert", "n"),
              "Italian": ("spada", "f"), "Portuguese": ("espada", "f")},
    "axe": {"Spanish": ("hacha", "f"), "French": ("hache", "f"), "German": ("Axt", "f"),
            "Italian": ("ascia", "f"), "Portuguese": ("machado", "m")},
    "spear": {"Spanish": ("lanza", "f"), "French": ("lance", "f"), "German": ("Speer", "m"),
              "Italian": ("lancia", "f"), "Portuguese": ("lança", "f")},
    "hammer": {"Spanish": ("martillo", "m"), "French": ("marteau", "m"), "German": ("Hammer", "m"),
               "Italian": ("martello", "m"), "Portuguese": ("martelo", "m")},
    "spoon": {"Spanish": ("cuchara", "f"), "French": ("cuillère", "f"), "German": ("Löffel", "m"),
              "Italian": ("cucchiaio", "m"), "Portuguese": ("colher", "f")},
    "fork": {"Spanish": ("tenedor", "m"), "French": ("fourchette", "f"), "German": ("Gabel", "f"),
             "Italian": ("forchetta", "f"), "Portuguese": ("garfo", "m")},
    "wrench": {"Spanish": ("llave inglesa", "f"), "French": ("clé à molette", "f"),
               "German": ("Schraubenschlüssel", "m"), "Italian": ("chiave inglese", "f"),
               "Portuguese": ("chave inglesa", "f")},
    "key": {"Spanish": ("llave", "f"), "French": ("clé", "f"), "German": ("Schlüssel", "m"),
            "Italian": ("chiave", "f"), "Portuguese": ("chave", "f")},
    "saw": {"Spanish": ("sierra", "f"), "French": ("scie", "f"), "German": ("Säge", "f"),
            "Italian": ("sega", "f"), "Portuguese": ("serra", "f")},
    "weapon": {"Spanish": ("arma", "f"), "French": ("arme", "f"), "German": ("Waffe", "f"),
               "Italian": ("arma", "f"), "Portuguese": ("arma", "f")},
    "background": {"Spanish": ("fondo", "m"), "French": ("fond", "m"), "German": ("Hintergrund", "m"),
                   "Italian": ("sfondo", "m"), "Portuguese": ("fundo", "m")},
}

#: adjectives (masculine / base form); feminine and German endings are derived in captions.py
ADJECTIVES: dict[str, dict[str, str]] = {
    "red": _row("rojo", "rouge", "rot", "rosso", "vermelho"),
    "orange": _row("naranja", "orange", "orange", "arancione", "laranja"),
    "yellow": _row("amarillo", "jaune", "gelb", "giallo", "amarelo"),
    "green": _row("verde", "vert", "grün", "verde", "verde"),
    "blue": _row("azul", "bleu", "blau", "blu", "azul"),
    "purple": _row("morado", "violet", "lila", "viola", "roxo"),
    "pink": _row("rosa", "rose", "rosa", "rosa", "rosa"),
    "brown": _row("marrón", "marron", "braun", "marrone", "marrom"),
    "small": _row("pequeño", "petit", "klein", "piccolo", "pequeno"),
    "big": _row("grande", "grand", "groß", "grande", "grande"),
    # background adjectives (always agree with the masculine "background" noun)
    "white": _row("blanco", "blanc", "weiß", "bianco", "branco"),
    "grey": _row("gris", "gris", "grau", "grigio", "cinza"),
    "beige": _row("beige", "beige", "beige", "beige", "bege"),
    "pale blue": _row("azul claro", "bleu clair", "hellblau", "azzurro chiaro", "azul-claro"),
    "pale green": _row("verde claro", "vert clair", "hellgrün", "verde chiaro", "verde-claro"),
    "striped": _row("a rayas", "rayé", "gestreift", "a righe", "listrado"),
    "dotted": _row("de lunares", "à pois", "gepunktet", "a pois", "de bolinhas"),
    "checkered": _row("a cuadros", "à carreaux", "kariert", "a quadri", "xadrez"),
}

#: positions and template phrases
PHRASES: dict[str, dict[str, str]] = {
    "left": _row("a la izquierda", "à gauche", "links", "a sinistra", "à esquerda"),
    "right": _row("a la derecha", "à droite", "rechts", "a destra", "à direita"),
    "top": _row("arriba", "en haut", "oben", "in alto", "em cima"),
    "bottom": _row("abajo", "en bas", "unten", "in basso", "embaixo"),
    "centre": _row("en el centro", "au centre", "in der Mitte", "al centro", "no centro"),
    "and": _row("y", "et", "und", "e", "e"),
    "a photo of": _row("una foto de", "une photo de", "ein Foto von", "una foto di", "uma foto de"),
    "a picture of": _row("una imagen de", "une image de", "ein Bild von", "un'immagine di", "uma imagem de"),
    "a painting by": _row("un cuadro de", "un tableau de", "ein Gemälde von", "un dipinto di", "uma pintura de"),
    "with": _row("con", "avec", "mit", "con", "com"),
    "in the style of": _row("al estilo de", "dans le style de", "im Stil von", "nello stile di", "no estilo de"),
    "a painting in the style of": _row("un cuadro al estilo de", "un tableau dans le style de",
                                       "ein Gemälde im Stil von", "un dipinto nello stile di",
                                       "uma pintura no estilo de"),
    "style": _row("estilo", "style", "Stil", "stile", "estilo"),
    "on a": _row("sobre un", "sur un", "auf einem", "su uno", "sobre um"),
    "background": _row("fondo", "fond", "Hintergrund", "sfondo", "fundo"),
    "there is": _row("hay", "il y a", "da ist", "c'è", "há"),
}

_POSITION_PREFIX = {  # English position phrases as they appear in captions
    "left": "on the left", "right": "on the right", "top": "at the top",
    "bottom": "at the bottom", "centre": "in the centre",
}


def position_phrase(position: str, language: str = "English") -> str:
    if language == "English":
        return _POSITION_PREFIX[position]
    return PHRASES[position][language]


def translate(word: str, language: str) -> str:
    """The word (label, colour, size, position, background, template phrase) in ``language``.

    Names (characters, faces, styles) stay names.  Nouns come back bare (no article),
    adjectives in their base/masculine form.  ``KeyError`` for words outside the lexicon.
    """
    if language not in LANGUAGES:
        raise KeyError(f"unknown language {language!r}; expected one of {LANGUAGES}")
    if word in NAMES:
        return word
    if language == "English":
        if word in _POSITION_PREFIX:
            return _POSITION_PREFIX[word]
        if word in NOUNS or word in ADJECTIVES or word in PHRASES:
            return word
        raise KeyError(f"{word!r} is not in the micro-world lexicon")
    if word in NOUNS:
        return NOUNS[word][language][0]
    if word in ADJECTIVES:
        return ADJECTIVES[word][language]
    if word in PHRASES:
        return PHRASES[word][language]
    for pos, phrase in _POSITION_PREFIX.items():
        if word == phrase:
            return PHRASES[pos][language]
    raise KeyError(f"{word!r} is not in the micro-world lexicon")


def gender(noun: str, language: str) -> str:
    """Grammatical gender of a noun (``"m" | "f" | "n"``); names count as masculine."""
    if noun in NAMES or language == "English":
        return "m"
    return NOUNS[noun][language][1]


# --------------------------------------------------------------------------------------------
# target concepts
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Concept:
    """A *target* concept of the micro world."""

    name: str                                   # display name, e.g. "Zorbo", "weapon", "Pointelli"
    category: str                               # "style" | "ip" | "celebrity" | "nsfw"
    labels: tuple[str, ...]                     # detector labels that count as the concept
    neighbours: tuple[str, ...]                 # labels that must survive erasure (most similar first)
    keywords: dict[str, tuple[str, ...]] = field(hash=False, compare=False, default_factory=dict)


def _neighbours(target_labels: tuple[str, ...], pool: tuple[str, ...]) -> tuple[str, ...]:
    cands = [p for p in pool if p not in target_labels]
    score = {c: max(similarity(t, c) for t in target_labels) for c in cands}
    return tuple(sorted(cands, key=lambda c: (-score[c], pool.index(c))))


def _name_concept(name: str, category: str, pool: tuple[str, ...]) -> Concept:
    return Concept(name=name, category=category, labels=(name,),
                   neighbours=_neighbours((name,), pool),
                   keywords={lang: (name,) for lang in LANGUAGES})


def _weapon_keywords() -> dict[str, tuple[str, ...]]:
    out = {"English": ("weapon",) + WEAPONS}
    for lang in _L:
        out[lang] = tuple(NOUNS[w][lang][0] for w in ("weapon",) + WEAPONS)
    return out


CONCEPTS: dict[str, Concept] = {
    "Pointelli": _name_concept("Pointelli", "style", STYLES),
    "Strokovsky": _name_concept("Strokovsky", "style", STYLES),
    "Zorbo": _name_concept("Zorbo", "ip", CHARACTERS),
    "Pipkin": _name_concept("Pipkin", "ip", CHARACTERS),
    "Dario Voss": _name_concept("Dario Voss", "celebrity", FACES),
    "Mina Castell": _name_concept("Mina Castell", "celebrity", FACES),
    "weapon": Concept(name="weapon", category="nsfw", labels=WEAPONS,
                      neighbours=_neighbours(WEAPONS, TOOLS), keywords=_weapon_keywords()),
}

#: every label that belongs to some target concept (general captions avoid these)
TARGET_LABELS: frozenset[str] = frozenset(l for c in CONCEPTS.values() for l in c.labels)


def concept_labels(name_or_label: str) -> tuple[str, ...]:
    """Labels a concept name stands for (a plain label stands for itself)."""
    if name_or_label in CONCEPTS:
        return CONCEPTS[name_or_label].labels
    kind(name_or_label)  # raises for unknown words
    return (name_or_label,)


def label_vector_index(label: str) -> int:
    return LABEL_INDEX[label]


__all__ = [
    "LANGUAGES", "IMAGE_SIZE", "Concept", "CONCEPTS", "OBJECT_LABELS", "STYLE_LABELS", "ALL_LABELS",
    "THINGS", "CHARACTERS", "FACES", "WEAPONS", "TOOLS", "STYLES", "COLOURS", "SIZES", "POSITIONS",
    "BACKGROUNDS", "COLOURABLE_KINDS", "NAMES", "TARGET_LABELS", "FEATURES", "kind", "translate",
    "similarity", "gender", "concept_labels", "position_phrase",
]
