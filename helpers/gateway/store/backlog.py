"""Acknowledged rows on their way into SQLite: the :class:`~.applier.Applier`'s side of
:class:`~helpers.gateway.store.AuditStore`.

An exclusive store acknowledges a row once it is in the acknowledgement log
(:mod:`.commits`); SQLite gets it :data:`APPLY_AFTER_S` later, with the rows acknowledged
meanwhile, in one transaction on the applier's own thread and connection, off the event
loop. A read first waits until SQLite has every acknowledged row: blocking for a script
(``_readable``), without blocking the loop for the gateway (:meth:`Backlog.applied`). Either
wait gives up with :class:`~helpers.errors.StorageUnavailable` at once while SQLite fails,
or once the applier has finished nothing for :data:`~.health.STALL_AFTER_S`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from helpers.errors import StorageUnavailable

from .acklog import AckLog
from .applier import Applier
from .chain import ChainHead
from .health import StorageHealth

__all__ = ["APPLY_AFTER_S", "APPLY_AT_ROWS", "Backlog"]

#: With an acknowledgement log, logged rows go into SQLite this long after they were
#: acknowledged, in one transaction, or at once when this many are waiting.
APPLY_AFTER_S = 0.02
APPLY_AT_ROWS = 1000


class Backlog:
    """Handing logged rows to the applier and waiting for it, mixed into the store."""

    fsync: bool
    _log: AckLog | None
    _applier: Applier | None
    _health: StorageHealth
    _head: ChainHead
    _durable_head: ChainHead
    _unapplied: list[tuple[str, tuple[Any, ...]]]
    _unapplied_contexts: dict[str, tuple[Any, ...]]
    _apply_scheduled: bool

    def _start_log(self, log_path: Path, writer: sqlite3.Connection) -> None:
        """Acknowledge through the log at ``log_path``; ``writer`` becomes the applier's."""
        self._log = AckLog(log_path, self.fsync)
        self._health.add_probe("log", self._log.probe)
        self._applier = Applier(writer, self._head.seq, self._applied_contexts, self._health)

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
