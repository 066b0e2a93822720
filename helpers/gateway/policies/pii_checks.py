"""The validate stage of :mod:`.pii`: pure functions of a candidate's text.

Each ``*_ok`` function decides whether text that a :class:`~.pii.PiiRule` pattern matched
is real: Luhn and issuer prefixes (cards), SSA rules (SSNs), country length and MOD-97
(IBANs), the ABA checksum (routing numbers), Verhoeff (Aadhaar), one letter case (PANs),
address syntax, phone numbering plans, IP syntax and real calendar dates. :mod:`.pii` wires
them into :data:`~.pii.PII_RULES`, the surface notebooks use; :mod:`.views` reads
:data:`IBAN_LENGTHS`. Introduced in ``05_policies.ipynb``.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date

__all__ = [
    "IBAN_LENGTHS",
    "aadhaar_ok",
    "aadhaar_split_ok",
    "account_ok",
    "account_then_routing_ok",
    "card_ok",
    "card_split_ok",
    "dob_ok",
    "email_ok",
    "iban_ok",
    "intl_phone_ok",
    "ipv4_ok",
    "ipv6_ok",
    "nanp_ok",
    "national_phone_ok",
    "pan_ok",
    "passport_ok",
    "routing_then_account_ok",
    "ssn_layout_ok",
    "ssn_ok",
    "ssn_shape_ok",
    "ssn_split_ok",
]

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
# A table: `# fmt: skip` keeps one card network per line, named in its comment.
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
_CARD_LAYOUTS = {
    (4, 4, 4, 1),
    (4, 4, 4, 2),
    (4, 4, 4, 3),
    (4, 4, 4, 4),
    (4, 4, 4, 4, 3),
    (4, 6, 4),
    (4, 6, 5),
}


def card_ok(value: str) -> bool:
    layout = _layout(value)
    if not (layout in _CARD_LAYOUTS or (len(layout) == 1 and 13 <= layout[0] <= 19)):
        return False
    d = _digits(value)
    issuer = any(len(d) in _ISSUERS.get(d[:k], ()) for k in (1, 2, 3, 4))
    return issuer and _luhn_ok(d)


_SSN_NEVER_ISSUED = frozenset({"078051120", "219099999"})  # printed in ads, voided by the SSA


def ssn_ok(value: str) -> bool:
    if len(value) == 11:  # "AAA-GG-SSSS" or "AAA GG SSSS"; the pattern fixed the digit places
        if value[3] != value[6]:
            return False
        value = value[:3] + value[4:6] + value[7:]
    area, group, serial = value[:3], value[3:5], value[5:]
    return (
        area not in ("000", "666")
        and area[0] != "9"
        and group != "00"
        and serial != "0000"
        and value not in _SSN_NEVER_ISSUED
    )


def ssn_layout_ok(value: str) -> bool:
    """An SSN's printed layout, one separator used twice, any area the SSA could ever use or
    the IRS issues (9xx): only 000 and 666, group 00 and serial 0000 are never numbers."""
    if len(value) != 11 or value[3] != value[6]:
        return False
    area, group, serial = value[:3], value[4:6], value[7:]
    return area not in ("000", "666") and group != "00" and serial != "0000"


def ssn_shape_ok(value: str) -> bool:
    """Nine digits in an SSN's layout, whatever the area: for a number that a label calls an
    SSN, ITIN or TIN, the label decides (an ITIN's area is 9xx, which the SSA rules reject).
    """
    if len(value) == 11:  # one separator, used twice: "9AA-GG-SSSS" or "9AA GG SSSS"
        return value[3] == value[6] and len(_digits(value)) == 9
    return len(value) == 9


def ssn_split_ok(value: str) -> bool:
    """Nine digits a label calls an SSN, however grouped: the SSA's rules decide."""
    return ssn_ok(_digits(value))


_GROUPS = re.compile(r"[0-9]+")


def card_split_ok(value: str) -> bool:
    """Digit groups after a card label, in any layout: the whole run, or its first groups
    (an expiry date may follow), must be 13-19 digits with an issuer prefix and Luhn."""
    digits = ""
    for group in _GROUPS.findall(value):
        digits += group
        n = len(digits)
        if n > 19:
            return False
        if n >= 13 and any(n in _ISSUERS.get(digits[:k], ()) for k in (1, 2, 3, 4)):
            if _luhn_ok(digits):
                return True
    return False


def aadhaar_split_ok(value: str) -> bool:
    return _verhoeff_ok(_digits(value))


# IBAN length per country: the SWIFT IBAN registry (ISO 13616), then the countries that
# issue IBAN-format account numbers outside the registry (the West and Central African
# monetary unions, Algeria, Angola, Cape Verde, Iran, Madagascar, Morocco, Mozambique...).
IBAN_LENGTHS = dict(
    line.split(":")
    for line in (
        "AD:24 AE:23 AL:28 AT:20 AZ:28 BA:20 BE:16 BG:22 BH:22 BI:27 BR:29 BY:28 CH:21 CR:22 CY:28 "
        "CZ:24 "
        "DE:22 DJ:27 DK:18 DO:28 EE:20 EG:29 ES:24 FI:18 FK:18 FO:18 FR:27 GB:22 GE:22 GI:23 GL:18 "
        "GR:27 GT:28 HN:28 HR:21 HU:28 IE:22 IL:23 IQ:23 IS:26 IT:27 JO:30 KW:30 KZ:20 LB:28 LC:32 "
        "LI:21 LT:20 LU:20 LV:21 LY:25 MC:27 MD:24 ME:22 MK:19 MN:20 MR:27 MT:31 MU:30 NI:28 NL:18 "
        "NO:15 OM:23 PK:24 PL:28 PS:29 PT:25 QA:29 RO:24 RS:22 RU:33 SA:24 SC:31 SD:18 SE:24 SI:19 "
        "SK:24 SM:27 SO:23 ST:25 SV:28 TL:23 TN:24 TR:26 UA:29 VA:22 VG:24 XK:20 YE:30 "
        # outside the registry
        "AO:25 BF:28 BJ:28 CF:27 CG:27 CI:28 CM:27 CV:25 DZ:26 GA:27 GQ:27 GW:25 IR:26 KM:27 "
        "MA:28 MG:27 ML:28 MZ:25 NE:28 SN:28 TD:27 TG:28"
    ).split()
)


# A table: `# fmt: skip` keeps the countries in rows, not one per line.
# How banks of some countries print an IBAN besides groups of four: the check digits group
# ("FR76"), then the BBAN in its national fields (SWIFT IBAN registry, BBAN structure), e.g.
# FR bank 5, branch 5, account 11, key 2: "FR76 30006 00001 12345678901 89".
_IBAN_NATIONAL: dict[str, tuple[int, ...]] = {
    "AT": (5, 11), "BE": (3, 7, 2), "CH": (5, 12), "DE": (8, 10), "ES": (4, 4, 2, 10),
    "FR": (5, 5, 11, 2), "GB": (4, 6, 8), "IT": (1, 5, 5, 12), "NL": (4, 10),
    "PT": (4, 4, 11, 2),
}  # fmt: skip
_IBAN_SEPARATORS = re.compile(r"[ .-]")
_WRAPPED = re.compile(r"[ \t]*(?:\r?\n|\|)[ \t|]*")


def iban_ok(value: str) -> bool:
    """Country length and MOD-97; printed groups are fours from the left or national fields.

    One kind of separator (space, hyphen or dot) may sit between the groups; a space may
    follow the check digits whatever the rest uses ("BE68 539-0075470-34").
    """
    value = _WRAPPED.sub(" ", value)  # a line break inside the number reads as a space
    seps = set(_IBAN_SEPARATORS.findall(value[5:]))
    if value[4:5] == " " and seps:
        value = value[:4] + next(iter(seps)) + value[5:]
    seps = set(_IBAN_SEPARATORS.findall(value))
    if len(seps) > 1:
        return False
    compact = _IBAN_SEPARATORS.sub("", value).upper()
    country = compact[:2]
    if len(compact) != int(IBAN_LENGTHS.get(country, 0)):
        return False
    if seps:
        groups = tuple(map(len, value.split(seps.pop())))
        fours = all(g == 4 for g in groups[:-1]) and groups[-1] <= 4
        if not fours and (groups[0] != 4 or groups[1:] != _IBAN_NATIONAL.get(country)):
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


def account_ok(value: str) -> bool:
    d = _digits(value)  # a card number after "account number" is reported as a card only
    return bool(_layout(value)) and 8 <= len(d) <= 17 and len(set(d)) > 1 and not card_ok(value)


_NUMBER_RUNS = re.compile(r"[0-9]+")
_ACCOUNT_WORD = re.compile(r"(?i)\b(?:acc|acct|account|a/c)\b|^[\s,;:/&-]*$")


def routing_then_account_ok(value: str) -> bool:
    runs = _NUMBER_RUNS.findall(value)
    between = value[len(runs[0]) : value.rindex(runs[-1])]
    return _aba_ok(runs[0]) and 8 <= len(runs[-1]) <= 17 and bool(_ACCOUNT_WORD.search(between))


def account_then_routing_ok(value: str) -> bool:
    runs = _NUMBER_RUNS.findall(value)
    return _aba_ok(runs[-1]) and 8 <= len(runs[0]) <= 17 and len(set(runs[0])) > 1


def pan_ok(value: str) -> bool:
    # "AbCPE1234F" is an identifier, not a PAN; serial 0000 is never issued.
    return (value.isupper() or value.islower()) and value[5:9] != "0000"


_VERHOEFF_D = [
    [int(c) for c in row]
    for row in (
        "0123456789 1234067895 2340178956 3401289567 4012395678 "
        "5987604321 6598710432 7659821043 8765932104 9876543210"
    ).split()
]
_VERHOEFF_P = [
    [int(c) for c in row]
    for row in (
        "0123456789 1576283094 5803796142 8916043527 9453126870 4286573901 2793806415 7046913258"
    ).split()
]


def _verhoeff_ok(d: str) -> bool:
    check = 0
    for i, ch in enumerate(reversed(d)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(ch)]]
    return check == 0


