"""Tests for helpers.gateway.policies.pii: validated detectors, quiet look-alikes, reporting."""

from __future__ import annotations

import pytest

from helpers.gateway.policies import pii_checks
from helpers.gateway.policies.pii import (
    CRITICAL_PII,
    PII_RULES,
    PII_TYPES,
    PiiRule,
    explain_pii,
    scan_pii,
)


def ids(text: str) -> list[str]:
    return [f.policy_id for f in scan_pii(text)]


# (text, expected policy ids) -- every type several times, in realistic wording.
POSITIVES = [
    # credit_card: Luhn-valid with a known issuer prefix, in the layouts cards are printed in
    ("My card is 4111 1111 1111 1111, exp 12/27", ["sys_pii_credit_card"]),
    ("Charge 5555-5555-5555-4444 for the renewal", ["sys_pii_credit_card"]),
    ("Mastercard 2223003122003222 was declined", ["sys_pii_credit_card"]),
    ("Amex 3782 822463 10005 please", ["sys_pii_credit_card"]),
    ("discover 6011111111111117", ["sys_pii_credit_card"]),
    ("JCB card 3530111333300000 on file", ["sys_pii_credit_card"]),
    ("Diners 3056 930902 5904", ["sys_pii_credit_card"]),
    ("UnionPay 6200000000000005", ["sys_pii_credit_card"]),
    ("Maestro 6759649826438453", ["sys_pii_credit_card"]),
    ("19-digit Visa 4000 0000 0000 0000 006", ["sys_pii_credit_card"]),
    ("My card is 4111 1111 1111 1111 12/27", ["sys_pii_credit_card"]),
    ("卡号4111111111111111", ["sys_pii_credit_card"]),
    # ssn: SSA-valid, dashed or spaced; bare nine digits only next to the word
    ("SSN 123-45-6789", ["sys_pii_ssn"]),
    ("her social security number is 219 09 9998", ["sys_pii_ssn"]),
    ("my ssn: 123456789", ["sys_pii_ssn"]),
    ("Social Security 536228741 on the form", ["sys_pii_ssn"]),
    # iban: right length for the country, MOD-97, any case, grouped in fours or not
    ("Wire it to DE89 3704 0044 0532 0130 00 today", ["sys_pii_iban"]),
    ("iban de89370400440532013000", ["sys_pii_iban"]),
    ("GB82WEST12345698765432 is my account", ["sys_pii_iban"]),
    ("FR14 2004 1010 0505 0001 3M02 606", ["sys_pii_iban"]),
    ("pay NL91ABNA0417164300", ["sys_pii_iban"]),
    ("NO93 8601 1117 947", ["sys_pii_iban"]),
    # bank_account: account-number keyword, or an ABA routing number next to an account
    ("my account number is 12345678901", ["sys_pii_bank_account"]),
    ("acct # 00012345678", ["sys_pii_bank_account"]),
    ("Account No. 4021 7755 0193", ["sys_pii_bank_account"]),
    ("routing 021000021 account 1234567890", ["sys_pii_bank_account"]),
    ("ABA 011000015, acct 99887766554", ["sys_pii_bank_account"]),
    ("account 1234567890 routing number 121000358", ["sys_pii_bank_account"]),
    # pan: 5 letters, 4 digits, 1 letter, holder-type 4th letter; either case
    ("PAN ABCPE1234F", ["sys_pii_pan"]),
    ("company pan aaacb1234c", ["sys_pii_pan"]),
    # aadhaar: 12 digits, first 2-9, Verhoeff-valid
    ("Aadhaar 2345 6789 0124", ["sys_pii_aadhaar"]),
    ("aadhaar no 9876-5432-1012", ["sys_pii_aadhaar"]),
    ("UID 456789012341", ["sys_pii_aadhaar"]),
    # email
    ("write to john.doe@acme-corp.com", ["sys_pii_email"]),
    ("cc priya+billing@mail.example.co.in", ["sys_pii_email"]),
    ("Contact: J_Smith@Example.ORG.", ["sys_pii_email"]),
    # phone
    ("Call (415) 555-0132 after 5", ["sys_pii_phone"]),
    ("+44 20 7946 0958", ["sys_pii_phone"]),
    ("WhatsApp +91 98765 43210", ["sys_pii_phone"]),
    ("text +14155550132", ["sys_pii_phone"]),
    ("reach me at 415.555.0132", ["sys_pii_phone"]),
    ("1-800-555-0199 is the hotline", ["sys_pii_phone"]),
    ("call me on 020 7946 0958", ["sys_pii_phone"]),
    ("phone: 4155550132", ["sys_pii_phone"]),
    # ip_address
    ("the server 192.168.1.10 is down", ["sys_pii_ip_address"]),
    ("open http://10.0.0.5:8080/health", ["sys_pii_ip_address"]),
    ("block 203.0.113.7/32", ["sys_pii_ip_address"]),
    ("fe80::1ff:fe23:4567:890a", ["sys_pii_ip_address"]),
    ("host 2001:db8::8a2e:370:7334 answered", ["sys_pii_ip_address"]),
    # passport
    ("passport no. K1234567", ["sys_pii_passport"]),
    ("Passport Number: 533380006", ["sys_pii_passport"]),
    ("my PASSPORT is c01x00t47", ["sys_pii_passport"]),
    # dob
    ("DOB: 03/14/1985", ["sys_pii_dob"]),
    ("date of birth 1985-03-14", ["sys_pii_dob"]),
    ("born on March 3, 1990", ["sys_pii_dob"]),
    ("D.O.B. 29.02.1992", ["sys_pii_dob"]),
    ("Birthdate: 3rd of March 1990", ["sys_pii_dob"]),
]

