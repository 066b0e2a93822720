"""Redaction: each sensitive value replaced by a typed, numbered placeholder, and put back.

When ``PII_ACTION=redact`` (or ``SECRET_ACTION=redact``) the gateway replaces every value
of the redacted families with ``[SSN_1]``, ``[CREDIT_CARD_1]``, ``[AWS_ACCESS_KEY_1]``...
The spans come from the offset maps of the views, so a value written with fullwidth digits
or zero-width characters is replaced whole, separators included. The same value (same
characters once folded) gets the same placeholder each time it appears, in every part of a
request (the messages of a chat are redacted together). A placeholder that the caller's own
text already holds is never issued, so the caller's ``[SSN_1]`` cannot be "restored" into a
value.

* Pre-check (gateway mode): the reply's ``redacted_query`` is :attr:`Redaction.text`; the
  app restores the placeholders itself.
* Proxy mode: the provider receives :attr:`Redaction.texts`; the gateway keeps the mapping
  in memory for the length of the request and restores the caller's values in the reply
  (:meth:`Redaction.restore`, or a :class:`Restorer` for a stream, which holds back only
  the tail that could still be the start of a placeholder).
* The trail: :func:`mask` replaces values in what is stored (request context, audit
  metadata); the redaction note records types and counts only.

Introduced in ``07_obfuscation_and_redaction.ipynb``.

>>> redact("Card 4111 1111 1111 1111 and SSN 123-45-6789, card 4111111111111111").text
'Card [CREDIT_CARD_1] and SSN [SSN_1], card [CREDIT_CARD_1]'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .obfuscation import Sensitive, sensitive_matches
from .pii import PII_TYPES
from .secrets import SECRET_TYPES
from .views import canonical_view

__all__ = [
    "PLACEHOLDER",
    "Placeholders",
    "Redaction",
    "Restorer",
    "key_of",
    "mask",
    "redact",
    "redact_parts",
]

#: A typed, numbered placeholder: ``[SSN_1]``, ``[CREDIT_CARD_2]``, ``[AWS_ACCESS_KEY_1]``.
PLACEHOLDER = re.compile(r"\[([A-Z][A-Z_]*)_([0-9]+)\]")
_TYPE_ORDER = {kind: i for i, kind in enumerate((*PII_TYPES, *SECRET_TYPES))}
#: Strings shorter than this cannot hold any value a detector finds (an e-mail is the shortest).
_SHORTEST = 6


def key_of(value: str) -> str:
    """The value as digits and letters only, so "4111 1111 …" and "4111111…" are one value."""
    folded = canonical_view(value).text
    return "".join(ch for ch in folded.upper() if ch.isalnum() or ch == "@")


class Placeholders:
    """Numbers values per type: one value, one placeholder, for as long as this object lives.

    ``taken`` holds placeholders that already stand in the caller's text; they are skipped.
    ``prefix`` goes before the type (``[REDACTED_SSN_1]``), for placeholders that must never
    meet the app's own numbering.
    """

    def __init__(self, taken: frozenset[str] = frozenset(), prefix: str = "") -> None:
        self.taken = taken
        self.prefix = prefix
        self.numbers: dict[tuple[str, str], str] = {}
        self.values: dict[str, str] = {}  # placeholder -> the first original text it replaced
        self.counts: dict[str, int] = {}  # values replaced per type, repeats included
        self.issued: dict[str, int] = {}  # last number issued per type

    @classmethod
    def following(cls, values: Mapping[str, str]) -> Placeholders:
        """Numbering that goes on from an issued ``{placeholder: value}`` mapping, so the
        trail masks the request's values with the placeholders the provider saw."""
        names = cls(frozenset(values))
        for placeholder, value in values.items():
            match = PLACEHOLDER.fullmatch(placeholder)
            assert match is not None, placeholder
            kind, number = match.group(1).lower(), int(match.group(2))
            names.numbers[(kind, key_of(value))] = placeholder
            names.issued[kind] = max(names.issued.get(kind, 0), number)
        return names

    def name(self, kind: str, value: str) -> str:
        key = (kind, key_of(value))
        placeholder = self.numbers.get(key)
        if placeholder is None:
            number = self.issued.get(kind, 0)
            while True:
                number += 1
                placeholder = f"[{self.prefix}{kind.upper()}_{number}]"
                if placeholder not in self.taken:
                    break
            self.issued[kind] = number
            self.numbers[key] = placeholder
            self.values[placeholder] = value
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return placeholder

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(sorted(self.counts, key=_TYPE_ORDER.__getitem__))

    def replace(self, text: str, matches: Sequence[Sensitive]) -> str:
        out: list[str] = []
        pos = 0
        for m in matches:
            start, end = m.span
            out.append(text[pos:start])
            out.append(self.name(m.kind, text[start:end]))
            pos = end
        out.append(text[pos:])
        return "".join(out)


