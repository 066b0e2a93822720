"""Views of a query as a reader sees it, each with an offset map back to the user's text.

Detectors match ASCII patterns; people paste text that is not ASCII and often not even plain:
fullwidth digits from a PDF, non-breaking spaces from a spreadsheet, zero-width characters from
a web form, ``%27`` from a URL, ``\\u0027`` from JSON, ``&#39;`` from HTML. The LLM reads every
one of them as plainly as the ASCII form, so the pre-check must too. This module builds:

* the **canonical view** (:mod:`.folding`): NFKC, Unicode format characters and decorating
  marks (keycaps, strike-through, variation selectors) removed, every Unicode dash and space
  mapped to ASCII, decimal digits of any script mapped to ``0-9``, Latin look-alike letters
  of other scripts read as Latin, modifier-letter apostrophes read as quotes;
* **decoded views**: percent-decoding and JSON string escapes (by array operations in
  :mod:`.decoders` when there are many), HTML entities, quoted-printable (``=3D``, soft line
  breaks) and base64 runs that decode to text, each repeated on its own output for doubly
  encoded text (``%2527``), within the budgets below;
* a **SQL view**: ``/* */`` comments removed, whitespace collapsed;
* a **spelled view**: runs of digit words in English, Spanish, German, French and Hindi
  ("three two seven, double four", "dos seis siete"), mixed with digits, as digits;
* a **separators view**: any mix of dots, slashes, tabs and dashes next to a digit as one
  space, so ``4111.1111.1111.1111`` has the layout the card detector knows;
* a **glued view**: a space where text extraction ran a label into a number
  ("SSN417101692Phone" reads "SSN 417101692 Phone").

Every :class:`View` keeps a piecewise map to its source, so :meth:`View.to_original` turns a
span found in the view into the span of the user's own characters (redaction replaces exactly
those). A view is built only when it could change the text: the escape markers
(:data:`VIEW_MARKERS`) and digit shapes (:data:`VIEW_SHAPES`) ride along in the one set pass
every scanned text gets anyway (:mod:`.onepass`), and ASCII text never pays for the
canonical view.
Introduced in ``07_obfuscation_and_redaction.ipynb``.

>>> view = canonical_view("SSN ５５５\u200b-12-3456")
>>> view.text
'SSN 555-12-3456'
>>> view.to_original((4, 15))
(4, 16)
"""

from __future__ import annotations

import base64
import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import re2

from .decoders import Pieces, html_entity, json_decode, json_escape, percent_decode, percent_run
from .folding import fold, fold_tables
from .pii_checks import IBAN_LENGTHS

__all__ = [
    "VIEW_MARKERS",
    "VIEW_SHAPES",
    "View",
    "build_views",
    "canonical_view",
    "decode_view",
    "decoded_views",
    "separators_view",
    "warm_up_views",
]


class View:
    """One way of reading the query: ``text`` plus how its offsets map to its source.

    The map is a list of pieces: piece ``k`` starts at ``starts[k]`` in ``text`` and came from
    ``source[origins[k]:ends[k]]``. An exact piece maps character for character; any other
    piece was replaced as a whole (a vanished format character, a decoded escape). The map is
    built only when a span is asked for, so a view that finds nothing costs one pass.
    """

    __slots__ = ("_build", "_index", "_pieces", "name", "parent", "text")

    def __init__(
        self,
        name: str,
        text: str,
        build: Callable[[], list[tuple[int, int, int, bool]] | Pieces] | None = None,
        parent: View | None = None,
        index: Callable[[], np.ndarray] | None = None,
    ) -> None:
        self.name, self.text, self.parent = name, text, parent
        self._build = build
        self._pieces: Sequence[Sequence[int]] | None = None  # starts, origins, ends, exact
        self._index: Callable[[], np.ndarray] | np.ndarray | None = index

    def _to_source(self, pos: int, is_end: bool) -> int:
        if self._index is not None:  # one kept source character per view character
            if callable(self._index):
                self._index = self._index()
            index = self._index
            if not len(index):
                return 0
            if is_end:
                return int(index[min(pos, len(index)) - 1]) + 1 if pos else 0
            return int(index[pos]) if pos < len(index) else int(index[-1]) + 1
        if self._build is None:
            return pos
        if self._pieces is None:
            built = self._build()  # a list of pieces, or the same as arrays (.decoders)
            if not isinstance(built, tuple):
                built = tuple(map(list, zip(*built, strict=True))) or ([], [], [], [])
            self._pieces = built
        starts, origins, ends, exact = self._pieces
        k = bisect.bisect_right(starts, pos - 1 if is_end else pos) - 1
        if k < 0:
            return pos
        if exact[k]:
            return int(origins[k]) + (pos - int(starts[k]))
        return int(ends[k]) if is_end else int(origins[k])

    def to_original(self, span: tuple[int, int]) -> tuple[int, int]:
        """Map a (start, end) span in this view to the span in the user's original text."""
        start, end = span
        view: View | None = self
        while view is not None:
            if end <= start:
                start = end = view._to_source(start, False)
            else:
                start, end = view._to_source(start, False), view._to_source(end, True)
            view = view.parent
        return start, end

    def __repr__(self) -> str:
        return f"<View {self.name} {len(self.text)} chars>"


