"""Off the event loop: copying acknowledged rows into SQLite, and the one-writer lock.

An exclusive store (the gateway's) acknowledges a row once it is in the acknowledgement log
(:mod:`.acklog`). :class:`Applier` then copies the logged rows into SQLite on its own thread
with its own connection, one transaction per batch, so a request never waits for SQLite
and a slow disk or a long read never delays a reply. Rows stay in the log until SQLite has
them; a crash in between is repaired by the replay when the store is opened again.

The store is the file's only writer while it runs (:func:`.acklog.hold_lock`).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from .schema import _INSERT

__all__ = ["Applier"]

log = logging.getLogger("helpers.gateway.store")
#: After a failed SQLite write, wait this long before trying the same rows again.
RETRY_AFTER_S = 0.1

Row = tuple[str, tuple[Any, ...]]


class Applier:
    """A thread that inserts logged rows into SQLite in batches, in the order given.

    ``submit`` hands rows over (from the event loop); ``wait`` blocks until every row up to a
    seq is committed. ``on_applied(rows)`` runs on the thread after each commit. The
    connection is the thread's alone once started.
    """

    def __init__(
        self, conn: sqlite3.Connection, applied_seq: int, on_applied: Callable[[list[Row]], None]
    ) -> None:
        self._conn = conn
        self._on_applied = on_applied
        self._cond = threading.Condition()
        self._pending: list[Row] = []
        self._closing = False
        #: The highest seq committed to SQLite so far (rows arrive in seq order).
        self.applied_seq = applied_seq
        #: The last SQLite error, until a later batch succeeds.
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="audit-apply", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"<Applier applied_seq={self.applied_seq} pending={len(self._pending)}>"

    def submit(self, rows: list[Row]) -> None:
        if not rows:
            return
        with self._cond:
            self._pending.extend(rows)
            self._cond.notify_all()

    def wait(self, seq: int, timeout: float | None = None) -> None:
        """Block until rows up to ``seq`` are in SQLite; raise the SQLite error (or
        :class:`TimeoutError`) if they are not by ``timeout``."""
        with self._cond:
            self._cond.wait_for(lambda: self.applied_seq >= seq or self._closing, timeout)
            if self.applied_seq >= seq:
                return
            error = self.error
        if error is not None:
            raise error
        raise TimeoutError(f"rows up to seq {seq} were not copied into SQLite in time")

    def close(self, drain: bool = True) -> None:
        """Stop the thread: with ``drain``, after it has tried once more to apply every
        pending row; without, at once (what a crash does: the rows stay in the log only)."""
        with self._cond:
            if not drain:
                self._pending.clear()
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                rows, self._pending = self._pending, []
                closing = self._closing
            if rows:
                error = self._insert(rows)
                with self._cond:
                    if error is None:
                        self.applied_seq, self.error = rows[-1][1][0], None
                    else:
                        self.error = error
                        self._pending[:0] = rows  # still safe in the log; try again
                    self._cond.notify_all()
                if error is None:
                    self._on_applied(rows)
                else:
                    log.error("cannot copy logged rows into SQLite (kept in the log): %s", error)
                    if closing:
                        return
                    with self._cond:
                        self._cond.wait(RETRY_AFTER_S)
                    continue
            if closing:
                return

    def _insert(self, rows: list[Row]) -> BaseException | None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for table, row in rows:
                conn.execute(_INSERT[table], row)
            conn.commit()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.rollback()
            return exc
        return None
