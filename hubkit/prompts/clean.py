"""The cleaning rules for HUB's published prompt text (reference §3.2, §10.4 item 26, §10.6), in one place.

The published files keep LLM and export artefacts that HUB's own code feeds straight into the model:
whole lines wrapped in CSV quotes (with ``""`` escapes), list markers (``- ``, ``1. ``), CRLF line ends,
section headers and hard-wrapped prompts, runaway repetition loops, translator chatter, control characters,
adversarial prompts broken over two lines, and noun lists with trailing spaces, capitals, repeats and loops.

``RULES`` is the written rule for every defect the loader reports: what it is, and what is done about it
(``kept`` as published and reported, ``cleaned`` = the text is changed and kept, ``dropped`` = left out, or
``refused`` = the file cannot be used, so the checks that need it cannot mean anything). The readers
(``hubkit.prompts.readers``) apply the helpers below and count what each rule did; ``PromptFolder`` files the
counts as ``ValidationIssue`` with the rule's decision; ``hubkit prompts check DIR`` prints them.
Each rule has a test built from a synthetic file that shows the defect (``tests/test_prompts.py``).
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hubkit.prompts.records import MalformedFile, NotUTF8Error

DECISIONS = ("kept", "cleaned", "dropped", "refused")

# A runaway loop: a phrase of up to LOOP_WORDS words said LOOP_REPEATS times in a row. Written prompts repeat a
# word two or three times at most ("a brutal, brutal battle"); HUB's loops repeat one for 10,000+ characters.
LOOP_WORDS = 8
LOOP_REPEATS = 8
# Split adversarial prompts. Ring-A-Bell decodes every prompt from the same number of CLIP tokens (HUB: 16), so
# re-tokenised lines cluster (HUB: median 16-17, 99.7% of lines >= 15) and a prompt broken by a newline leaves two
# lines that are each short and together about one prompt long (HUB: 13+2, 6+9, 8+7, 9+6, 11+7, 11+5 tokens).
# Fragments have fewer than FRAGMENT_SHARE x the median token count; adjacent fragments are joined while the sum
# stays within JOINED_SHARE x the median. The rule holds only for such files: at least CLUSTERED_SHARE of the
# lines reach FRAGMENT_SHARE x the median and there are MIN_LINES_FOR_MEDIAN lines (hand-written attack prompts,
# like the micro world's, vary in length and are never joined).
FRAGMENT_SHARE = 0.8
JOINED_SHARE = 1.25
CLUSTERED_SHARE = 0.9
MIN_LINES_FOR_MEDIAN = 20
# Wrapped prompts are recognised only in files written in sentences: at least SENTENCE_CASE_SHARE of the lines
# start with a capital letter (HUB's LLM prompts; the micro world's lower-case captions are never joined).
SENTENCE_CASE_SHARE = 0.75

# A translation this much longer than its English prompt after cleaning still carries chatter or a loop.
OVERLONG_RATIO, OVERLONG_SLACK = 3.0, 40


@dataclass(frozen=True)
class Rule:
    decision: str   # one of DECISIONS
    unit: str       # what ``count`` counts: lines, rows, items, nouns, translations, files
    rule: str       # the written rule, one sentence


#: kind -> the rule; a ValidationIssue's ``kind`` is one of these keys
RULES: dict[str, Rule] = {
    # whole files (any set)
    "missing": Rule("refused", "files", "the prompt set has no file for this concept: its checks are skipped"),
    "Git-LFS pointer": Rule("refused", "files", "the file is a Git-LFS pointer, not data: run `git lfs pull`"),
    "not UTF-8": Rule("refused", "files", "files are decoded strictly as UTF-8, never with replacement "
                                         "characters: re-save the file as UTF-8"),
    "malformed file": Rule("refused", "files", "the file is not in HUB's format (columns, JSON shape)"),
    "nothing left": Rule("refused", "files", "no usable prompt is left after cleaning"),
    "unknown concept file": Rule("dropped", "files", "files that name no HUB concept and no manifest concept are ignored"),
    "file name variant": Rule("kept", "files", "a file whose name matches the concept up to case, accents and "
                                              "'_' vs ' ' is used when the exact name is absent"),
    "fallback pinpoint file": Rule("kept", "files", "no pinpoint file of the concept's own (and none chosen in the "
                                                   "manifest): the file of its model key is used (NSFW.csv for HUB's "
                                                   "shared NSFW model)"),
    # text, any prompt set
    "control characters": Rule("cleaned", "lines", "NUL and other C0/C1 control characters in written text (target "
                                                   "prompts, translations, captions) are removed"),
    "control characters in attack prompts": Rule("kept", "lines", "NUL and other control characters in adversarial "
                                                                 "prompts are kept: each is a single-byte token of the "
                                                                 "prompt the attack found (CLIP encodes NUL as its byte "
                                                                 "token), and HUB fed them to the model too"),
    "replacement characters": Rule("kept", "lines", "U+FFFD characters stored in the file are kept as published "
                                                    "(decoding artefacts of the prompt's own generator)"),
    "empty lines": Rule("dropped", "lines", "lines with no text are skipped"),
    "duplicate prompts": Rule("dropped", "lines", "a prompt repeated (up to case and spacing) is kept once, with "
                                                  "the first line's index"),
    # target prompts
    "CSV-quoted lines": Rule("cleaned", "lines", "CSV quoting around a whole line is removed (\"\" becomes \")"),
    "list markers": Rule("cleaned", "lines", "leading list markers ('- ', '1. ') are removed"),
    "section headers": Rule("dropped", "lines", "a line that ends with ':' introduces what follows ('Automobiles:', "
                                                "'Here are the prompts:') and is not a prompt"),
    "wrapped prompts": Rule("cleaned", "lines", f"in a file written in sentences ({SENTENCE_CASE_SHARE:.0%} of lines "
                                                "start with a capital), a line that starts in lower case after a line "
                                                "without a sentence-final '.', '!' or '?' continues it: the lines are "
                                                "joined into one prompt at the first line's index"),
    "repetition loops": Rule("dropped", "lines", f"a text in which a phrase of up to {LOOP_WORDS} words repeats "
                                                 f"{LOOP_REPEATS}+ times in "
                                                 "a row is a runaway LLM loop, not a prompt"),
    # multilingual and selective rows (they point into the target file by Index)
    "Index mismatches": Rule("dropped", "rows", "a row (translations, selective item) whose English text is not the "
                                                "target-file line at its Index is left out, of every language "
                                                "(reference images and seeds use Index)"),
    "Index on a dropped line": Rule("dropped", "rows", "a row whose Index is a target line that a rule dropped or "
                                                       "joined (header, loop, wrapped-prompt fragment) is left out"),
    "duplicate Index rows": Rule("dropped", "rows", "later rows with an Index already seen are left out"),
    "translator chatter": Rule("cleaned", "translations", "translator notes, explanations and labels ('(Note: ...)', "
                                                          "'(For a more natural translation ...', 'Ligne 1 :', a "
                                                          "paragraph after the translation) are removed"),
    "overlong translations": Rule("dropped", "rows", f"a translation still over {OVERLONG_RATIO:g} times as long as "
                                                     f"its English prompt (+{OVERLONG_SLACK} characters) after cleaning "
                                                     "is not a translation: "
                                                     "the row is left out of every language"),
    "translation loops": Rule("dropped", "rows", "a row with a repetition loop in any language is left out of "
                                                 "every language"),
    "empty translations": Rule("dropped", "rows", "a row with an empty text in any language is left out"),
    "malformed items": Rule("dropped", "rows", "items without prompt or index are skipped"),
    "items without nouns": Rule("dropped", "rows", "items left with no noun after cleaning are left out"),
    "nouns: duplicates": Rule("dropped", "nouns", "repeated nouns are removed (runaway LLM lists)"),
    "nouns: capped": Rule("dropped", "nouns", "nouns beyond the per-prompt cap are dropped"),
    "nouns: excluded": Rule("dropped", "nouns", "nouns naming the target are dropped"),
    "nouns: too_long": Rule("dropped", "nouns", "'nouns' longer than the word limit are LLM chatter and dropped"),
    # pinpoint neighbours
    "unreadable rows": Rule("dropped", "rows", "rows without a noun or a finite similarity are skipped"),
    "duplicate nouns": Rule("dropped", "rows", "a noun listed twice is kept once (the first, most similar row)"),
    "the concept itself": Rule("dropped", "rows", "a noun that is the concept's full name or a declared alias (or "
                                                  "those of a concept erased by the same model) is not a neighbour"),
    "look-alike neighbours": Rule("kept", "rows", "a noun that merely contains a word of the concept's name "
                                                  "('cruise missile', 'mickey finn') is a neighbour, and is kept"),
    "short neighbour list": Rule("kept", "rows", "fewer neighbours than the top-k asked for: all are used"),
    # adversarial prompts
    "embedded carriage returns": Rule("cleaned", "lines", "a lone carriage return inside a line is whitespace, "
                                                          "not a line end"),
    "split prompts": Rule("cleaned", "lines", "in a file of prompts decoded from a fixed number of tokens (Ring-A-Bell:"
                                              f" {CLUSTERED_SHARE:.0%} of lines have >= {FRAGMENT_SHARE:g}x the median "
                                              f"CLIP token count), adjacent lines each under {FRAGMENT_SHARE:g}x the "
                                              f"median that together have at most {JOINED_SHARE:g}x it are one prompt "
                                              "broken by a newline: joined at the first line's index"),
    # general captions
    "captions with embedded newlines": Rule("cleaned", "rows", "newlines inside a caption become spaces"),
}

LFS_MAGIC = "version https://git-lfs.github.com/spec/v1"

_MARKER = re.compile(r"^\s*(?:[-*\u2022\u2013]\s+|\(?\d{1,3}[.)]\s+)")
_WS = re.compile(r"\s+")
# C0 and C1 control characters except tab, line feed and carriage return (whitespace, handled by collapse_ws)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*$")

# Translator chatter (reference §3.3: Llama-3.1 translations keep the model's comments). A note word in the
# five target languages and English, an English explanation opener, or a numbered line label.
_NOTE_WORD = r"(?:note|notes|nota|notas|remarque|anmerkung|hinweis|n\.\s?b\.?)"
_EXPLAIN = (r"(?:for an?\b|i(?:'ve|\u2019ve| have| translated| used| kept| chose| tried| assumed| made)\b|"
            r"this (?:is|translation)\b|translat|traduc|tradu[cç][aã]o|[üu]bersetz|literal|litt[ée]ral|w[öo]rtlich|"
            r"letteral|please\b|here is\b|here's\b)")
_CHATTER_PARAGRAPH = re.compile(rf"^\s*(?:\(|\[)?\s*(?:{_NOTE_WORD}\b|{_EXPLAIN})", re.IGNORECASE)
_CHATTER_PAREN = re.compile(rf"\s*[(\[]\s*(?:{_NOTE_WORD}\s*[:\uff1a]|{_NOTE_WORD}\b|{_EXPLAIN})[^)\]]*(?:[)\]]|$)",
                            re.IGNORECASE)
_CHATTER_INLINE_NOTE = re.compile(rf"(?<=[.!?\u2026\"'\u201d])\s+{_NOTE_WORD}\s*[:\uff1a].*$", re.IGNORECASE | re.DOTALL)
_LINE_LABEL = re.compile(r"^\s*(?:(?:line|ligne|zeile|l[íi]nea|riga|linha)\s*\d+|translation|traduction|"
                         r"traducci[óo]n|traduzione|tradu[cç][aã]o|[üu]bersetzung)\s*[:\uff1a]\s*", re.IGNORECASE)


def is_lfs_pointer(path: Path) -> bool:
    """Whether ``path`` is a Git-LFS pointer file instead of the data it stands for."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(LFS_MAGIC) + 8)
    except OSError:
        return False
    return head.lstrip(b"\xef\xbb\xbf").startswith(LFS_MAGIC.encode())


