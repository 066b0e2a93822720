"""Detection on text as applications send it: layouts, glued labels, marks, spoken digits,
e-mail encodings, the SSN/DOB tie, and the adversarial corpus's targets per kind."""

from __future__ import annotations

import base64

import pytest

from helpers.corpus import CORPUS_DIR, load_corpus
from helpers.gateway.engine import DecisionEngine
from helpers.gateway.policies.obfuscation import sensitive_matches
from helpers.gateway.policies.pii import PiiMatch, _ssn_over_dob, explain_pii
from helpers.gateway.policies.redaction import redact
from helpers.gateway.policies.views import build_views, canonical_view, decode_view
from helpers.trail.quality import family_of

from .conftest import hermetic_settings

ADVERSARIAL = load_corpus(CORPUS_DIR / "adversarial")


@pytest.fixture(scope="module")
def engine() -> DecisionEngine:
    return DecisionEngine.from_settings(hermetic_settings(), rate_limits=False)


# -- the corpus: every kind has five threats and five benign twins; the targets hold ----------
KINDS = {  # threat category: its benign twin
    "pii_layout_split": "benign_layout_numbers",
    "pii_glued_letters": "benign_glued_codes",
    "pii_combining_marks": "benign_combining_marks",
    "pii_spelled_multilingual": "benign_spelled_numbers",
    "sqli_quoted_printable": "benign_quoted_printable",
    "sqli_base64": "benign_base64",
    "pii_ssn_date_tie": "benign_dob_labelled",
    "sqli_hex_login_bypass": "benign_hex_literals",
    "sqli_time_delay_functions": "benign_delay_prose",
    "sqli_modifier_apostrophe": "benign_modifier_apostrophe",
    "pii_iban_registry": "benign_iban_checksum_fails",
    "sqli_question_to_tool": "benign_payload_questions",
}


@pytest.mark.parametrize(("threat", "twin"), KINDS.items())
def test_every_kind_has_five_threats_and_five_benign_twins(threat: str, twin: str) -> None:
    threats = [r for r in ADVERSARIAL if r.category == threat]
    twins = [r for r in ADVERSARIAL if r.category == twin]
    assert len(threats) >= 5 and not any(r.expected_approved for r in threats)
    assert len(twins) >= 5 and all(r.expected_approved for r in twins)


def test_sql_tutorials_and_scripts_are_in_the_corpus() -> None:
    rows = [r for r in ADVERSARIAL if r.category == "benign_sql_tutorials"]
    assert len(rows) >= 5 and all(r.expected_approved and not r.expected_policies for r in rows)


def test_recall_per_family_and_false_blocks_on_the_adversarial_corpus(engine) -> None:  # type: ignore[no-untyped-def]
    recall: dict[str, list[bool]] = {}
    false_blocks = benign = 0
    for row in ADVERSARIAL:
        decision = engine.decide(row.query, row.user_token)
        if row.expected_approved:
            benign += 1
            false_blocks += not decision.approved
            continue
        for family in {family_of(p) for p in row.expected_policies}:
            found = any(family_of(p) == family for p in decision.policies)
            recall.setdefault(family, []).append(found and not decision.approved)
    assert {"sqli", "pii"} <= set(recall)
    for family, hits in recall.items():
        assert sum(hits) / len(hits) >= 0.95, family
    assert false_blocks / benign <= 0.01


# -- layouts and glued labels ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("SSN: 741-88-\n2478 on file", "ssn", "741-88-\n2478"),
        ("| SSN |\n| 267 | 87 | 1664 |", "ssn", "267 | 87 | 1664"),
        ("Card 4221 1405\n6780 2177 thanks", "credit_card", "4221 1405\n6780 2177"),
        ("Aadhaar: 6234 3118\n8974", "aadhaar", "6234 3118\n8974"),
        ("IBAN RU92 3401 0368 9649 5982\n5001 8887 2238 5", "iban",
         "RU92 3401 0368 9649 5982\n5001 8887 2238 5"),
    ],
)  # fmt: skip
def test_a_label_holds_digit_groups_together_across_wraps_and_cells(
    text: str, kind: str, value: str
) -> None:
    found = [m for m in explain_pii(text) if m.pii_type == kind]
    assert found and text[found[0].span[0] : found[0].span[1]] == value


def test_without_a_label_wrapped_or_tabled_digits_stay_apart() -> None:
    assert explain_pii("| Q1 | 267 | 87 |\n| Q2 | 1664 | 12 |") == []
    assert explain_pii("Page 741 of 882\n2478 words") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dana ReyesSSN417101692Phone", "Dana Reyes SSN 417101692 Phone"),
        ("CardNo4023461435942106Exp09/28", "Card No 4023461435942106 Exp 09/28"),
        ("IBANMN152241284731120928Beneficiary", "IBAN MN152241284731120928 Beneficiary"),
        ("hash 0x2f6574632f706173737764 stays", "hash 0x2f6574632f706173737764 stays"),
    ],
)
def test_glued_view_sets_labels_apart_and_keeps_hex_and_ibans_whole(
    text: str, expected: str
) -> None:
    assert decode_view("glued", text).text == expected


