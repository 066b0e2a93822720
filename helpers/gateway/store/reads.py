"""Reading :class:`~helpers.gateway.store.AuditStore`: lookups, listings and verification.

Every read first puts acknowledged rows that are still only in the acknowledgement log into
SQLite (``_readable``), so a read sees everything acknowledged. The queries themselves are
in :mod:`.query`; this mixin binds them to the store's connection. A read that SQLite fails
raises :class:`~helpers.errors.StorageUnavailable`, counted as a ``read`` fault (:mod:`.health`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from .acklog import AckLog
from .applier import Applier
from .chain import AuditRecord, ChainHead, ChainReport, ContextRecord
from .chain import verify_chain as _verify_chain
from .health import StorageHealth
from .query import _SELECT_AUDIT_BY_ID, _SELECT_CONTEXT_BY_ID, RecordKey
from .query import list_audits as _list_audits
from .query import list_contexts as _list_contexts
from .query import list_records as _list_records
from .schema import _CHAIN_TABLES

__all__ = ["Reads"]

_SELECT_OWNER = "SELECT client_id, expires_at FROM contexts WHERE context_id = ?"


class Reads:
    """Read methods, mixed into :class:`~helpers.gateway.store.AuditStore`."""

    _conn: sqlite3.Connection
    _log: AckLog | None
    _applier: Applier | None
    _health: StorageHealth
    _head: ChainHead
    _durable_head: ChainHead
    _unapplied_contexts: dict[str, tuple[Any, ...]]
    _clock: Callable[[], datetime]

    _readable: Callable[[], None]
    verified_head: ChainHead

    def get_context(self, context_id: str) -> ContextRecord | None:
        """One context by id: an index lookup, or a dict lookup for a context that is
        acknowledged but not yet copied from the log into SQLite."""
        pending = self._unapplied_contexts.get(context_id)
        if pending is not None:
            return ContextRecord.from_row(pending)
        self._contexts_readable()
        try:
            row = self._conn.execute(_SELECT_CONTEXT_BY_ID, (context_id,)).fetchone()
        except sqlite3.Error as exc:
            raise self._health.failed("read", exc) from exc
        if self._health.faulty:
            self._health.cleared("read")
        return None if row is None else ContextRecord.from_row(row)

    def context_owner(self, context_id: str) -> tuple[str, str] | None:
        """``(client_id, expires_at)`` of a context, or ``None``: what an audit checks."""
        pending = self._unapplied_contexts.get(context_id)
        if pending is not None:
            return pending[2], pending[12]
        self._contexts_readable()
        try:
            owner = self._conn.execute(_SELECT_OWNER, (context_id,)).fetchone()
        except sqlite3.Error as exc:  # the audit's hot path: no context manager
            raise self._health.failed("read", exc) from exc
        if self._health.faulty:
            self._health.cleared("read")
        return owner

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Everything acknowledged is in SQLite, and a failing read is a storage fault."""
        self._readable()
        try:
            yield
        except sqlite3.Error as exc:
            raise self._health.failed("read", exc) from exc
        self._health.cleared("read")

    def _contexts_readable(self) -> None:
        # With an applier thread, a logged context stays in _unapplied_contexts until its
        # commit, so SQLite has every other one: no waiting on the event loop.
        if self._applier is None:
            self._readable()

    def get_live_context(self, context_id: str) -> ContextRecord | None:
        """The context if it exists and has not expired by the store's clock."""
        record = self.get_context(context_id)
        if record is None or record.is_expired(self._clock()):
            return None
        return record

    def get_audit(self, audit_id: str) -> AuditRecord | None:
        with self._reading():
            row = self._conn.execute(_SELECT_AUDIT_BY_ID, (audit_id,)).fetchone()
        return None if row is None else AuditRecord.from_row(row)

    def list_contexts(
        self,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        client_id: str | None = None,
        user_hash: str | None = None,
        approved: bool | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[ContextRecord]:
        """Contexts in time order; ``since`` is inclusive, ``until`` exclusive."""
        with self._reading():
            return _list_contexts(
                self._conn,
                since,
                until,
                client_id=client_id,
                user_hash=user_hash,
                approved=approved,
                limit=limit,
                offset=offset,
            )

    def list_audits(
        self,
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
        with self._reading():
            return _list_audits(
                self._conn,
                since,
                until,
                client_id=client_id,
                context_id=context_id,
                provider=provider,
                model=model,
                limit=limit,
                offset=offset,
            )

    def list_records(
        self,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        client_id: str | None = None,
        user_hash: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        approved: bool | None = None,
        limit: int = 1000,
        offset: int = 0,
        after: RecordKey | None = None,
    ) -> list[dict[str, Any]]:
        """The trail joined: one row per audit with its context's decision, plus one row per
        context that was never audited (audit fields ``None``), so gaps show.

        Sorted by ``created_at`` (the audit's, else the context's) then ``seq``. Plain
        JSON-able dicts, ready for an HTTP response or ``pandas.DataFrame``. Page with
        ``after=record_key(last_row)``: each page then costs about its own size.
        """
        with self._reading():
            return _list_records(
                self._conn,
                since,
                until,
                client_id=client_id,
                user_hash=user_hash,
                provider=provider,
                model=model,
                approved=approved,
                limit=limit,
                offset=offset,
                after=after,
            )

    def verify_chain(self) -> ChainReport:
        """Check every link of the chain; reports the first broken record.

        Also catches rows removed from the end while this store is open (its head is gone).
        Reads the whole file: seconds for millions of rows.
        """
        with self._reading():
            return _verify_chain(self._conn, _CHAIN_TABLES, self.verified_head)
