"""Redaction the app can use: each PII value replaced by a typed, numbered placeholder.

When ``PII_ACTION=redact`` the pre-check answers ``approved: true, requires_redaction: true``
and, as a documented extension, ``redacted_query``: the query with every value found by
:func:`~.obfuscation.pii_matches` replaced by ``[SSN_1]``, ``[CREDIT_CARD_1]``, ... The spans
come from the offset maps of the views, so a value written with fullwidth digits or
zero-width characters is replaced whole, separators included. The same value (same
characters once folded) gets the same placeholder each time it appears. The gateway keeps
neither the values nor the mapping; the audit trail records only which types were redacted.
Introduced in ``07_obfuscation_and_redaction.ipynb``.

>>> redact("Card 4111 1111 1111 1111 and SSN 123-45-6789, card 4111111111111111").text
'Card [CREDIT_CARD_1] and SSN [SSN_1], card [CREDIT_CARD_1]'
"""

from __future__ import annotations

from dataclasses import dataclass

from .obfuscation import pii_matches
from .pii import PII_TYPES
from .views import canonical_view

__all__ = ["Redaction", "redact"]


@dataclass(frozen=True, slots=True)
class Redaction:
    """The redacted text, the PII types replaced (reporting order) and how many values."""

    text: str
    types: tuple[str, ...]
    count: int

    def __repr__(self) -> str:
        return f"<Redaction {self.count} value(s) types={list(self.types)}>"


def _key(value: str) -> str:
    """The value as digits and letters only, so "4111 1111 …" and "4111111…" are one value."""
    return "".join(ch for ch in canonical_view(value).text.upper() if ch.isalnum() or ch == "@")


def redact(text: str) -> Redaction:
    """Replace every PII value in ``text`` with its placeholder (see the module docstring)."""
    matches = pii_matches(text)
    if not matches:
        return Redaction(text, (), 0)
    numbers: dict[tuple[str, str], int] = {}
    per_type: dict[str, int] = {}
    out: list[str] = []
    pos = 0
    for m in matches:
        start, end = m.span
        key = (m.pii_type, _key(text[start:end]))
        if key not in numbers:
            per_type[m.pii_type] = per_type.get(m.pii_type, 0) + 1
            numbers[key] = per_type[m.pii_type]
        out.append(text[pos:start])
        out.append(f"[{m.pii_type.upper()}_{numbers[key]}]")
        pos = end
    out.append(text[pos:])

    types = tuple(t for t in PII_TYPES if t in per_type)
    return Redaction("".join(out), types, len(matches))
