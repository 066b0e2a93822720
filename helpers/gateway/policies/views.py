"""Views of a query as a reader sees it, each with an offset map back to the user's text.

Detectors match ASCII patterns; people paste text that is not ASCII and often not even plain:
fullwidth digits from a PDF, non-breaking spaces from a spreadsheet, zero-width characters from
a web form, ``%27`` from a URL, ``\\u0027`` from JSON, ``&#39;`` from HTML. The LLM reads every
one of them as plainly as the ASCII form, so the pre-check must too. This module builds:

* the **canonical view**: NFKC, Unicode format characters removed, every Unicode dash and space
  mapped to ASCII, decimal digits of any script mapped to ``0-9``;
* **decoded views**: percent-decoding, JSON string escapes, HTML entities;
* a **SQL view**: ``/* */`` comments removed, whitespace collapsed;
* a **spelled view**: runs of digit words ("three two seven, four five ...") as digits;
* a **separators view**: any mix of dots, slashes, tabs and dashes next to a digit as one
  space, so ``4111.1111.1111.1111`` has the layout the card detector knows.

Every :class:`View` keeps a piecewise map to its source, so :meth:`View.to_original` turns a
span found in the view into the span of the user's own characters (redaction replaces exactly
those). A view is built only when its trigger is present: one set pass over the text says
which decoders could change it, and ASCII text never pays for the canonical view.
Introduced in ``07_obfuscation_and_redaction.ipynb``.

>>> view = canonical_view("SSN ５５５\u200b-12-3456")
>>> view.text
'SSN 555-12-3456'
>>> view.to_original((4, 15))
(4, 16)
"""

from __future__ import annotations

import bisect
import functools
import html
import re
import unicodedata
from collections.abc import Callable

import re2

__all__ = ["View", "build_views", "canonical_view", "decode_view", "warm_up_views"]

_SPACE_LIKE = frozenset("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
                        "\u2009\u200a\u202f\u205f\u3000\u2028\u2029\u0085")  # fmt: skip
_DASH_LIKE = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d\u2043")


def _fold(ch: str) -> str:
    """The ASCII (or NFKC) form of one non-ASCII character; '' for format characters."""
    category = unicodedata.category(ch)
    if category == "Cf":  # zero-width space/joiners, word joiner, BOM, bidi controls
        return ""
    if category == "Nd":
        return str(unicodedata.decimal(ch))
    if ch in _SPACE_LIKE or category == "Zs":
        return " "
    if ch in _DASH_LIKE or category == "Pd":
        return "-"
    folded = unicodedata.normalize("NFKC", ch)
    if len(folded) == 1 and not folded.isascii() and folded != ch:
        return _fold(folded)
    return folded


@functools.cache
def _table() -> tuple[dict[int, str], re.Pattern[str]]:
    """Every character that folds to something else, and a regex of those that change length.

    Built once (about 0.2 s; the gateway's warm-up pays it): afterwards ``str.translate`` folds
    a query at C speed, and only characters that vanish or expand need an offset-map entry.
    """
    table: dict[int, str] = {}
    resized: list[str] = []
    for cp in range(0x80, 0x30000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        folded = _fold(ch)
        if folded != ch:
            table[cp] = folded
            if len(folded) != 1:
                resized.append(ch)
    # Ranges keep the character class short: consecutive code points become "a-z" spans.
    parts: list[str] = []
    run_start = prev = None
    for ch in resized + [None]:  # type: ignore[list-item]
        if ch is not None and prev is not None and ord(ch) == ord(prev) + 1:
            prev = ch
            continue
        if run_start is not None:
            parts.append(re.escape(run_start) + ("-" + re.escape(prev) if prev != run_start else ""))
        run_start = prev = ch
    return table, re.compile("[" + "".join(parts) + "]+")


class View:
    """One way of reading the query: ``text`` plus how its offsets map to its source.

    The map is a list of pieces: piece ``k`` starts at ``starts[k]`` in ``text`` and came from
    ``source[origins[k]:ends[k]]``. An exact piece maps character for character; any other
    piece was replaced as a whole (a vanished format character, a decoded escape). The map is
    built only when a span is asked for, so a view that finds nothing costs one pass.
    """

    __slots__ = ("_build", "_pieces", "name", "parent", "text")

    def __init__(
        self, name: str, text: str,
        build: Callable[[], list[tuple[int, int, int, bool]]] | None = None,
        parent: View | None = None,
    ) -> None:  # fmt: skip
        self.name, self.text, self.parent = name, text, parent
        self._build = build
        self._pieces: tuple[list[int], list[tuple[int, int, int, bool]]] | None = None

    def _to_source(self, pos: int, is_end: bool) -> int:
        if self._build is None:
            return pos
        if self._pieces is None:
            pieces = self._build()
            self._pieces = ([p[0] for p in pieces], pieces)
        starts, pieces = self._pieces
        k = bisect.bisect_right(starts, pos - 1 if is_end else pos) - 1
        if k < 0:
            return pos
        start, origin, end, exact = pieces[k]
        if exact:
            return origin + (pos - start)
        return end if is_end else origin

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
    text: str, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]
) -> list[tuple[int, int, int, bool]]:
    """(view start, source start, source end, exact) for ``re.sub(pattern, replace, text)``."""
    pieces: list[tuple[int, int, int, bool]] = []
    pos = size = 0
    for m in pattern.finditer(text):
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
    name: str, text: str, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str],
    parent: View | None,
) -> View:  # fmt: skip
    """Replace every match of ``pattern`` with ``replace(match)``; the map comes on demand."""
    return View(name, pattern.sub(replace, text), lambda: _pieces_of(text, pattern, replace),
                parent)  # fmt: skip


