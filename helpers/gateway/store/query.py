"""Reading the audit store back: lookups, the audits and the joined trail, with its filters.

Plain queries: each function takes an open :class:`sqlite3.Connection` (the store's, or
the reader process's read-only one); the :class:`~.AuditStore` lookups and
``list_audits`` wrap them, and the gateway's reader runs them. Values bind as parameters and
column names come from this module, so no caller text reaches the SQL. Introduced in
``08_audit_trail.ipynb``.
"""

from __future__ import annotations

import heapq
import itertools
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from .chain import AUDIT_COLUMNS, AuditRecord, loads, timestamp
from .schema import check_count

__all__ = [
    "RecordFilter",
    "RecordKey",
    "context_owner",
    "iter_records",
    "list_audits",
    "list_records",
    "record_key",
]

#: Where a row of the joined trail sorts: ``(created_at, seq)``.
RecordKey = tuple[str, int]

_A_COLS = ", ".join((*AUDIT_COLUMNS, "prev_hash", "row_hash"))
_SELECT_OWNER = "SELECT client_id, expires_at FROM contexts WHERE context_id = ?"

_CONTEXT_REST = """c.user_hash, c.query_hash, c.user_role, c.user_department,
    c.data_sources, c.policies, c.approved, c.block_reason, c.request_context, c.expires_at,
    c.created_at AS context_created_at"""
_CONTEXT_PART = f"c.context_id, {_CONTEXT_REST}"
_AUDIT_PART = """a.audit_id, a.provider, a.model, a.prompt_tokens, a.completion_tokens,
    a.total_tokens, a.latency_ms, a.cost_usd, a.metadata, a.created_at AS audit_created_at"""
# Contexts with their audits (or none), then audits whose context is not in the store.
_JOINED = f"""
SELECT COALESCE(a.created_at, c.created_at) AS created_at, COALESCE(a.seq, c.seq) AS seq,
    COALESCE(a.client_id, c.client_id) AS client_id, {_CONTEXT_PART}, {_AUDIT_PART}
FROM contexts c LEFT JOIN audits a ON a.context_id = c.context_id
UNION ALL
SELECT a.created_at, a.seq, a.client_id, a.context_id, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, {_AUDIT_PART}
FROM audits a WHERE NOT EXISTS (SELECT 1 FROM contexts c WHERE c.context_id = a.context_id)
"""
# The same rows in two parts that each keep the order of an index, for keyset paging: every
# audit with its context (if stored), keyed by the audit's (created_at, seq); and every
# context never audited, keyed by its own. ``seq`` is global, so the key is unique.
_AUDITED = f"""
SELECT a.created_at AS created_at, a.seq AS seq, a.client_id AS client_id,
    a.context_id AS context_id, {_CONTEXT_REST}, {_AUDIT_PART}
FROM audits a LEFT JOIN contexts c ON c.context_id = a.context_id
"""
_UNAUDITED = f"""
SELECT c.created_at AS created_at, c.seq AS seq, c.client_id AS client_id, {_CONTEXT_PART},
    NULL AS audit_id, NULL AS provider, NULL AS model, NULL AS prompt_tokens,
    NULL AS completion_tokens, NULL AS total_tokens, NULL AS latency_ms, NULL AS cost_usd,
    NULL AS metadata, NULL AS audit_created_at
FROM contexts c WHERE NOT EXISTS (SELECT 1 FROM audits a WHERE a.context_id = c.context_id)
"""
# Row values, which SQLite turns into a range on the index (an OR of the same test scans it).
_AFTER = "(created_at, seq) > (?, ?)"
_BEFORE = "(created_at, seq) < (?, ?)"
_JSON_FIELDS = ("data_sources", "policies", "request_context", "metadata")
_TEXT_FILTERS = ("client_id", "user_hash", "provider", "model")  # RecordFilter's, as columns


def context_owner(conn: sqlite3.Connection, context_id: str) -> tuple[str, str] | None:
    """``(client_id, expires_at)`` of a context, or ``None``: what an audit checks."""
    row = conn.execute(_SELECT_OWNER, (context_id,)).fetchone()
    return None if row is None else (row[0], row[1])


def _as_timestamp(name: str, value: datetime | str) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name}={value!r} is not an RFC 3339 timestamp") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # a bare time in the trail means UTC
    return timestamp(value)


def _filters(
    since: datetime | str | None, until: datetime | str | None, **equal: object
) -> tuple[str, list[object]]:
    """A WHERE clause with placeholders; column names come from this module, values bind."""
    clauses, params = [], []
    if since is not None:
        clauses.append("created_at >= ?")
        params.append(_as_timestamp("since", since))
    if until is not None:
        clauses.append("created_at < ?")
        params.append(_as_timestamp("until", until))
    for column, value in equal.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _page(limit: int, offset: int) -> tuple[int, int]:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
        raise ValueError(f"limit must be an integer from 1 to 100000, got {limit!r}")
    return limit, check_count("offset", offset)


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Which rows of the joined trail to read: the seven filters, checked once.

    Built by the endpoint from its query string, carried to the reader process (it pickles)
    or the export process (:meth:`to_json` and back), and turned into SQL here. ``since`` is
    inclusive, ``until`` exclusive; a bare time means UTC.

    >>> RecordFilter(provider="openai", approved=False)
    RecordFilter(provider='openai', approved=False)
    """

    since: datetime | str | None = None
    until: datetime | str | None = None
    client_id: str | None = None
    user_hash: str | None = None
    provider: str | None = None
    model: str | None = None
    approved: bool | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:  # stored as the trail's own timestamp text
                object.__setattr__(self, name, _as_timestamp(name, value))
        for name in _TEXT_FILTERS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string, got {value!r}")
        if self.approved is not None and not isinstance(self.approved, bool):
            raise ValueError(f"approved must be true or false, got {self.approved!r}")

    def __repr__(self) -> str:
        set_ = ", ".join(f"{k}={v!r}" for k, v in asdict(self).items() if v is not None)
        return f"RecordFilter({set_})"

    def to_json(self) -> dict[str, Any]:
        """The filters that are set, as JSON-able values: ``RecordFilter(**f.to_json())``."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def where(self) -> tuple[str, list[object]]:
        """The WHERE clause over the joined trail, with its parameters."""
        equal = {name: getattr(self, name) for name in _TEXT_FILTERS}
        approved = None if self.approved is None else int(self.approved)
        return _filters(self.since, self.until, **equal, approved=approved)


