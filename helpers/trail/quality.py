"""Detection quality: how well the pre-check's verdicts match the labelled corpus.

Run the corpus (``data/corpus/*.csv``) through a gateway or the in-process engine with
:func:`run_corpus`, then read precision and recall per policy family, per PII type and per
SQL-injection category, a verdict matrix, and the rows decided differently from their
labels. The benchmarks score the engine with the same :func:`run_corpus`, so "correct"
(:attr:`RowResult.correct`) means the same thing everywhere. Introduced in ``05_policies.ipynb``.

Definitions used throughout:

* A policy id is a *true positive* on a row when it is expected and reported, a *false
  positive* when reported but not expected, a *false negative* when expected but missing.
* A family (``sqli``, ``admin``, ``pii``, ``custom``, ``rate_limit``) is counted per row: the
  row is positive for the family when any expected id belongs to it, predicted when any
  reported id does.

>>> from helpers.corpus import load_corpus
>>> from helpers.gateway.engine import DecisionEngine
>>> from helpers.settings import Settings
>>> settings = Settings.load(env={}, dotenv_path=None)
>>> engine = DecisionEngine.from_settings(settings, rate_limits=False)
>>> report = quality_report(run_corpus(engine, load_corpus()[:5]))
>>> report.total
5
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from helpers.corpus import CorpusRow, load_corpus
from helpers.gateway.policies.findings import FAMILIES
from helpers.gateway.policies.pii import PII_TYPES
from helpers.gateway.policies.sqli import SQLI_CATEGORIES

__all__ = [
    "Counts",
    "QualityReport",
    "RowResult",
    "decide_examples",
    "family_of",
    "quality_report",
    "run_corpus",
]


def family_of(policy_id: str) -> str:
    """The family of a policy id: ``sqli``, ``admin``, ``pii``, ``secret``, ``rate_limit`` or
    ``custom``.

    >>> ids = ("sqli_generic", "sys_admin_audit_log", "sys_pii_ssn", "sys_secret_jwt", "my_rule")
    >>> [family_of(p) for p in ids]
    ['sqli', 'admin', 'pii', 'secret', 'custom']
    """
    if policy_id.startswith("sqli_"):
        return "sqli"
    if policy_id.startswith("sys_admin_"):
        return "admin"
    if policy_id.startswith("sys_pii_"):
        return "pii"
    if policy_id.startswith("sys_secret_"):
        return "secret"
    if policy_id == "rate_limit":
        return "rate_limit"
    return "custom"  # anything else is a rule from the custom policies file


@dataclass(frozen=True, slots=True)
class RowResult:
    """One corpus row and what the gateway decided for it."""

    row: CorpusRow
    approved: bool
    policies: tuple[str, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        """Expected ids that were not reported (false negatives), in label order."""
        return tuple(p for p in self.row.expected_policies if p not in self.policies)

    @property
    def extra(self) -> tuple[str, ...]:
        """Reported ids that were not expected (false positives), in reported order."""
        return tuple(p for p in self.policies if p not in self.row.expected_policies)

    @property
    def correct(self) -> bool:
        """Same verdict and the same set of policy ids as the label."""
        return self.approved == self.row.expected_approved and not self.missing and not self.extra

    def __repr__(self) -> str:
        got = f"approved={self.approved} {list(self.policies)}"
        if self.correct:
            return f"<RowResult {self.row.id} ok {got}>"
        row = self.row
        expected = f"approved={row.expected_approved} {list(row.expected_policies)}"
        return f"<RowResult {row.id} MISS {got}, expected {expected}>"


@dataclass(frozen=True, slots=True)
class Counts:
    """True/false positives and negatives for one label (a policy id or a family).

    >>> Counts("sys_pii_ssn", tp=9, fp=1, fn=0, tn=90)
    <Counts sys_pii_ssn precision=0.900 recall=1.000 support=9>
    """

    label: str
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def support(self) -> int:
        """Rows where the label is expected."""
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        """Share of reports that were right; NaN when the label was never reported."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan

    @property
    def recall(self) -> float:
        """Share of expected occurrences that were reported; NaN when none were expected."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if math.isnan(p) or math.isnan(r) or p + r == 0:
            return math.nan
        return 2 * p * r / (p + r)

    def row(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "support": self.support,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }

    def __repr__(self) -> str:
        return (
            f"<Counts {self.label} precision={self.precision:.3f} recall={self.recall:.3f} "
            f"support={self.support}>"
        )


Decider = Callable[[str, str], tuple[bool, Iterable[str], str | None]]


def _as_decider(decider: Any) -> Decider:
    """Accept a gateway client (``pre_check``), a DecisionEngine (``decide``) or a callable
    ``f(query, user_token) -> (approved, ids)``; the result answers ``(approved, ids, reason)``
    (the block reason the gateway or the engine gave, ``None`` from a callable)."""
    if hasattr(decider, "pre_check"):

        def via_gateway(query: str, user: str) -> tuple[bool, Iterable[str], str | None]:
            result = decider.pre_check(query, user_token=user)
            return result.approved, result.policies, result.block_reason

        return via_gateway
    if hasattr(decider, "decide"):

        def in_process(query: str, user: str) -> tuple[bool, Iterable[str], str | None]:
            decision = decider.decide(query, user)
            return decision.approved, decision.policies, decision.block_reason

        return in_process
    if callable(decider):
        return lambda query, user: (*decider(query, user), None)
    raise TypeError(
        f"expected a gateway client, a DecisionEngine or a callable, got {type(decider).__name__}"
    )


def run_corpus(decider: Any, rows: Sequence[CorpusRow] | None = None) -> list[RowResult]:
    """Decide every row (in order) and keep the verdicts next to the labels.

    ``decider`` is a :class:`~helpers.client.SyncGatewayClient` (real HTTP pre-checks), a
    :class:`~helpers.gateway.engine.DecisionEngine`, or ``f(query, user_token) -> (approved, ids)``.
    Through a gateway each row costs its user one rate-limit token.
    """
    decide = _as_decider(decider)
    out = []
    for row in load_corpus() if rows is None else rows:
        approved, policies, _ = decide(row.query, row.user_token)
        out.append(RowResult(row, bool(approved), tuple(policies)))
    return out


def decide_examples(decider: Any, examples: Iterable[tuple[str, str, str]]) -> pd.DataFrame:
    """Decide ``(label, user_token, query)`` examples; one row each, in the order given.

    Columns: ``example`` (the label), ``user_token``, ``query``, ``approved``, ``policies``
    (the ids joined with ``", "``) and ``block_reason`` (empty when approved).
    """
    decide = _as_decider(decider)
    rows = []
    for label, user, query in examples:
        approved, policies, reason = decide(query, user)
        rows.append(
            {
                "example": label,
                "user_token": user,
                "query": query,
                "approved": bool(approved),
                "policies": ", ".join(policies),
                "block_reason": reason or "",
            }
        )
    return pd.DataFrame(
        rows, columns=["example", "user_token", "query", "approved", "policies", "block_reason"]
    )


def _label_counts(
    label: str,
    results: Sequence[RowResult],
    expected: Callable[[RowResult], bool],
    decided: Callable[[RowResult], bool],
) -> Counts:
    tp = fp = fn = tn = 0
    for r in results:
        e, d = expected(r), decided(r)
        tp += e and d
        fp += d and not e
        fn += e and not d
        tn += not (e or d)
    return Counts(label, tp, fp, fn, tn)


@dataclass(frozen=True)
class QualityReport:
    """Everything the notebook shows about detection quality, computed from row results.

    Tables are pandas DataFrames with a stable row order (reporting order, not sorted by
    score), so a committed notebook output changes only when a verdict does.
    """

    results: tuple[RowResult, ...]

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def correct(self) -> int:
        return sum(r.correct for r in self.results)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else math.nan

    # -- counts -----------------------------------------------------------------------------
    def family_counts(self) -> list[Counts]:
        """Row-level counts per family, in reporting order."""
        return [
            _label_counts(
                fam,
                self.results,
                lambda r, f=fam: any(family_of(p) == f for p in r.row.expected_policies),
                lambda r, f=fam: any(family_of(p) == f for p in r.policies),
            )
            for fam in FAMILIES
        ]

    def policy_counts(self, policy_ids: Iterable[str]) -> list[Counts]:
        """Counts per policy id, in the order given."""
        return [
            _label_counts(
                pid,
                self.results,
                lambda r, p=pid: p in r.row.expected_policies,
                lambda r, p=pid: p in r.policies,
            )
            for pid in policy_ids
        ]

    # -- tables -----------------------------------------------------------------------------
    @staticmethod
    def _frame(counts: list[Counts], label: str) -> pd.DataFrame:
        frame = pd.DataFrame([c.row() for c in counts]).rename(columns={"label": label})
        return frame.set_index(label)

    def by_family(self) -> pd.DataFrame:
        """Precision, recall and F1 per family (row level)."""
        return self._frame(self.family_counts(), "family")

    def by_pii_type(self) -> pd.DataFrame:
        """Precision and recall per PII type, every type listed (support 0 shows as such)."""
        frame = self._frame(self.policy_counts(f"sys_pii_{t}" for t in PII_TYPES), "pii_type")
        frame.index = list(PII_TYPES)
        frame.index.name = "pii_type"
        return frame

    def by_sqli_category(self) -> pd.DataFrame:
        """Precision and recall per SQL-injection category."""
        frame = self._frame(self.policy_counts(f"sqli_{c}" for c in SQLI_CATEGORIES), "category")
        frame.index = list(SQLI_CATEGORIES)
        frame.index.name = "sqli_category"
        return frame

    def verdicts(self) -> pd.DataFrame:
        """2x2 counts: expected verdict (rows) against the decided verdict (columns)."""
        labels = ["approved", "blocked"]
        grid = pd.DataFrame(0, index=labels, columns=labels)
        for r in self.results:
            grid.loc[labels[not r.row.expected_approved], labels[not r.approved]] += 1
        grid.index.name, grid.columns.name = "expected", "decided"
        return grid

    def misses(self) -> pd.DataFrame:
        """Rows decided differently from their label; an empty frame (same columns) if none."""
        columns = [
            "id",
            "category",
            "user_token",
            "query",
            "expected_approved",
            "approved",
            "missing",
            "extra",
        ]
        rows = [
            {
                "id": r.row.id,
                "category": r.row.category,
                "user_token": r.row.user_token,
                "query": r.row.query,
                "expected_approved": r.row.expected_approved,
                "approved": r.approved,
                "missing": ";".join(r.missing),
                "extra": ";".join(r.extra),
            }
            for r in self.results
            if not r.correct
        ]
        return pd.DataFrame(rows, columns=columns)

    def __repr__(self) -> str:
        return (
            f"<QualityReport {self.total} rows, {self.correct} correct "
            f"({self.accuracy:.1%}), {self.total - self.correct} misclassified>"
        )


def quality_report(results: Iterable[RowResult]) -> QualityReport:
    """Wrap row results (from :func:`run_corpus`) for the tables."""
    return QualityReport(tuple(results))
