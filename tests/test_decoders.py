"""The array decoders, and the SQL, base64 and glued views' searches without a regex at every
character, give the text (and offset map) of the substitutions they replace."""

from __future__ import annotations

import random
import re

import pytest

from helpers.gateway.policies.decoders import json_decode, percent_decode
from helpers.gateway.policies.views import (
    _DECODERS,
    _glued_edits,
    _pieces_of,
    _run_cuts,
    decode_view,
)

PERCENT_BITS = ["%", "%2", "%27", "%20", "%41", "%e9", "%C3%A9", "%E4%B8%AD", "%FF", "%C3",
                "%A9", "%%", "a", "7", "F", " ", "\u00e9", "\u4e2d", "\U0001f600",
                "%2527"]  # fmt: skip
JSON_BITS = ["\\", "\\\\", "\\u0027", "\\u00e9", "\\ud83d\\ude00", "\\ud800", "\\x41", "\\x4",
             "\\u12", "\\n", "\\t", "\\'", '\\"', "\\/", "\\q", "u", "x", "0", "a", " ",
             "\u00e9", "\U0001f600"]  # fmt: skip


def _random_texts(bits: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(bits) for _ in range(rng.randrange(0, 40))) for _ in range(1500)]


def _expected(name: str, text: str) -> tuple[str, tuple[list[int], ...]]:
    pattern, replace = _DECODERS[name]
    pieces = _pieces_of(text, pattern, replace)
    columns = tuple(map(list, zip(*pieces, strict=True))) or ([], [], [], [])
    return pattern.sub(replace, text), tuple([int(v) for v in col] for col in columns)


@pytest.mark.parametrize(
    ("name", "decode", "bits"),
    [("percent", percent_decode, PERCENT_BITS), ("json", json_decode, JSON_BITS)],
)
def test_array_decoding_equals_the_substitution(name: str, decode, bits: list[str]) -> None:  # type: ignore[no-untyped-def]
    checked = 0
    for text in _random_texts(bits, seed=len(name)):
        done = decode(text)
        assert done is not None, text
        decoded, build = done
        expected_text, expected_map = _expected(name, text)
        assert decoded == expected_text, text
        if build is None:  # invalid UTF-8 decoded: the view maps by the substitution
            continue
        if decoded == text:
            continue  # no escape: the view is never kept
        got = tuple([int(v) for v in col] for col in build())
        assert got == expected_map, text
        checked += 1
    assert checked > 100  # the map was compared on many texts, not skipped


def test_lone_surrogates_leave_percent_decoding_to_the_substitution() -> None:
    assert percent_decode("%27\ud800") is None


# Comments closed, unclosed and nested, every kind of whitespace \s knows (the separators
# \x1c-\x1f, Unicode spaces), and a final line break, where an unclosed comment stops.
SQL_BITS = ["/*", "*/", "/", "*", "/**/", " ", "  ", "\t", "\n", "\r", "\f", "\v", "\x1c",
            "\x1f", "\x85", "\u00a0", "\u2028", "\u3000", "a", "SELECT", "-", "\u00e9"]  # fmt: skip
SQL_EDGES = ["", " ", "   ", "\n", "/*", "/*\n", "/* x\n", "/* x\n\n", "a /* x", "/*/", "/**/",
             "a\x1cb", "a\x1c\x1cb", " a ", "\t a \t", "a\u00a0b", "a \u00a0b",
             "/* a */  b  /*"]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
def test_the_sql_view_text_equals_the_substitution(seed: int) -> None:
    pattern, replace = _DECODERS["sql"]
    changed = 0
    for text in SQL_EDGES + _random_texts(SQL_BITS, seed=seed):
        expected = pattern.sub(replace, text)
        assert decode_view("sql", text).text == expected, repr(text)
        changed += expected != text
    assert changed > 1000  # the texts had comments and whitespace to rewrite


# Runs of base64 characters around 14 long, "=" after them, text that decodes and text that
# does not, and characters that are not ASCII (one byte each in the search).
BASE64_BITS = ["QUJD", "ZGVm", "aGVsbG8gd29ybGQ=", "SGk=", "=", "==", "+", "/", "a", "7", " ",
               "-", ".", "\u00e9", "\u4e2d", "\ud800", "\U0001f600"]  # fmt: skip


def test_the_base64_view_text_equals_the_substitution() -> None:
    pattern, replace = _DECODERS["base64"]
    decoded = 0
    for text in ["", "QUJDZGVmQUJDZGVm", "QUJDZGVmQUJDZGVm==="] + _random_texts(BASE64_BITS, 3):
        expected = pattern.sub(replace, text)
        assert decode_view("base64", text).text == expected, repr(text)
        decoded += len(expected) < len(text)
    assert decoded > 100  # many texts had a run that decodes


# Labels, country codes, hex, digit runs of every length and letters that are not ASCII.
GLUED_BITS = ["SSN", "IBAN", "GB", "DE", "MN", "Card", "No", "a", "Z", "x", "0x", "9f", "1", "12",
              "1234", "123456789", " ", "-", "\u00e9", "\u0414", "\uff11", "\ud800"]  # fmt: skip


def test_the_glued_view_cuts_what_a_walk_over_every_digit_run_cuts() -> None:
    made = 0
    for text in ["", "1234", "ab1", "1234ab", "12345ab1"] + _random_texts(GLUED_BITS, 4):
        cuts: set[int] = set()
        for m in re.finditer(r"[0-9]+", text):
            _run_cuts(text, *m.span(), cuts)
        assert _glued_edits(text) == [(cut, cut, " ") for cut in sorted(cuts)], repr(text)
        made += bool(cuts)
    assert made > 500  # most texts had labels glued to numbers