# Look-alikes: numbers with the shape of PII that fail a rule, or lack the context it needs.
NEGATIVES = [
    "Order #12345678 shipped",
    "order 1234567890123456 is late",  # 16 digits, no issuer, fails Luhn
    "4111 1111 1111 1112",  # Luhn fails
    "9000000000000001",  # Luhn passes, no issuer starts with 9
    "x 1234 4111 1111 1111 1111",  # a slice of a longer grouped number
    "4111111111111111-22",  # runs on into a part number
    "due 2024-01-15 at noon",
    "on 01/15/2024 or 15.01.2024",
    "the meeting is on March 3, 1990",  # a date, but nothing says birth
    "call 123-456-7890",  # NANP area codes never start with 1
    "+1-123-456-7890",
    "extension 555-0132",
    "Order 555-123-4567",  # the word before says it is an order number
    "ticket 415-555-0132",
    "id 123e4567-e89b-12d3-a456-426614174000",
    "guid 12345678-1234-1234-1234-123456789012",
    "upgrade to 1.2.3 then 2.10.4",
    "version 10.0.0.1 fixes it",
    "v2.4.1.0 is out",
    "ISBN 978-3-16-148410-0",
    "ISBN 0-306-40615-2",
    "9783161484100",
    "ship to 94105-1234",
    # SSA-invalid and unlabelled (labelled ones are sensitive: see LABELLED below)
    "case 000-12-3456",
    "case 666-12-3456",
    "case 912-12-3456",
    "case 123-00-4567",
    "case 123-45-0000",
    "078-05-1120",  # the SSN printed in wallet ads, voided
    "123-45 6789",  # mixed separators
    "ref 123456789",  # nine bare digits without the word SSN
    "DE89 3704 0044 0532 0130 01",  # bad check digits
    "GB82WEST1234569876543",  # one character short for GB
    "XX89370400440532013000",  # not a country in the table
    "routing 021000022 account 1234567890",  # ABA checksum fails
    "account number 1234",  # too short
    "account number 11111111",  # one digit repeated
    "account 1234567890",  # no keyword form, no routing number
    "ABCDE1234F",  # 4th letter D is not a holder type
    "AbCPE1234F",  # mixed case: an identifier
    "2345 6789 0123",  # Verhoeff fails
    "1234 5678 9012",  # Aadhaar never starts with 0 or 1
    "pay ravi@okaxis",  # UPI id, no dotted domain
    "logo@2x.png",
    "ssh user@localhost",
    "ip 999.1.1.1",
    "10.0.0.256",
    "1.2.3.4.5",
    "01.02.03.04",
    "12:30:45 UTC",
    "mac 00:1A:2B:3C:4D:5E",
    "std::vector<int>",
    "my passport expired",
    "passport office 2024",
    "born on 31/02/1990",  # no such date
    "invoice date 03/14/1985",
    "",
    "What are best practices for AI model deployment?",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_detects(text: str, expected: list[str]) -> None:
    assert ids(text) == expected


@pytest.mark.parametrize("text", NEGATIVES)
def test_look_alikes_stay_quiet(text: str) -> None:
    assert ids(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call +1-555-123-4567, SSN 123-45-6789", ["sys_pii_ssn", "sys_pii_phone"]),
        ("mail bob@acme.com, card 4111111111111111", ["sys_pii_credit_card", "sys_pii_email"]),
        (
            "DOB 1990-01-02, passport K1234567, IP 10.1.2.3, PAN ABCPE1234F",
            ["sys_pii_pan", "sys_pii_ip_address", "sys_pii_passport", "sys_pii_dob"],
        ),
    ],
)
def test_every_type_is_reported(text: str, expected: list[str]) -> None:
    assert ids(text) == expected


