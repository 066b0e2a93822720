"""One RE2 pass over a text names every rule with a candidate in it, for all the scanners.

The SQL-injection patterns, the PII rules, the credential rules, the admin-access families
and the choice of decoded views (escape markers, digit shapes) each need to know "could
anything match here?" before they do any work. Asked separately, that is five linear passes
over the text:
milliseconds each on a 1 MiB input, several microseconds each on a 2 KB prompt. One
:class:`re2.Set` holds all of their patterns, so one pass over the UTF-8 bytes answers for
all of them, and the bytes, encoded once, are shared with every search that follows.

A set reports each of its patterns that matches anywhere in the text (it does not stop at
the first), so every answer is the one a pass of that pattern alone would give. Set matching
cannot give up half-way once compiled: re2 keeps flushing its state cache for sets instead
of bailing out, so an empty answer really means "no candidate". Introduced in
``07_obfuscation_and_redaction.ipynb``.

>>> c = candidates("Run SELECT name FROM users WHERE id = 1 OR 1=1; SSN 123-45-6789")
>>> [SQLI_PATTERNS[i].name for i in c.sqli], c.admin
(['bare_or_tautology', 'numeric_or_comparison'], True)
>>> [PII_RULES[i].name for i in c.pii]  # candidates: the validators decide afterwards
['ssn', 'ssn_labelled', 'ssn_split', 'ssn_layout']
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import re2

from .findings import search_set
from .pii import PII_RULES
from .rbac import ADMIN_PATTERNS
from .secrets import SECRET_RULES
from .sqli_patterns import SQLI_PATTERNS, widen_spaces
from .views import VIEW_MARKERS, VIEW_SHAPES

__all__ = ["Candidates", "candidates"]

_VIEW_NAMES = (*VIEW_MARKERS, *VIEW_SHAPES)
_N_SQLI, _N_VIEWS, _N_PII = len(SQLI_PATTERNS), len(_VIEW_NAMES), len(PII_RULES)
_PII_AT = _N_SQLI + _N_VIEWS
_SECRET_AT = _PII_AT + _N_PII
_ADMIN_AT = _SECRET_AT + len(SECRET_RULES)


@dataclass(frozen=True, slots=True)
class Candidates:
    """What one pass found: indices into each family's table, in table order.

    ``data`` is the text as UTF-8 (lone surrogates passed through), for the searches that
    follow; ``sqli`` indexes :data:`~.sqli.SQLI_PATTERNS`, ``pii`` indexes
    :data:`~.pii.PII_RULES`, ``views`` names the decoded views the text calls for (its
    escape markers, :data:`~.views.VIEW_MARKERS`, and digit shapes, :data:`~.views.VIEW_SHAPES`)
    and ``admin`` is True when some admin-access family may fire.
    """

    data: bytes
    sqli: tuple[int, ...]
    views: tuple[str, ...]
    pii: tuple[int, ...]
    admin: bool
    #: Indices into :data:`~.secrets.SECRET_RULES`.
    secrets: tuple[int, ...] = ()

    def __repr__(self) -> str:
        return (
            f"<Candidates {len(self.data)} bytes sqli={list(self.sqli)} "
            f"views={list(self.views)} pii={list(self.pii)} admin={self.admin}>"
        )


@functools.cache
def _set() -> re2.Set:
    # Built on first use, not at import; in the order of the index ranges above.
    return search_set(
        [
            *("(?i)" + widen_spaces(pattern.regex) for pattern in SQLI_PATTERNS),
            *(regex for _, regex in VIEW_MARKERS.values()),
            *VIEW_SHAPES.values(),
            *(rule.pattern for rule in PII_RULES),
            *(rule.pattern for rule in SECRET_RULES),
            *ADMIN_PATTERNS,
        ]
    )


_NONE = Candidates(b"", (), (), (), False)


def candidates(text: str, data: bytes | None = None) -> Candidates:
    """The one pass over ``text`` (``data``: its UTF-8 bytes, if the caller has them)."""
    if data is None:
        data = text.encode("utf-8", "surrogatepass")
    if not data:
        return _NONE
    hits = _set().Match(data)
    if not hits:
        return Candidates(data, (), (), (), False)
    hits = sorted(hits)
    return Candidates(
        data,
        tuple(i for i in hits if i < _N_SQLI),
        tuple(_VIEW_NAMES[i - _N_SQLI] for i in hits if _N_SQLI <= i < _PII_AT),
        tuple(i - _PII_AT for i in hits if _PII_AT <= i < _SECRET_AT),
        hits[-1] >= _ADMIN_AT,
        tuple(i - _SECRET_AT for i in hits if _SECRET_AT <= i < _ADMIN_AT),
    )