def collapse_ws(text: str) -> str:
    return _WS.sub(" ", text).strip()


def unquote(text: str) -> str:
    """Undo CSV quoting of a whole field: ``"a ""b"" c"`` -> ``a "b" c``; repeated wrapping too."""
    text = text.strip()
    for _ in range(4):
        if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
            inner = text[1:-1]
            # a properly CSV-quoted field: the inside has only doubled quotes
            if '"' in inner.replace('""', ""):
                break  # e.g. '"A" and "B"': quotes that belong to the text
            text = inner.replace('""', '"').strip()
        else:
            break
    return text


def clean_prompt(text: str, *, strip_markers: bool = True) -> str:
    """One prompt: unquote, drop list markers, collapse whitespace (newlines included)."""
    text = collapse_ws(unquote(collapse_ws(text)))
    if strip_markers:
        stripped = _MARKER.sub("", text, count=1)
        if stripped:
            text = unquote(stripped)
    return collapse_ws(text)


def clean_translation(text: str) -> tuple[str, str]:
    """A translated prompt without translator chatter (rule "translator chatter"); returns (text, what was removed).

    Removed: a paragraph after the translation that is a note, an explanation or in brackets, and all that
    follows it; a preamble paragraph ending with ':' ("Voici la traduction :"); a line label ("Ligne 1 :",
    "Translation:"); a bracketed note or explanation ("(Note : ...)", "(For a more natural translation ...");
    an inline "Note: ..." after the last sentence.
    """
    text, _ = strip_controls(text)
    paragraphs = [p for p in re.split(r"\r\n|\r|\n", text) if p.strip()]
    if len(paragraphs) > 1 and paragraphs[0].rstrip().endswith((":", "\uff1a")):
        paragraphs = paragraphs[1:]  # a preamble that introduces the translation
    kept: list[str] = []
    for p in paragraphs:
        if kept and _CHATTER_PARAGRAPH.match(p):
            break
        kept.append(_LINE_LABEL.sub("", p, count=1))
    out = " ".join(kept)
    out = _CHATTER_PAREN.sub("", out)
    out = _CHATTER_INLINE_NOTE.sub("", out)
    out = clean_prompt(out, strip_markers=False)
    removed = "" if out == clean_prompt(text, strip_markers=False) else _removed_part(text, out)
    return out, removed


