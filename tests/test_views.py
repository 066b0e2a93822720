"""Canonical and decoded views of a query, and their offset maps back to the original."""

from __future__ import annotations

import pytest

from helpers.gateway.policies.views import (
    build_views,
    canonical_view,
    decode_view,
    separators_view,
)

ZW = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
DASHES = [chr(c) for c in range(0x2010, 0x2016)] + ["\u2212"]
SPACES = ["\u00a0", "\u202f", "\u2007", "\u3000"]


def fullwidth(s: str) -> str:
    return "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in s)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (fullwidth("123-45-6789"), "123-45-6789"),
        ("\u0967\u0968\u0969", "123"),  # Devanagari
        ("\u0661\u0662\u0663", "123"),  # Arabic-Indic
        ("\u06f1\u06f2\u06f3", "123"),  # extended Arabic-Indic
        ("\uff33\uff33\uff2e", "SSN"),  # fullwidth letters, NFKC
        *[(f"12{d}34", "12-34") for d in DASHES],
        *[(f"12{s}34", "12 34") for s in SPACES],
        *[(f"1{z}2{z}3", "123") for z in ZW],
        ("caf\u00e9 \u00e0 la carte", "caf\u00e9 \u00e0 la carte"),  # letters stay letters
        ("DR\u041eP T\u0410BLE", "DROP TABLE"),  # Cyrillic O and A
        ("\u054dNION S\u0395L\u0415CT", "UNION SELECT"),  # Armenian U, Greek and Cyrillic E
        ("\ufb01le \u2474 \u00bd \u2473", "file (1) 1/2 20"),  # NFKC forms of several chars
        ("x\ud800y", "x\ufffdy"),  # a lone surrogate reads as the replacement character
    ],
)
def test_canonical_view_folds_what_a_reader_does_not_see(text: str, expected: str) -> None:
    assert canonical_view(text).text == expected


def test_ascii_text_has_no_views_at_all() -> None:
    assert build_views("What are best practices for AI model deployment?") == []
    assert build_views("Order 12345, ticket 42, version 2.3.1") == []


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("percent", "id=%27%20OR%201%3D1--", "id=' OR 1=1--"),
        ("percent", "caf%C3%A9", "caf\u00e9"),
        ("json", "x \\u0027 OR \\u00271\\u0027=\\u00271", "x ' OR '1'='1"),
        ("json", 'a \\" OR \\"a\\"=\\"a', 'a " OR "a"="a'),
        ("html", "&#39; OR &#x27;1&#39;=&apos;1", "' OR '1'='1"),
        ("html", "Tom &amp; Jerry", "Tom & Jerry"),
        ("sql", "UN/**/ION  SEL/* x */ECT\t1", "UNION SELECT 1"),
        ("spelled", "ssn three two seven, four five, six seven eight nine", "ssn 327-45-6789"),
        ("separators", "4111.1111/1111 - 1111", "4111 1111 1111 1111"),
        ("separators", "GB82-WEST-1234", "GB82 WEST 1234"),
    ],
)
def test_decoded_views(name: str, text: str, expected: str) -> None:
    assert decode_view(name, text).text == expected


def test_short_runs_of_number_words_are_not_rewritten() -> None:
    assert decode_view("spelled", "one or two of us, three maybe").text == (
        "one or two of us, three maybe"
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (f"SSN {fullwidth('123-45-6789')} ok", fullwidth("123-45-6789")),
        ("SSN 1\u200b2\u200b3-45-6789 ok", "1\u200b2\u200b3-45-6789"),
        ("\u200b\u200bSSN 123\u201345\u20136789\u200b", "123\u201345\u20136789"),
        ("card 4111.1111/1111 - 1111 ok", "4111.1111/1111 - 1111"),
        ("x %31%32%33%2D%34%35%2D%36%37%38%39 y", "%31%32%33%2D%34%35%2D%36%37%38%39"),
    ],
)
def test_a_span_in_a_view_maps_back_to_exactly_the_original_characters(
    text: str, value: str
) -> None:
    start = text.index(value)
    for view in build_views(text):
        digits = "".join(c for c in value if c.isdigit())
        folded = canonical_view(view.text).text
        # Find the value's digits in the view, allowing the view's own separators between.
        if digits[:3] not in folded.replace("-", "").replace(" ", ""):
            continue
        first = next(i for i, c in enumerate(view.text) if c.isdigit() or c == "\uff11")
        last = max(i for i, c in enumerate(view.text) if c.isdigit()) + 1
        assert view.to_original((first, last)) == (start, start + len(value)), view


def test_a_flood_of_format_characters_builds_in_one_pass() -> None:
    text = "4\u200b" * 50_000
    view = canonical_view(text)
    assert view.text == "4" * 50_000
    assert view.to_original((0, 50_000)) == (0, len(text) - 1)


def test_expansions_and_vanishing_characters_map_back_exactly() -> None:
    text = "a\u200b\ufb01\u2473b"
    view = canonical_view(text)
    assert view.text == "afi20b"
    assert view.to_original((1, 3)) == (2, 3)  # "fi" is the ligature
    assert view.to_original((2, 3)) == (2, 3)  # so is its second letter
    assert view.to_original((3, 5)) == (3, 4)  # "20" is the circled twenty
    assert view.to_original((0, 6)) == (0, 5)


def test_a_flood_of_expanding_characters_folds_whole() -> None:
    view = canonical_view("\u2473\u200b" * 100_000)
    assert view.text == "20" * 100_000
    assert view.to_original((2, 4)) == (2, 3)


def test_double_encoding_is_decoded_to_a_fixed_point() -> None:
    texts = [v.text for v in build_views("q=%2527 &amp;#39; \\u002527")]
    assert "q=' &#39; \\u002527" in texts  # percent twice
    assert any("q=%2527 ' " in t for t in texts)  # HTML twice
    assert any(t.endswith("%27") for t in texts) and any(t.endswith("'") for t in texts)


def test_decoding_stops_after_three_rounds() -> None:
    texts = {v.text for v in build_views("%25252527")}
    assert texts == {"%252527", "%2527", "%27"}


def test_a_flood_of_percent_or_json_escapes_is_decoded_whole() -> None:
    (view,) = build_views("%20 " * 300_000 + "%27")
    assert view.text == "  " * 300_000 + "'"
    assert view.to_original((600_000, 600_001)) == (1_200_000, 1_200_003)
    (view,) = build_views("x" + "%20" * 300_000)
    assert view.to_original((1, 2)) == (1, 900_001)  # one run of escapes is one piece
    (view,) = build_views("\\u0020 " * 100_000 + "\\u0027")
    assert view.text == "  " * 100_000 + "'"
    assert view.to_original((200_000, 200_001)) == (700_000, 700_006)


def test_a_flood_of_html_entities_over_the_budget_skips_that_decoder() -> None:
    assert build_views("&#32;" * 9000) == []
    assert [v.name for v in build_views("&#32;" * 100 + "&#39;")] == ["html"]


def test_separator_pieces_keep_digits_exact() -> None:
    view = separators_view("a 12.34 b")
    assert view.text == "a 12 34 b"
    assert view.to_original((2, 7)) == (2, 7)
    assert view.to_original((5, 7)) == (5, 7)