def _pieces_of(
    text: str, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str], start: int = 0
) -> list[tuple[int, int, int, bool]]:
    """(view start, source start, source end, exact) for ``re.sub(pattern, replace, text)``;
    ``start``: no match begins before it."""
    pieces: list[tuple[int, int, int, bool]] = []
    pos = size = 0
    for m in pattern.finditer(text, start):
        a, b = m.span()
        if a > pos:
            pieces.append((size, pos, a, True))
            size += a - pos
        pieces.append((size, a, b, False))
        size += len(replace(m))
        pos = b
    if pos < len(text):
        pieces.append((size, pos, len(text), True))
    return pieces


def _rewrite(
    name: str,
    text: str,
    pattern: re.Pattern[str],
    replace: Callable[[re.Match[str]], str],
    parent: View | None,
    start: int = 0,
) -> View:
    """Replace every match of ``pattern`` with ``replace(match)``; the map comes on demand.

    ``start`` is the first place a match can begin (the first marker): the text before it is
    copied, not scanned, so a payload after a megabyte of prose costs a copy, not a scan.
    """
    out = text[:start] + pattern.sub(replace, text[start:]) if start else pattern.sub(replace, text)
    return View(name, out, lambda: _pieces_of(text, pattern, replace, start), parent)


def canonical_view(text: str, parent: View | None = None) -> View:
    """The text as a reader sees it (see :mod:`.folding`): NFKC, format characters dropped,
    dashes, spaces and digits as ASCII, Latin look-alikes as Latin letters."""
    if text.isascii():
        return View("canonical", text, parent=parent)
    folded, index = fold(text)
    if index is None:  # one character for one: view offsets are the source offsets
        return View("canonical", folded, parent=parent)
    return View("canonical", folded, parent=parent, index=index)


# ---- decoders -------------------------------------------------------------------------------
# Digit words in the languages people dictate numbers in: English (with "oh" for zero),
# Spanish, German, French, and Hindi in Devanagari and in Latin letters (Hinglish). A word
# that is also common in prose ("do", "un", "six") only counts inside a run of them.
_NUMBER_WORDS: dict[str, str] = {}
for _digit, _words in enumerate(
    (
        "zero oh nought nil cero null zéro shunya sifar शून्य",
        "one uno una eins ein un une ek एक",
        "two dos zwei zwo deux do दो",
        "three tres drei trois teen tin तीन",
        "four cuatro vier quatre char chaar चार",
        "five cinco fünf fuenf cinq paanch panch पांच पाँच",
        "six seis sechs chhe chhah chheh छह छः",
        "seven siete sieben sept saat सात",
        "eight ocho acht huit aath आठ",
        "nine nueve neun neuf nau नौ",
    )
):
    _NUMBER_WORDS.update(dict.fromkeys(_words.split(), str(_digit)))
#: Words that repeat the next digit: "double five" is 55, "triple oh" 000.
_REPEATS = {"double": 2, "triple": 3}
# Latin-script words stand between word boundaries (so "one" in "someone" or "do" in "done"
# starts nothing); re2's \b is ASCII-only, so the Devanagari words go without.
_WORD = "(?:\\b(?:{})\\b|{})".format(
    "|".join(sorted((w for w in _NUMBER_WORDS if w[0].isascii()), key=len, reverse=True)),
    "|".join(sorted((w for w in _NUMBER_WORDS if not w[0].isascii()), key=len, reverse=True)),
)
_SPELLED_TOKEN = re.compile(r"[^\s,.;:/\-]+")
_GROUP_BREAK = frozenset(",.;:/-")
#: A run of digit words becomes a number when it holds this many digits and two words.
SPELLED_MIN_DIGITS = 7


