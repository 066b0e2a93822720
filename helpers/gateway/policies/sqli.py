"""SQL-injection scanner for LLM prompts: policy ids ``sqli_<category>``.

The patterns are data (:data:`SQLI_PATTERNS`), grouped in AxonFlow's eight categories, so a
notebook can list them and :func:`explain_sqli` can show which ones fired. :func:`scan_sqli`
reports at most one :class:`~helpers.gateway.policies.findings.Finding` per category. Introduced in
``05_policies.ipynb``.

Design, and why:

* Every pattern needs *injection context* (a closing quote before ``OR``, a ``;`` before a
  second statement, a number probe after ``UNION SELECT``), so plain English ("please grant me
  access", "drop me a line", "union members voted") and questions *about* SQL injection pass,
  while a prompt that carries a payload is caught. Dangerous statements (DROP/TRUNCATE/ALTER
  TABLE, DELETE without WHERE, GRANT/REVOKE, CREATE USER) are flagged wherever they appear, as
  AxonFlow does, even in "write me a query that ..." prompts.
* All matching is google-re2 (linear time, no backtracking), so a 1 MiB adversarial prompt costs
  a few milliseconds. One set pass over all patterns decides "nothing to see" for benign
  prompts and names the patterns that match otherwise; only those are searched for their spans.
* ``\\s`` in a pattern also accepts inline comments (``UNION/**/SELECT``): the table keeps the
  readable form and :func:`_expand` widens it at compile time, so spans stay exact offsets into
  the caller's text (no normalised copy with shifted offsets).
* Severity: ``critical`` for stacked queries and dangerous statements (they change or destroy
  data), ``high`` for the rest (they read data or probe). The reason names the category and the
  pattern's description, never the query text, because block reasons are stored in the audit.

>>> [f.policy_id for f in scan_sqli("Look up order 5' UNION SELECT card_number FROM payments--")]
['sqli_union_based', 'sqli_comment_injection']
>>> scan_sqli("What is a UNION-based SQL injection?")
[]
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import re2

from .findings import Finding
from .sqli_patterns import SQLI_CATEGORIES, SQLI_PATTERNS, SqliPattern, _expand
from .views import VIEW_SHAPES

__all__ = [
    "SQLI_CATEGORIES",
    "SQLI_PATTERNS",
    "SqliMatch",
    "SqliPattern",
    "explain_sqli",
    "scan_sqli",
    "scan_sqli_shapes",
]


_LABELS = {
    "union_based": "UNION-based SQL injection",
    "boolean_blind": "boolean-based blind SQL injection",
    "time_based": "time-based blind SQL injection",
    "error_based": "error-based SQL injection",
    "stacked_queries": "stacked-query SQL injection",
    "comment_injection": "SQL comment injection",
    "generic": "SQL injection",
    "dangerous_query": "dangerous SQL statement",
}
_CRITICAL = frozenset({"stacked_queries", "dangerous_query"})


@dataclass(frozen=True, slots=True)
class SqliMatch:
    """A pattern that matched, with the span of its first match (see :func:`explain_sqli`)."""

    pattern: SqliPattern
    span: tuple[int, int]

    def __repr__(self) -> str:
        return f"<SqliMatch {self.pattern.name} {self.span}>"


# Findings for inputs longer than this (UTF-8 bytes, far beyond any prompt) carry no span.
_SPAN_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class _Compiled:
    which: re2.Set  # which patterns match, in one pass: the "nothing to see" check
    any_hit: re2._Regexp  # every pattern in one alternation, for its leftmost match
    single: tuple[re2._Regexp, ...]  # one per pattern, in table order
    by_category: dict[str, re2._Regexp]  # one alternation per category, in table order


@functools.cache
def _compiled() -> _Compiled:
    # Built on first use, not at import. A larger memory budget than re2's 8 MiB default
    # gives the DFA room on 1 MiB adversarial inputs, so it rarely has to flush its cache.
    options = re2.Options()
    options.max_mem = 64 << 20
    expanded = ["(?i)" + _expand(p.regex) for p in SQLI_PATTERNS]
    which = re2.Set.SearchSet(options)
    for regex in expanded:
        which.Add(regex)
    # The shapes that call for extra views ride along in the same pass (indices past the
    # table), so deciding "no view needed" costs benign text nothing extra.
    for regex in VIEW_SHAPES.values():
        which.Add(regex)
    which.Compile()

    def alternation(regexes: list[str]) -> re2._Regexp:
        return re2.compile("|".join(f"(?:{r})" for r in regexes), options)

    by_category = {
        category: alternation(
            [expanded[i] for i, p in enumerate(SQLI_PATTERNS) if p.category == category]
        )
        for category in SQLI_CATEGORIES
    }
    single = tuple(re2.compile(r, options) for r in expanded)
    return _Compiled(which, alternation(expanded), single, by_category)


_SHAPE_NAMES = tuple(VIEW_SHAPES)
_N = len(SQLI_PATTERNS)


def _search(
    text: str,
    explain: bool,
    shapes: list[str] | None = None,
    data: bytes | None = None,
    hits: Iterable[int] | None = None,
) -> list[tuple[int, tuple[int, int] | None]]:
    """(pattern index, span) in table order: every matching pattern, or one per category.

    ``shapes``, when given, receives the names of the :data:`VIEW_SHAPES` present. ``data``
    and ``hits`` are the text's UTF-8 bytes and the patterns a set pass over them found
    (:mod:`.onepass`), when the caller made that pass already.
    """
    if not text:
        return []
    compiled = _compiled()
    # Search UTF-8 bytes: re2's str interface re-encodes and maps offsets on every call, which
    # costs more than the match itself. "surrogatepass" keeps lone surrogates from raising.
    if data is None:
        data = text.encode("utf-8", "surrogatepass")
    # One set pass says which patterns match anywhere; for benign text that is all it costs.
    # A set reports a DFA out of memory as "no match", but re2 only fails that way when the
    # budget cannot hold a single state, which Compile() already rules out (set matching never
    # takes the "cache thrashing" bail-out), so an empty answer really means nothing matched.
    if hits is None:
        hits = compiled.which.Match(data)
    if not hits:
        return []
    if any(i >= _N for i in hits):
        if shapes is not None:
            shapes += [_SHAPE_NAMES[i - _N] for i in sorted(hits) if i >= _N]
        hits = [i for i in hits if i < _N]
        if not hits:
            return []
    if not explain and len(data) > _SPAN_LIMIT:
        # Past any real prompt size a span costs one more pass per category; the decision
        # does not need it, so huge inputs stay at one pass and name the first pattern listed.
        first: dict[str, int] = {}
        for index in sorted(hits):
            first.setdefault(SQLI_PATTERNS[index].category, index)
        return [(first[c], None) for c in SQLI_CATEGORIES if c in first]
    # No pattern matches before the combined alternation's leftmost match, so the searches
    # below start there instead of rescanning a long benign prefix each time.
    start_at = compiled.any_hit.search(data)
    floor = 0 if start_at is None else start_at.start()
    spans: list[tuple[int, tuple[int, int]]] = []
    if explain:
        for index in sorted(hits):
            match = compiled.single[index].search(data, floor)
            if match is not None:
                spans.append((index, match.span()))
    else:
        by_category: dict[str, list[int]] = {}
        for index in sorted(hits):
            by_category.setdefault(SQLI_PATTERNS[index].category, []).append(index)
        for category in SQLI_CATEGORIES:
            members = by_category.get(category)
            if members is None:
                continue
            if len(members) == 1:
                index, match = members[0], compiled.single[members[0]].search(data, floor)
            else:
                # One pass per category finds its earliest match; at that position the first
                # pattern in table order that matches is the one the alternation chose.
                match = compiled.by_category[category].search(data, floor)
                start = -1 if match is None else match.start()
                index = next((i for i in members if compiled.single[i].match(data, start)), -1)
            if match is not None and index >= 0:
                spans.append((index, match.span()))
    if len(data) != len(text):  # not ASCII: turn byte offsets into str offsets
        to_char = _char_offsets(data, {offset for _, span in spans for offset in span})
        spans = [(index, (to_char[start], to_char[end])) for index, (start, end) in spans]
    return list(spans)


def _char_offsets(data: bytes, offsets: set[int]) -> dict[int, int]:
    """Map byte offsets to str offsets, decoding each stretch of ``data`` once."""
    result, previous_byte, previous_char = {}, 0, 0
    for offset in sorted(offsets):
        previous_char += len(data[previous_byte:offset].decode("utf-8", "surrogatepass"))
        result[offset], previous_byte = previous_char, offset
    return result


def _finding(pattern: SqliPattern, span: tuple[int, int] | None) -> Finding:
    category = pattern.category
    severity = "critical" if category in _CRITICAL else "high"
    reason = f"Query contains {_LABELS[category]}: {pattern.description} ({pattern.name})."
    return Finding(pattern.policy_id, "sqli", severity, "block", reason, span)


def scan_sqli(
    text: str, *, data: bytes | None = None, hits: Iterable[int] | None = None
) -> list[Finding]:
    """Findings for ``text``, at most one per category, in :data:`SQLI_CATEGORIES` order.

    A category's span is its earliest match (ties go to the pattern listed first), and its
    reason names that pattern. Inputs over 64 KiB get ``span=None`` and the reason names the
    category's first matching pattern in table order: the decision is the same, and the scan
    stays one linear pass however many categories a huge input triggers. ``data`` and
    ``hits`` skip the set pass when the caller made it (see :func:`_search`).

    >>> scan_sqli("1'; DROP TABLE users")
    [<Finding sqli_stacked_queries block critical>, <Finding sqli_dangerous_query block critical>]
    """
    found = _search(text, False, None, data, hits)
    return [_finding(SQLI_PATTERNS[i], span) for i, span in found]


def scan_sqli_shapes(text: str) -> tuple[list[Finding], list[str]]:
    """:func:`scan_sqli`, plus the names of the view shapes found in the same pass."""
    shapes: list[str] = []
    found = [_finding(SQLI_PATTERNS[i], s) for i, s in _search(text, False, shapes)]
    return found, shapes


def explain_sqli(text: str) -> list[SqliMatch]:
    """Every pattern that matches ``text`` (table order), each with its first match's span.

    >>> [m.pattern.name for m in explain_sqli("admin' OR '1'='1'--")]
    ['quoted_or_tautology', 'quote_or_numeric', 'quote_dash_comment', 'payload_tail_comment']
    """
    return [SqliMatch(SQLI_PATTERNS[i], span) for i, span in _search(text, explain=True) if span]
