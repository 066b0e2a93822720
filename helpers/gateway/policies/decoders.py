"""Percent-decoding and JSON string escapes as array operations, for texts full of escapes.

A regular-expression substitution calls back into Python once per escape (about a
microsecond each), so a flood of 300,000 escapes would take a third of a second. These
decoders find every escape with a few comparisons over the whole text in numpy, replace
them in one step, and compute the view's offset map the same way (only when a span is
asked for). They give exactly the text and the map of the substitutions they replace
(:data:`~.views._DECODERS`), which :mod:`.views` still uses for texts with few escapes.

* Percent: each run of ``%XX`` escapes is bytes, read as UTF-8 (an invalid sequence reads
  as U+FFFD). The whole text is decoded at once: a run always starts and ends beside a
  complete character of the text, so reading all of it as UTF-8 gives what reading each
  run alone gives.
* JSON: ``\\uXXXX``, ``\\xXX`` and the one-letter escapes, each one character. Runs of
  backslashes pair up from their first one (``\\\\`` is an escaped backslash), so whether a
  backslash starts an escape depends only on its place in its run.

:func:`percent_decode` returns ``None`` when the text holds lone surrogates (then the
substitution runs).
Introduced in ``07_obfuscation_and_redaction.ipynb``.

>>> percent_decode("id=1%27%20OR%201%3D1")[0]
"id=1' OR 1=1"
>>> json_decode('say \\\\u0027hi\\\\\\\\')[0]
"say 'hi\\\\"
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Callable

import numpy as np

__all__ = ["Pieces", "html_entity", "json_decode", "json_escape", "percent_decode", "percent_run"]

#: An offset map as arrays: piece ``k`` starts at ``starts[k]`` in the view and came from
#: ``source[origins[k]:ends[k]]``, character for character when ``exact[k]``.
Pieces = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

_HEX = np.full(256, 16, dtype=np.uint8)  # hex digit values; 16: not a hex digit
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i
_SIMPLE = np.zeros(128, dtype=np.uint32)  # one-letter JSON escapes; 0: not one
for _c, _v in zip("nrtbf/\"\\'", "\n\r\t\b\f/\"\\'", strict=True):
    _SIMPLE[ord(_c)] = ord(_v)


def _pieces(
    starts: np.ndarray, lengths: np.ndarray, sizes: np.ndarray, total: int
) -> Callable[[], Pieces]:
    """The map of a view that replaced ``source[starts[k]:starts[k]+lengths[k]]`` by
    ``sizes[k]`` characters (sorted, not overlapping) in a source of ``total`` characters."""

    def build() -> Pieces:
        ends = starts + lengths
        view_at = starts + np.cumsum(sizes - lengths) - (sizes - lengths)  # where each lands
        gap_from = np.concatenate(([0], ends))
        gap_to = np.concatenate((starts, [total]))
        gap_at = np.concatenate(([0], view_at + sizes))
        n = len(starts)
        order = np.empty(2 * n + 1, dtype=np.int64)  # gap 0, piece 0, gap 1, piece 1, ...
        view = order.copy()
        view[0::2], view[1::2] = gap_at, view_at
        origin = order.copy()
        origin[0::2], origin[1::2] = gap_from, starts
        end = order.copy()
        end[0::2], end[1::2] = gap_to, ends
        exact = np.zeros(2 * n + 1, dtype=bool)
        exact[0::2] = True
        keep = end > origin  # empty gaps are not pieces
        return view[keep], origin[keep], end[keep], exact[keep]

    return build


def _hex(values: np.ndarray) -> np.ndarray:
    """The hex digit value of each code (16: not a hex digit)."""
    return _HEX[values if values.dtype == np.uint8 else np.minimum(values, 255)]


def _without(codes: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``codes`` with ``codes[s+1:s+length]`` dropped for every start ``s`` (lengths >= 2)."""
    edges = np.zeros(len(codes) + 1, dtype=np.int8)  # +1 where a dropped stretch begins,
    edges[starts + 1] += 1  # -1 where it ends: the running sum is 1 inside one
    edges[starts + lengths] -= 1
    return codes[np.cumsum(edges[:-1], dtype=np.int8) == 0]


def _empty(text: str) -> tuple[str, Callable[[], Pieces]]:
    none = np.zeros(0, dtype=np.int64)
    return text, _pieces(none, none, none, len(text))


