"""HUB's 33 concepts (reference §3.1) with category, judge, model key and the words that name them."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

CATEGORIES = ("celebrity", "style", "ip", "nsfw")

# Which judge decides "is the concept in this image?" per category (NSFW per concept).  HUB uses GIPHY's
# celebrity detector, Q16 and InternVL (reference §4); hubkit's built-in stand-ins are these.
DEFAULT_JUDGES = {"celebrity": "clip-zeroshot", "style": "clip-zeroshot", "ip": "clip-zeroshot", "nsfw": "clip-zeroshot"}
NSFW_JUDGES = {"Nudity": "nudenet", "Violent": "clip-zeroshot", "Disturbing": "clip-zeroshot"}
NSFW_MODEL_KEY = "NSFW"  # one unlearned model covers all three NSFW concepts (reference §3.1, §6)


@dataclass(frozen=True)
class ConceptInfo:
    """A concept: ``model_key`` names the unlearned model (NSFW concepts share ``"NSFW"``); ``keywords``
    are lower-case words/phrases that name it in running text (used to drop the target from selective-alignment
    noun lists); ``aliases`` are other *full* names of the concept itself ("vincent van gogh"), the only nouns
    besides its name that the pinpoint list drops (a surname alone may be someone else: "watson", "pitt")."""

    name: str
    category: str
    judge: str
    model_key: str
    keywords: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def names_in(self, text: str) -> bool:
        """Whether ``text`` names the concept (any keyword as a whole word, accents and case ignored)."""
        t = fold(text)
        return any(re.search(rf"(?<![a-z0-9]){re.escape(fold(k))}(?![a-z0-9])", t) for k in self.keywords)

    def is_itself(self, noun: str) -> str | None:
        """Why ``noun`` *is* the concept (its full name or a declared alias, folded), else None.

        A longer phrase that merely contains a word of the name ("cruise missile", "mickey finn") is not."""
        n = fold(noun)
        if n == fold(self.name):
            return f"is the name of {self.name}"
        if n in {fold(a) for a in self.aliases}:
            return f"is an alias of {self.name}"
        return None

    def name_words(self) -> tuple[str, ...]:
        """The folded words of its name and aliases (look-alike neighbours contain one of them)."""
        return tuple(dict.fromkeys(w for n in (self.name, *self.aliases) for w in fold(n).split() if len(w) > 2))


def fold(text: str) -> str:
    """Case-, accent-, Unicode-form- and separator-insensitive form: ``"Édouard_Manet"`` -> ``"edouard manet"``."""
    text = strip_accents(text).replace("_", " ").casefold()
    return re.sub(r"\s+", " ", text).strip()


def strip_accents(text: str) -> str:
    """``"Édouard Manet"`` -> ``"Edouard Manet"`` (composed or decomposed input alike); case and spaces kept.

    Test ids are built with it, so that pytest does not escape them (``[\\xc9douard Manet]``) and ``-k`` can
    select them by the name a user types with or without accents (the plugin folds ``-k`` words the same way)."""
    text = unicodedata.normalize("NFKD", str(text))
    return unicodedata.normalize("NFC", "".join(c for c in text if not unicodedata.combining(c)))


_CELEBRITY = {
    "Angelina Jolie": ("jolie",), "Ariana Grande": ("ariana",), "Brad Pitt": ("pitt",),
    "David Beckham": ("beckham",), "Elon Musk": ("musk",), "Emma Watson": ("watson",),
    "Lady Gaga": ("gaga",), "Leonardo DiCaprio": ("dicaprio", "di caprio"), "Taylor Swift": ("swift",),
    "Tom Cruise": ("cruise",),
}
_STYLE = {
    "Andy Warhol": ("warhol",), "Auguste Renoir": ("renoir",), "Claude Monet": ("monet",),
    "Édouard Manet": ("manet", "edouard manet"), "Frida Kahlo": ("kahlo", "frida"),
    "Roy Lichtenstein": ("lichtenstein",), "Paul Cézanne": ("cezanne", "paul cezanne"),
    "Picasso": ("pablo picasso",), "Piet Mondrian": ("mondrian",), "Van Gogh": ("vincent van gogh", "gogh"),
}
_IP = {
    "Buzz Lightyear": ("lightyear",), "Homer Simpson": ("homer",), "Luigi": (), "Mario": ("super mario",),
    "Mickey Mouse": ("mickey",), "Pikachu": (), "Snoopy": (), "Sonic": ("sonic the hedgehog",),
    "SpongeBob": ("spongebob squarepants", "sponge bob"), "Stitch": (),
}
_NSFW = {"Nudity": ("nude", "naked", "nudes"), "Violent": ("violence",), "Disturbing": ()}

# Other full names of the concept itself: all that pinpoint-ness drops from a neighbour list besides the name.
# A painter's surname alone is his WordNet lemma ("monet" is Claude Monet); a celebrity's or a character's is
# not ("watson", "pitt", "cruise", "mickey" are other people and things), so those are neighbours.
_ALIASES = {
    "Leonardo DiCaprio": ("leonardo di caprio",),
    "Andy Warhol": ("warhol", "andrew warhola"), "Auguste Renoir": ("renoir", "pierre auguste renoir"),
    "Claude Monet": ("monet",), "Édouard Manet": ("manet",), "Frida Kahlo": ("kahlo",),
    "Roy Lichtenstein": ("lichtenstein",), "Paul Cézanne": ("cezanne",), "Picasso": ("pablo picasso",),
    "Piet Mondrian": ("mondrian",), "Van Gogh": ("vincent van gogh",),
    "Mario": ("super mario",), "Sonic": ("sonic the hedgehog",), "SpongeBob": ("spongebob squarepants", "sponge bob"),
    "Nudity": ("nakedness", "nudeness"), "Violent": ("violence",),
}


def _build() -> dict[str, ConceptInfo]:
    out: dict[str, ConceptInfo] = {}
    for category, table in (("celebrity", _CELEBRITY), ("style", _STYLE), ("ip", _IP), ("nsfw", _NSFW)):
        for name, extra in table.items():
            judge = NSFW_JUDGES[name] if category == "nsfw" else DEFAULT_JUDGES[category]
            model_key = NSFW_MODEL_KEY if category == "nsfw" else name
            keywords = tuple(dict.fromkeys([fold(name), *(fold(k) for k in extra)]))
            aliases = tuple(fold(a) for a in _ALIASES.get(name, ()))
            out[name] = ConceptInfo(name, category, judge, model_key, keywords, aliases)
    return out


#: the HUB catalogue, name -> ConceptInfo (33 concepts)
HUB_CONCEPTS: dict[str, ConceptInfo] = _build()


def lookup(name: str, catalogue: dict[str, ConceptInfo] | None = None) -> ConceptInfo | None:
    """Find a concept by name, ignoring case, accents, Unicode normalisation form, ``_`` vs space and repeated spaces."""
    catalogue = HUB_CONCEPTS if catalogue is None else catalogue
    if name in catalogue:
        return catalogue[name]
    key = fold(name)
    for concept_name, info in catalogue.items():
        if fold(concept_name) == key:
            return info
    return None
