"""Obfuscated attacks are caught and their benign look-alikes pass: engine, detectors, HTTP.

Each category is tested both ways. The adversarial corpus (``data/corpus/adversarial``) is
checked for shape here; its per-category accuracy is what ``python -m helpers.bench gateway``
reports.
"""

from __future__ import annotations

import re

import httpx
import pytest

from helpers.corpus import CORPUS_DIR, load_corpus
from helpers.gateway.engine import DecisionEngine
from helpers.gateway.policies.obfuscation import pii_matches, scan_views
from helpers.gateway.policies.pii_checks import aadhaar_ok, card_ok, iban_ok, pan_ok, ssn_ok
from helpers.gateway.policies.views import build_views, canonical_view, decode_view

from .conftest import hermetic_settings

SSN, CARD, IBAN, AADHAAR, PAN = (
    "sys_pii_ssn", "sys_pii_credit_card", "sys_pii_iban", "sys_pii_aadhaar", "sys_pii_pan"
)  # fmt: skip
BOOL, UNION, GENERIC, COMMENT = (
    "sqli_boolean_blind", "sqli_union_based", "sqli_generic", "sqli_comment_injection"
)  # fmt: skip


def fw(s: str) -> str:
    return "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in s)


def deva(s: str) -> str:
    return "".join(chr(0x0966 + int(c)) if c.isdigit() else c for c in s)


def arab(s: str) -> str:
    return "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in s)


