"""The character folds behind the canonical view, precomputed as lookup tables.

Each code point folds to what a reader takes it for:

* Unicode format characters (category Cf: zero-width space and joiners, word joiner, BOM,
  bidi controls, language tags) vanish, and so do the marks drawn over or around a
  character rather than read with it: variation selectors (the emoji one, U+FE0F),
  enclosing marks (the keycap U+20E3) and the overlays that strike a character through
  (U+0334-U+0338), so "4\ufe0f\u20e3" reads "4";
* apostrophes and quotation marks written as modifier letters or primes (U+02BC, U+02BB,
  U+2032...) read as ASCII quotes: databases that fold them read them as quotes too;
* every space is an ASCII space, every dash an ASCII hyphen, every decimal digit of any
  script (category Nd) its ASCII digit; lone surrogates read as U+FFFD;
* everything else takes its NFKC form, including forms of several characters: the ligature
  "\ufb01" reads "fi", "\u2474" reads "(1)", "\u00bd" reads "1/2", "\u3220" reads "(一)";
* letters of other scripts that look like Latin letters read as those letters
  (:data:`CONFUSABLES`), so "DR\u041eP TABLE" with a Cyrillic O reads "DROP TABLE".

:func:`fold` applies the tables to a whole text with a few vectorised array operations,
never a Python step per character, and returns with the folded text the index of the source
character behind every folded one: that array is the offset map of the canonical view.
Introduced in ``07_obfuscation_and_redaction.ipynb``.

>>> fold("DR\u041eP \ufb01le")[0]
'DROP file'
"""

from __future__ import annotations

import codecs
import functools
import unicodedata
from collections.abc import Callable

import numpy as np

__all__ = ["CONFUSABLES", "fold", "fold_tables"]

_SPACE_LIKE = frozenset(
    "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u202f\u205f\u3000\u2028\u2029\u0085"
)
_DASH_LIKE = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d\u2043")

# Letters of other scripts that pass for Latin ones. The pairs are facts taken from Unicode
# Technical Standard #39, "Unicode Security Mechanisms", data file confusables.txt (type MA).
# The target here is the Latin letter of the same case: TR39's skeletons fold further (Latin
# "I" and "l" both to "l"), which suits comparing two strings but would hide "UNI0N" from an
# ASCII keyword pattern. Only letters are listed: Cyrillic "З" and "б" also resemble "3" and
# "6", but folding them would turn ordinary Russian words into digits for the PII detectors.
# The fold is applied in the canonical view only; the text the user sent is never changed.
CONFUSABLES: dict[str, str] = dict(
    pair.split(":")
    for pair in (
        # Cyrillic capitals and small letters
        "А:A В:B Е:E Ѕ:S І:I Ј:J К:K М:M Н:H О:O Р:P С:C Т:T У:Y Х:X Ү:Y Ԛ:Q Ԝ:W Ӏ:I "
        "а:a е:e о:o р:p с:c у:y х:x ѕ:s і:i ј:j һ:h ԁ:d ԛ:q ԝ:w ѵ:v ӏ:l "
        # Greek capitals and small letters
        "Α:A Β:B Ε:E Ζ:Z Η:H Ι:I Κ:K Μ:M Ν:N Ο:O Ρ:P Τ:T Υ:Y Χ:X "
        "α:a ι:i ν:v ο:o ρ:p υ:u "
        # Armenian
        "Ս:U Տ:S Օ:O հ:h ո:n ս:u ց:g օ:o"
    ).split()
)

# Marks that decorate a character without changing how it reads: combining overlays
# (U+0334-U+0338, a strike-through), the combining marks for symbols (U+20D0-U+20FF, the
# keycap U+20E3 among them) and the variation selectors (U+FE00-U+FE0F).
_DECORATION = frozenset(
    chr(cp) for cp in (*range(0x334, 0x339), *range(0x20D0, 0x2100), *range(0xFE00, 0xFE10))
)
# Apostrophes and quotation marks that are not ASCII: modifier letters (U+02B9 prime, U+02BA
# double prime, U+02BB turned comma, U+02BC apostrophe, U+02BD reversed comma), typographic
# quotes and primes (confusables.txt maps each to "'" or '"').
_QUOTES = {
    **dict.fromkeys("\u02b9\u02bb\u02bc\u02bd\u2018\u2019\u201b\u2032\u2035", "'"),
    **dict.fromkeys("\u02ba\u201c\u201d\u201f\u2033\u2036", '"'),
}