def percent_decode(text: str) -> tuple[str, Callable[[], Pieces] | None] | None:
    """``text`` with every ``%XX`` run decoded, and its map (None: build it by regex)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return None
    b = np.frombuffer(data, dtype=np.uint8)
    signs = np.flatnonzero(b[:-2] == 37)  # work from here on is per "%", not per byte
    high, low = _hex(b[signs + 1]), _hex(b[signs + 2])
    ok = (high < 16) & (low < 16)
    esc = signs[ok]
    if not len(esc):
        return _empty(text)
    out = b.copy()
    out[esc] = high[ok] * 16 + low[ok]
    keep = np.ones(len(b), dtype=bool)
    keep[esc + 1] = keep[esc + 2] = False
    raw = out[keep]
    try:
        decoded = raw.tobytes().decode("utf-8")
    except UnicodeDecodeError:  # an invalid sequence: U+FFFD, and the map by regex
        return raw.tobytes().decode("utf-8", "replace"), None
    first = np.ones(len(esc), dtype=bool)  # escapes that start a run
    first[1:] = esc[1:] != esc[:-1] + 3
    run_at = np.flatnonzero(first)
    count = np.diff(np.append(run_at, len(esc)))  # escapes per run
    starts = esc[run_at]
    if len(data) == len(text) and len(decoded) == len(raw):  # all ASCII: bytes are characters
        return decoded, _pieces(starts, 3 * count, count, len(text))

    def chars(data: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Characters before each byte offset ``at`` (UTF-8 continuation bytes do not count)."""
        return np.concatenate(([0], np.cumsum((data & 0xC0) != 0x80)))[at]

    at = starts - 2 * run_at  # where each run's bytes land in the view
    sizes = chars(raw, at + count) - chars(raw, at)
    begin = chars(b, starts)
    return decoded, _pieces(begin, chars(b, starts + 3 * count) - begin, sizes, len(text))


def json_decode(text: str) -> tuple[str, Callable[[], Pieces]]:
    """``text`` with every JSON string escape decoded (one character each), and its map."""
    ascii = text.isascii()
    raw = text.encode("ascii") if ascii else text.encode("utf-32-le", "surrogatepass")
    c = np.frombuffer(raw, dtype=np.uint8 if ascii else np.uint32)
    n = len(c)
    slash = np.flatnonzero(c == 92)
    fresh = np.ones(len(slash), dtype=bool)
    fresh[1:] = slash[1:] != slash[:-1] + 1
    run_start = np.maximum.accumulate(np.where(fresh, slash, 0))
    at = slash[(slash - run_start) & 1 == 0]  # a backslash that may open an escape
    at = at[at + 1 < n]
    if not len(at):
        return _empty(text)
    letter = c[at + 1]
    # The four characters after each letter as hex digit values (16: not a digit; past the
    # end reads zeros, which are not digits either).
    padded = np.concatenate((c, np.zeros(5, dtype=c.dtype)))
    h0, h1, h2, h3 = (_hex(padded[at + k]).astype(np.uint32) for k in (2, 3, 4, 5))
    is_u = (letter == ord("u")) & ((h0 | h1 | h2 | h3) < 16)  # all four are digits
    is_x = (letter == ord("x")) & ((h0 | h1) < 16)  # the first two are
    value = (h0 & 15) << 12 | (h1 & 15) << 8 | (h2 & 15) << 4 | h3 & 15
    simple = _SIMPLE[np.minimum(letter, 127)]
    match = is_u | is_x | (simple > 0)
    is_u, is_x = is_u[match], is_x[match]
    starts = at[match]
    lengths = np.where(is_u, 6, np.where(is_x, 4, 2))
    values = np.where(is_u, value[match], np.where(is_x, value[match] >> 8, simple[match]))
    if ascii and values.max(initial=0) < 128:
        out = c.copy()
        out[starts] = values
        decoded = _without(out, starts, lengths).tobytes().decode("ascii")
    else:
        out = c.astype(np.uint32)
        out[starts] = values
        kept = _without(out, starts, lengths).tobytes()
        decoded = codecs.utf_32_le_decode(kept, "surrogatepass", True)[0]
    return decoded, _pieces(starts, lengths, np.ones(len(starts), dtype=np.int64), n)


# ---- the substitutions' callbacks, one call per match ------------------------------------
def percent_run(m: re.Match[str]) -> str:
    """A run of ``%XX`` escapes as the UTF-8 text its bytes spell."""
    raw = bytes.fromhex(m.group().replace("%", ""))
    return raw.decode("utf-8", "replace")


_JSON_SIMPLE = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    "/": "/",
    '"': '"',
    "\\": "\\",
    "'": "'",
}


def json_escape(m: re.Match[str]) -> str:
    """One JSON string escape as the character it stands for."""
    token = m.group()
    if token[1] in "ux":
        return chr(int(token[2:], 16))
    return _JSON_SIMPLE[token[1]]


def html_entity(m: re.Match[str]) -> str:
    """One HTML character reference as text (the reference itself when it is not one)."""
    try:
        return html.unescape(m.group())
    except (ValueError, OverflowError):
        return m.group()
