"""Durable acknowledgement: group commit through the acknowledgement log, and the copy into
SQLite behind it.

:class:`GroupCommit` is the commit machinery of one :class:`~helpers.gateway.store.AuditStore`.
It owns the chain head, the rows on their way to disk and the callers waiting for them; the
store hands it the open log (:class:`~.acklog.AckLog`), the applier thread
(:class:`~.applier.Applier`) and the health record (:class:`~.health.StorageHealth`).

A row is acknowledged once it is in the acknowledgement log. Calls made in one event-loop
turn share one write. SQLite gets the rows :data:`APPLY_AFTER_S` later (sooner when
:data:`APPLY_AT_ROWS` are waiting), in one transaction on the applier's own thread and
connection, off the event loop. A read first waits until SQLite has every acknowledged row:
blocking for a script (:meth:`GroupCommit.readable`), without blocking the loop for the
gateway (:meth:`GroupCommit.applied`).

Nothing here is touched by the applier's thread: the event loop learns what SQLite has from
:attr:`.applier.Applier.applied_seq`, which the thread publishes under its lock, and drops
the contexts it kept for lookups (:meth:`GroupCommit.pending_context`) once they are there,
in batches (:data:`DROP_CONTEXTS_AT`). That read takes the applier's lock, so the loop
remembers the last value it read (a lower bound: the thread only moves it forward) and
reads again only when the answer could change what it does.

A store never waits on a failing disk: a log write that fails raises
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
import time
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from helpers.errors import StorageUnavailable

from .acklog import RESET_AT_BYTES, AckLog, format_entry
from .applier import CLOSE_WAIT_S, Applier
from .chain import ChainHead, hash_payload, row_payload
from .health import STALL_AFTER_S, StorageHealth, StorageState

__all__ = [
    "APPLY_AFTER_S",
    "APPLY_AT_ROWS",
    "DROP_CONTEXTS_AT",
    "MAX_BACKLOG_ROWS",
    "Appended",
    "GroupCommit",
    "Row",
]

#: Logged rows go into SQLite this long after they were acknowledged, in one transaction, or
#: at once when this many are waiting.
APPLY_AFTER_S = 0.02
APPLY_AT_ROWS = 1000
#: How far SQLite may fall behind the log (rows acknowledged but not yet applied) before
#: new commits wait for the applier. Under a load the applier thread cannot keep up with
#: (it shares the GIL with the event loop), the queue would otherwise grow without bound in
#: memory; this bounds it, and the wait hands the applier the CPU. While the applier fails or
#: stalls, such commits are refused at once instead (a 503: nothing acknowledged).
MAX_BACKLOG_ROWS = 20_000
#: Logged contexts kept for lookups before those SQLite has are dropped: the loop asks the
#: applier how far it has got once per this many acknowledged contexts, not at every one.
DROP_CONTEXTS_AT = 1024

#: A stored row with its table: ``(table, (seq, ..., prev_hash, row_hash))``.
Row = tuple[str, tuple[Any, ...]]
#: A ``committed()`` call waiting for its rows: the last seq it needs, and its future.
Waiter = tuple[int, "asyncio.Future[None]"]


class Appended(NamedTuple):
    """A row just added: enough to acknowledge it (``await store.committed(appended)``).

    A handle on the hot path; :meth:`~helpers.gateway.store.AuditStore.add_context` returns
    the frozen dataclass.
    """

    seq: int
    record_id: str
    #: For a context, when it expires; ``None`` for an audit.
    expires_at: str | None
    #: The stored row: ``seq``, the chained columns, ``prev_hash``, ``row_hash``.
    row: tuple[Any, ...]


class _HasSeq(Protocol):
    @property
    def seq(self) -> int: ...


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
    """Appends chained rows to the log, acknowledges them, and hands them to the applier.

    Rows are numbered by ``seq``. Everything up to ``decided`` is durable (or was lost in a
    failed write, listed in ``lost``); rows after it are still pending. All methods run on
    one thread, the event loop's in the gateway.
    """

    def __init__(
        self, log: AckLog, applier: Applier, health: StorageHealth, head: ChainHead, fsync: bool
    ) -> None:
        self.log = log
        self.applier = applier
        self.health = health
        self.fsync = fsync
        self._head = self._durable_head = head
        self._next_seq = head.seq + 1
        self._last_added = self._decided = head.seq
        self._lost: list[tuple[int, int, BaseException]] = []
        self._batch: _Batch | None = None
        self._waiters: list[Waiter] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self._commits = 0
        # Rows added but not yet logged (their lines, and the rows), and rows logged (so
        # acknowledged) but not yet handed to the applier.
        self._lines: list[str] = []
        self._unlogged: list[Row] = []
        self._unapplied: list[Row] = []
        self._apply_scheduled = False
        # Logged contexts SQLite may not have yet, for lookups: by id, and in seq order so
        # the ones the applier has committed are dropped from the front.
        self._contexts: dict[str, tuple[Any, ...]] = {}
        self._context_order: deque[tuple[int, str]] = deque()
        # The applier's applied_seq when last read: never ahead of it.
        self._applied_seen = head.seq

    def __repr__(self) -> str:
        return (
            f"<GroupCommit head={self._head.seq} durable={self._durable_head.seq} "
            f"applied={self.applier.applied_seq}>"
        )

    # -- the chain -----------------------------------------------------------------------

    @property
    def head(self) -> ChainHead:
        """The last row in the chain (anchor its ``row_hash`` elsewhere to pin the chain)."""
        return self._head

    @property
    def verified_head(self) -> ChainHead:
        """The last row a verification must find: the last one logged."""
        return self._durable_head

    @property
    def commit_count(self) -> int:
        """Commits done so far: records added / commits shows how well batching works."""
        return self._commits

    def append(self, table: str, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """Chain one row (``values`` are its columns after ``seq``) and queue it for the log.

        Returns the stored row: ``seq``, the values, ``prev_hash``, ``row_hash``.
        """
        if self._batch is not None or self.health.faulty:
            self._refuse_if_stuck()
        seq = self._next_seq
        row = (seq, *values)
        prev = self._head.row_hash
        payload = row_payload(table, row)
        digest = hash_payload(prev, payload)
        self._lines.append(format_entry(prev, digest, payload))
        stored = (*row, prev, digest)
        self._unlogged.append((table, stored))
        self._last_added, self._next_seq = seq, seq + 1
        self._head = ChainHead(table, values[0], seq, digest)
        return stored

    def pending_context(self, context_id: str) -> tuple[Any, ...] | None:
        """The stored row of a logged context SQLite may not have yet, else ``None`` (then
        SQLite has every logged context but those still pending here). A context SQLite has
        too may still be here: either copy is the same row."""
        return self._contexts.get(context_id)

    def _applied(self) -> int:
        """How far SQLite has got, read now under the applier's lock (and remembered)."""
        self._applied_seen = seen = self.applier.applied_seq
        return seen

    def _drop_applied_contexts(self) -> None:
        """Forget the pending contexts SQLite now has (on the loop's thread; the applier only
        moves ``applied_seq`` forward). Done once :data:`DROP_CONTEXTS_AT` are kept, so a run
        of pre-checks that nothing looks up keeps at most that many besides those the
        applier has not reached."""
        order, applied = self._context_order, self._applied()
        while order and order[0][0] <= applied:
            self._contexts.pop(order.popleft()[1], None)

    # -- acknowledging -------------------------------------------------------------------

    async def committed(self, *records: _HasSeq) -> None:
        """Return once everything added so far (or just ``records``) is durable.

        Every call made in one event-loop turn waits on the same write, run by one
        ``loop.call_soon`` callback. If that write fails, the error is raised here and the
        rows are gone: never acknowledge them. Without ``records``, call it right after
        ``append`` (no ``await`` in between), as the gateway's handlers do.

        Without ``fsync`` the rows are written at once: one ``write()`` costs less than
        waiting for the next loop turn, and only the SQLite insert, which is what batching
        pays for, is left for later. With ``fsync``, a wait longer than
        :data:`~.health.STALL_AFTER_S` raises :class:`~helpers.errors.StorageUnavailable`:
        not acknowledged, though the rows may still reach the log once the disk comes back.
        """
        durable = self._durable_head.seq
        # The remembered value is a lower bound: a fresh read, under the applier's lock, is
        # needed only when that bound says SQLite is too far behind.
        behind = durable - self._applied_seen > MAX_BACKLOG_ROWS
        if behind and durable - self._applied() > MAX_BACKLOG_ROWS:
            try:  # storage is behind: let it catch up before taking more
                await self.applied()
            except StorageUnavailable as error:
                if self._batch is None:  # else they chain on rows still being synced
                    self._drop_unlogged(error)  # a 503 stores nothing
                raise
        if self._lines and not self.fsync:
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
        if not self.fsync:
            await waiter
            return
        await asyncio.wait({waiter}, timeout=STALL_AFTER_S)
        if not waiter.done():
            waiter.cancel()
            raise self.health.stalled("log", STALL_AFTER_S)
        waiter.result()

    def flush(self, apply: bool = True) -> BaseException | None:
        """Log what is pending now and wake its waiters; with ``apply``, also wait until
        SQLite has every logged row. Returns the error that stopped it, if any."""
        error = self._finish_batch()
        if error is not None:
            return error  # still stuck: nothing more can be written after it
        waiters, self._waiters = self._waiters, []
        error = self._write_log()
        if apply and error is None:
            error = self._hand_over(wait=True)
        _settle(waiters, error)
        return error

    def close(self) -> BaseException | None:
        """Log and apply what is pending, stop the applier and close the log (removed when
        SQLite has all of it). Returns the error that kept rows in the log, if any."""
        error = self.flush()
        self.health.close()
        self.applier.close()
        self.log.close(remove=error is None)
        return error

    # -- SQLite catching up --------------------------------------------------------------

    def readable(self) -> None:
        """Before a read: everything acknowledged is in SQLite (raises if it cannot be)."""
        if self._unapplied or self.applier.applied_seq < self._durable_head.seq:
            error = self._hand_over(wait=True)
            if error is not None:
                raise error

    async def applied(self) -> None:
        """Return once every acknowledged row is in SQLite, without blocking the loop.

        What the gateway awaits before a read in another thread or process. Raises
        :class:`~helpers.errors.StorageUnavailable` at once while SQLite fails, and once it
        has finished nothing for :data:`~.health.STALL_AFTER_S`.
        """
        self._hand_over(wait=False)
        await self.applier.caught_up(self._durable_head.seq)

    def storage_health(self) -> StorageState:
        """The storage's health now (what ``/health`` reports): never blocks on a disk."""
        batch = self._batch
        if batch is not None and time.monotonic() - batch.started > STALL_AFTER_S:
            self.health.stalled("log", time.monotonic() - batch.started)
        stalled = self.applier.stalled_for()
        if stalled > STALL_AFTER_S:
            self.health.stalled("sqlite", stalled)
        return self.health.state(self._durable_head.seq - self.applier.applied_seq)

    @property
    def degraded(self) -> bool:
        """Whether some part of the storage is failing or stalled now (cheap: no I/O)."""
        batch = self._batch
        return (
            self.health.faulty
            or self.applier.stalled_for() > STALL_AFTER_S
            or (batch is not None and time.monotonic() - batch.started > STALL_AFTER_S)
        )

    # -- internals -----------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_loop = None
        if self.fsync:
            self._start_batch()
            return
        self.flush(apply=False)
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

    def _apply_in_background(self) -> None:
        if self._unapplied:  # else a read or an earlier callback got there first
            self._hand_over(wait=False)  # the applier logs its own failures

    def _hand_over(self, wait: bool) -> BaseException | None:
        """Hand the logged rows to the applier thread (on failure they stay queued there,
        and logged); ``wait`` blocks until it has committed them: reads and close need that,
        the background hand-over does not."""
        rows, self._unapplied = self._unapplied, []
        self._apply_scheduled = False
        self.applier.submit(rows)
        if not wait:
            return None
        try:
            self.applier.wait(self._durable_head.seq)
        except StorageUnavailable as exc:
            return exc
        return None

    def _start_batch(self) -> None:
        """With ``fsync``: write and sync what is pending on the log's thread, unless a batch
        is in flight already (its end starts the next one)."""
        if self._batch is not None or not self._lines:
            return
        self._reset_log_if_applied()
        lines, rows, upto = self._lines, self._unlogged, self._last_added
        self._lines, self._unlogged = [], []
        waiters, self._waiters = self._waiters, []
        done = self.log.append_soon(lines)
        batch = _Batch(upto, self._head, rows, waiters, time.monotonic(), done)
        self._batch = batch
        loop = asyncio.get_running_loop()

        def on_done(_: Future[None]) -> None:  # on the log's thread: hand over to the loop
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
            error = self.health.failed("log", exc)
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
            return self.health.stalled("log", time.monotonic() - batch.started)
        except OSError:
            pass  # settled below like any failed batch
        self._batch_done(batch, restart=False)
        return None

    def _write_log(self) -> BaseException | None:
        """Make the pending rows durable in the acknowledgement log (one write)."""
        if not self._lines:
            return None
        lines, rows, upto = self._lines, self._unlogged, self._last_added
        self._lines, self._unlogged = [], []
        self._reset_log_if_applied()
        try:
            self.log.append(lines)
        except OSError as exc:
            error = self.health.failed("log", exc)
            self._lose(upto, error)
            self._head = self._durable_head  # the chain continues from what is on disk
            return error
        self._decided = upto
        self._durable_head = self._head
        self._logged(rows)
        return None

    def _logged(self, rows: list[Row]) -> None:
        """``rows`` are durable in the log: acknowledged, and on their way to SQLite."""
        if self.health.faulty:
            self.health.cleared("log")
        self._commits += 1
        self._unapplied.extend(rows)
        if len(self._context_order) >= DROP_CONTEXTS_AT:
            self._drop_applied_contexts()
        for table, row in rows:
            if table == "contexts":
                self._contexts[row[1]] = row
                self._context_order.append((row[0], row[1]))

    def _reset_log_if_applied(self) -> None:
        # Only on the thread that appends, and only once SQLite has every logged row.
        if (
            self.log.size >= RESET_AT_BYTES
            and not self._unapplied
            and self.applier.applied_seq >= self._durable_head.seq
        ):
            try:
                self.log.reset()
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
            raise self.health.stalled("log", time.monotonic() - batch.started)
        failure = self.applier.failure
        if (
            failure is not None
            and self._durable_head.seq - self.applier.applied_seq > MAX_BACKLOG_ROWS
        ):
            raise StorageUnavailable(failure)


def _settle(waiters: list[Waiter], error: BaseException | None) -> None:
    for _, waiter in waiters:
        if waiter.done():  # its task was cancelled meanwhile
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