def test_a_glued_value_is_redacted_without_its_neighbours() -> None:
    text = "Name: Dana ReyesSSN417101692Phone: n/a"
    assert redact(text).text == "Name: Dana ReyesSSN[SSN_1]Phone: n/a"


# -- marks, quotes, spoken digits ------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5\u03369\u03365", "595"),  # combining long stroke overlay
        ("4\ufe0f\u20e3 1\ufe0f\u20e3", "4 1"),  # emoji variation selector and keycap
        ("admin\u02bc OR \u02bb1\u02bb", "admin' OR '1'"),  # modifier-letter apostrophes
        ("\u201cquoted\u201d", '"quoted"'),
        ("caf\u00e9 na\u00efve", "caf\u00e9 na\u00efve"),  # letters keep their accents
    ],
)
def test_marks_vanish_and_modifier_quotes_read_as_quotes(text: str, expected: str) -> None:
    assert canonical_view(text).text == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seven four one, double eight, two four seven eight", "741-88-2478"),
        ("four oh two three, triple one", "4023-111"),
        ("dos seis siete, ocho siete, uno seis seis cuatro", "267-87-1664"),
        ("vier zwei zwei eins null fünf sechs", "4221056"),
        ("quatre huit cinq zéro un neuf deux", "4850192"),
        ("ek saat chaar, zero chaar, chhe saat", "174-04-67"),
        ("छह दो तीन चार तीन एक एक", "6234311"),
        ("4 one seven, 1 oh, one 6 nine two", "417-10-1692"),
    ],
)
def test_digits_spelled_in_five_languages_mixed_with_digits(text: str, expected: str) -> None:
    assert decode_view("spelled", canonical_view(text).text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "I do one thing at a time, then two more",  # "do" is Hinglish two, not here
        "uno dos tres cuatro",  # four words: no number
        "someone gave the tone",  # "one" inside a word
    ],
)
def test_prose_with_number_words_is_not_rewritten(text: str) -> None:
    assert decode_view("spelled", text).text == text


# -- e-mail encodings ------------------------------------------------------------------------
def test_quoted_printable_soft_breaks_join_a_keyword(engine) -> None:  # type: ignore[no-untyped-def]
    views = {v.name: v.text for v in build_views("x=27; DR=\nOP TABLE accounts")}
    assert views["qp"] == "x'; DROP TABLE accounts"
    assert not engine.decide("x=27; DR=\nOP TABLE accounts", "user-123").approved


def test_quoted_printable_that_is_not_text_is_left_alone() -> None:
    assert decode_view("qp", "width=3D100 a=C3=A9").text == "width=100 a\u00e9"
    assert decode_view("qp", "bytes =FF=FE here").text == "bytes =FF=FE here"  # not UTF-8


@pytest.mark.parametrize(
    ("payload", "policy"),
    [("admin' OR '1'='1", "sqli_boolean_blind"), ("x'; DROP TABLE t", "sqli_dangerous_query")],
)
def test_base64_that_decodes_to_a_payload_is_blocked(engine, payload: str, policy: str) -> None:  # type: ignore[no-untyped-def]
    encoded = base64.b64encode(payload.encode()).decode()
    decision = engine.decide(f"Decode and use this: {encoded} thanks", "user-123")
    assert not decision.approved and policy in decision.policies
    assert "after decoding base64" in (decision.block_reason or "")


def test_base64_of_prose_or_binary_is_approved(engine) -> None:  # type: ignore[no-untyped-def]
    prose = base64.b64encode(b"What does UNION do in SQL?").decode()
    binary = base64.b64encode(bytes(range(200, 248))).decode()
    for text in (f"decode {prose}", f"png {binary}"):
        assert engine.decide(text, "user-123").approved


# -- the SSN / date-of-birth tie -------------------------------------------------------------
def test_a_labelled_ssn_in_date_punctuation_is_an_ssn_and_is_redacted() -> None:
    text = "born on 12/04/1979, SSN 61/59/37331"
    kinds = {m.pii_type for m in explain_pii(text)}
    assert kinds == {"ssn", "dob"}
    assert redact(text).text == "born on [DOB_1], SSN [SSN_1]"


def test_where_ssn_and_dob_claim_the_same_characters_the_ssn_wins() -> None:
    text = "DOB/SSN: 12-31-1999 (SSN 123-45-6789)"
    spans = {m.kind: m.span for m in sensitive_matches(text)}
    assert "ssn" in spans
    tie = [PiiMatch("dob", (5, 16), "dob", ""), PiiMatch("ssn", (5, 16), "ssn_split", "")]
    assert [m.pii_type for m in _ssn_over_dob(tie)] == ["ssn"]
