"""Durable acknowledgement for :class:`~helpers.gateway.store.AuditStore`: group commit.

A row is acknowledged once it is durable: committed to SQLite (a shared store), or written
to the acknowledgement log (an exclusive store, the gateway's), from which SQLite gets it
:data:`APPLY_AFTER_S` later in one transaction, off the request path. Calls made in one
event-loop turn share one write. This mixin holds that machinery; the store's ``__init__``
sets the state it works on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .acklog import RESET_AT_BYTES, AckLog
from .chain import AuditRecord, ChainHead, ContextRecord
from .schema import _INSERT

if TYPE_CHECKING:
    from .audit_store import Appended

__all__ = ["APPLY_AFTER_S", "APPLY_AT_ROWS", "GroupCommit"]

#: With an acknowledgement log, logged rows go into SQLite this long after they were
#: acknowledged, in one transaction, or at once when this many are waiting.
APPLY_AFTER_S = 0.02
APPLY_AT_ROWS = 1000
log = logging.getLogger("helpers.gateway.store")


class GroupCommit:
    """Commit and acknowledgement, mixed into :class:`~helpers.gateway.store.AuditStore`."""

    path: str
    fsync: bool
    _conn: sqlite3.Connection
    _log: AckLog | None
    _head: ChainHead
    _durable_head: ChainHead
    _lines: list[str]
    _unlogged: list[tuple[str, tuple[Any, ...]]]
    _unapplied: list[tuple[str, tuple[Any, ...]]]
    _unapplied_contexts: dict[str, tuple[Any, ...]]
    _apply_scheduled: bool
    _lost: list[tuple[int, int, BaseException]]
    _waiters: list[asyncio.Future[None]]
    _flush_loop: asyncio.AbstractEventLoop | None
    _commits: int
    _last_added: int
    _decided: int

    _read_head: Callable[[], ChainHead]

    @property
    def commit_count(self) -> int:
        """Commits done so far: records added / commits shows how well batching works."""
        return self._commits

    @property
    def head(self) -> ChainHead:
        """The last row in the chain (anchor its ``row_hash`` elsewhere to pin the chain)."""
        return self._head

    async def committed(self, *records: ContextRecord | AuditRecord | Appended) -> None:
        """Return once everything added so far (or just ``records``) is committed.

        Every call made in one event-loop turn waits on the same commit, run by one
        ``loop.call_soon`` callback. If that commit fails, the error is raised here and the
        rows are gone: never acknowledge them. Without ``records``, call it right after
        ``add_*`` (no ``await`` in between), as the gateway's handlers do.

        With an acknowledgement log and no ``fsync``, the rows are written at once: one
        ``write()`` costs less than waiting for the next loop turn, and only the SQLite
        insert, which is what batching pays for, is left to a ``call_soon`` callback.
        """
        if self._lines and self._log is not None and not self.fsync:
            error = self._write_log()
            self._schedule_apply()
            if error is not None:
                raise error
        if len(records) == 1:
            target = records[0].seq
        else:
            target = max((r.seq for r in records), default=self._last_added)
        if target <= self._decided:
            for lo, hi, error in self._lost:
                if any(lo <= r.seq <= hi for r in records):
                    raise error
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        if self._flush_loop is not loop:
            loop.call_soon(self._flush)
            self._flush_loop = loop
        await waiter

    def commit(self) -> None:
        """Commit now (for scripts and tests); also wakes any ``committed()`` waiters."""
        error = self._flush_now()
        if error is not None:
            raise error

    def _flush(self) -> None:
        self._flush_loop = None
        self._flush_now(apply=False)
        self._schedule_apply()

    def _schedule_apply(self) -> None:
        # Off the request path: the rows are safe in the log, so SQLite gets them in one
        # transaction per APPLY_AFTER_S (sooner when many are waiting). Reads apply first.
        if not self._unapplied:
            return
        if len(self._unapplied) >= APPLY_AT_ROWS:
            asyncio.get_running_loop().call_soon(self._apply_in_background)
        elif not self._apply_scheduled:
            asyncio.get_running_loop().call_later(APPLY_AFTER_S, self._apply_in_background)
            self._apply_scheduled = True

    def _flush_now(self, apply: bool = True) -> BaseException | None:
        waiters, self._waiters = self._waiters, []
        if self._log is None:
            error = self._commit_open_transaction()
        else:
            error = self._write_log()
            if apply and error is None:
                error = self._apply_logged()
        for waiter in waiters:
            if waiter.done():  # its task was cancelled meanwhile
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
        return error

    def _write_log(self) -> BaseException | None:
        """Make the pending rows durable in the acknowledgement log (one write)."""
        if not self._lines:
            return None
        assert self._log is not None
        lines, rows, upto = self._lines, self._unlogged, self._last_added
        self._lines, self._unlogged = [], []
        try:
            self._log.append(lines)
        except OSError as exc:
            self._lost.append((self._decided + 1, upto, exc))
            self._decided = upto
            self._head = self._durable_head  # the chain continues from what is on disk
            return exc
        self._decided = upto
        self._durable_head = self._head
        self._commits += 1
        self._unapplied.extend(rows)
        for table, row in rows:
            if table == "contexts":
                self._unapplied_contexts[row[1]] = row
        return None

    def _apply_logged(self) -> BaseException | None:
        """Insert the logged rows into SQLite; on failure they stay queued (and logged)."""
        rows, self._unapplied = self._unapplied, []
        self._apply_scheduled = False
        if not rows:
            return None
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            for table, row in rows:
                self._conn.execute(_INSERT[table], row)
            self._conn.commit()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.rollback()
            self._unapplied[:0] = rows  # still safe in the log; tried again on the next turn
            return exc
        self._unapplied_contexts.clear()
        assert self._log is not None
        if self._log.size >= RESET_AT_BYTES:
            self._log.reset()  # every row in it is now in SQLite
        return None

    def _apply_in_background(self) -> None:
        if not self._unapplied:
            return  # a read or an earlier callback got there first
        error = self._apply_logged()
        if error is not None:
            log.error("%s: cannot copy logged rows into SQLite (kept in %s): %s",
                      self.path, self._log.path if self._log else "?", error)  # fmt: skip

    def _readable(self) -> None:
        """Before a read: everything acknowledged is in SQLite (raises if it cannot be)."""
        if self._unapplied:
            error = self._apply_logged()
            if error is not None:
                raise error

    def _commit_open_transaction(self) -> BaseException | None:
        if not self._conn.in_transaction:
            return None
        upto = self._last_added
        try:
            self._conn.commit()
        except Exception as exc:  # noqa: BLE001 - handed to every waiter, then re-raised
            try:
                if self._conn.in_transaction:
                    self._conn.rollback()
            except sqlite3.Error:
                pass  # the commit's error is the one worth reporting
            self._lost.append((self._decided + 1, upto, exc))
            self._decided = upto
            self._head = self._read_head()  # the chain continues from what is on disk
            return exc
        self._decided = upto
        self._commits += 1
        return None
