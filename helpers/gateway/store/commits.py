"""Durable acknowledgement for :class:`~helpers.gateway.store.AuditStore`: group commit.

A row is acknowledged once it is durable: committed to SQLite (a shared store), or written
to the acknowledgement log (an exclusive store, the gateway's), from which SQLite gets it
:data:`APPLY_AFTER_S` later in one transaction, on the :class:`~.applier.Applier`'s own
thread and connection, off the event loop. Calls made in one event-loop turn share one
write. This mixin holds that machinery and its state (:meth:`GroupCommit._init_commits`).

An exclusive store never waits on a failing disk: a log write that fails raises
:class:`~helpers.errors.StorageUnavailable` at once (nothing of it is acknowledged, and the
chain continues from the last logged row), and a wait for SQLite gives up as soon as the
applier fails or stalls (:mod:`.health`). Both recover by themselves when the fault clears.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers.errors import StorageUnavailable

from .acklog import RESET_AT_BYTES, AckLog
from .applier import Applier
from .chain import AuditRecord, ChainHead, ContextRecord
from .health import STALL_AFTER_S, StorageHealth, StorageState

if TYPE_CHECKING:
    from .audit_store import Appended

__all__ = ["APPLY_AFTER_S", "APPLY_AT_ROWS", "MAX_BACKLOG_ROWS", "GroupCommit"]

#: With an acknowledgement log, logged rows go into SQLite this long after they were
#: acknowledged, in one transaction, or at once when this many are waiting.
APPLY_AFTER_S = 0.02
APPLY_AT_ROWS = 1000
#: How far SQLite may fall behind the log (rows acknowledged but not yet applied) before
#: new commits wait for the applier. Under a load the applier thread cannot keep up with
#: (it shares the GIL with the event loop), the queue would otherwise grow without bound in
#: memory; this bounds it, and the wait hands the applier the CPU. While the applier fails or
#: stalls, such commits are refused at once instead (a 503: nothing acknowledged).
MAX_BACKLOG_ROWS = 20_000
log = logging.getLogger("helpers.gateway.store")


class GroupCommit:
    """Commit and acknowledgement, mixed into :class:`~helpers.gateway.store.AuditStore`."""

    path: str
    fsync: bool
    _conn: sqlite3.Connection
    _log: AckLog | None
    _applier: Applier | None
    _health: StorageHealth
    _head: ChainHead
    _durable_head: ChainHead
    _lines: list[str]
    _unlogged: list[tuple[str, tuple[Any, ...]]]
    _unapplied: list[tuple[str, tuple[Any, ...]]]
    _unapplied_contexts: dict[str, tuple[Any, ...]]
    _apply_scheduled: bool
    _lost: list[tuple[int, int, BaseException]]
    _next_seq: int
    _waiters: list[asyncio.Future[None]]
    _flush_loop: asyncio.AbstractEventLoop | None
    _commits: int
    _last_added: int
    _decided: int

    _read_head: Callable[[], ChainHead]

    def _init_commits(self, health: StorageHealth) -> None:
        self._health = health
        self._lost = []
        self._waiters = []
        self._flush_loop = None
        self._commits = 0
        # With an acknowledgement log: rows added but not yet logged (lines and rows), and
        # rows logged (so acknowledged) but not yet in SQLite.
        self._log = None
        self._applier = None
        self._lines = []
        self._unlogged = []
        self._unapplied = []
        self._apply_scheduled = False
        self._unapplied_contexts = {}

    @property
    def commit_count(self) -> int:
        """Commits done so far: records added / commits shows how well batching works."""
        return self._commits

    @property
    def head(self) -> ChainHead:
        """The last row in the chain (anchor its ``row_hash`` elsewhere to pin the chain)."""
        return self._head

    @property
    def verified_head(self) -> ChainHead:
        """The last row a verification must find: the last one committed, or logged."""
        return self._head if self._log is None else self._durable_head

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
        applier = self._applier
        if applier is not None and self._durable_head.seq - applier.applied_seq > MAX_BACKLOG_ROWS:
            try:  # storage is behind: let it catch up before taking more
                await self.applied()
            except StorageUnavailable as error:
                self._drop_unlogged(error)  # a 503 stores nothing
                raise
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

    def storage_health(self) -> StorageState:
        """The storage's health now (what ``/health`` reports): never blocks on a disk."""
        applier = self._applier
        if applier is None:
            return self._health.state()
        stalled = applier.stalled_for()
        if stalled > STALL_AFTER_S:
            self._health.stalled("sqlite", stalled)
        return self._health.state(self._durable_head.seq - applier.applied_seq)

    @property
    def degraded(self) -> bool:
        """Whether some part of the storage is failing or stalled now (cheap: no I/O)."""
        applier = self._applier
        return self._health.faulty or (
            applier is not None and applier.stalled_for() > STALL_AFTER_S
        )

    def _start_log(self, log_path: Path, writer: sqlite3.Connection) -> None:
        """Acknowledge through the log at ``log_path``; ``writer`` becomes the applier's."""
        self._log = AckLog(log_path, self.fsync)
        self._health.add_probe("log", self._log.probe)
        self._applier = Applier(writer, self._head.seq, self._applied_contexts, self._health)

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
        self._reset_log_if_applied()
        try:
            self._log.append(lines)
        except OSError as exc:
            error = self._health.failed("log", exc)
            self._lose(upto, error)
            self._head = self._durable_head  # the chain continues from what is on disk
            return error
        self._health.cleared("log")
        self._decided = upto
        self._durable_head = self._head
        self._commits += 1
        self._unapplied.extend(rows)
        for table, row in rows:
            if table == "contexts":
                self._unapplied_contexts[row[1]] = row
        return None

    def _reset_log_if_applied(self) -> None:
        # Only on the thread that appends, and only once SQLite has every logged row.
        applier = self._applier
        if (
            applier is not None
            and self._log is not None
            and self._log.size >= RESET_AT_BYTES
            and not self._unapplied
            and applier.applied_seq >= self._durable_head.seq
        ):
            try:
                self._log.reset()
            except OSError:
                pass  # the log stays longer; emptying it is tried again at the next write

    def _lose(self, upto: int, error: BaseException) -> None:
        """Rows after the last decided one, up to ``upto``, are lost with ``error``: never
        acknowledged. Failures in a row make one range, so an outage keeps one entry."""
        lo = self._decided + 1
        if self._lost and self._lost[-1][1] == lo - 1:
            lo = self._lost.pop()[0]
        self._lost.append((lo, upto, error))
        self._decided = upto

    def _drop_unlogged(self, error: BaseException) -> None:
        """Refuse the rows added but not yet logged (their callers get ``error``)."""
        if self._last_added > self._decided:
            self._lose(self._last_added, error)
        self._lines, self._unlogged = [], []
        self._head = self._durable_head
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)

    def _apply_logged(self, wait: bool = True) -> BaseException | None:
        """Hand the logged rows to the applier thread, which inserts them into SQLite (on
        failure they stay queued there, and logged); ``wait`` blocks until it has committed
        them: reads and close need that, the background hand-over does not."""
        rows, self._unapplied = self._unapplied, []
        self._apply_scheduled = False
        assert self._applier is not None
        self._applier.submit(rows)
        if not wait:
            return None
        try:
            self._applier.wait(self._durable_head.seq)
        except StorageUnavailable as exc:
            return exc
        return None

    def _apply_in_background(self) -> None:
        if not self._unapplied:
            return  # a read or an earlier callback got there first
        self._apply_logged(wait=False)  # the applier logs its own failures

    def _readable(self) -> None:
        """Before a read: everything acknowledged is in SQLite (raises if it cannot be)."""
        if self._unapplied or (
            self._applier is not None and self._applier.applied_seq < self._durable_head.seq
        ):
            error = self._apply_logged()
            if error is not None:
                raise error

    def _applied_contexts(self, rows: list[tuple[str, tuple[Any, ...]]]) -> None:
        """On the applier's thread, after a commit: those contexts are found in SQLite now."""
        pending = self._unapplied_contexts
        for table, row in rows:
            if table == "contexts":
                pending.pop(row[1], None)

    async def applied(self) -> None:
        """Return once every acknowledged row is in SQLite, without blocking the loop.

        What the gateway awaits before a read in another thread or process. Raises
        :class:`~helpers.errors.StorageUnavailable` at once while SQLite fails, and once it
        has finished nothing for :data:`~.health.STALL_AFTER_S`.
        """
        if self._applier is None:
            self._readable()
            return
        self._apply_logged(wait=False)
        await self._applier.caught_up(self._durable_head.seq)

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
            self._lose(upto, exc)
            self._head = self._read_head()  # the chain continues from what is on disk
            return exc
        self._decided = upto
        self._commits += 1
        return None