def canonical_view(text: str, parent: View | None = None) -> View:
    """NFKC per character, format characters dropped, dashes, spaces and digits as ASCII."""
    if text.isascii():
        return View("canonical", text, parent=parent)
    table, resized = _table()
    folded = text.translate(table)
    if len(folded) == len(text):  # every character kept its length: the map is the identity
        return View("canonical", folded, parent=parent)
    return View("canonical", folded,
                lambda: _pieces_of(text, resized, lambda m: m.group().translate(table)),
                parent)  # fmt: skip


# ---- decoders -------------------------------------------------------------------------------
def _percent(m: re.Match[str]) -> str:
    raw = bytes.fromhex(m.group().replace("%", ""))
    return raw.decode("utf-8", "replace")


_JSON_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "/": "/", '"': '"',
                "\\": "\\", "'": "'"}  # fmt: skip


def _json_escape(m: re.Match[str]) -> str:
    token = m.group()
    if token[1] in "ux":
        return chr(int(token[2:], 16))
    return _JSON_SIMPLE[token[1]]


def _entity(m: re.Match[str]) -> str:
    try:
        return html.unescape(m.group())
    except (ValueError, OverflowError):
        return m.group()


_NUMBER_WORDS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                 "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}  # fmt: skip
_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_SPELLED_RUN = re.compile(rf"(?i)\b{_WORD}(?:[\s,.;:/-]+{_WORD}\b){{6,}}")
_SPELLED_TOKEN = re.compile(rf"(?i)\b{_WORD}\b|[\s,.;:/-]+")


def _spelled_run(m: re.Match[str]) -> str:
    out = []
    for token in _SPELLED_TOKEN.findall(m.group()):
        digit = _NUMBER_WORDS.get(token.lower())
        if digit is not None:
            out.append(digit)
        elif any(c in token for c in ",.;:/-"):
            out.append("-")  # "three two seven, four five" keeps its groups: 327-45
    return "".join(out)


_DECODERS: dict[str, tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = {
    "percent": (re.compile(r"(?:%[0-9A-Fa-f]{2})+"), _percent),
    "json": (re.compile(r"\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}|\\[nrtbf/\"\\']"), _json_escape),
    "html": (re.compile(r"&#[0-9]{1,7};?|&#[xX][0-9A-Fa-f]{1,6};?|&[A-Za-z][A-Za-z0-9]{1,31};"),
             _entity),
    "sql": (re.compile(r"/\*.*?(?:\*/|$)|\s{2,}|[\t\n\r\f\v]", re.S),
            lambda m: "" if m.group().startswith("/*") else " "),
    "spelled": (_SPELLED_RUN, _spelled_run),
    # Any mix of separators next to a digit reads as one space: 4111.1111/1111-1111,
    # 123 . 45 . 6789, DE89-3704-0044-..., so every detector sees its usual layout.
    "separators": (re.compile(r"(?<=[0-9])[ ./_\t\\-]+(?=[0-9A-Za-z])"
                              r"|(?<=[0-9A-Za-z])[ ./_\t\\-]+(?=[0-9])"), lambda m: " "),
}  # fmt: skip

# One set pass over the query says which decoders could change it ("check once, skip").
_TRIGGERS = {
    "percent": r"%[0-9A-Fa-f]{2}",
    "json": r"\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}",
    "html": r"&#[0-9]|&#[xX][0-9A-Fa-f]|&[A-Za-z][A-Za-z0-9]{1,31};",
    "sql": r"/\*",
    "spelled": rf"(?i)\b{_WORD}[\s,.;:/-]+{_WORD}[\s,.;:/-]+{_WORD}\b",
    "separators": r"\d\d(?:[./_\t\\]|[ .\-/_\t\\]{2,})\d\d|\d{3} \d{2,4}-\d|\d{3}-\d{2,4} \d"
                  r"|[A-Za-z]{2}\d\d-[0-9A-Za-z]{4}-",
}
_TRIGGER_NAMES = tuple(_TRIGGERS)
_TRIGGER_SET = re2.Set.SearchSet(re2.Options())
for _regex in _TRIGGERS.values():
    _TRIGGER_SET.Add(_regex)
_TRIGGER_SET.Compile()


def decode_view(name: str, text: str, parent: View | None = None) -> View:
    """The ``name`` view (percent, json, html, sql, spelled) of ``text``."""
    pattern, replace = _DECODERS[name]
    return _rewrite(name, text, pattern, replace, parent)


#: Views are for prompts; past this size only the canonical view is built (linear, cheap).
DECODE_LIMIT = 256 * 1024


def warm_up_views() -> None:
    """Build the folding table now, so the first non-ASCII query does not pay for it."""
    _table()
    build_views("x\u00a0%27 one two three &amp; \\u0027 /**/")


def build_views(text: str) -> list[View]:
    """Every view of ``text`` that differs from it, canonical first; [] for plain ASCII.

    A decoded view that itself contains non-ASCII characters (``%EF%BC%95`` is a fullwidth
    five) is canonicalised too, with the maps chained back to the original.
    """
    views: list[View] = []
    base: View | None = None
    scan = text
    if not text.isascii():
        base = canonical_view(text)
        views.append(base)
        scan = base.text
    if len(scan) > DECODE_LIMIT:
        return views
    hits = _TRIGGER_SET.Match(scan)
    if not hits:
        return views
    for index in sorted(hits):
        view = decode_view(_TRIGGER_NAMES[index], scan, base)
        if view.text == scan:
            continue
        if not view.text.isascii():
            view = canonical_view(view.text, view)
        views.append(view)
    return views
