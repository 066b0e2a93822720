"""The shared result type of every detector: one :class:`Finding` per triggered policy.

Detectors (the ``sqli``, ``pii``, ``rbac``, ``custom_policies`` and ``ratelimit`` modules
beside this one) only *find*; the decision engine (``helpers.gateway.engine``) decides
which findings block, applying the environment switches. The re2 building blocks the rule
tables share are here too: :func:`search_set`, :func:`wide_options` and :func:`value_pattern`.
Introduced in ``05_policies.ipynb``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import re2

__all__ = [
    "ACTIONS",
    "FAMILIES",
    "SEVERITIES",
    "STOPPING",
    "Action",
    "Family",
    "Finding",
    "Severity",
    "char_span",
    "search_set",
    "value_pattern",
    "wide_options",
]

Family = Literal["sqli", "admin", "pii", "secret", "custom", "rate_limit"]
Severity = Literal["critical", "high", "medium", "low"]
Action = Literal["block", "require_approval", "warn", "redact", "log"]

#: Reporting order of families in a pre-check's ``policies`` list (contract Part B.1).
FAMILIES: tuple[str, ...] = ("sqli", "admin", "pii", "secret", "custom", "rate_limit")
#: Most severe first; the block reason names the most severe blocking finding.
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
#: What a custom policy may choose. ``require_approval`` stops the request like ``block`` but
#: answers ``verdict: needs_approval`` (a human may let it through, outside this gateway);
#: ``log`` approves and keeps the finding in the trail without reporting it to the caller.
ACTIONS: tuple[str, ...] = ("block", "require_approval", "warn", "log")
#: Actions that stop a request.
STOPPING: frozenset[str] = frozenset({"block", "require_approval"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One triggered policy.

    ``action`` is the detector's default ("block" or "warn"; a custom rule may also say
    "require_approval" or "log"); the engine may change it (``SQLI_BLOCK_MODE=warn``,
    ``PII_ACTION=redact|warn|log``). "block" and "require_approval" stop the request; "log"
    findings are stored in the trail but left out of the caller's ``policies``.
    ``span`` is the (start, end) of the first match in the query, for explanation only; the
    raw text is never stored.

    >>> Finding("sys_pii_ssn", "pii", "critical", "block", "Query contains a US SSN")
    <Finding sys_pii_ssn block critical>
    """

    policy_id: str
    family: Family
    severity: Severity
    action: Action
    reason: str
    span: tuple[int, int] | None = None

    @property
    def blocks(self) -> bool:
        return self.action in STOPPING

    @property
    def reported(self) -> bool:
        """Whether the caller sees this finding's id (everything but ``log``)."""
        return self.action != "log"

    def __repr__(self) -> str:
        return f"<Finding {self.policy_id} {self.action} {self.severity}>"


def char_span(data: bytes, span: tuple[int, int], ascii: bool = False) -> tuple[int, int]:
    """A byte span of ``data`` (UTF-8, lone surrogates passed through) as a str span.

    Detectors search UTF-8 bytes (re2 is cheaper on bytes than on str) and report spans in
    the user's characters; ``ascii=True`` says the two are the same.
    """
    if ascii:
        return span
    start = len(data[: span[0]].decode("utf-8", "surrogatepass"))
    return start, start + len(data[span[0] : span[1]].decode("utf-8", "surrogatepass"))


def wide_options() -> re2.Options:
    """re2 options with a 64 MiB memory budget (the default is 8 MiB): room for the DFA on
    1 MiB adversarial inputs, so it rarely has to flush its cache."""
    options = re2.Options()
    options.max_mem = 64 << 20
    return options


def search_set(patterns: Iterable[str]) -> re2.Set:
    """One :class:`re2.Set` over ``patterns`` (:func:`wide_options`): one pass over a text
    names every pattern with a match anywhere in it.

    Set matching cannot give up once compiled: for sets re2 keeps flushing its state cache
    instead of bailing out, so an empty answer really means "no candidate".
    """
    which = re2.Set.SearchSet(wide_options())
    for pattern in patterns:
        which.Add(pattern)
    which.Compile()
    return which


def value_pattern(pattern: str) -> tuple[Any, str]:
    """A detection rule's ``pattern`` (re2 syntax over ASCII, group 1 the value) compiled
    for bytes, and what is wrong with it ("" when nothing is)."""
    try:
        regex = re2.compile(pattern.encode("ascii"))
    except (re2.error, UnicodeEncodeError) as exc:
        return None, f"bad pattern (re2 syntax, ASCII only): {exc}"
    return regex, "" if regex.groups else "pattern needs a group around the value"
