"""Reading the audit store back: the SQL behind ``AuditStore.list_*``, with its filters.

Each function takes the store's open :class:`sqlite3.Connection`; the
:class:`~.AuditStore` methods of the same names wrap them, and are what notebooks
call. Values bind as parameters and column names come from this module, so no caller text
reaches the SQL. Introduced in ``08_audit_trail.ipynb``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from .chain import AUDIT_COLUMNS, CONTEXT_COLUMNS, AuditRecord, ContextRecord, loads, timestamp

__all__ = ["iter_records", "list_audits", "list_contexts", "list_records"]

_C_COLS = ", ".join((*CONTEXT_COLUMNS, "prev_hash", "row_hash"))
_A_COLS = ", ".join((*AUDIT_COLUMNS, "prev_hash", "row_hash"))
_SELECT_CONTEXT_BY_ID = f"SELECT {_C_COLS} FROM contexts WHERE context_id = ?"
_SELECT_AUDIT_BY_ID = f"SELECT {_A_COLS} FROM audits WHERE audit_id = ?"

_CONTEXT_PART = """c.context_id, c.user_hash, c.query_hash, c.user_role, c.user_department,
    c.data_sources, c.policies, c.approved, c.block_reason, c.request_context, c.expires_at,
    c.created_at AS context_created_at"""
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


# Also checks token counts and latencies for helpers.gateway.store, which imports it from here.
def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return value


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
    return limit, _count("offset", offset)


def list_contexts(
    conn: sqlite3.Connection,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    client_id: str | None = None,
    user_hash: str | None = None,
    approved: bool | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[ContextRecord]:
    """Contexts in time order; ``since`` is inclusive, ``until`` exclusive."""
    where, params = _filters(
        since,
        until,
        client_id=client_id,
        user_hash=user_hash,
        approved=None if approved is None else int(approved),
    )
    sql = f"SELECT {_C_COLS} FROM contexts{where} ORDER BY created_at, seq LIMIT ? OFFSET ?"
    rows = conn.execute(sql, (*params, *_page(limit, offset)))
    return [ContextRecord.from_row(row) for row in rows]


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
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    client_id: str | None = None,
    user_hash: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    approved: bool | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The joined trail, as :meth:`helpers.gateway.store.AuditStore.list_records` describes it."""
    limit, offset = _page(limit, offset)
    return list(
        iter_records(conn, since, until, client_id, user_hash, provider, model, approved,
                     limit=limit, offset=offset)
    )  # fmt: skip


def iter_records(
    conn: sqlite3.Connection,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    client_id: str | None = None,
    user_hash: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    approved: bool | None = None,
    *,
    limit: int = -1,
    offset: int = 0,
) -> Iterator[dict[str, Any]]:
    """:func:`list_records` one row at a time, all of them by default (``limit=-1``): what
    a streaming export reads, in one query and one snapshot, with flat memory."""
    where, params = _filters(
        since,
        until,
        client_id=client_id,
        user_hash=user_hash,
        provider=provider,
        model=model,
        approved=None if approved is None else int(approved),
    )
    sql = f"SELECT * FROM ({_JOINED}){where} ORDER BY created_at, seq LIMIT ? OFFSET ?"
    cursor = conn.execute(sql, (*params, limit, offset))
    names = [d[0] for d in cursor.description]
    for row in cursor:
        record = dict(zip(names, row, strict=True))
        for key in ("data_sources", "policies", "request_context", "metadata"):
            if record[key] is not None:
                record[key] = loads(record[key])
        if record["approved"] is not None:
            record["approved"] = bool(record["approved"])
        yield record
