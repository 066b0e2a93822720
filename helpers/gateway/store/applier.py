"""Off the event loop: copying acknowledged rows into SQLite, and the one-writer lock.

A store acknowledges a row once it is in the acknowledgement log
(:mod:`.acklog`). :class:`Applier` then copies the logged rows into SQLite on its own thread
with its own connection, one transaction per batch, so a request never waits for SQLite
and a slow disk or a long read never delays a reply. Rows stay in the log until SQLite has
them; a crash in between is repaired by the replay when the store is opened again.

When SQLite fails (disk full, read-only, locked past the busy timeout, an I/O error) the
batch is rolled back and tried again with back-off (:func:`.health.backoff`) until it goes
in, with no restart; before a retry the rows SQLite already has are skipped, so a commit
that reported an error but landed is not applied twice. Whoever waits for the applier (a
read, a commit held back by the backlog bound) gets
:class:`~helpers.errors.StorageUnavailable` at once while it fails, or once no statement has
finished for :data:`.health.STALL_AFTER_S`, instead of waiting on.

The store is the file's only writer while it runs (:func:`.acklog.hold_lock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from typing import Any

from helpers.errors import StorageUnavailable

from .health import STALL_AFTER_S, StorageHealth, backoff
from .schema import INSERT_SQL, read_head

__all__ = ["APPLY_WAIT_S", "ROWS_PER_STATEMENT", "Applier"]

log = logging.getLogger("helpers.gateway.store")
#: The longest a wait for the applier lasts while it keeps making progress.
APPLY_WAIT_S = 30.0
#: How long closing waits for the thread to finish a last batch (a stalled disk may never).
CLOSE_WAIT_S = 5.0
#: A waiter re-checks for a stall this often, so it gives up soon after STALL_AFTER_S.
_CHECK_EVERY_S = STALL_AFTER_S / 4
#: Rows inserted by one ``executemany``: a statement this size finishes well inside
#: STALL_AFTER_S even on a busy machine, so a healthy copy never looks stalled.
ROWS_PER_STATEMENT = 1000

Row = tuple[str, tuple[Any, ...]]
_Watcher = tuple[int, asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class Applier:
    """A thread that inserts logged rows into SQLite in batches, in the order given.

    ``submit`` hands rows over (from the event loop); ``wait`` (blocking) and ``caught_up``
    (for the event loop) wait until every row up to a seq is committed. The connection is
    the thread's alone once started. What the thread tells the loop (:attr:`applied_seq`,
    :attr:`failure`) it writes under its lock, and the loop reads it under the same lock.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        applied_seq: int,
        health: StorageHealth,
    ) -> None:
        self._conn = conn
        self._health = health
        self._cond = threading.Condition()
        self._pending: list[Row] = []
        self._closing = False
        self._watchers: list[_Watcher] = []
        #: After a failed batch: look up what SQLite has before inserting again.
        self._check_head = False
        self._applied_seq = applied_seq
        self._failure: str | None = None
        #: ``time.monotonic()`` when the current batch last finished a statement; ``None``
        #: between batches.
        self.progress_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="audit-apply", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        state = f" failing: {self.failure}" if self.failure else ""
        return f"<Applier applied_seq={self.applied_seq} pending={len(self._pending)}{state}>"

    @property
    def applied_seq(self) -> int:
        """The highest seq committed to SQLite so far (rows arrive in seq order)."""
        with self._cond:
            return self._applied_seq

    @property
    def failure(self) -> str | None:
        """Why the last batch failed, until a later one succeeds."""
        with self._cond:
            return self._failure

    def submit(self, rows: list[Row]) -> None:
        if not rows:
            return
        with self._cond:
            self._pending.extend(rows)
            self._cond.notify_all()

    def stalled_for(self) -> float:
        """Seconds the current batch has gone without finishing a statement (0 when idle)."""
        at = self.progress_at
        return 0.0 if at is None else time.monotonic() - at

    def check(self) -> None:
        """Raise :class:`StorageUnavailable` when SQLite is failing, stalled or closed."""
        if self.failure is not None:
            raise StorageUnavailable(self.failure)
        stalled = self.stalled_for()
        if stalled > STALL_AFTER_S:
            raise self._health.stalled("sqlite", stalled)
        if self._closing and not self._thread.is_alive():
            raise StorageUnavailable("copy into SQLite: the store is closed")

    def wait(self, seq: int, timeout: float = APPLY_WAIT_S) -> None:
        """Block until rows up to ``seq`` are in SQLite, as long as the applier makes progress
        (at most ``timeout``); raise :class:`StorageUnavailable` once it fails or stalls."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.applied_seq < seq:
                self.check()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StorageUnavailable(
                        f"copy into SQLite: {seq - self.applied_seq} acknowledged rows "
                        f"still to copy after {timeout:g} s"
                    )
                self._cond.wait(min(left, _CHECK_EVERY_S))

    async def caught_up(self, seq: int) -> None:
        """:meth:`wait` for the event loop: the same bounds, without blocking the loop."""
        if self.applied_seq >= seq:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + APPLY_WAIT_S
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if len(self._watchers) > 1024:  # waits given up on a stalled disk
                self._watchers = [w for w in self._watchers if not w[2].done()]
            self._watchers.append((seq, loop, future))
            self._settle_watchers()
        try:
            while not future.done():
                self.check()
                if loop.time() > deadline:
                    raise StorageUnavailable(
                        f"copy into SQLite: {seq - self.applied_seq} acknowledged rows "
                        f"still to copy after {APPLY_WAIT_S:g} s"
                    )
                await asyncio.wait({future}, timeout=_CHECK_EVERY_S)
            future.result()
        finally:
            future.cancel()  # a no-op once done; otherwise the thread drops it

    def close(self, drain: bool = True) -> None:
        """Stop the thread: with ``drain``, after it has tried once more to apply every
        pending row; without, at once (what a crash does: the rows stay in the log only)."""
        with self._cond:
            if not drain:
                self._pending.clear()
            self._closing = True
            self._cond.notify_all()
        self._thread.join(CLOSE_WAIT_S)
        with self._cond:
            self._settle_watchers()
        if self._thread.is_alive():  # stuck in a stalled statement: leave it, it is a daemon
            log.error(
                "closing the audit store: the copy into SQLite has not finished a "
                "statement for %.1f s; its rows stay in the acknowledgement log and are "
                "replayed at the next start",
                self.stalled_for(),
            )
            return
        self._conn.close()

    # -- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        attempt = 0
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return  # closing, and everything is in SQLite
                rows, self._pending = self._pending, []
                self.progress_at = time.monotonic()
            error = self._insert(rows)
            reason = None if error is None else self._health.failed("sqlite", error).reason
            with self._cond:
                self.progress_at = None
                if error is None:
                    self._applied_seq, self._failure = rows[-1][1][0], None
                else:
                    self._failure = reason
                    self._pending[:0] = rows  # still safe in the log; try again
                self._settle_watchers()
                self._cond.notify_all()
            if error is None:
                attempt = 0
                self._health.cleared("sqlite")
                continue
            with self._cond:  # back off; only closing cuts it short, not new rows
                if self._cond.wait_for(lambda: self._closing, backoff(attempt)):
                    return  # closing: the rows stay in the log, replayed at the next open
            attempt += 1

    def _insert(self, rows: list[Row]) -> sqlite3.Error | None:
        conn = self._conn
        try:
            if self._check_head:  # a commit that reported an error may still have landed
                done = read_head(conn).seq
                rows = [row for row in rows if row[1][0] > done]
            conn.execute("BEGIN IMMEDIATE")
            self.progress_at = time.monotonic()
            for sql, values in _statements(rows):
                conn.executemany(sql, values)
                self.progress_at = time.monotonic()
            conn.commit()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.rollback()
            self._check_head = True
            return exc
        self._check_head = False
        return None

    def _settle_watchers(self) -> None:
        """Under the condition: resolve the event-loop waits this state decides."""
        keep = []
        for watcher in self._watchers:
            seq, loop, future = watcher
            if future.done():
                continue
            if self.applied_seq >= seq:
                outcome: StorageUnavailable | None = None
            elif self.failure is not None:
                outcome = StorageUnavailable(self.failure)
            elif self._closing and not self._pending:
                outcome = StorageUnavailable("copy into SQLite: the store is closed")
            else:
                keep.append(watcher)
                continue
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, future, outcome)
        self._watchers = keep


def _statements(rows: list[Row]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The batch as ``executemany`` calls: each table's rows together, at most
    :data:`ROWS_PER_STATEMENT` a call. Order across tables does not matter inside one
    transaction (``seq`` is each row's key), and a row per ``execute`` would run Python per
    row on a thread that shares the GIL with the event loop."""
    by_table: dict[str, list[tuple[Any, ...]]] = {}
    for table, row in rows:
        by_table.setdefault(table, []).append(row)
    return [
        (INSERT_SQL[table], values[start : start + ROWS_PER_STATEMENT])
        for table, values in by_table.items()
        for start in range(0, len(values), ROWS_PER_STATEMENT)
    ]


def _settle(future: asyncio.Future[None], outcome: StorageUnavailable | None) -> None:
    if future.done():
        return
    if outcome is None:
        future.set_result(None)
    else:
        future.set_exception(outcome)
