"""The array decoders give the text and the offset map of the substitutions they replace."""

from __future__ import annotations

import random

import pytest

from helpers.gateway.policies.decoders import json_decode, percent_decode
from helpers.gateway.policies.views import _DECODERS, _pieces_of

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