def _spelled_edits(text: str) -> list[tuple[int, int, str]]:
    """(start, end, digits) for every run of digit words, digit groups and "double"/"triple"
    (mixed: "4 one seven, 1 oh"); punctuation between words keeps the groups: 327-45."""
    edits: list[tuple[int, int, str]] = []
    run: list[re.Match[str]] = []

    def close() -> None:
        out, words, repeat, digits = [], 0, 1, 0
        for k, m in enumerate(run):
            if k and _GROUP_BREAK.intersection(text[run[k - 1].end() : m.start()]):
                out.append("-")
            token = m.group().lower()
            if token in _REPEATS:
                repeat = _REPEATS[token]
                continue
            digit = _NUMBER_WORDS.get(token)
            words += digit is not None
            piece = (token if digit is None else digit) * repeat
            out.append(piece)
            digits += len(piece)
            repeat = 1
        while run and run[-1].group().lower() in _REPEATS:
            run.pop()
        if run and words >= 2 and digits >= SPELLED_MIN_DIGITS:
            edits.append((run[0].start(), run[-1].end(), "".join(out).strip("-")))
        run.clear()

    for m in _SPELLED_TOKEN.finditer(text):
        token = m.group().lower()
        if (
            token in _NUMBER_WORDS
            or token in _REPEATS
            or (token.isdigit() and len(token) <= 4 and token.isascii())
        ):
            run.append(m)
        elif run:
            close()
    if run:
        close()
    return edits


def _edited(name: str, text: str, edits: list[tuple[int, int, str]], parent: View | None) -> View:
    """``text`` with each (start, end, replacement) applied; the offset map on demand.

    An insertion (start == end) is a piece of its own that maps to the place it was made.
    """
    parts: list[str] = []
    pos = 0
    for start, end, replacement in edits:
        parts += (text[pos:start], replacement)
        pos = end
    parts.append(text[pos:])

    def build() -> list[tuple[int, int, int, bool]]:
        pieces: list[tuple[int, int, int, bool]] = []
        size = pos = 0
        for start, end, replacement in edits:
            if start > pos:
                pieces.append((size, pos, start, True))
                size += start - pos
            pieces.append((size, start, end, False))
            size += len(replacement)
            pos = end
        if pos < len(text):
            pieces.append((size, pos, len(text), True))
        return pieces

    return View(name, "".join(parts), build, parent)


# Text extraction runs labels and the next field's name into a number ("SSN417101692Phone",
# "CardNo4023...Exp"). The glued view puts a space where letters meet digits and where a
# lower-case letter meets a capital next to them, so the labels and the number stand apart.
# An IBAN keeps its country code: "IBANMN15..." reads "IBAN MN15...".
_HEXISH = re.compile(r"(?:0[xX])?[0-9a-fA-F]{8,}")
_IBAN_COUNTRIES = frozenset(IBAN_LENGTHS)
# The glued and base64 views find where they have work with ``bytes.find`` on the text as
# one byte per character (``encode("latin-1", "replace")`` keeps one byte per character, and
# every character these views look for is ASCII): no regex tried at every position.
_LETTER_DIGIT = bytes(  # ASCII letters as "a", digits as "0", anything else as a space
    97 if c < 128 and chr(c).isalpha() else 48 if c < 128 and chr(c).isdigit() else 32
    for c in range(256)
)
_DIGITS_AS_ZEROS = re.compile(rb"0+")  # a run of digits in those bytes


def _one_byte(text: str, table: bytes) -> bytes:
    return text.encode("latin-1", "replace").translate(table)