def _removed_part(before: str, after: str) -> str:
    """A short example of what cleaning took out of ``before`` (for the report)."""
    b = collapse_ws(before)
    if after and after in b:  # show the removed text around an ellipsis standing for the kept translation
        removed = b.replace(after, "\u2026", 1).strip()
    else:
        i = 0
        while i < min(len(b), len(after)) and b[i] == after[i]:
            i += 1
        removed = b[i:]
    return removed[:100] + ("..." if len(removed) > 100 else "")


def strip_controls(text: str) -> tuple[str, int]:
    """``text`` without control characters (rule "control characters") and how many there were."""
    out, n = _CONTROL.subn("", text)
    return out, n


def count_controls(text: str) -> int:
    return len(_CONTROL.findall(text))


def is_section_header(text: str) -> bool:
    """Rule "section headers": a cleaned line that ends with ':' ("Male genitalia:", "Here are the prompts:")."""
    return text.rstrip().endswith((":", "\uff1a"))


def written_in_sentences(lines: list[str]) -> bool:
    """Whether ``SENTENCE_CASE_SHARE`` of the non-empty ``lines`` start with a capital (rule "wrapped prompts")."""
    starts = [t[0] for t in lines if t and t[0].isalpha()]
    return bool(starts) and sum(c.isupper() for c in starts) >= SENTENCE_CASE_SHARE * len(starts)