# (category, text, approved, policies): threats and their near-misses, side by side.
CASES = [
    ("ssn dots", "My SSN is 219.09.9998 thanks", False, [SSN]),
    ("ssn dots, invalid area", "Test value 666.09.9998 from the fixture", True, []),
    ("ssn slashes", "SSN 123/45/6789", False, [SSN]),
    ("date with slashes", "Born 12/05/1990, not an SSN", True, []),
    ("ssn tabs", "ssn\t123\t45\t6789", False, [SSN]),
    ("ssn nbsp", "SSN 123\u00a045\u00a06789", False, [SSN]),
    ("ssn narrow nbsp", "SSN 123\u202f45\u202f6789", False, [SSN]),
    ("ssn en dash", "SSN 123\u201345\u20136789", False, [SSN]),
    ("ssn minus sign", "SSN 123\u221245\u22126789", False, [SSN]),
    ("ssn en dash, group 00", "case 123\u201300\u20136789", True, []),
    ("labelled ssn en dash, group 00", "SSN 123\u201300\u20136789", False, [SSN]),
    ("ssn zero-width", "SSN 1\u200b2\u200b3-4\u200d5-67\u206089\ufeff", False, [SSN]),
    ("ssn fullwidth", f"SSN {fw('123-45-6789')}", False, [SSN]),
    ("ssn fullwidth, area 000", f"case {fw('000-45-6789')}", True, []),
    ("labelled ssn fullwidth, area 000", f"SSN {fw('000-45-6789')}", False, [SSN]),
    ("ssn devanagari", f"SSN {deva('123-45-6789')}", False, [SSN]),
    ("ssn arabic-indic", f"SSN {arab('123-45-6789')}", False, [SSN]),
    (
        "ssn spelled",
        "my social is one two three, four five, six seven eight nine",
        False,
        [SSN],
    ),  # fmt: skip
    ("counting in words", "one two three four, and that is enough", True, []),
    ("card dots", "Card 4111.1111.1111.1111", False, [CARD]),
    ("card dots, Luhn fails", "Card 4111.1111.1111.1112", True, []),
    ("card mixed separators", "card 4111 1111-1111.1111 ok", False, [CARD]),
    ("card zero-width", "card 4\u200b111111111111111", False, [CARD]),
    ("card fullwidth", f"card {fw('5555 5555 5555 4444')}", False, [CARD]),
    ("card arabic-indic", f"card {arab('4111 1111 1111 1111')}", False, [CARD]),
    ("card arabic-indic, Luhn fails", f"card {arab('4111 1111 1111 1113')}", True, []),
    (
        "card spelled",
        "card four one one one one one one one one one one one one one one one",
        False,
        [CARD],
    ),  # fmt: skip
    ("iban hyphens", "IBAN DE89-3704-0044-0532-0130-00", False, [IBAN]),
    ("iban hyphens, MOD-97 fails", "IBAN DE89-3704-0044-0532-0130-01", True, []),
    ("iban letters and hyphens", "to GB82-WEST-1234-5698-7654-32 today", False, [IBAN]),
    ("aadhaar dots", "Aadhaar 2341.2341.2346", False, [AADHAAR]),
    (
        "pan fullwidth",
        "PAN \uff21\uff22\uff23\uff30\uff25\uff11\uff12\uff13\uff14\uff26",
        False,
        [PAN],
    ),  # fmt: skip
    ("tracking number", "Track 1Z999AA10123456784 please", True, []),
    ("isbn", "ISBN 978-0-306-40615-7 and 978.3.16.148410.0", True, []),
    ("uuid", "request 123e4567-e89b-12d3-a456-426614174000 failed", True, []),
    ("git sha", "commit 3f786850e387550fdab836ed7e6dc881de23001b", True, []),
    ("order id", "Order 2024/0518/7731 shipped", True, []),
    ("sqli url-encoded", "q=admin%27%20OR%20%271%27%3D%271", False, [BOOL]),
    ("url-encoded prose", "search?q=caf%C3%A9%20au%20lait", True, []),
    (
        "sqli json-escaped",
        '{"q": "x\\u0027 UNION SELECT password FROM staff"}',
        False,
        [UNION],
    ),  # fmt: skip
    ("json-escaped prose", '{"q": "it\\u0027s a nice day"}', True, []),
    ("sqli html entities", "&#39; OR &#39;1&#39;=&#39;1", False, [BOOL]),
    ("html entities prose", "Tom &amp; Jerry &#8212; a classic", True, []),
    ("sqli CHAR()", "WHERE name = CHAR(97,100,109,105,110)", False, [GENERIC]),
    ("sqli CHAR(39) concat", "name = CHAR(39)+'admin'", False, [GENERIC]),
    ("CHAR in prose", "The CHAR(10) type pads with spaces", True, []),
    ("sqli concat tautology", "user x' OR 'a'||'b'='ab", False, [BOOL]),
    ("sqli quote-free tautology", "item?id=5 OR 2>1", False, [BOOL]),
    ("sqli quote-free BETWEEN", "id=3 OR 7 BETWEEN 1 AND 9", False, [BOOL]),
    ("or in prose", "pick 5 or 6 items, or fewer", True, []),
    ("sqli comment inside keyword", "id=1 UN/**/ION SEL/**/ECT 1,2", False, [UNION]),
    ("union in prose", "the union select committee met", True, []),
    # letters of other scripts that look Latin (TR39 confusables), in SQL keywords
    (
        "sqli armenian U, cyrillic E",
        "id=1' \u054dNION S\u0415L\u0415CT pass FROM users--",
        False,
        [UNION, COMMENT],
    ),
    (
        "sqli cyrillic O in DROP",
        "x'; DR\u041eP TABLE users",
        False,
        ["sqli_stacked_queries", "sqli_dangerous_query"],
    ),
    ("sqli greek omicron in OR", "name=admin' \u039fR '1'='1", False, [BOOL]),
    ("russian prose", "Привет! Как дела? Удалите старые записи из таблицы, пожалуйста.", True, []),
    ("greek prose", "Καλημέρα, το ΟΡΟΣ είναι σημαντικό.", True, []),
    ("arabic prose", "مرحبا، كيف حالك؟ الاجتماع في ١٠ صباحًا.", True, []),
    ("hindi numbers in prose", "बैठक २०२४ में १२ लोग थे", True, []),
    # compatibility forms of several characters: ligatures, circled and parenthesised digits
    ("ssn circled and parenthesised", "SSN \u2460\u2461\u2462-45-6789", False, [SSN]),
    ("ssn with a two-digit circled number", "SSN 1\u3251-45-6789", False, [SSN]),
    ("circled list numbers", "steps \u2460 plan \u2461 build \u2462 ship \u2473 done", True, []),
    ("ligature prose", "the \ufb01rst of\ufb01ce \ufb02oor, \u00bd price", True, []),
    # double encoding
    ("sqli percent twice", "q=admin%2527%2520OR%2520%25271%2527%253D%25271", False, [BOOL]),
    ("url with %25 in it", "see https://example.com/a%2520b?p=100%25 for details", True, []),
    ("sqli html escaped twice", "&amp;#39; OR &amp;#39;1&amp;#39;=&amp;#39;1", False, [BOOL]),
    ("html escaped twice, prose", "Tom &amp;amp; Jerry &amp;#8212; a classic", True, []),
    (
        "sqli json escape of a percent escape",
        '{"q": "admin\\u002527 OR \\u0025271\\u002527=\\u0025271"}',
        False,
        [BOOL],
    ),
    ("json escape of a percent sign", '{"q": "we grew 12\\u0025 this year"}', True, []),
    # IBANs in national groupings and with one kind of separator
    ("iban FR in RIB fields", "Virement: FR76 30006 00001 12345678901 89", False, [IBAN]),
    ("iban FR in fours", "IBAN FR76 3000 6000 0112 3456 7890 189", False, [IBAN]),
    ("iban FR, key fails", "Virement: FR76 30006 00001 12345678901 88", True, []),
    ("iban GB sort code and account", "pay GB29 NWBK 601613 31926819 today", False, [IBAN]),
    ("iban GB, one digit short", "pay GB29 NWBK 601613 3192681 today", True, []),
    ("iban DE BLZ and account", "Konto DE89 37040044 0532013000", False, [IBAN]),
    ("iban DE dots", "Konto DE89.3704.0044.0532.0130.00", False, [IBAN]),
    ("iban DE dots, MOD-97 fails", "Konto DE89.3704.0044.0532.0130.01", True, []),
    ("iban BE national", "rekening BE68 539-0075470-34", False, [IBAN]),
    ("iban IT national", "IBAN IT60 X 05428 11101 000000123456", False, [IBAN]),
    ("iban ES national", "cuenta ES91 2100 0418 45 0200051332", False, [IBAN]),
    ("iban odd grouping", "ref GB29 NW BK60 1613 3192 6819", True, []),
]