def _run_cuts(text: str, start: int, end: int, cuts: set[int]) -> None:
    """Add the glued view's cuts around the digit run ``text[start:end]``."""
    left = start
    while left and start - left < 40 and text[left - 1].isascii() and text[left - 1].isalpha():
        left -= 1
    right = end
    while (
        right < len(text) and right - end < 40 and text[right].isascii() and text[right].isalpha()
    ):
        right += 1
    if _HEXISH.fullmatch(text, left, right):
        return  # "0x2f65...", a hash: letters and digits that belong together
    letters = text[left:start]
    if len(letters) >= 2:
        cut = start
        if letters[-2:] in _IBAN_COUNTRIES and (
            len(letters) == 2 or letters[:-2].upper().endswith("IBAN") or letters[-3].islower()
        ):
            cut = start - 2  # a country code and its check digits stay together
        if cut > left:
            cuts.add(cut)
        for k in range(left + 1, cut):  # "ReyesSSN", "CardNo": a word boundary inside
            if text[k - 1].islower() and text[k].isupper():
                cuts.add(k)
        if letters.upper().startswith("IBAN") and left + 4 < cut:
            cuts.add(left + 4)
    if end - start >= 4 and right - end >= 2:
        cuts.add(end)


def _glued_edits(text: str) -> list[tuple[int, int, str]]:
    # Only a run of digits with two letters just before it, or one of four or more digits
    # with two letters just after it, gets a cut: only those runs are looked at, each found
    # by a memchr (digits are rare in prose).
    shape = _one_byte(text, _LETTER_DIGIT)
    cuts: set[int] = set()
    start = shape.find(b"0")
    while start >= 0:
        end = _DIGITS_AS_ZEROS.match(shape, start).end()
        if shape.endswith(b"aa", 0, start) or (end - start >= 4 and shape.startswith(b"aa", end)):
            _run_cuts(text, start, end, cuts)
        start = shape.find(b"0", end)
    return [(cut, cut, " ") for cut in sorted(cuts)]


#: Characters of base64 decoded per query at most; runs past it stay as they are.
BASE64_LIMIT = 64 * 1024
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{14,}={0,2}")
_BASE64_START = b"b" * 14
_BASE64_TABLE = bytes(  # base64 characters as "b", anything else as a space
    98 if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "+/") else 32 for c in range(256)
)


def _base64_text(text: str) -> str:
    """``_BASE64_RUN.sub(_base64_run, text)``, each match looked for by ``bytes.find``.

    From any place the regex's next match starts at the first 14 base64 characters in a
    row; there it takes the whole run and up to two ``=``.
    """
    marks = _one_byte(text, _BASE64_TABLE)
    parts: list[str] = []
    pos = 0
    at = marks.find(_BASE64_START)
    while at >= 0:
        m = _BASE64_RUN.match(text, at)
        assert m is not None  # 14 base64 characters start here
        parts += (text[pos:at], _base64_run(m))
        pos = m.end()
        at = marks.find(_BASE64_START, pos)
    return "".join(parts) + text[pos:] if parts else text


def _base64_run(m: re.Match[str]) -> str:
    return _base64_decoded(m.group())


def _base64_decoded(run: str) -> str:
    """A base64 run as the text it encodes, or unchanged when it does not encode text."""
    if len(run) % 4 or len(run) < 16:
        return run
    try:
        decoded = base64.b64decode(run, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return run
    if not decoded or not all(c.isprintable() or c in "\t\r\n" for c in decoded):
        return run
    return decoded


# Quoted-printable (RFC 2045, e-mail bodies): "=3D" is "=", "=27" a quote, and "=" at the end
# of a line is a soft break that joins the line to the next, even inside a word ("DR=\nOP").
_QP = re.compile(r"=\r?\n|(?:=[0-9A-F]{2})+")


def _qp_run(m: re.Match[str]) -> str:
    run = m.group()
    if run[1] in "\r\n":
        return ""
    try:
        decoded = bytes.fromhex(run.replace("=", "")).decode("utf-8")
    except ValueError:
        return run
    return decoded if all(c.isprintable() or c in "\t\r\n" for c in decoded) else run


# A comment; an unclosed one runs to the end of the text, or to a final line break ("$").
_SQL_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.S)