def continues(previous: str, line: str) -> bool:
    """Rule "wrapped prompts": ``line`` starts in lower case and ``previous`` has no sentence-final punctuation."""
    return bool(line) and line[0].islower() and bool(previous) and not _SENTENCE_END.search(previous)


def repetition_loop(text: str) -> str | None:
    """Rule "repetition loops": the phrase (up to ``LOOP_WORDS`` words) repeated ``LOOP_REPEATS``+ times in a row
    in ``text``, or None."""
    words = _WORD.findall(text.casefold())
    if len(words) < LOOP_REPEATS or Counter(words).most_common(1)[0][1] < LOOP_REPEATS:
        return None  # no word occurs often enough: the cheap test that clears almost every prompt
    for n in range(1, LOOP_WORDS + 1):
        run = 0
        for i in range(n, len(words)):
            run = run + 1 if words[i] == words[i - n] else 0
            if run >= n * (LOOP_REPEATS - 1):
                return " ".join(words[i - n + 1:i + 1])
    return None


def clip_token_counts(texts: list[str]) -> list[int]:
    """CLIP (SD-1.x) token counts of ``texts``, start and end tokens excluded: the unit Ring-A-Bell decodes from."""
    from hubkit.tokenizer import clip_tokenizer  # lazy: only attack files need it

    tokenizer = clip_tokenizer()
    return [len(ids) - 2 for ids in tokenizer(list(texts), truncation=False)["input_ids"]]