def aadhaar_ok(value: str) -> bool:
    d = _digits(value)  # UIDAI issues no palindromes
    return _layout(value) in ((4, 4, 4), (12,)) and d != d[::-1] and _verhoeff_ok(d)


# File names such as "logo@2x.png" have the shape of an address but are not one.
_FILE_SUFFIXES = frozenset(
    "png jpg jpeg gif svg webp bmp ico pdf css js json yaml yml txt html htm xml csv lock".split()
)


def email_ok(value: str) -> bool:
    local, _, domain = value.rpartition("@")
    labels = domain.split(".")
    return (
        len(local) <= 64
        and len(domain) <= 253
        and not local.startswith(".")
        and not local.endswith(".")
        and ".." not in local
        and all(label and label[0] != "-" and label[-1] != "-" for label in labels)
        and labels[-1].lower() not in _FILE_SUFFIXES
    )


def intl_phone_ok(value: str) -> bool:
    d = _digits(value)
    opened, closed = value.find("("), value.find(")")
    if value.count("(") != value.count(")") or value.count("(") > 1 or opened > closed:
        return False
    if d[0] == "1":  # North American numbering plan: 10 digits, area code never starts 0 or 1
        return len(d) == 11 and d[1] not in "01"
    return 8 <= len(d) <= 15