def test_canonical_order_whatever_the_text_order() -> None:
    text = (
        "born on 1990-01-02; passport no A1234567; host 10.1.2.3; call (415) 555-0132; "
        "mail a@b.co; aadhaar 2345 6789 0124; PAN ABCPE1234F; account number 12345678; "
        "IBAN DE89370400440532013000; SSN 123-45-6789; card 4111111111111111"
    )
    assert [f.policy_id for f in scan_pii(text)] == [f"sys_pii_{kind}" for kind in PII_TYPES]


def test_public_constants() -> None:
    assert PII_TYPES[:6] == ("credit_card", "ssn", "iban", "bank_account", "pan", "aadhaar")
    assert CRITICAL_PII == frozenset(PII_TYPES[:6])
    assert {rule.pii_type for rule in PII_RULES} == set(PII_TYPES)


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_finding_fields_and_reasons(text: str, expected: list[str]) -> None:
    for finding in scan_pii(text):
        kind = finding.policy_id.removeprefix("sys_pii_")
        assert finding.family == "pii"
        if kind in CRITICAL_PII:
            assert (finding.action, finding.severity) == ("block", "critical")
        else:
            assert finding.action == "warn"
            assert finding.severity in ("medium", "low")
        start, end = finding.span
        value = text[start:end]
        assert value.strip() == value and len(value) >= 6
        assert value not in finding.reason and value.lower() not in finding.reason.lower()
        assert finding.reason.startswith("Query contains")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Call +1-555-123-4567 now", "+1-555-123-4567"),
        ("SSN: 123-45-6789.", "123-45-6789"),
        ("naïve café, card 4111 1111 1111 1111", "4111 1111 1111 1111"),
        ("my ssn: 123456789", "123456789"),
        ("IBAN DE89 3704 0044 0532 0130 00 thanks", "DE89 3704 0044 0532 0130 00"),
        ("passport no. K1234567", "K1234567"),
        ("DOB: 03/14/1985", "03/14/1985"),
    ],
)
def test_span_is_the_value(text: str, value: str) -> None:
    (finding,) = scan_pii(text)
    assert text[slice(*finding.span)] == value


def test_span_is_the_first_match_and_explain_lists_all() -> None:
    text = "mail x@corp.com or y@corp.com, then call (415) 555-0132 or +44 20 7946 0958"
    (email, phone) = scan_pii(text)
    assert text[slice(*email.span)] == "x@corp.com"
    assert text[slice(*phone.span)] == "(415) 555-0132"
    shown = explain_pii(text)
    assert [(m.pii_type, text[slice(*m.span)]) for m in shown] == [
        ("email", "x@corp.com"),
        ("email", "y@corp.com"),
        ("phone", "(415) 555-0132"),
        ("phone", "+44 20 7946 0958"),
    ]
    assert shown[2].rule == "phone_nanp" and "NANP" in shown[2].check
    assert "corp" not in repr(shown)  # a match never shows its value


def test_explain_shows_one_match_where_two_layouts_overlap() -> None:
    shown = explain_pii("+1 415-555-0132")
    assert [(m.pii_type, m.span) for m in shown] == [("phone", (0, 15))]


@pytest.mark.parametrize(
    "text",
    [
        "1" * 1_000_000,
        "1-" * 500_000,
        "a@" * 500_000,
        "1." * 500_000,
        "4111 " * 200_000,
        "a1:" * 333_333,
        "é1" * 500_000,
    ],
    ids=["ones", "one-dash", "a-at", "one-dot", "card-groups", "hex-colon", "non-ascii"],
)
def test_adversarial_megabyte_inputs(text: str) -> None:
    assert scan_pii(text) == []
    # Detection still works after the noise.
    tail = " card 4111 1111 1111 1111"
    found = scan_pii(text + tail)
    assert [f.policy_id for f in found] == ["sys_pii_credit_card"]
    assert found[0].span == (len(text) + 6, len(text) + len(tail))


def test_lone_surrogates_do_not_raise() -> None:
    assert ids("\ud800 card 4111 1111 1111 1111") == ["sys_pii_credit_card"]