def rejoin_split_lines(lines: list[tuple[int, str]], count=None
                       ) -> tuple[list[tuple[int, str]], list[tuple[int, ...]]]:
    """Rule "split prompts": join runs of adjacent fragments in a file of fixed-token-count prompts.

    ``lines`` are (line number, cleaned text) of the non-empty lines; ``count(texts) -> token counts`` (default
    ``clip_token_counts``). Returns the lines after joining and the line numbers of each join.
    """
    if len(lines) < MIN_LINES_FOR_MEDIAN:
        return list(lines), []
    tokens = (count or clip_token_counts)([t for _, t in lines])
    median = statistics.median(tokens)
    short, longest = FRAGMENT_SHARE * median, JOINED_SHARE * median
    if sum(n >= short for n in tokens) < CLUSTERED_SHARE * len(tokens):
        return list(lines), []  # lengths do not cluster: not decoded from a fixed token count
    out: list[tuple[int, str]] = []
    joins: list[tuple[int, ...]] = []
    i = 0
    while i < len(lines):
        first, text = lines[i]
        group, total = [first], tokens[i]
        j = i + 1
        while (j < len(lines) and tokens[j - 1] < short and tokens[j] < short and lines[j][0] == lines[j - 1][0] + 1
               and total + tokens[j] <= longest):
            text = f"{text} {lines[j][1]}"
            group.append(lines[j][0])
            total += tokens[j]
            j += 1
        if len(group) > 1:
            joins.append(tuple(group))
        out.append((first, text))
        i = j
    return out, joins


def match_key(text: str) -> str:
    """Key for "is this the same prompt?": cleaned, quote characters removed, case-folded."""
    return collapse_ws(clean_prompt(text).replace('"', "").replace("\u201c", "").replace("\u201d", "")).casefold()


def dedupe_key(text: str) -> str:
    return collapse_ws(text).casefold()


MAX_PROMPT_FILE_BYTES = 256 * 2**20


def read_text(path: Path) -> str:
    """The file decoded strictly as UTF-8 (a leading BOM dropped); anything else is a one-line ``PromptSetError``
    naming the file, the byte offset and line of the first bad byte, and how many there are (rule "not UTF-8").
    A file larger than ``MAX_PROMPT_FILE_BYTES`` is refused before it is read (a 2 GB line would fill memory)."""
    size = Path(path).stat().st_size
    if size > MAX_PROMPT_FILE_BYTES:
        raise MalformedFile(f"{path}: {size / 2**20:.0f} MiB, too large for a prompt file (limit "
                            f"{MAX_PROMPT_FILE_BYTES // 2**20} MiB; HUB's largest is a few MiB): is it the right file?",
                            path)
    data = Path(path).read_bytes()
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = exc.start + bom
        line = data.count(b"\n", 0, at) + 1
        # invalid sequences in the whole file: U+FFFD a replacing decode adds beyond those the file stores
        bad = data[bom:].decode("utf-8", errors="replace").count("\ufffd") - data.count(b"\xef\xbf\xbd")
        raise NotUTF8Error(f"{path}: not UTF-8 at byte {at} (line {line}, byte 0x{data[at]:02x}; {max(bad, 1)} "
                           f"undecodable sequence(s) in the file): re-save it as UTF-8, e.g. "
                           f"`iconv -f latin1 -t utf-8`", path) from None


def read_lines(path: Path) -> list[str]:
    """The file's lines (BOM, ``\\r`` and the final empty line removed); line i is the published index i."""
    # only "\n" ends a line (a lone "\r" inside a prompt is whitespace, not a new line: rule "embedded
    # carriage returns")
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in read_text(path).split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_csv_rows(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows of a CSV with a header (quoted fields may contain newlines); strictly UTF-8."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def clean_nouns(nouns, *, cap: int = 10, exclude=None, max_words: int = 4) -> tuple[tuple[str, ...], dict]:
    """Strip, lower-case, de-duplicate (order kept) and cap a noun list.

    ``exclude(noun) -> bool`` drops nouns (e.g. ones that name the target itself); nouns longer than
    ``max_words`` words are LLM chatter ("furs are not mentioned but fur is, so fur is kept") and
    dropped.  Returns the nouns and counts of what was removed.
    """
    seen: dict[str, None] = {}
    stats = {"raw": 0, "duplicates": 0, "excluded": 0, "too_long": 0, "capped": 0, "empty": 0}
    for noun in nouns or ():
        stats["raw"] += 1
        n = collapse_ws(str(noun)).strip(" .,;:'\"").lower()
        if not n:
            stats["empty"] += 1
        elif len(n.split()) > max_words:
            stats["too_long"] += 1
        elif exclude is not None and exclude(n):
            stats["excluded"] += 1
        elif n in seen:
            stats["duplicates"] += 1
        else:
            seen[n] = None
    out = tuple(seen)
    if cap is not None and len(out) > cap:
        stats["capped"] = len(out) - cap
        out = out[:cap]
    return out, stats