@pytest.fixture(scope="module")
def engine() -> DecisionEngine:
    return DecisionEngine.from_settings(hermetic_settings(), rate_limits=False)


@pytest.mark.parametrize(("category", "text", "approved", "policies"), CASES)
def test_engine_decides_obfuscated_forms(
    engine: DecisionEngine, category: str, text: str, approved: bool, policies: list[str]
) -> None:
    decision = engine.decide(text, "user-123")
    assert (decision.approved, sorted(decision.policies)) == (approved, sorted(policies)), category


_PAD = "Our team reviews how we deploy and monitor models across regions.\n" * 400  # 26 KiB


@pytest.mark.parametrize(
    ("tail", "approved"),
    [
        ("id=%2527%2520OR%25201%253D1--", False),  # percent-encoded twice
        ("name=&amp;#39; OR &amp;#39;1&amp;#39;=&amp;#39;1", False),  # HTML-escaped twice
        ("1; DR/**/OP TABLE users", False),  # comment inside a keyword
        ("SSN &#49;&#50;&#51;-45-6789", False),
        ("see https://example.com/a%2520b?p=100%25 &amp; more", True),
    ],
)
def test_escaped_payloads_padded_past_16_kib_are_decoded(
    engine: DecisionEngine, tail: str, approved: bool
) -> None:
    assert len(_PAD) > 16 * 1024
    assert engine.decide(_PAD + tail, "user-123").approved is approved


def test_a_span_through_a_multi_character_form_maps_to_the_users_characters() -> None:
    text = "SSN \u2460\u2461\u2462-45-6789, ok"
    (match,) = pii_matches(text)
    assert text[match.span[0] : match.span[1]] == "\u2460\u2461\u2462-45-6789"
    text = "SSN 1\u3251-45-6789"  # a circled 21 folds to two digits
    (match,) = pii_matches(text)
    assert text[match.span[0] : match.span[1]] == "1\u3251-45-6789"


def test_a_finding_in_a_view_says_which_view() -> None:
    found = scan_views("q=admin%27%20OR%20%271%27%3D%271").sqli
    assert found and "percent-decoding" in found[0].reason
    found = scan_views("Employee 123.45.6789 joined in May").pii  # unlabelled: the view finds it
    assert found and "separators" in found[0].reason


def test_the_sql_scanner_switch_also_skips_views() -> None:
    assert scan_views("q=admin%27%20OR%20%271%27%3D%271", sqli=False).sqli == []


def test_spans_of_view_findings_point_at_the_users_characters() -> None:
    text = f"SSN {fw('123-45-6789')} and card 4111.1111.1111.1111"
    spans = {m.pii_type: text[m.span[0] : m.span[1]] for m in pii_matches(text)}
    assert spans == {"ssn": fw("123-45-6789"), "credit_card": "4111.1111.1111.1111"}


# -- what no pattern matcher can do: documented by tests that pin the limitation --------------
def test_a_number_described_across_sentences_is_not_caught(engine: DecisionEngine) -> None:
    text = "The first three are one two three. Then four five. The last four: six seven eight nine."
    assert engine.decide(text).approved