_VANISH = 0xFFFFFFFF  # the character is dropped from the view
_EXPAND = 0x110000  # values from here on: row (value - _EXPAND) of the expansion table


def _fold_one(ch: str) -> str:
    """The folded form of one character: '' for format characters, else one or more."""
    category = unicodedata.category(ch)
    if category == "Cf" or category == "Me" or ch in _DECORATION:
        return ""
    if ch in _QUOTES:
        return _QUOTES[ch]
    if category == "Cs":
        return "\ufffd"
    if category == "Nd":
        return str(unicodedata.decimal(ch))
    if ch in _SPACE_LIKE or category == "Zs":
        return " "
    if ch in _DASH_LIKE or category == "Pd":
        return "-"
    if ch in CONFUSABLES:
        return CONFUSABLES[ch]
    if ch == "\u2044":  # FRACTION SLASH reads as "/" (confusables.txt: 2044 -> 002F)
        return "/"
    folded = unicodedata.normalize("NFKC", ch)
    if folded == ch:
        return ch
    # The NFKC form may itself need folding ("\u2474" -> "(1)" is done; "\u00bd" -> "1\u20442"
    # still has a fraction slash, which reads as "/").
    return "".join(_fold_one(c) if not c.isascii() else c for c in folded)


@functools.cache
def fold_tables() -> tuple[np.ndarray, np.ndarray]:
    """(code point -> folded code point, _VANISH or _EXPAND + row; expansion rows).

    Built once (well under a second; the gateway's warm-up pays it). A row of the expansion
    table holds the folded characters of one code point that folds to several, 0-padded.
    """
    lut = np.arange(0x110000, dtype=np.uint32)
    expansions: list[str] = []
    for cp in range(0x80, 0x30000):
        folded = _fold_one(chr(cp))
        if not folded:
            lut[cp] = _VANISH
        elif len(folded) == 1:
            lut[cp] = ord(folded)
        else:
            lut[cp] = _EXPAND + len(expansions)
            expansions.append(folded)
    for cp in range(0xE0000, 0xE1000):  # tags and variation selectors: invisible
        if unicodedata.category(chr(cp)) in ("Cf", "Mn"):
            lut[cp] = _VANISH
    width = max(map(len, expansions)) + 1
    rows = np.zeros((len(expansions), width), dtype=np.uint32)
    for i, folded in enumerate(expansions):
        rows[i, : len(folded)] = [ord(c) for c in folded]
        rows[i, width - 1] = len(folded)  # the last column holds the length
    return lut, rows


def _decode(codes: np.ndarray) -> str:
    return codecs.utf_32_le_decode(memoryview(np.ascontiguousarray(codes)), "strict", True)[0]


def fold(text: str) -> tuple[str, Callable[[], np.ndarray] | None]:
    """``text`` folded, and a function giving the source index of each folded character
    (None: the identity).

    The index is non-decreasing: a character that expands repeats its source index, one that
    vanishes leaves a gap. Where it is not a by-product of folding it is computed only when
    asked for: a view that finds nothing never needs it.
    """
    lut, rows = fold_tables()
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    folded = np.take(lut, codes, mode="clip")
    special = np.count_nonzero(folded >= _EXPAND)
    if not special:  # one character for one: the view's offsets are the source's
        return _decode(folded), None
    kept = folded != _VANISH
    if special == len(folded) - np.count_nonzero(kept):  # only vanishing characters
        return _decode(np.compress(kept, folded)), lambda: np.flatnonzero(kept)
    counts = kept.astype(np.intp)
    grows = kept & (folded >= _EXPAND)
    counts[grows] = rows[folded[grows] - _EXPAND, -1]
    source = np.repeat(np.arange(len(folded)), counts)
    values = folded[source]
    expanded = np.flatnonzero(values >= _EXPAND)
    if len(expanded):
        first = np.cumsum(counts) - counts  # where each source character's output begins
        within = expanded - first[source[expanded]]
        values[expanded] = rows[values[expanded] - _EXPAND, within]
    return _decode(values), lambda: source