def nanp_ok(value: str) -> bool:
    d = _digits(value)
    d = d[1:] if len(d) == 11 and d[0] == "1" else d
    seps = {ch for ch in value.lstrip("1 .-") if ch in " .-"}
    return len(d) == 10 and d[0] not in "01" and ("(" in value or len(seps) == 1)


def national_phone_ok(value: str) -> bool:
    return bool(_layout(value)) and 10 <= len(_digits(value)) <= 11


def ipv4_ok(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)  # rejects octets above 255 and leading zeros
    except ValueError:
        return False
    return True


def ipv6_ok(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    # Needs a digit and two groups: "::1" and "abc::def" are rarely about a person.
    return any(c.isdigit() for c in value) and sum(1 for g in value.split(":") if g) >= 2


def passport_ok(value: str) -> bool:
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


def dob_ok(value: str) -> bool:
    tokens = _DATE_TOKENS.findall(value.lower())
    nums = [t for t in tokens if t.isdigit()]
    month = next((_MONTHS[t[:3]] for t in tokens if t[:3] in _MONTHS), 0)
    if month:  # "March 3, 1990", "3rd of March 1990"
        return len(nums) == 2 and _real_date(nums[1], month, int(nums[0]))
    a, b, c = nums
    if len(a) == 4:
        return _real_date(a, int(b), int(c))
    return _real_date(c, int(a), int(b)) or _real_date(c, int(b), int(a))  # US or day-first
