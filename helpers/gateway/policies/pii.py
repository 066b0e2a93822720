"""Validated PII detectors: payment cards, national ids, bank details, contact data.

Each :class:`PiiRule` is data (type, re2 pattern, validator) and every candidate passes three
separate stages: *match* (re2 finds candidate text), *context* (the candidate stands alone, not
a slice of a longer number or identifier) and *validate* (Luhn and issuer, SSA rules, MOD-97,
Verhoeff, ABA checksum, a real calendar date...). Types are detected independently, so one
query reports every type it contains. Introduced in ``05_policies.ipynb``.

>>> [f.policy_id for f in scan_pii("Call +1-555-123-4567, SSN 123-45-6789")]
['sys_pii_ssn', 'sys_pii_phone']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import re2

from .findings import Action, Finding, Severity, char_span, search_set, value_pattern
from .pii_checks import (
    IBAN_LENGTHS,
    aadhaar_ok,
    aadhaar_split_ok,
    account_ok,
    account_then_routing_ok,
    card_ok,
    card_split_ok,
    dob_ok,
    email_ok,
    iban_ok,
    intl_phone_ok,
    ipv4_ok,
    ipv6_ok,
    nanp_ok,
    national_phone_ok,
    pan_ok,
    passport_ok,
    routing_then_account_ok,
    ssn_layout_ok,
    ssn_ok,
    ssn_shape_ok,
    ssn_split_ok,
)

__all__ = [
    "CRITICAL_PII",
    "PII_RULES",
    "PII_TYPES",
    "PiiMatch",
    "LAYOUT_RULES",
    "PiiRule",
    "explain_pii",
    "scan_pii",
]

# `# fmt: skip` keeps the six types that block by default on the first row.
#: Canonical reporting order; the first six block by default (contract Part A).
PII_TYPES: tuple[str, ...] = (
    "credit_card", "ssn", "iban", "bank_account", "pan", "aadhaar",
    "email", "phone", "ip_address", "passport", "dob",
)  # fmt: skip
CRITICAL_PII: frozenset[str] = frozenset(PII_TYPES[:6])
_SEVERITY: dict[str, Severity] = {
    "email": "medium",
    "phone": "medium",
    "passport": "medium",
    "dob": "medium",
    "ip_address": "low",
}
# Reasons name the type and never quote the matched text: block reasons end up in logs.
_REASONS = {
    "credit_card": "Query contains a payment card number (Luhn-valid, known issuer)",
    "ssn": "Query contains a US Social Security number",
    "iban": "Query contains an IBAN (international bank account number)",
    "bank_account": "Query contains a bank account number",
    "pan": "Query contains an Indian PAN (permanent account number)",
    "aadhaar": "Query contains an Aadhaar number (Indian national id)",
    "email": "Query contains an e-mail address",
    "phone": "Query contains a phone number",
    "ip_address": "Query contains an IP address",
    "passport": "Query contains a passport number",
    "dob": "Query contains a date of birth",
}


# ---- the rules: data, validated when built -------------------------------------------------
@dataclass(frozen=True, slots=True)
class PiiRule:
    """One detection rule: where candidates are (``pattern``) and what makes one real.

    ``pattern`` is re2 syntax over ASCII and its group 1 is the value; the rest is context
    such as a keyword. ``standalone`` turns on the context stage (the value must not run on
    into a longer number, as in "4111...1111-22"); ``not_after`` lists words that void a
    value when they come right before it ("version 1.2.3.4", "order 415-555-0132").

    >>> PII_RULES[0]
    <PiiRule credit_card/card: Luhn checksum + issuer prefix>
    """

    name: str
    pii_type: str
    pattern: str
    validator: Callable[[str], bool]
    check: str
    standalone: bool = True
    not_after: frozenset[str] = frozenset()
    #: Candidates validated per scan before the type is reported unverified (see
    #: :data:`VALIDATION_BUDGET`); the label-led rules, whose candidates are long, get less.
    budget: int | None = None
    regex: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex, problem = value_pattern(self.pattern)
        object.__setattr__(self, "regex", regex)
        if self.pii_type not in PII_TYPES:
            problem = f"unknown type {self.pii_type!r}"
        if problem:
            raise ValueError(f"PII rule {self.name!r}: {problem}")

    def __repr__(self) -> str:
        return f"<PiiRule {self.pii_type}/{self.name}: {self.check}>"


# Between two digit groups: one separator, or a line break or table cell with its spaces (a
# hard-wrapped PDF line, "| 267 | 87 | 1664 |"): layout-aware digit runs.
_WRAP = r"(?:[ .-]|[.-]?[ \t]*(?:\r?\n|\|)[ \t|]*)"


def _iban_pattern() -> str:
    """One alternative per IBAN length: exactly that many letters and digits after the
    country code, each may follow one separator; the validator checks the grouping."""
    by_length: dict[int, list[str]] = {}
    for country, length in IBAN_LENGTHS.items():
        by_length.setdefault(int(length), []).append(country)
    parts = [
        rf"(?:{'|'.join(countries)})\d\d(?:{_WRAP}?[0-9a-z]){{{length - 4}}}"
        for length, countries in sorted(by_length.items())
    ]
    return "|".join(parts)


_L = r"(?:^|[^0-9A-Za-z._/+-])"  # left edge: no digit, letter or joiner before the value
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = (
    r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2}(?:\d{2})?|\d{4}[/.-]\d{1,2}[/.-]\d{1,2}"
    rf"|{_MONTH} +\d{{1,2}}(?:st|nd|rd|th)?,? +\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?(?: +of)? +{_MONTH},? +\d{{4}}"
)
_NO = r"(?: ?(?:number|num|no\.?|nr\.?|#))"  # "number", "no.", "#" after a keyword
_IS = r"[ \t]*(?:is[ \t]+|[:#=-][ \t]*)?"  # "is", ":" or "#" before the value
_ACCOUNT, _ROUTING = r"\b(?:account|acct|a/c)", r"\b(?:routing|aba|rtn)\b"
_NOT_PHONE = frozenset(
    "order invoice ticket tracking ref reference isbn sku serial case po part "
    "model confirmation booking".split()
)
# A label that says the number after it is a taxpayer id: SSN, social security, ITIN, TIN.
# ITIN and TIN only in capitals ("tin" is a metal); the rest in any case.
_TAX_LABEL = (
    r"(?:(?i:\bss(?:ns?|#)|\bsocial security\b|\btaxpayer id(?:entification)?\b)"
    r"|\bI?TINs?\b)"
)
# Digit groups a label holds together: any single separator, or a wrap or cell boundary.
_SPLIT = r"(?:[ ./-]|[./-]?[ \t]*(?:\r?\n|\|)[ \t|]*)"
_CARD_LABEL = (
    r"(?i:\b(?:card|cc|visa|mastercard|master card|amex|american express|discover"
    r"|kartennummer|karte|carte|tarjeta)\b)"
)
_SPLIT_BUDGET = 250
_NOT_IP = frozenset("version ver v release build firmware rev revision".split())

# A table: `# fmt: skip` keeps each rule on two or three lines, not one line per argument.
PII_RULES: tuple[PiiRule, ...] = (
    PiiRule("card", "credit_card",
            _L + r"(\d{13,19}|\d{4}(?:[ -]\d{4}){2}[ -]\d{1,4}(?:[ -]\d{3})?"
            r"|\d{4}[ -]\d{6}[ -]\d{4,5})\b", card_ok, "Luhn checksum + issuer prefix"),
    PiiRule("ssn", "ssn", _L + r"(\d{3}[ -]\d\d[ -]\d{4})\b", ssn_ok,
            "SSA area/group/serial rules"),
    PiiRule("ssn_keyword", "ssn", r"(?i:\bssns?\b|\bsocial security\b)[^0-9\n]{0,24}?\b(\d{9})\b",
            ssn_ok, "SSN keyword + SSA rules"),
    PiiRule("ssn_labelled", "ssn", _TAX_LABEL + r"[^0-9\n]{0,24}?\b(\d{3}[ -]?\d\d[ -]?\d{4})\b",
            ssn_shape_ok, "labelled SSN/ITIN/TIN: the label decides, not the SSA rules"),
    PiiRule("ssn_split", "ssn",
            _TAX_LABEL + rf"[^0-9]{{0,40}}?(?:^|[^0-9A-Za-z])(\d(?:{_SPLIT}?\d){{8}})\b",
            ssn_split_ok, "labelled SSN in any grouping, across a line break or table cells"
            " + SSA rules", budget=_SPLIT_BUDGET),
    PiiRule("ssn_layout", "ssn", _L + r"(\d{3}[ -]\d\d[ -]\d{4})\b", ssn_layout_ok,
            "SSN layout, any area but 000 and 666 (PII_SSN_RULES=layout)"),
    PiiRule("card_split", "credit_card",
            _CARD_LABEL + rf"[^0-9]{{0,30}}?(?:^|[^0-9A-Za-z])(\d(?:{_SPLIT}?\d){{12,18}})\b",
            card_split_ok, "card label + digit groups in any layout + Luhn + issuer",
            budget=_SPLIT_BUDGET),
    PiiRule("iban", "iban", rf"(?i){_L}({_iban_pattern()})\b", iban_ok, "country length + MOD-97"),
    PiiRule("account_keyword", "bank_account",
            rf"(?i){_ACCOUNT}\.?{_NO}{_IS}(\d(?:[ -]?\d){{7,16}})\b",
            account_ok, "account-number keyword, 8-17 digits"),
    PiiRule("routing_account", "bank_account",
            rf"(?i){_ROUTING}[^0-9\n]{{0,20}}?\b(\d{{9}}\b[^0-9\n]{{1,30}}?\b\d{{8,17}})\b",
            routing_then_account_ok, "ABA routing checksum + account number"),
    PiiRule("account_routing", "bank_account",
            rf"(?i){_ACCOUNT}\b[^0-9\n]{{0,20}}?\b(\d{{8,17}}\b[^0-9\n]{{1,30}}?{_ROUTING}"
            r"[^0-9\n]{0,20}?\b\d{9})\b",
            account_then_routing_ok, "account number + ABA routing checksum"),
    PiiRule("pan", "pan", r"(?i)\b([a-z]{3}[pchfatbljg][a-z]\d{4}[a-z])\b", pan_ok,
            "PAN layout + holder-type letter", standalone=False),
    PiiRule("aadhaar", "aadhaar", _L + r"([2-9]\d{3}[ -]?\d{4}[ -]?\d{4})\b", aadhaar_ok,
            "Verhoeff checksum"),
    PiiRule("aadhaar_split", "aadhaar",
            r"(?i:\b(?:aadhaa?r|uid(?:ai)?)\b)" + rf"[^0-9]{{0,30}}?(?:^|[^0-9A-Za-z])"
            rf"([2-9](?:{_SPLIT}?\d){{11}})\b", aadhaar_split_ok,
            "Aadhaar label + digit groups in any layout + Verhoeff", budget=_SPLIT_BUDGET),
    PiiRule("email", "email",
            r"\b([A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24})\b",
            email_ok, "address syntax + dotted domain", standalone=False),
    PiiRule("phone_international", "phone", _L + r"(\+[1-9](?:[ .-]?\(?\d\)?){7,14})\b",
            intl_phone_ok, "E.164 length, NANP area code", not_after=_NOT_PHONE),
    PiiRule("phone_nanp", "phone",
            _L + r"((?:1[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4})\b",
            nanp_ok, "NANP layout + area code", not_after=_NOT_PHONE),
    PiiRule("phone_keyword", "phone",
            r"(?i)\b(?:phone|tel|telephone|mobile|cell|call|whatsapp|fax)\b[^0-9\n]{0,20}?" + _L
            + r"(0\d{1,4}[ -]?\d{3,4}[ -]?\d{3,4}|[2-9]\d{9})\b",
            national_phone_ok, "phone keyword + national number"),
    PiiRule("ipv4", "ip_address", r"(?:^|[^0-9A-Za-z._-])(\d{1,3}(?:\.\d{1,3}){3,4})\b", ipv4_ok,
            "four octets 0-255", standalone=False, not_after=_NOT_IP),
    PiiRule("ipv6", "ip_address", r"(?i)(?:^|[^0-9a-z:._-])([0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,8})",
            ipv6_ok, "IPv6 syntax", standalone=False),
    PiiRule("passport", "passport", rf"(?i)\bpassport\b{_NO}?{_IS}([a-z0-9]{{6,9}})\b",
            passport_ok, "passport keyword + document number", standalone=False),
    PiiRule("dob", "dob",
            r"(?i)(?:\bdob\b|\bd\.o\.b\b\.?|\bdate of birth\b|\bbirth ?date\b|\bborn on\b)"
            rf"[^0-9\n]{{0,20}}?\b({_DATE})\b", dob_ok, "birth keyword + real date",
            standalone=False),
)  # fmt: skip


#: Rules that run only when asked for (``layout=True``, ``PII_SSN_RULES=layout``): by default
#: an unlabelled number must pass the SSA's rules to be an SSN.
LAYOUT_RULES: frozenset[int] = frozenset(
    i for i, rule in enumerate(PII_RULES) if rule.name == "ssn_layout"
)


# ---- match and context stages --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PiiMatch:
    """One validated match. Only the span is kept, never the value, so a repr cannot leak it.

    >>> explain_pii("mail bob@example.com")
    [<PiiMatch email [5:20] email: address syntax + dotted domain>]
    """

    pii_type: str
    span: tuple[int, int]
    rule: str
    check: str

    def __repr__(self) -> str:
        return (
            f"<PiiMatch {self.pii_type} [{self.span[0]}:{self.span[1]}] {self.rule}: {self.check}>"
        )


# One DFA pass over the query names every rule with a candidate somewhere; only those rules
# then run.
_WHICH = search_set(rule.pattern for rule in PII_RULES)
# After a value fails the context stage, its rule resumes past the rest of the digit run, so
# "4111 4111 4111 …" costs one candidate, not one per group.
_DIGIT_RUN = re2.compile(rb"(?:[ ./_-]?[0-9])*")

_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_DIGIT = frozenset(b"0123456789")
_JOINERS = frozenset(b"-./_")
_WORDS = re.compile(r"[a-z]+")
_FILLER = frozenset("no nr num number is id".split())


def _standalone(data: bytes, start: int, end: int) -> bool:
    """False when the value is a slice of something longer: "…1111-22", "1234 4111 1111 …"."""
    after = data[end : end + 2]
    if after and after[0] in _ALNUM:
        return False
    if len(after) == 2 and after[0] in _JOINERS and after[1] in _ALNUM:
        return False
    if b" " not in data[start:end]:
        return True
    # A space-grouped value must not continue into, or follow, another group of digits; a
    # date or a word next to it ("4111 1111 1111 1111 12/27") is fine.
    following = data[end + 1 : end + 12].split(b" ", 1)[0].rstrip(b".,;!?)")
    if after[:1] == b" " and following.isdigit():
        return False
    if start and data[start - 1] == 32:
        previous = data[max(0, start - 12) : start - 1].rsplit(b" ", 1)[-1]
        return not previous.lstrip(b"(").isdigit()
    return True


def _word_before(data: bytes, start: int) -> str:
    words = _WORDS.findall(data[max(0, start - 32) : start].decode("ascii", "ignore").lower())
    while words and words[-1] in _FILLER:
        words.pop()
    return words[-1] if words else ""


def _may_contain_pii(text: str) -> bool:
    # Every rule needs a digit or an "@". `in` is a memchr: ~1 us for 2 KB, far below a scan.
    return (
        "@" in text
        or "0" in text
        or "1" in text
        or "2" in text
        or "3" in text
        or "4" in text
        or "5" in text
        or "6" in text
        or "7" in text
        or "8" in text
        or "9" in text
    )


#: Candidates one rule may validate in one scan. Validation runs in Python (a few µs each),
#: so a prompt stuffed with tens of thousands of card-shaped numbers that all fail Luhn would
#: otherwise take hundreds of milliseconds. Past the budget the type is reported as present,
#: unverified: failing closed, so padding can never hide a real value behind the budget.
VALIDATION_BUDGET = 1000
UNVERIFIED = "unverified: over the validation budget"


def _matches(
    text: str,
    first_only: bool,
    data: bytes | None = None,
    rules: Iterable[int] | None = None,
    layout: bool = False,
) -> list[PiiMatch]:
    if rules is None and not _may_contain_pii(text):
        return []
    if data is None:
        data = text.encode("utf-8", "replace")  # "replace": lone surrogates must not raise
    if rules is None:
        rules = _WHICH.Match(data)
    if rules and not layout:
        rules = [i for i in rules if i not in LAYOUT_RULES]
    if not rules:
        return []
    found: list[PiiMatch] = []
    for index in sorted(rules):
        rule = PII_RULES[index]
        resume: int | None = 0
        budget = rule.budget or VALIDATION_BUDGET
        while resume is not None:
            matches, resume = rule.regex.finditer(data, resume), None
            for m in matches:
                start, end = m.span(1)
                budget -= 1
                if budget < 0:
                    found.append(PiiMatch(rule.pii_type, (start, end), rule.name, UNVERIFIED))
                    resume = None
                    break
                if rule.standalone and not _standalone(data, start, end):
                    skip_to = _DIGIT_RUN.match(data, end).end()
                    if skip_to > end:
                        resume = skip_to
                        break
                    continue
                if rule.not_after and _word_before(data, start) in rule.not_after:
                    continue
                if rule.validator(data[start:end].decode("utf-8", "replace")):
                    found.append(PiiMatch(rule.pii_type, (start, end), rule.name, rule.check))
                    if first_only:
                        break
    if len(data) != len(text):  # non-ASCII text: byte offsets -> str offsets
        found = [replace(f, span=char_span(data, f.span)) for f in found]
    return _ssn_over_dob(found)


def _ssn_over_dob(found: list[PiiMatch]) -> list[PiiMatch]:
    """A value that is both an SSN and a date of birth is the SSN: the identifier is the
    more sensitive reading, and redaction must replace it as one."""
    ssns = [m.span for m in found if m.pii_type == "ssn"]
    if not ssns:
        return found
    return [
        m
        for m in found
        if m.pii_type != "dob" or not any(a < m.span[1] and m.span[0] < b for a, b in ssns)
    ]


def explain_pii(text: str, *, layout: bool = False) -> list[PiiMatch]:
    """Every validated match in reading order, with the rule and check that accepted it.

    Overlapping matches of one type (two phone layouts on one number) are shown once.
    ``layout=True`` also counts an unlabelled number in an SSN's layout that the SSA's rules
    reject (``PII_SSN_RULES=layout``).
    """
    shown: list[PiiMatch] = []
    last_end: dict[str, int] = {}
    found = _matches(text, first_only=False, layout=layout)
    for m in sorted(found, key=lambda m: (m.span[0], -m.span[1])):
        if m.span[0] >= last_end.get(m.pii_type, 0):
            shown.append(m)
            last_end[m.pii_type] = m.span[1]
    return shown


_FINDING_PARTS: dict[str, tuple[str, Severity, Action, str]] = {
    kind: (f"sys_pii_{kind}", "critical", "block", _REASONS[kind])
    if kind in CRITICAL_PII
    else (f"sys_pii_{kind}", _SEVERITY[kind], "warn", _REASONS[kind])
    for kind in PII_TYPES
}


def scan_pii(
    text: str,
    *,
    data: bytes | None = None,
    rules: Iterable[int] | None = None,
    layout: bool = False,
    every: list[PiiMatch] | None = None,
) -> list[Finding]:
    """At most one finding per PII type, in :data:`PII_TYPES` order; span = first match.

    ``data`` and ``rules`` are the text's UTF-8 bytes and the indices of the rules a set pass
    over them found (:mod:`.onepass`), when the caller made that pass already; ``layout`` as
    in :func:`explain_pii`. ``every``, when given, receives every validated match (not only
    the first per rule) from the same search: what redaction replaces.

    >>> scan_pii("My card is 4111 1111 1111 1111")
    [<Finding sys_pii_credit_card block critical>]
    """
    first: dict[str, PiiMatch] = {}
    found = _matches(text, every is None, data, rules, layout)
    if every is not None:
        every += found
    for m in found:
        if m.pii_type not in first or m.span < first[m.pii_type].span:
            first[m.pii_type] = m
    findings = []
    for kind in PII_TYPES:
        if kind in first:
            policy_id, severity, action, reason = _FINDING_PARTS[kind]
            if first[kind].check == UNVERIFIED:
                reason += (
                    f" (more than {VALIDATION_BUDGET:,} candidates: not all were"
                    " validated, so the type is treated as present)"
                )
            findings.append(Finding(policy_id, "pii", severity, action, reason, first[kind].span))
    return findings
