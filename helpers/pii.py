"""Validated PII detectors: payment cards, national ids, bank details, contact data.

Each :class:`PiiRule` is data (type, re2 pattern, validator) and every candidate passes three
separate stages: *match* (re2 finds candidate text), *context* (the candidate stands alone, not
a slice of a longer number or identifier) and *validate* (Luhn and issuer, SSA rules, MOD-97,
Verhoeff, ABA checksum, a real calendar date...). Types are detected independently, so one
query reports every type it contains. Introduced in ``04_policies.ipynb``.

>>> [f.policy_id for f in scan_pii("Call +1-555-123-4567, SSN 123-45-6789")]
['sys_pii_ssn', 'sys_pii_phone']
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import re2

from .findings import Action, Finding, Severity

__all__ = [
    "CRITICAL_PII",
    "PII_RULES",
    "PII_TYPES",
    "PiiMatch",
    "PiiRule",
    "explain_pii",
    "scan_pii",
]

#: Canonical reporting order; the first six block by default (contract Part A).
PII_TYPES: tuple[str, ...] = (
    "credit_card", "ssn", "iban", "bank_account", "pan", "aadhaar",
    "email", "phone", "ip_address", "passport", "dob",
)  # fmt: skip
CRITICAL_PII: frozenset[str] = frozenset(PII_TYPES[:6])
_SEVERITY: dict[str, Severity] = {
    "email": "medium", "phone": "medium", "passport": "medium", "dob": "medium",
    "ip_address": "low",
}  # fmt: skip
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


# ---- validate stage: pure functions of the candidate text ---------------------------------
_NON_DIGIT = re.compile(r"[^0-9]")


def _digits(value: str) -> str:
    return _NON_DIGIT.sub("", value)


def _layout(value: str) -> tuple[int, ...]:
    """Digit-group lengths, e.g. (4, 4, 4, 4); () when more than one kind of separator is used."""
    seps = set(_NON_DIGIT.findall(value))
    if len(seps) > 1:
        return ()
    return tuple(map(len, value.split(seps.pop()))) if seps else (len(value),)


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn_ok(d: str) -> bool:
    return (sum(map(int, d[-1::-2])) + sum(_DOUBLED[int(c)] for c in d[-2::-2])) % 10 == 0


_ALL, _LONG = (13, 14, 15, 16, 17, 18, 19), (16, 17, 18, 19)
# Issuer prefix ranges (first, last) and their card lengths, expanded below into a lookup of
# every concrete prefix so a check is at most four dict lookups.
_ISSUER_RANGES = (
    ("4", "4", (13, 16, 19)),  # Visa
    ("51", "55", (16,)), ("2221", "2720", (16,)),  # Mastercard
    ("34", "34", (15,)), ("37", "37", (15,)),  # American Express
    ("6011", "6011", _LONG), ("644", "649", _LONG), ("65", "65", _LONG),  # Discover
    ("3528", "3589", _LONG),  # JCB
    ("300", "305", _ALL[1:]), ("36", "36", _ALL[1:]), ("38", "39", _LONG),  # Diners Club
    ("62", "62", _LONG),  # UnionPay
    ("5018", "5018", _ALL), ("5020", "5020", _ALL), ("5038", "5038", _ALL),  # Maestro
    ("5893", "5893", _ALL), ("6304", "6304", _ALL), ("6759", "6759", _ALL), ("6761", "6763", _ALL),
)  # fmt: skip
_ISSUERS = {
    str(prefix).zfill(len(lo)): lengths
    for lo, hi, lengths in _ISSUER_RANGES
    for prefix in range(int(lo), int(hi) + 1)
}
# How cards are printed: fours (13-16 digits), 4-4-4-4-3 (19), 4-6-4 (Diners), 4-6-5 (Amex).
_CARD_LAYOUTS = {(4, 4, 4, 1), (4, 4, 4, 2), (4, 4, 4, 3), (4, 4, 4, 4), (4, 4, 4, 4, 3),
                 (4, 6, 4), (4, 6, 5)}  # fmt: skip


def _card_ok(value: str) -> bool:
    layout = _layout(value)
    if not (layout in _CARD_LAYOUTS or (len(layout) == 1 and 13 <= layout[0] <= 19)):
        return False
    d = _digits(value)
    issuer = any(len(d) in _ISSUERS.get(d[:k], ()) for k in (1, 2, 3, 4))
    return issuer and _luhn_ok(d)


_SSN_NEVER_ISSUED = frozenset({"078051120", "219099999"})  # printed in ads, voided by the SSA


def _ssn_ok(value: str) -> bool:
    if len(value) == 11:  # "AAA-GG-SSSS" or "AAA GG SSSS"; the pattern fixed the digit places
        if value[3] != value[6]:
            return False
        value = value[:3] + value[4:6] + value[7:]
    area, group, serial = value[:3], value[3:5], value[5:]
    return (area not in ("000", "666") and area[0] != "9" and group != "00"
            and serial != "0000" and value not in _SSN_NEVER_ISSUED)  # fmt: skip


# IBAN length per country (ISO 13616 registry), for the countries people usually paste.
_IBAN_LENGTHS = dict(
    line.split(":")
    for line in (
        "AD:24 AE:23 AL:28 AT:20 AZ:28 BA:20 BE:16 BG:22 BH:22 BR:29 BY:28 CH:21 CR:22 CY:28 CZ:24 "
        "DE:22 DK:18 DO:28 EE:20 EG:29 ES:24 FI:18 FO:18 FR:27 GB:22 GE:22 GI:23 GL:18 GR:27 GT:28 "
        "HR:21 HU:28 IE:22 IL:23 IQ:23 IS:26 IT:27 JO:30 KW:30 KZ:20 LB:28 LC:32 LI:21 LT:20 LU:20 "
        "LV:21 MC:27 MD:24 ME:22 MK:19 MR:27 MT:31 MU:30 NL:18 NO:15 PK:24 PL:28 PS:29 PT:25 QA:29 "
        "RO:24 RS:22 SA:24 SC:31 SE:24 SI:19 SK:24 SM:27 TL:23 TN:24 TR:26 UA:29 VA:22 VG:24 XK:20"
    ).split()
)


def _iban_ok(value: str) -> bool:
    compact = value.replace(" ", "").upper()
    groups = value.split(" ")
    if len(groups) > 1 and any(len(g) != 4 for g in groups[:-1]):
        return False  # printed IBANs are grouped in fours from the left
    if len(compact) != int(_IBAN_LENGTHS.get(compact[:2], 0)):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _aba_ok(d: str) -> bool:
    """US bank routing number: a Federal Reserve prefix and the ABA 3-7-1 checksum."""
    w = [int(c) for c in d]
    prefix = int(d[:2])
    in_range = prefix <= 12 or 21 <= prefix <= 32 or 61 <= prefix <= 72 or prefix == 80
    return (
        in_range
        and (3 * (w[0] + w[3] + w[6]) + 7 * (w[1] + w[4] + w[7]) + w[2] + w[5] + w[8]) % 10 == 0
    )


def _account_ok(value: str) -> bool:
    d = _digits(value)  # a card number after "account number" is reported as a card only
    return bool(_layout(value)) and 8 <= len(d) <= 17 and len(set(d)) > 1 and not _card_ok(value)


_NUMBER_RUNS = re.compile(r"[0-9]+")
_ACCOUNT_WORD = re.compile(r"(?i)\b(?:acc|acct|account|a/c)\b|^[\s,;:/&-]*$")


def _routing_then_account_ok(value: str) -> bool:
    runs = _NUMBER_RUNS.findall(value)
    between = value[len(runs[0]) : value.rindex(runs[-1])]
    return _aba_ok(runs[0]) and 8 <= len(runs[-1]) <= 17 and bool(_ACCOUNT_WORD.search(between))


def _account_then_routing_ok(value: str) -> bool:
    runs = _NUMBER_RUNS.findall(value)
    return _aba_ok(runs[-1]) and 8 <= len(runs[0]) <= 17 and len(set(runs[0])) > 1


def _pan_ok(value: str) -> bool:
    return value.isupper() or value.islower()  # "AbCPE1234F" is an identifier, not a PAN


_VERHOEFF_D = [[int(c) for c in row] for row in (
    "0123456789 1234067895 2340178956 3401289567 4012395678 "
    "5987604321 6598710432 7659821043 8765932104 9876543210").split()]  # fmt: skip
_VERHOEFF_P = [[int(c) for c in row] for row in (
    "0123456789 1576283094 5803796142 8916043527 "
    "9453126870 4286573901 2793806415 7046913258").split()]  # fmt: skip


def _verhoeff_ok(d: str) -> bool:
    check = 0
    for i, ch in enumerate(reversed(d)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(ch)]]
    return check == 0


def _aadhaar_ok(value: str) -> bool:
    return _layout(value) in ((4, 4, 4), (12,)) and _verhoeff_ok(_digits(value))


# File names such as "logo@2x.png" have the shape of an address but are not one.
_FILE_SUFFIXES = frozenset("png jpg jpeg gif svg webp bmp ico pdf css js json yaml yml txt html"
                           " htm xml csv lock".split())  # fmt: skip


def _email_ok(value: str) -> bool:
    local, _, domain = value.rpartition("@")
    labels = domain.split(".")
    return (len(local) <= 64 and len(domain) <= 253 and not local.startswith(".")
            and not local.endswith(".") and ".." not in local
            and all(label and label[0] != "-" and label[-1] != "-" for label in labels)
            and labels[-1].lower() not in _FILE_SUFFIXES)  # fmt: skip


def _intl_phone_ok(value: str) -> bool:
    d = _digits(value)
    opened, closed = value.find("("), value.find(")")
    if value.count("(") != value.count(")") or value.count("(") > 1 or opened > closed:
        return False
    if d[0] == "1":  # North American numbering plan: 10 digits, area code never starts 0 or 1
        return len(d) == 11 and d[1] not in "01"
    return 8 <= len(d) <= 15


def _nanp_ok(value: str) -> bool:
    d = _digits(value)
    d = d[1:] if len(d) == 11 and d[0] == "1" else d
    seps = {ch for ch in value.lstrip("1 .-") if ch in " .-"}
    return len(d) == 10 and d[0] not in "01" and ("(" in value or len(seps) == 1)


def _national_phone_ok(value: str) -> bool:
    return bool(_layout(value)) and 10 <= len(_digits(value)) <= 11


def _ipv4_ok(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)  # rejects octets above 255 and leading zeros
    except ValueError:
        return False
    return True


def _ipv6_ok(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    # Needs a digit and two groups: "::1" and "abc::def" are rarely about a person.
    return any(c.isdigit() for c in value) and sum(1 for g in value.split(":") if g) >= 2


def _passport_ok(value: str) -> bool:
    return sum(c.isdigit() for c in value) >= 5


_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_DATE_TOKENS = re.compile(r"[0-9]+|[a-z]+")


def _real_date(year: str, month: int, day: int) -> bool:
    y = int(year)
    for full in (y,) if len(year) == 4 else (1900 + y, 2000 + y):
        try:
            if 1900 <= full <= 2100 and date(full, month, day):
                return True
        except ValueError:
            pass
    return False


def _dob_ok(value: str) -> bool:
    tokens = _DATE_TOKENS.findall(value.lower())
    nums = [t for t in tokens if t.isdigit()]
    month = next((_MONTHS[t[:3]] for t in tokens if t[:3] in _MONTHS), 0)
    if month:  # "March 3, 1990", "3rd of March 1990"
        return len(nums) == 2 and _real_date(nums[1], month, int(nums[0]))
    a, b, c = nums
    if len(a) == 4:
        return _real_date(a, int(b), int(c))
    return _real_date(c, int(a), int(b)) or _real_date(c, int(b), int(a))  # US or day-first


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
    regex: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problem = None
        if self.pii_type not in PII_TYPES:
            problem = f"unknown type {self.pii_type!r}"
        elif not self.pattern.isascii():
            problem = "pattern must be ASCII"
        else:
            try:
                regex = re2.compile(self.pattern.encode())
            except re2.error as exc:
                raise ValueError(f"PII rule {self.name!r}: bad pattern: {exc}") from None
            if regex.groups < 1:
                problem = "pattern needs a group around the value"
            object.__setattr__(self, "regex", regex)
        if problem:
            raise ValueError(f"PII rule {self.name!r}: {problem}")

    def __repr__(self) -> str:
        return f"<PiiRule {self.pii_type}/{self.name}: {self.check}>"


def _iban_pattern() -> str:
    """One alternative per IBAN length, so a match stops exactly where the IBAN ends."""
    by_length: dict[int, list[str]] = {}
    for country, length in _IBAN_LENGTHS.items():
        by_length.setdefault(int(length), []).append(country)
    parts = []
    for length, countries in sorted(by_length.items()):
        fours, rest = divmod(length - 4, 4)
        tail = rf" ?[0-9a-z]{{{rest}}}" if rest else ""
        parts.append(rf"(?:{'|'.join(countries)})\d\d(?: ?[0-9a-z]{{4}}){{{fours}}}{tail}")
    return "|".join(parts)


_L = r"(?:^|[^0-9A-Za-z._/+-])"  # left edge: no digit, letter or joiner before the value
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
          r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")  # fmt: skip
_DATE = (r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2}(?:\d{2})?|\d{4}[/.-]\d{1,2}[/.-]\d{1,2}"
         rf"|{_MONTH} +\d{{1,2}}(?:st|nd|rd|th)?,? +\d{{4}}"
         rf"|\d{{1,2}}(?:st|nd|rd|th)?(?: +of)? +{_MONTH},? +\d{{4}}")  # fmt: skip
_NO = r"(?: ?(?:number|num|no\.?|nr\.?|#))"  # "number", "no.", "#" after a keyword
_IS = r"[ \t]*(?:is[ \t]+|[:#=-][ \t]*)?"  # "is", ":" or "#" before the value
_ACCOUNT, _ROUTING = r"\b(?:account|acct|a/c)", r"\b(?:routing|aba|rtn)\b"
_NOT_PHONE = frozenset("order invoice ticket tracking ref reference isbn sku serial case po part "
                       "model confirmation booking".split())  # fmt: skip
_NOT_IP = frozenset("version ver v release build firmware rev revision".split())

PII_RULES: tuple[PiiRule, ...] = (
    PiiRule("card", "credit_card",
            _L + r"(\d{13,19}|\d{4}(?:[ -]\d{4}){2}[ -]\d{1,4}(?:[ -]\d{3})?"
            r"|\d{4}[ -]\d{6}[ -]\d{4,5})\b", _card_ok, "Luhn checksum + issuer prefix"),
    PiiRule("ssn", "ssn", _L + r"(\d{3}[ -]\d\d[ -]\d{4})\b", _ssn_ok,
            "SSA area/group/serial rules"),
    PiiRule("ssn_keyword", "ssn", r"(?i:\bssns?\b|\bsocial security\b)[^0-9\n]{0,24}?\b(\d{9})\b",
            _ssn_ok, "SSN keyword + SSA rules"),
    PiiRule("iban", "iban", rf"(?i){_L}({_iban_pattern()})\b", _iban_ok, "country length + MOD-97"),
    PiiRule("account_keyword", "bank_account",
            rf"(?i){_ACCOUNT}\.?{_NO}{_IS}(\d(?:[ -]?\d){{7,16}})\b",
            _account_ok, "account-number keyword, 8-17 digits"),
    PiiRule("routing_account", "bank_account",
            rf"(?i){_ROUTING}[^0-9\n]{{0,20}}?\b(\d{{9}}\b[^0-9\n]{{1,30}}?\b\d{{8,17}})\b",
            _routing_then_account_ok, "ABA routing checksum + account number"),
    PiiRule("account_routing", "bank_account",
            rf"(?i){_ACCOUNT}\b[^0-9\n]{{0,20}}?\b(\d{{8,17}}\b[^0-9\n]{{1,30}}?{_ROUTING}"
            r"[^0-9\n]{0,20}?\b\d{9})\b",
            _account_then_routing_ok, "account number + ABA routing checksum"),
    PiiRule("pan", "pan", r"(?i)\b([a-z]{3}[pchfatbljg][a-z]\d{4}[a-z])\b", _pan_ok,
            "PAN layout + holder-type letter", standalone=False),
    PiiRule("aadhaar", "aadhaar", _L + r"([2-9]\d{3}[ -]?\d{4}[ -]?\d{4})\b", _aadhaar_ok,
            "Verhoeff checksum"),
    PiiRule("email", "email",
            r"\b([A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24})\b",
            _email_ok, "address syntax + dotted domain", standalone=False),
    PiiRule("phone_international", "phone", _L + r"(\+[1-9](?:[ .-]?\(?\d\)?){7,14})\b",
            _intl_phone_ok, "E.164 length, NANP area code", not_after=_NOT_PHONE),
    PiiRule("phone_nanp", "phone",
            _L + r"((?:1[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4})\b",
            _nanp_ok, "NANP layout + area code", not_after=_NOT_PHONE),
    PiiRule("phone_keyword", "phone",
            r"(?i)\b(?:phone|tel|telephone|mobile|cell|call|whatsapp|fax)\b[^0-9\n]{0,20}?" + _L
            + r"(0\d{1,4}[ -]?\d{3,4}[ -]?\d{3,4}|[2-9]\d{9})\b",
            _national_phone_ok, "phone keyword + national number"),
    PiiRule("ipv4", "ip_address", r"(?:^|[^0-9A-Za-z._-])(\d{1,3}(?:\.\d{1,3}){3,4})\b", _ipv4_ok,
            "four octets 0-255", standalone=False, not_after=_NOT_IP),
    PiiRule("ipv6", "ip_address", r"(?i)(?:^|[^0-9a-z:._-])([0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,8})",
            _ipv6_ok, "IPv6 syntax", standalone=False),
    PiiRule("passport", "passport", rf"(?i)\bpassport\b{_NO}?{_IS}([a-z0-9]{{6,9}})\b",
            _passport_ok, "passport keyword + document number", standalone=False),
    PiiRule("dob", "dob",
            r"(?i)(?:\bdob\b|\bd\.o\.b\b\.?|\bdate of birth\b|\bbirth ?date\b|\bborn on\b)"
            rf"[^0-9\n]{{0,20}}?\b({_DATE})\b", _dob_ok, "birth keyword + real date",
            standalone=False),
)  # fmt: skip


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
# then run. Set matching cannot fail once compiled: for sets the DFA keeps flushing its state
# cache instead of giving up, so an empty answer really means "no candidate".
_BIG = re2.Options()
_BIG.max_mem = 64 << 20
_WHICH = re2.Set.SearchSet(_BIG)
for _rule in PII_RULES:
    _WHICH.Add(_rule.pattern.encode())
_WHICH.Compile()
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
    return ("@" in text or "0" in text or "1" in text or "2" in text or "3" in text
            or "4" in text or "5" in text or "6" in text or "7" in text or "8" in text
            or "9" in text)  # fmt: skip


def _matches(text: str, first_only: bool) -> list[PiiMatch]:
    if not _may_contain_pii(text):
        return []
    data = text.encode("utf-8", "replace")  # "replace": lone surrogates from JSON must not raise
    rules = _WHICH.Match(data)
    if rules is None:
        return []
    found: list[PiiMatch] = []
    for index in sorted(rules):
        rule = PII_RULES[index]
        resume: int | None = 0
        while resume is not None:
            matches, resume = rule.regex.finditer(data, resume), None
            for m in matches:
                start, end = m.span(1)
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
        found = [
            replace(f, span=(len(data[: f.span[0]].decode()), len(data[: f.span[1]].decode())))
            for f in found
        ]
    return found


def explain_pii(text: str) -> list[PiiMatch]:
    """Every validated match in reading order, with the rule and check that accepted it.

    Overlapping matches of one type (two phone layouts on one number) are shown once.
    """
    shown: list[PiiMatch] = []
    last_end: dict[str, int] = {}
    for m in sorted(_matches(text, first_only=False), key=lambda m: (m.span[0], -m.span[1])):
        if m.span[0] >= last_end.get(m.pii_type, 0):
            shown.append(m)
            last_end[m.pii_type] = m.span[1]
    return shown


_FINDING_PARTS: dict[str, tuple[str, Severity, Action, str]] = {
    kind: (f"sys_pii_{kind}", "critical", "block", _REASONS[kind]) if kind in CRITICAL_PII
    else (f"sys_pii_{kind}", _SEVERITY[kind], "warn", _REASONS[kind])
    for kind in PII_TYPES
}  # fmt: skip


def scan_pii(text: str) -> list[Finding]:
    """At most one finding per PII type, in :data:`PII_TYPES` order; span = first match.

    >>> scan_pii("My card is 4111 1111 1111 1111")
    [<Finding sys_pii_credit_card block critical>]
    """
    first: dict[str, tuple[int, int]] = {}
    for m in _matches(text, first_only=True):
        if m.pii_type not in first or m.span < first[m.pii_type]:
            first[m.pii_type] = m.span
    findings = []
    for kind in PII_TYPES:
        if kind in first:
            policy_id, severity, action, reason = _FINDING_PARTS[kind]
            findings.append(Finding(policy_id, "pii", severity, action, reason, first[kind]))
    return findings
