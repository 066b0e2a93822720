"""Durable acknowledgement for :class:`~helpers.gateway.store.AuditStore`: group commit.

A row is acknowledged once it is durable: committed to SQLite (a shared store), or written
to the acknowledgement log (an exclusive store, the gateway's), from which SQLite gets it
shortly after (:mod:`.backlog`). Calls made in one event-loop turn share one write. This
mixin holds that machinery and its state (:meth:`GroupCommit._init_commits`).

An exclusive store never waits on a failing disk: a log write that fails raises
:class:`~helpers.errors.StorageUnavailable` at once (nothing of it is acknowledged, and the
chain continues from the last logged row), and a wait for SQLite gives up as soon as the
applier fails or stalls (:mod:`.health`). With ``fsync``, one batch at a time is written and
synced on the log's own thread (:meth:`.acklog.AckLog.append_soon`): a waiter gives up after
:data:`~.health.STALL_AFTER_S`, and while that batch is stuck new rows are refused before
they join the chain. All of it recovers by itself when the fault clears.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from helpers.errors import StorageUnavailable

from .acklog import RESET_AT_BYTES, AckLog
from .applier import CLOSE_WAIT_S, Applier
from .chain import AuditRecord, ChainHead, ContextRecord
from .health import STALL_AFTER_S, StorageHealth, StorageState

if TYPE_CHECKING:
    from .audit_store import Appended

__all__ = ["MAX_BACKLOG_ROWS", "GroupCommit", "Row"]

#: How far SQLite may fall behind the log (rows acknowledged but not yet applied) before
#: new commits wait for the applier. Under a load the applier thread cannot keep up with
#: (it shares the GIL with the event loop), the queue would otherwise grow without bound in
#: memory; this bounds it, and the wait hands the applier the CPU. While the applier fails or
#: stalls, such commits are refused at once instead (a 503: nothing acknowledged).
MAX_BACKLOG_ROWS = 20_000
log = logging.getLogger("helpers.gateway.store")
Row = tuple[str, tuple[Any, ...]]
#: A ``committed()`` call waiting for its rows: the last seq it needs, and its future.
Waiter = tuple[int, "asyncio.Future[None]"]


@dataclass(frozen=True, slots=True)
class _Batch:
    """Rows being written and synced on the log's own thread (``fsync`` only)."""

    upto: int
    head: ChainHead
    rows: list[Row]
    waiters: list[Waiter]
    started: float
    done: Future[None]


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
    _unlogged: list[Row]
    _unapplied: list[Row]
    _unapplied_contexts: dict[str, tuple[Any, ...]]
    _apply_scheduled: bool
    _lost: list[tuple[int, int, BaseException]]
    _next_seq: int
    _batch: _Batch | None
    _waiters: list[Waiter]
    _flush_loop: asyncio.AbstractEventLoop | None
    _commits: int
    _last_added: int
    _decided: int

    _read_head: Callable[[], ChainHead]
    _schedule_apply: Callable[[], None]
    _apply_logged: Callable[[], BaseException | None]
    applied: Callable[[], Awaitable[None]]

    def _init_commits(self, health: StorageHealth) -> None:
        self._health = health
        self._lost = []
        self._batch = None
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
        insert, which is what batching pays for, is left to a ``call_soon`` callback. With
        ``fsync``, a wait longer than :data:`~.health.STALL_AFTER_S` raises
        :class:`~helpers.errors.StorageUnavailable`: not acknowledged, though the rows may
        still reach the log once the disk comes back.
        """
        applier = self._applier
        if applier is not None and self._durable_head.seq - applier.applied_seq > MAX_BACKLOG_ROWS:
            try:  # storage is behind: let it catch up before taking more
                await self.applied()
            except StorageUnavailable as error:
                if self._batch is None:  # else they chain on rows still being synced
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
        self._waiters.append((target, waiter))
        if self._flush_loop is not loop:
            loop.call_soon(self._flush)
            self._flush_loop = loop
        if not self.fsync or self._log is None:
            await waiter
            return
        await asyncio.wait({waiter}, timeout=STALL_AFTER_S)
        if not waiter.done():
            waiter.cancel()
            raise self._health.stalled("log", STALL_AFTER_S)
        waiter.result()

    def commit(self) -> None:
        """Commit now (for scripts and tests); also wakes any ``committed()`` waiters."""
        error = self._flush_now()
        if error is not None:
            raise error

    def _flush(self) -> None:
        self._flush_loop = None
        if self.fsync and self._log is not None:
            self._start_batch()
            return
        self._flush_now(apply=False)
        self._schedule_apply()

    def _start_batch(self) -> None:
        """With ``fsync``: write and sync what is pending on the log's thread, unless a batch
        is in flight already (its end starts the next one)."""
        if self._batch is not None or not self._lines:
            return
        assert self._log is not None
        self._reset_log_if_applied()
        lines, rows, upto = self._lines, self._unlogged, self._last_added
        self._lines, self._unlogged = [], []
        waiters, self._waiters = self._waiters, []
        done = self._log.append_soon(lines)
        batch = _Batch(upto, self._head, rows, waiters, time.monotonic(), done)
        self._batch = batch
        loop = asyncio.get_running_loop()

        def on_done(_: Future[None]) -> None:  # on the log's thread
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(self._batch_done, batch, True)

        done.add_done_callback(on_done)

    def _batch_done(self, batch: _Batch, restart: bool) -> None:
        """On the loop (or in a synchronous flush): settle a batch written and synced."""
        if self._batch is not batch:
            return  # a synchronous flush has settled it already
        self._batch = None
        exc = batch.done.exception()
        if exc is None:
            self._decided, self._durable_head = batch.upto, batch.head
            self._logged(batch.rows)
            error = None
        else:
            error = self._health.failed("log", exc)
            self._lose(batch.upto, error)
            self._drop_unlogged(error)  # the rows added since chain on the lost ones
        waiters = batch.waiters + [w for w in self._waiters if w[0] <= batch.upto]
        self._waiters = [w for w in self._waiters if w[0] > batch.upto]
        _settle(waiters, error)
        if restart:
            self._schedule_apply()
            self._start_batch()

    def _finish_batch(self) -> BaseException | None:
        """Wait (blocking) for the batch in flight, for a synchronous flush or a close."""
        batch = self._batch
        if batch is None:
            return None
        try:
            batch.done.result(CLOSE_WAIT_S)
        except FutureTimeout:
            return self._health.stalled("log", time.monotonic() - batch.started)
        except OSError:
            pass  # settled below like any failed batch
        self._batch_done(batch, restart=False)
        return None

    def storage_health(self) -> StorageState:
        """The storage's health now (what ``/health`` reports): never blocks on a disk."""
        batch = self._batch
        if batch is not None and time.monotonic() - batch.started > STALL_AFTER_S:
            self._health.stalled("log", time.monotonic() - batch.started)
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
        applier, batch = self._applier, self._batch
        return (
            self._health.faulty
            or (applier is not None and applier.stalled_for() > STALL_AFTER_S)
            or (batch is not None and time.monotonic() - batch.started > STALL_AFTER_S)
        )

    def _flush_now(self, apply: bool = True) -> BaseException | None:
        error = self._finish_batch()
        if error is not None:
            return error  # still stuck: nothing more can be written after it
        waiters, self._waiters = self._waiters, []
        if self._log is None:
            error = self._commit_open_transaction()
        else:
            error = self._write_log()
            if apply and error is None:
                error = self._apply_logged()
        _settle(waiters, error)
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
        self._decided = upto
        self._durable_head = self._head
        self._logged(rows)
        return None

    def _logged(self, rows: list[Row]) -> None:
        """``rows`` are durable in the log: acknowledged, and on their way to SQLite."""
        if self._health.faulty:
            self._health.cleared("log")
        self._commits += 1
        self._unapplied.extend(rows)
        for table, row in rows:
            if table == "contexts":
                self._unapplied_contexts[row[1]] = row

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
        """Refuse the rows added but not yet logged (their callers get ``error``). Only with
        no batch in flight: the chain continues from the last durable row."""
        if self._last_added > self._decided:
            self._lose(self._last_added, error)
        self._lines, self._unlogged = [], []
        self._head = self._durable_head
        waiters, self._waiters = self._waiters, []
        _settle(waiters, error)

    def _refuse_if_stuck(self) -> None:
        """Before a row joins the chain: refuse it while it could only wait on a stuck batch
        (``fsync``) or on an applier that fails with the backlog full. Nothing is stored."""
        batch = self._batch
        if batch is not None and time.monotonic() - batch.started > STALL_AFTER_S:
            raise self._health.stalled("log", time.monotonic() - batch.started)
        applier = self._applier
        if (
            applier is not None
            and applier.failure is not None
            and self._durable_head.seq - applier.applied_seq > MAX_BACKLOG_ROWS
        ):
            raise StorageUnavailable(applier.failure)

    def _commit_open_transaction(self) -> BaseException | None:
        if not self._conn.in_transaction:
            return None
        upto = self._last_added
        try:
            self._conn.commit()
        except Exception as exc:  # handed to every waiter, then re-raised
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


def _settle(waiters: list[Waiter], error: BaseException | None) -> None:
    for _, waiter in waiters:
        if waiter.done():  # its task was cancelled meanwhile
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