def test_an_identifier_split_across_two_messages_is_not_caught(engine: DecisionEngine) -> None:
    assert engine.decide("Remember 123-45 for later").approved
    assert engine.decide("and append -6789 to it").approved


# -- the served endpoint ----------------------------------------------------------------------
SERVED = [c for c in CASES if c[0] in {
    "ssn en dash", "ssn en dash, group 00", "card zero-width", "card dots, Luhn fails",
    "sqli url-encoded", "url-encoded prose", "sqli html entities", "html entities prose",
    "ssn spelled", "counting in words", "iban hyphens", "iban hyphens, MOD-97 fails",
}]  # fmt: skip


def test_served_pre_check_decides_obfuscated_forms(make_gateway, clock) -> None:  # type: ignore[no-untyped-def]
    assert len(SERVED) == 12
    gw = make_gateway(clock=clock)
    with httpx.Client(base_url=gw.url) as http:
        for category, text, approved, policies in SERVED:
            body = http.post(
                "/api/policy/pre-check",
                json={"user_token": "user-123", "client_id": "acme", "query": text},
            ).json()
            assert (body["approved"], sorted(body["policies"])) == (approved, sorted(policies)), (
                category
            )
            assert body["verdict"] == ("allow" if approved else "deny")


# -- the adversarial corpus -------------------------------------------------------------------
ADVERSARIAL = load_corpus(CORPUS_DIR / "adversarial")
_VALIDATORS = {SSN: ssn_ok, CARD: card_ok, IBAN: iban_ok, AADHAAR: aadhaar_ok}


def test_adversarial_corpus_size_and_balance() -> None:
    threats = sum(not r.expected_approved for r in ADVERSARIAL)
    assert len(ADVERSARIAL) >= 150
    assert 0.55 <= threats / len(ADVERSARIAL) <= 0.65
    assert {r.category for r in ADVERSARIAL} >= {
        "pii_ssn_separators", "pii_card_separators", "pii_zero_width", "pii_fullwidth_digits",
        "pii_other_script_digits", "pii_spelled_digits", "pii_iban_separators",
        "sqli_url_encoded", "sqli_json_escaped", "sqli_html_entities", "sqli_char_hex",
        "sqli_concatenation", "sqli_quote_free_tautology", "benign_checksum_fails",
        "benign_identifiers", "benign_sql_prose",
    }  # fmt: skip


def test_the_regression_corpus_does_not_include_the_adversarial_one() -> None:
    assert not {r.id for r in load_corpus()} & {r.id for r in ADVERSARIAL}


def _identifiers(text: str) -> list[str]:
    """Every candidate identifier in ``text``, read the way the views read it."""
    readings = [canonical_view(text).text]
    readings += [v.text for v in build_views(text)]
    readings += [decode_view("spelled", r).text for r in readings]
    out = []
    for reading in readings:
        # Every run of up to twelve adjacent tokens (letters and digits apart, so a label
        # glued to a number is its own token), joined without separators; line breaks and
        # table cells separate tokens, they do not end the run.
        for chunk in re.split(r"[^0-9A-Za-z .\-/_\t\n|]+", reading):
            tokens = re.findall(r"[0-9]+|[A-Za-z]+", chunk)
            for i in range(len(tokens)):
                for j in range(i + 1, min(len(tokens), i + 12) + 1):
                    out.append("".join(tokens[i:j]))
    return out


@pytest.mark.parametrize(
    "row",
    [r for r in ADVERSARIAL if set(r.expected_policies) & set(_VALIDATORS)],
    ids=lambda r: r.id,
)
def test_every_identifier_threat_carries_a_valid_identifier(row) -> None:  # type: ignore[no-untyped-def]
    for policy in set(row.expected_policies) & set(_VALIDATORS):
        valid = _VALIDATORS[policy]
        assert any(valid(c) for c in _identifiers(row.query) if c.isalnum()), (row.id, policy)


def test_pan_rows_carry_a_valid_pan() -> None:
    rows = [r for r in ADVERSARIAL if PAN in r.expected_policies]
    assert rows
    for row in rows:
        assert any(len(c) == 10 and pan_ok(c) for c in _identifiers(row.query))


@pytest.mark.parametrize(
    "row", [r for r in ADVERSARIAL if r.category == "benign_checksum_fails"], ids=lambda r: r.id
)
def test_checksum_failing_rows_really_fail(row) -> None:  # type: ignore[no-untyped-def]
    candidates = [c for c in _identifiers(row.query) if c.isdigit() and len(c) >= 9]
    assert not any(card_ok(c) or (len(c) == 9 and ssn_ok(c)) for c in candidates), row.id