def list_audits(
    conn: sqlite3.Connection,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    client_id: str | None = None,
    context_id: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[AuditRecord]:
    """Audits in time order; ``since`` is inclusive, ``until`` exclusive."""
    where, params = _filters(
        since, until, client_id=client_id, context_id=context_id, provider=provider, model=model
    )
    sql = f"SELECT {_A_COLS} FROM audits{where} ORDER BY created_at, seq LIMIT ? OFFSET ?"
    rows = conn.execute(sql, (*params, *_page(limit, offset)))
    return [AuditRecord.from_row(row) for row in rows]


def list_records(
    conn: sqlite3.Connection,
    where: RecordFilter | None = None,
    *,
    limit: int = 1000,
    offset: int = 0,
    after: RecordKey | None = None,
) -> list[dict[str, Any]]:
    """The trail joined: one row per audit with its context's decision, plus one row per
    context that was never audited (audit fields ``None``), so gaps show.

    Sorted by ``created_at`` (the audit's, else the context's) then ``seq``. Plain
    JSON-able dicts, ready for an HTTP response or ``pandas.DataFrame``. Read everything
    acknowledged by calling it on :attr:`AuditStore.connection` after ``commit()`` (or
    ``await applied()``).

    ``after`` (a row's :func:`record_key`) pages by key: the rows that sort after it, read
    through the ``created_at`` indexes, so a page costs about its own size however deep it
    is. ``offset`` skips rows of the sorted trail, which reads and sorts all of them first;
    it cannot be combined with ``after``.
    """
    limit, offset = _page(limit, offset)
    clause, params = (where or RecordFilter()).where()
    if after is not None and offset:
        raise ValueError("page with after or with offset, not both")
    if offset:
        sql = f"SELECT * FROM ({_JOINED}){clause} ORDER BY created_at, seq LIMIT ? OFFSET ?"
        cursor = conn.execute(sql, (*params, limit, offset))
        names = [d[0] for d in cursor.description]
        return [_record(names, row) for row in cursor]
    return _records_after(conn, clause, params, _key(after), limit)


def record_key(record: dict[str, Any]) -> RecordKey:
    """Where a joined row sorts: its ``(created_at, seq)``; what ``after`` takes."""
    return record["created_at"], record["seq"]


def _key(after: RecordKey | None) -> RecordKey | None:
    if after is None:
        return None
    ok = isinstance(after, tuple) and len(after) == 2 and isinstance(after[0], str)
    if not ok or isinstance(after[1], bool) or not isinstance(after[1], int):
        raise ValueError(f"after must be a (created_at, seq) pair, got {after!r}")
    return after


def _records_after(
    conn: sqlite3.Connection,
    where: str,
    params: list[object],
    after: RecordKey | None,
    limit: int,
) -> list[dict[str, Any]]:
    """One page by key: up to ``limit`` audited rows after the key, then the never-audited
    contexts up to where those end, merged. Each part walks its table's ``created_at``
    index from the key; a context sorts before its audits, so the contexts read are about
    those created while the page's audits were."""

    def part(sql: str, clauses: list[tuple[str, RecordKey]]) -> tuple[list[str], list[Any]]:
        text, values = where, list(params)
        for clause, (created_at, seq) in clauses:
            text += (" AND " if text else " WHERE ") + clause
            values += [created_at, seq]
        cursor = conn.execute(
            f"SELECT * FROM ({sql}){text} ORDER BY created_at, seq LIMIT ?", (*values, limit)
        )
        return [d[0] for d in cursor.description], cursor.fetchall()

    start = [] if after is None else [(_AFTER, after)]
    names, audited = part(_AUDITED, start)
    end = [(_BEFORE, (audited[-1][0], audited[-1][1]))] if len(audited) == limit else []
    _, unaudited = part(_UNAUDITED, start + end)
    rows = heapq.merge(audited, unaudited, key=lambda r: (r[0], r[1]))
    return [_record(names, row) for row in itertools.islice(rows, limit)]


def _record(names: list[str], row: tuple[Any, ...]) -> dict[str, Any]:
    record = dict(zip(names, row, strict=True))
    for key in _JSON_FIELDS:
        if record[key] is not None:
            record[key] = loads(record[key])
    if record["approved"] is not None:
        record["approved"] = bool(record["approved"])
    return record


def iter_records(
    conn: sqlite3.Connection, where: RecordFilter | None = None
) -> Iterator[dict[str, Any]]:
    """Every row :func:`list_records` pages through, one at a time: what a streaming export
    reads, in one query and one snapshot, with flat memory."""
    clause, params = (where or RecordFilter()).where()
    cursor = conn.execute(f"SELECT * FROM ({_JOINED}){clause} ORDER BY created_at, seq", params)
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield _record(names, row)