def test_non_ascii_inside_a_value_and_before_it() -> None:
    text = "Überweisung: routing 021000021 – account 1234567890"
    (finding,) = scan_pii(text)
    assert finding.policy_id == "sys_pii_bank_account"
    assert text[slice(*finding.span)] == "021000021 – account 1234567890"


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_explain_agrees_with_scan(text: str, expected: list[str]) -> None:
    assert sorted({f"sys_pii_{m.pii_type}" for m in explain_pii(text)}) == sorted(expected)


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        (pii_checks._luhn_ok, "79927398713", True),
        (pii_checks._luhn_ok, "79927398710", False),
        (pii_checks._verhoeff_ok, "2363", True),
        (pii_checks._verhoeff_ok, "2364", False),
        (pii_checks.iban_ok, "GB82WEST12345698765432", True),
        (pii_checks.iban_ok, "GB82WEST12345698765433", False),
        (pii_checks._aba_ok, "021000021", True),
        (pii_checks._aba_ok, "021000022", False),
        (pii_checks._aba_ok, "991000021", False),  # not a Federal Reserve prefix
    ],
)
def test_checksums(check, value: str, ok: bool) -> None:
    assert check(value) is ok


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"pii_type": "shoe_size"}, "unknown type"),
        ({"pattern": r"\d{9}"}, "needs a group"),
        ({"pattern": r"(\d{9"}, "bad pattern"),
        ({"pattern": "(é)"}, "ASCII"),
    ],
)
def test_rules_are_validated_when_built(kwargs: dict[str, str], problem: str) -> None:
    fields = {"name": "r", "pii_type": "ssn", "pattern": r"(\d{9})"} | kwargs
    with pytest.raises(ValueError, match=problem):
        PiiRule(validator=lambda v: True, check="c", **fields)


def test_reprs_are_useful() -> None:
    assert repr(PII_RULES[0]) == "<PiiRule credit_card/card: Luhn checksum + issuer prefix>"
    assert repr(explain_pii("mail bob@example.com")) == (
        "[<PiiMatch email [5:20] email: address syntax + dotted domain>]"
    )


def _luhn_failing_visa(n: int) -> list[str]:
    import random

    from helpers.gateway.policies.pii_checks import _luhn_ok

    rng = random.Random(3)
    out: list[str] = []
    while len(out) < n:
        digits = "4" + "".join(rng.choice("0123456789") for _ in range(15))
        if not _luhn_ok(digits):
            out.append(digits)
    return out


def test_flood_under_the_budget_is_validated_and_clean() -> None:
    from helpers.gateway.policies.pii import VALIDATION_BUDGET

    text = " ".join(_luhn_failing_visa(VALIDATION_BUDGET - 10))
    assert [f.policy_id for f in scan_pii(text)] == []


def test_flood_over_the_budget_fails_closed() -> None:
    from helpers.gateway.policies.pii import VALIDATION_BUDGET

    text = " ".join(_luhn_failing_visa(VALIDATION_BUDGET + 50))
    findings = scan_pii(text)
    assert [f.policy_id for f in findings] == ["sys_pii_credit_card"]
    assert findings[0].blocks and "not all were validated" in findings[0].reason


# -- labelled identifiers: the label decides ------------------------------------------------------
# A number in an SSN's layout that the text itself calls an SSN, ITIN or TIN is sensitive even
# where the SSA rules reject it (an ITIN's area is 9xx); without a label the rules still apply.
LABELLED = [
    ("SSN 903-28-0907", True),
    ("ssn: 912 34 5678", True),
    ("Social Security No. 900-70-1234", True),
    ("ITIN 912-70-1234 for the W-7", True),
    ("Taxpayer TIN: 987654321", True),
    ("taxpayer identification number 999-88-7777", True),
    ("SS# 000-12-3456", True),
    ("SSN 666-12-3456 (never issued, still an SSN by its label)", True),
    ("SSN 123-00-4567", True),
    ("SSN 123-45-0000", True),
    ("invoice 903-28-0907 was paid", False),  # no label: SSA rules, and 9xx fails them
    ("ticket 912 34 5678 reopened", False),
    ("a tin of 903-28-0907 beans", False),  # "tin" is a metal, not a TIN
    ("SSN 903-280-907 is malformed", False),  # not an SSN's layout
    ("SSN 903-28 0907", False),  # two different separators
]


@pytest.mark.parametrize(("text", "flagged"), LABELLED)
def test_a_label_makes_an_identifier(text: str, flagged: bool) -> None:
    assert ("sys_pii_ssn" in ids(text)) is flagged
