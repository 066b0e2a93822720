"""The labelled query corpus (``data/corpus/*.csv``) and scoring decisions against it.

Each row is a query with the decision a correct gateway makes under default settings and the
policy ids that must trigger. The benchmark, the tests and ``05_policies.ipynb`` all score the
engine with :func:`score`, so "correct" means the same thing everywhere.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .settings import DATA_DIR

__all__ = ["CORPUS_DIR", "CorpusRow", "Miss", "Score", "load_corpus", "score"]

CORPUS_DIR = DATA_DIR / "corpus"
_COLUMNS = ("id", "category", "user_token", "query", "expected_approved", "expected_policies")


@dataclass(frozen=True, slots=True)
class CorpusRow:
    id: str
    category: str
    user_token: str
    query: str
    expected_approved: bool
    expected_policies: tuple[str, ...]
    source: str

    @property
    def family(self) -> str:
        """The file the row came from: benign, sqli, pii, admin or custom."""
        return self.source

    def __repr__(self) -> str:
        return f"<CorpusRow {self.id} {self.category} approved={self.expected_approved}>"


def load_corpus(folder: Path = CORPUS_DIR) -> list[CorpusRow]:
    """Every row of every CSV in ``folder``, sorted by file then row; ids must be unique."""
    rows: list[CorpusRow] = []
    seen: set[str] = set()
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        raise ConfigError(f"no corpus files (*.csv) in {folder}")
    for path in files:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != _COLUMNS:
                raise ConfigError(f"{path}: columns must be {', '.join(_COLUMNS)}")
            for line, rec in enumerate(reader, start=2):
                flag = rec["expected_approved"].strip().lower()
                if flag not in ("true", "false"):
                    raise ConfigError(f"{path}:{line}: expected_approved must be true or false")
                if rec["id"] in seen:
                    raise ConfigError(f"{path}:{line}: duplicate id {rec['id']!r}")
                seen.add(rec["id"])
                policies = tuple(p for p in rec["expected_policies"].split(";") if p)
                rows.append(
                    CorpusRow(
                        rec["id"],
                        rec["category"],
                        rec["user_token"],
                        rec["query"],
                        flag == "true",
                        policies,
                        path.stem,
                    )
                )
    return rows


@dataclass(frozen=True, slots=True)
class Miss:
    """A row decided differently from its label."""

    row: CorpusRow
    approved: bool
    policies: tuple[str, ...]

    def __repr__(self) -> str:
        return (
            f"<Miss {self.row.id}: expected approved={self.row.expected_approved} "
            f"{list(self.row.expected_policies)}, "
            f"got approved={self.approved} {list(self.policies)}>"
        )


@dataclass(frozen=True, slots=True)
class Score:
    total: int
    correct: int
    misses: tuple[Miss, ...]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def __repr__(self) -> str:
        return f"<Score {self.correct}/{self.total} correct ({self.accuracy:.1%})>"


def score(
    decide: Callable[[str, str], tuple[bool, Iterable[str]]], rows: Iterable[CorpusRow]
) -> Score:
    """Decide every row and compare verdict and policy ids (as sets) with the labels."""
    total = correct = 0
    misses: list[Miss] = []
    for row in rows:
        approved, policies = decide(row.query, row.user_token)
        policies = tuple(policies)
        total += 1
        if approved == row.expected_approved and set(policies) == set(row.expected_policies):
            correct += 1
        else:
            misses.append(Miss(row, approved, policies))
    return Score(total, correct, tuple(misses))
