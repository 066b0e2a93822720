"""The labelled query corpus (``data/corpus/*.csv``).

Each row is a query with the decision a correct gateway makes under default settings and the
policy ids that must trigger. The benchmarks, the tests and the notebooks all score decisions
against it with :func:`helpers.trail.quality.run_corpus`, so "correct" means the same thing
everywhere.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .settings import DATA_DIR

__all__ = ["CORPUS_DIR", "CorpusRow", "load_corpus"]

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