@dataclass(frozen=True, slots=True)
class Redaction:
    """The redacted parts, the types replaced (reporting order) and how many values.

    ``values`` maps each issued placeholder to the caller's text; it lives in memory for one
    request, is never in a repr and never stored.
    """

    texts: tuple[str, ...]
    types: tuple[str, ...]
    count: int
    values: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def text(self) -> str:
        """The parts joined by newlines: for one part (a pre-check's query), that part."""
        return "\n".join(self.texts)

    @property
    def note(self) -> dict[str, Any]:
        """What the trail keeps of it: the types and the count, never a value."""
        return {"types": list(self.types), "count": self.count}

    def restore(self, text: str) -> str:
        """Put the caller's values back wherever the reply repeats an issued placeholder;
        any other placeholder-shaped text (the caller's own, or one the model made up)
        stays as it is."""
        if not self.values or "[" not in text:
            return text
        return PLACEHOLDER.sub(lambda m: self.values.get(m.group(), m.group()), text)

    def restorer(self) -> Restorer:
        return Restorer(self.values)

    def __repr__(self) -> str:
        return f"<Redaction {self.count} value(s) types={list(self.types)}>"


class Restorer:
    """:meth:`Redaction.restore` for a stream, fed chunk by chunk, whatever the splits.

    Everything that cannot be the start of an issued placeholder is released at once; only
    a tail that still could be (at most the longest placeholder's length) is held until the
    next chunk decides it. :meth:`flush` releases what is left, as received.

    >>> r = Restorer({"[SSN_1]": "123-45-6789"})
    >>> r.feed("Your SSN [SS"), r.feed("N_1] is on file"), r.flush()
    ('Your SSN ', '123-45-6789 is on file', '')
    """

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self.longest = max((len(p) for p in values), default=0)
        self.prefixes = frozenset(p[:i] for p in values for i in range(1, len(p)))
        self.held = ""

    def feed(self, chunk: str) -> str:
        text = self.held + chunk
        self.held = ""
        if not self.values:
            return text
        out = PLACEHOLDER.sub(lambda m: self.values.get(m.group(), m.group()), text)
        # Hold back the last "[" onwards when it could still grow into an issued placeholder.
        start = out.rfind("[", max(0, len(out) - self.longest))
        if start >= 0 and out[start:] in self.prefixes:
            self.held = out[start:]
            return out[:start]
        return out

    def flush(self) -> str:
        held, self.held = self.held, ""
        return held


def _part_bounds(parts: Sequence[str]) -> list[tuple[int, int]]:
    bounds, pos = [], 0
    for part in parts:
        bounds.append((pos, pos + len(part)))
        pos += len(part) + 1  # the "\n" that joins the parts
    return bounds


def redact_parts(
    parts: Sequence[str],
    *,
    pii: bool = True,
    secrets: bool = True,
    layout: bool = False,
    found: Sequence[Sensitive] | None = None,
) -> Redaction:
    """Redact the values of the chosen families in every part, numbered across all parts.

    The parts are searched joined by newlines, as the decision read them (``layout`` as in
    :func:`~.pii.explain_pii`); a value that runs across two parts is replaced in each part
    it touches. ``found`` is what the decision's own scan found in the joined text
    (:attr:`~.obfuscation.ViewFindings.sensitive`): then nothing is searched again.
    """
    joined = "\n".join(parts)
    if found is None:
        matches = sensitive_matches(joined, pii=pii, secrets=secrets, layout=layout)
    else:
        families = {"pii"} if pii and not secrets else {"secret"} if secrets and not pii else None
        matches = [m for m in found if families is None or m.family in families]
        if not (pii or secrets):
            matches = []
    if not matches:
        return Redaction(tuple(parts), (), 0)
    taken = frozenset(m.group() for m in PLACEHOLDER.finditer(joined))
    names = Placeholders(taken)
    out = []
    for (lo, hi), part in zip(_part_bounds(parts), parts, strict=True):
        inside = [
            Sensitive(m.kind, m.family, (max(m.span[0], lo) - lo, min(m.span[1], hi) - lo))
            for m in matches
            if m.span[0] < hi and m.span[1] > lo
        ]
        out.append(names.replace(part, inside))
    return Redaction(tuple(out), names.types, sum(names.counts.values()), dict(names.values))


def redact(text: str, *, pii: bool = True, secrets: bool = True) -> Redaction:
    """Replace every value in ``text`` with its placeholder (see the module docstring)."""
    return redact_parts((text,), pii=pii, secrets=secrets)


def mask(value: Any, names: Placeholders | None = None) -> Any:
    """``value`` (JSON: dicts, lists, strings, numbers) with every PII value and credential
    in its strings replaced by a typed placeholder, as the trail stores it (any number in an
    SSN's layout counts: the trail errs on the side of masking).

    Keys are kept as they are; a structure without a sensitive value is returned unchanged
    (the same object), so the common case costs one scan per string.
    """
    names = names or Placeholders()
    if isinstance(value, str):
        if len(value) < _SHORTEST:
            return value
        matches = sensitive_matches(value, layout=True)
        return names.replace(value, matches) if matches else value
    if isinstance(value, dict):
        masked = {k: mask(v, names) for k, v in value.items()}
        changed = any(masked[k] is not v for k, v in value.items())
        return masked if changed else value
    if isinstance(value, list):
        items = [mask(v, names) for v in value]
        changed = any(a is not b for a, b in zip(items, value, strict=True))
        return items if changed else value
    return value