_DECODERS: dict[str, tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = {
    # Each pattern starts with its marker, so the regex engine skips ahead to the next one.
    "percent": (re.compile(r"%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*"), percent_run),
    "json": (re.compile(r"\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}|\\[nrtbf/\"\\']"), json_escape),
    "html": (
        re.compile(r"&#[0-9]{1,7};?|&#[xX][0-9A-Fa-f]{1,6};?|&[A-Za-z][A-Za-z0-9]{1,31};"),
        html_entity,
    ),
    "sql": (
        re.compile(r"/\*.*?(?:\*/|$)|\s{2,}|[\t\n\r\f\v]", re.S),
        lambda m: "" if m.group().startswith("/*") else " ",
    ),
    "qp": (_QP, _qp_run),
    "base64": (_BASE64_RUN, _base64_run),
    # The SQL view of a long text, or of one with more line breaks than the escape budget.
    "sql_comments": (_SQL_COMMENT, lambda m: ""),
}

# The SQL view's text without a regex tried at every character (its offset map still comes
# from that regex, when a span is asked for). A whitespace match never holds a "/", so the
# comments are where the comment pattern alone finds them (a literal "/*" to skip ahead to),
# and the whitespace between them collapses piece by piece: by ``str.split`` for ASCII text,
# whose whitespace is that of ``\s`` (less the separators \x1c-\x1f, which are left to the
# regex: one of them alone stays as it is).
_SQL_SPACES = re.compile(r"\s{2,}|[\t\n\r\f\v]")


def _collapsed(piece: str) -> str:
    words = piece.split()
    if not words:
        return " " if piece else ""
    before = " " if piece[0].isspace() else ""
    return before + " ".join(words) + (" " if piece[-1].isspace() else "")


def _sql_text(text: str) -> str:
    """``_DECODERS["sql"]``'s substitution: comments removed, whitespace collapsed."""
    pieces = _SQL_COMMENT.split(text)
    if not text.isascii() or any(c in text for c in "\x1c\x1d\x1e\x1f"):
        return "".join([_SQL_SPACES.sub(" ", piece) for piece in pieces])
    if "  " not in text and not any(c in text for c in "\t\n\r\f\v"):
        return "".join(pieces)  # no whitespace to collapse
    return "".join(map(_collapsed, pieces))


# Which decoders could change the query, checked once and cheaply ("check once, skip"): the
# four escapes need a character most prompts never contain (a memchr each, then a short
# regex); separators and spelled digits share one set pass over the text.
#: Per escape decoder: its marker (a memchr) and the regex that confirms it. Public so the
#: one set pass over every text (:mod:`.onepass`) answers for them too.
VIEW_MARKERS = {
    "percent": ("%", r"%[0-9A-Fa-f]{2}"),
    "json": ("\\", r"\\(?:u[0-9A-Fa-f]{4}|x[0-9A-Fa-f]{2}|[\"'])"),
    "html": ("&", r"&(?:#[0-9]|#[xX][0-9A-Fa-f]|[A-Za-z][A-Za-z0-9]{1,31};)"),
    "sql": ("/*", r"/\*"),
    "qp": ("=", r"=3[Dd]|=\r?\n"),
}
_MARKERS = {name: (marker, re.compile(regex)) for name, (marker, regex) in VIEW_MARKERS.items()}
#: Shapes that call for the separators and spelled views. Public so the SQL-injection scanner
#: can add them to the set pass it makes anyway: then benign text pays no pass of its own.
VIEW_SHAPES = {
    "separators": r"[0-9][0-9](?:[./_\t\\]|[ ./_\t\\-]{2,})[0-9][0-9]"
    r"|(?:^|[^0-9])[0-9]{3}(?: [0-9]{2}-|-[0-9]{2} )[0-9]{4}(?:[^0-9]|$)"
    r"|[0-9]{4}(?: [0-9]{4}-|-[0-9]{4} )[0-9]{4}"
    r"|[A-Za-z]{2}[0-9][0-9]-[0-9A-Za-z]{4}-",
    "spelled": rf"(?i){_WORD}[ \t,.;:/-]+(?:{_WORD}|\b[0-9]{{1,4}}\b)[ \t,.;:/-]+{_WORD}",
    "glued": r"[A-Za-z][0-9]{6}|[0-9][0-9 -][0-9]{2}[A-Za-z]{2}",
    "base64": r"[A-Za-z0-9+/]{14}[A-Za-z0-9+/=]{2}",
}
_SHAPE_NAMES = tuple(VIEW_SHAPES)
_TRIGGER_NAMES = (*VIEW_MARKERS, *VIEW_SHAPES)  # the order views are built in
_SHAPE_SET = re2.Set.SearchSet(re2.Options())
for _regex in VIEW_SHAPES.values():
    _SHAPE_SET.Add(_regex)
_SHAPE_SET.Compile()


def _triggered(text: str) -> list[str]:
    names = [
        name
        for name, (marker, regex) in _MARKERS.items()
        if marker in text and (regex is None or regex.search(text))
    ]
    hits = _SHAPE_SET.Match(text.encode("utf-8", "surrogatepass")) or []
    return names + [_SHAPE_NAMES[i] for i in sorted(hits)]


# Every separator character, and every run of two or more separators or spaces, reads as one
# space: a byte translation and one substitution of the (few) runs of spaces, both in C, so a
# megabyte of separators costs milliseconds. The offset map comes from the equivalent regex,
# only when a span is asked for. (UTF-8 never puts an ASCII byte inside another character.)
_SEPARATORS = re.compile(r"[ ./_\t\\-]{2,}|[./_\t\\-]")
_AS_SPACES = bytes.maketrans(b"./_\t\\-", b"      ")
_SPACE_RUN = re.compile(rb"  +")


def separators_view(text: str, parent: View | None = None) -> View:
    """Dots, slashes, underscores, tabs, backslashes and dashes as single spaces.

    ``4111.1111/1111-1111``, ``123 . 45 . 6789`` and ``DE89-3704-0044-...`` then have the
    layout each detector knows. Each separator run is its own piece of the offset map, so a
    value's span starts and ends on its own characters. The view is only built when digit
    groups with such separators are present (:data:`VIEW_SHAPES`), and only the PII
    detectors read it.
    """
    data = _SPACE_RUN.sub(b" ", text.encode("utf-8", "surrogatepass").translate(_AS_SPACES))
    return View(
        "separators",
        data.decode("utf-8", "surrogatepass"),
        lambda: _pieces_of(text, _SEPARATORS, lambda m: " "),
        parent,
    )


#: From this many escape markers on, percent and JSON escapes are decoded by array
#: operations (:mod:`.decoders`); below it the substitution is cheaper than numpy's set-up.
VECTOR_FROM = 64
_VECTORISED = {"percent": percent_decode, "json": json_decode}
# Every match of these decoders begins with the marker: the text before the first one is
# copied as it is.
_FIRST_MARKER = {"percent": "%", "json": "\\", "html": "&", "sql_comments": "/*", "qp": "="}


def decode_view(name: str, text: str, parent: View | None = None) -> View:
    """The ``name`` view (percent, json, html, sql, spelled, separators) of ``text``."""
    if name == "separators":
        return separators_view(text, parent)
    if name == "spelled":
        return _edited(name, text, _spelled_edits(text), parent)
    if name == "glued":
        return _edited(name, text, _glued_edits(text), parent)
    pattern, replace = _DECODERS[name]
    if name in ("sql", "base64"):  # the text by str and bytes searches, the map by the regex
        out = _sql_text(text) if name == "sql" else _base64_text(text)
        return View(name, out, lambda: _pieces_of(text, pattern, replace), parent)
    marker = _FIRST_MARKER.get(name)
    if name in _VECTORISED and text.count(marker) >= VECTOR_FROM:  # type: ignore[arg-type]
        done = _VECTORISED[name](text)
        if done is not None:
            decoded, build = done
            if build is None:
                build = lambda: _pieces_of(text, pattern, replace)  # noqa: E731
            return View(name, decoded, build, parent)
    start = max(0, text.find(marker)) if marker else 0
    return _rewrite(name.split("_")[0], text, pattern, replace, parent, start)


#: Markers decoded per query by the decoders that run Python code per match (HTML entities,
#: the SQL view's whitespace), summed over every decoder and round: about a microsecond
#: each, so the budget bounds their cost whatever the query's length. Percent and JSON
#: escapes are decoded by array operations and do not count: a flood of them is decoded.
#: A query with more HTML entities than this goes without the HTML view.
ESCAPE_BUDGET = 8192
#: Characters of decoded views built per query, summed over every view and round. Each
#: view is scanned in full, so this caps the work however the encodings nest: four views
#: of a 1 MiB query (a payload encoded twice, then JSON-escaped, is three).
VIEW_BUDGET = 4 << 20
#: Decoding repeats on its own output up to this many rounds: "%2527" is a percent-encoded
#: "%27", "&amp;#39;" an HTML-escaped "&#39;", "\u002527" a JSON-escaped "%27".
DECODE_ROUNDS = 3
#: The spelled-digits pattern has no leading literal to skip ahead to, so Python's regex
#: engine tries it at every character (tens of ns each); so does the pattern the SQL view's
#: offset map comes from, when a span found there is mapped back. They run on texts up to
#: these sizes; a longer text gets the SQL view with its comments removed (whitespace as it
#: is: every SQL pattern accepts any whitespace anyway).
SPELLED_LIMIT = 16 * 1024
SQL_SPACES_LIMIT = 64 * 1024
_ESCAPING = ("percent", "json", "html", "qp", "base64")


def _cost(name: str, text: str) -> int:
    """An upper bound on the matches decoder ``name`` will rewrite in ``text`` (memchr only)."""
    if name in _VECTORISED:
        return 0  # linear array operations: no per-escape Python code to bound
    if name == "html":
        return text.count("&")
    if name == "sql":
        if len(text) > SQL_SPACES_LIMIT:
            return ESCAPE_BUDGET + 1
        controls = [c for c in "\t\n\r\f\v" if c in text]  # most texts have none: memchr
        return text.count("/*") + text.count("  ") + sum(map(text.count, controls))
    if name in ("spelled", "glued"):
        return 0 if len(text) <= SPELLED_LIMIT else ESCAPE_BUDGET + 1
    if name == "base64":
        return 0 if len(text) <= BASE64_LIMIT else ESCAPE_BUDGET + 1
    if name == "qp":
        return text.count("=")
    return 0  # separators: a byte translation and one re2-free substitution, both in C


def warm_up_views() -> None:
    """Build the folding table now, so the first non-ASCII query does not pay for it."""
    fold_tables()
    build_views("x\u00a0%27 one two three &amp; \\u0027 /**/")


def build_views(text: str) -> list[View]:
    """Every view of ``text`` that differs from it, canonical first; [] for plain ASCII.

    A decoded view that itself contains non-ASCII characters (``%EF%BC%95`` is a fullwidth
    five) is canonicalised too, with the maps chained back to the original.
    """
    if text.isascii():
        return decoded_views(text)
    base = canonical_view(text)
    return [base, *decoded_views(base.text, base)]


def decoded_views(
    scan: str,
    base: View | None = None,
    _budget: list[Any] | None = None,
    _round: int = 1,
    *,
    probe: Callable[[str], Iterable[str]] | None = None,
    triggers: Iterable[str] | None = None,
) -> list[View]:
    """The decoded views of ``scan`` (the query, or its canonical view ``base``).

    A view decoded from an escape that still holds escapes is decoded again (up to
    :data:`DECODE_ROUNDS`), all within one :data:`ESCAPE_BUDGET`; ``probe(text)`` names the
    shapes in such a view, when the caller makes a pass over every view anyway (``None``: one
    pass here). ``triggers``, when given, names every decoder the text calls for
    (:data:`VIEW_MARKERS` and :data:`VIEW_SHAPES`, found by such a pass), and ``probe`` then
    answers the same for each view.
    """
    views: list[View] = []
    if triggers is not None:
        if not triggers:
            return views  # the common case: the caller's set pass found no trigger
        names = [name for name in _TRIGGER_NAMES if name in triggers]
    else:
        names = _triggered(scan)
    # [escape markers left, view characters left, {text decoded: the round it was seen in}]
    budget = [ESCAPE_BUDGET, VIEW_BUDGET, {scan: 0}] if _budget is None else _budget
    for name in names:
        cost = _cost(name, scan)
        if name == "sql" and cost > budget[0]:
            name, cost = "sql_comments", scan.count("/*")
        if cost > budget[0] or len(scan) > budget[1]:
            continue
        budget[0] -= cost
        budget[1] -= len(scan)
        view = decode_view(name, scan, base)
        # A text already seen (nothing changed, or two escapings undone in the other order)
        # gives the findings it gave then, and its own views too if it was seen no deeper.
        if budget[2].get(view.text, DECODE_ROUNDS + 1) <= _round:
            continue
        budget[2][view.text] = _round
        if not view.text.isascii():
            view = canonical_view(view.text, view)
        views.append(view)
        if name in _ESCAPING and _round < DECODE_ROUNDS:
            found = None if probe is None else probe(view.text)
            views += decoded_views(view.text, view, budget, _round + 1, probe=probe, triggers=found)
    return views
