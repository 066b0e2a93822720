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
  readable form and :func:`widen_spaces` widens it at compile time, so spans stay exact offsets into
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
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import re2

from .findings import Finding, search_set, wide_options
from .sqli_patterns import SQLI_CATEGORIES, SQLI_PATTERNS, SqliPattern, widen_spaces

__all__ = [
    "SQLI_CATEGORIES",
    "SQLI_PATTERNS",
    "SqliMatch",
    "SqliPattern",
    "explain_sqli",
    "payload_question",
    "scan_sqli",
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
    # Built on first use, not at import, with the detectors' larger memory budget.
    options = wide_options()
    expanded = ["(?i)" + widen_spaces(p.regex) for p in SQLI_PATTERNS]
    which = search_set(expanded)

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


# ---- matches that are SQL being written or discussed, not a payload -------------------------
# A few patterns flag a statement wherever it appears; where the text around a match shows
# ordinary SQL or prose, the match is set aside and the pattern's next match is tried. Each
# check reads a few hundred bytes around one match, and only for a pattern the set pass found.
_NEXT_WORD = re.compile(rb"\s+(?:if\s+exists\s+)?([A-Za-z_]+)")
#: Words that follow "DROP TABLE" in prose about one ("a planned DROP TABLE for ..."), never a
#: table name in a statement someone means to run.
DROP_PROSE = frozenset(
    b"for of on in at after before statement statements command commands step steps migration "
    b"privilege privileges permission permissions is was will would should runs ran and or to "
    b"that which as we you i script operation operations tomorrow tonight today first later "
    b"then when by".split()
)
_SELECT_FROM = re.compile(rb"(?is)\bselect\b[^'\";]*\bfrom\b[^'\";]*$")
_INSERT_STATEMENT = re.compile(rb"(?is)[^'\"]*\binsert\s+into\b[^;]*")


def _drop_in_prose(data: bytes, start: int, end: int) -> bool:
    """ "a planned DROP TABLE for legacy_orders": no table name after DROP TABLE."""
    word = _NEXT_WORD.match(data, end)
    return word is not None and word.group(1).lower() in DROP_PROSE


def _union_of_selects(data: bytes, start: int, end: int) -> bool:
    """ "SELECT city FROM customers UNION SELECT table_name ...": the UNION joins two whole
    queries (a tutorial's), with no quote or ';' between the first SELECT and the UNION."""
    before = data[max(0, start - 300) : start]
    return _SELECT_FROM.search(before.rsplit(b";", 1)[-1]) is not None


def _insert_script(data: bytes, start: int, end: int) -> bool:
    """ "INSERT INTO a VALUES (...); INSERT INTO b ...": the statement before the ';' is an
    INSERT whose quotes all close, so the second one follows a script, not a broken string."""
    before = data[max(0, start - 2000) : start].rsplit(b";", 1)[-1]
    return _INSERT_STATEMENT.fullmatch(before) is not None and before.count(b"'") % 2 == 0


_VETOES: dict[str, Callable[[bytes, int, int], bool]] = {
    "drop_table": _drop_in_prose,
    "union_select_extract": _union_of_selects,
    "stacked_insert": _insert_script,
}
_VETOED = frozenset(i for i, p in enumerate(SQLI_PATTERNS) if p.name in _VETOES)
#: Matches of one pattern set aside before the next one counts whatever its context.
VETO_LIMIT = 64


def _first_kept(index: int, data: bytes, floor: int) -> tuple[int, int] | None:
    """The span of pattern ``index``'s first match that its check does not set aside."""
    regex, veto = _compiled().single[index], _VETOES[SQLI_PATTERNS[index].name]
    pos = floor
    for _ in range(VETO_LIMIT):
        match = regex.search(data, pos)
        if match is None:
            return None
        span: tuple[int, int] = match.span()
        if not veto(data, *span):
            return span
        pos = span[1] if span[1] > span[0] else span[0] + 1
    last: tuple[int, int] = match.span()
    return last  # fail closed: past the limit the match counts


def _search(
    text: str,
    explain: bool,
    data: bytes | None = None,
    hits: Iterable[int] | None = None,
) -> list[tuple[int, tuple[int, int] | None]]:
    """(pattern index, span) in table order: every matching pattern, or one per category.

    ``data`` and ``hits`` are the text's UTF-8 bytes and the patterns a set pass over them found
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
    if not explain and len(data) > _SPAN_LIMIT:
        # Past any real prompt size a span costs one more pass per category; the decision
        # does not need it, so huge inputs stay at one pass and name the first pattern listed.
        # (The context checks of _VETOES are skipped there too: past 64 KiB a match counts.)
        first: dict[str, int] = {}
        for index in sorted(hits):
            first.setdefault(SQLI_PATTERNS[index].category, index)
        return [(first[c], None) for c in SQLI_CATEGORIES if c in first]
    # No pattern matches before the combined alternation's leftmost match, so the searches
    # below start there instead of rescanning a long benign prefix each time.
    start_at = compiled.any_hit.search(data)
    floor = 0 if start_at is None else start_at.start()
    spans: list[tuple[int, tuple[int, int]]] = []
    kept: dict[int, tuple[int, int] | None] = {}
    if _VETOED.intersection(hits):
        kept = {i: _first_kept(i, data, floor) for i in _VETOED.intersection(hits)}
        hits = [i for i in hits if kept.get(i, True) is not None]
        if not hits:
            return []
    if explain:
        for index in sorted(hits):
            if index in kept:
                spans.append((index, kept[index]))
                continue
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
            if kept and any(i in kept for i in members):
                # A category with a checked pattern: each member's first kept match, the
                # earliest wins (ties to the table order), as the alternation would choose.
                found = []
                for i in members:
                    if i in kept:
                        found.append((kept[i], i))
                    elif (m := compiled.single[i].search(data, floor)) is not None:
                        found.append((m.span(), i))
                if found:
                    span, index = min(found, key=lambda f: (f[0][0], f[1]))  # type: ignore[index]
                    spans.append((index, span))
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
    found = _search(text, False, data, hits)
    return [_finding(SQLI_PATTERNS[i], span) for i, span in found]


def explain_sqli(text: str) -> list[SqliMatch]:
    """Every pattern that matches ``text`` (table order), each with its first match's span.

    >>> [m.pattern.name for m in explain_sqli("admin' OR '1'='1'--")]
    ['quoted_or_tautology', 'quote_or_numeric', 'quote_dash_comment', 'payload_tail_comment']
    """
    return [SqliMatch(SQLI_PATTERNS[i], span) for i, span in _search(text, explain=True) if span]


# ---- questions about a payload ---------------------------------------------------------------
#: Texts longer than this (characters) are never read as a question about a payload: a
#: question quotes one payload in a sentence or two, a document that carries one is not asking.
QUESTION_LIMIT = 1024
_QUESTION = re2.compile(
    r"(?i)\b(?:what\s+(?:does|do|is|are|would|will|happens)|explain|why\s+(?:is|are|does|do|would)"
    r"|how\s+(?:does|do|can|should|would)\s+(?:i|we|you|one|it|this|that)\b(?:\s+\w+)?\s+"
    r"(?:prevent|stop|block|detect|defend|avoid|fix|escape|sanitise|sanitize|work|protect)"
    r"|is\s+(?:this|it|that)\s+(?:dangerous|safe|malicious|an?\s+(?:attack|injection)))\b"
)
# Words that hand the text to something that will run it: a tool, a query, a database.
_EXECUTE = re2.compile(
    r"(?i)\b(?:run|runs|running|execute|executes|executing|exec|call|invoke|submit|tool|tools"
    r"|function_call|tool_call|apply\s+it|try\s+it|use\s+it|paste\s+it|query\s+the"
    r"|on\s+(?:prod|production|staging|the\s+(?:live|prod|production)\s+\w+)|in\s+production"
    # SQL's own EXPLAIN is a statement, not a question (EXPLAIN ANALYZE runs the query)
    r"|explain\s+(?:analy[sz]e|select|insert|update|delete|with|verbose|query\s+plan)|explain\s*\()\b"
)


def payload_question(text: str) -> bool:
    """True when ``text`` asks *about* the payload it quotes ("what does ... do", "explain",
    "why is ... dangerous", "how do I prevent ...") and hands nothing to anything that runs
    it (no "run", "execute", "call", "tool", "on prod" ...).

    The engine then reports the SQL-injection findings without blocking on them. What an
    attacker can still do with this rule is in ``docs/gateway.md`` (Detection, context).

    >>> payload_question("What does ' OR '1'='1 do in a login form?")
    True
    >>> payload_question("What does ' OR 1=1-- do? Run it against the orders table.")
    False
    """
    if len(text) > QUESTION_LIMIT:
        return False  # a document that carries a payload is not a question about one
    return _QUESTION.search(text) is not None and _EXECUTE.search(text) is None
