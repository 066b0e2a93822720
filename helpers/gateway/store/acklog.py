"""The acknowledgement log: how the gateway makes a 200 durable without waiting on SQLite.

A store (the gateway's, or a script's) acknowledges a pre-check or an audit once
the row is in ``<db>.acklog``: an append-only text file, one line per row. Each row is
written with one ``os.write`` as it is acknowledged; with ``--fsync`` the rows of one
event-loop turn share one write and one ``fdatasync``. The same rows go into SQLite in one
transaction shortly after (:data:`helpers.gateway.store.APPLY_AFTER_S`), off the request path, and
the log is emptied once it has grown past :data:`RESET_AT_BYTES` with all of it in SQLite.
A ``kill -9`` in between leaves rows in the log only; opening the store replays them,
checking each against the hash chain, before anything else happens. With ``--fsync`` the
write and its ``fdatasync`` run on a thread of the log's own (:meth:`AckLog.append_soon`), so
a disk that stalls holds up that thread, never the event loop.

Each line is ``<prev_hash> <row_hash> <payload>``, where ``payload`` is the row's canonical
JSON (:func:`.chain.row_payload`), so the file holds keyed hashes, never raw queries
or user tokens, and every line can be checked on its own. A last line without its newline
is a write cut short by a crash; it was never acknowledged and is ignored.

:func:`hold_lock` keeps writers apart: an open store holds ``<db>.lock`` exclusively, and
:func:`.schema.replay_log` holds it shared. So nothing else writes or replays the log under
a running gateway, and a gateway does not start on a file a script has open. Read-only
readers (the gateway's reader process) take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.errors import ConfigError

from .chain import hash_payload

__all__ = ["AckLog", "LogEntry", "close_and_unlock", "format_entry", "hold_lock", "read_entries"]

#: Empty the log (once every row in it is in SQLite) when it grows past this many bytes.
RESET_AT_BYTES = 1 << 20
#: What the recovery probe writes beside the log: more than most batches of rows need.
PROBE_BYTES = 64 << 10


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One logged row: the table, its column values (``seq`` first) and its two hashes."""

    line: int
    table: str
    values: tuple[Any, ...]
    prev_hash: str
    row_hash: str

    @property
    def seq(self) -> int:
        return int(self.values[0])


def format_entry(prev_hash: str, digest: str, payload: str) -> str:
    """One log line for a row serialised by :func:`helpers.gateway.store.chain.row_payload`."""
    return f"{prev_hash} {digest} {payload}\n"


def read_entries(path: Path, tables: frozenset[str]) -> list[LogEntry]:
    """Every complete line of the log at ``path`` (none if it does not exist).

    A line that is damaged or does not match its own hash raises :class:`ConfigError`
    naming the file and line: replaying it would put a row in the chain that was never
    written by the gateway.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")[:-1]  # the part after the last newline never completed
    entries = []
    for number, raw in enumerate(lines, start=1):
        where = f"{path} line {number}"
        try:
            prev, digest, payload = raw.decode("utf-8").split(" ", 2)
            table, *values = json.loads(payload)
        except (UnicodeDecodeError, ValueError):
            raise ConfigError(f"{where}: not a log entry; the file is damaged") from None
        if table not in tables or not values or type(values[0]) is not int:
            raise ConfigError(f"{where}: not a row of this store")
        if hash_payload(prev, payload) != digest:
            raise ConfigError(f"{where}: does not match its row hash; it was changed on disk")
        entries.append(LogEntry(number, table, tuple(values), prev, digest))
    return entries


class AckLog:
    """The open log of one store: append whole lines, empty it once SQLite has them."""

    def __init__(self, path: Path, fsync: bool) -> None:
        self.path = path
        self.fsync = fsync
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = os.fstat(self._fd).st_size
        #: A failed write whose remains could not be cut off yet (see :meth:`append`).
        self._torn = False
        self._writer: ThreadPoolExecutor | None = None
        self._last: Future[None] | None = None

    def append(self, lines: list[str]) -> None:
        """Write ``lines`` (each ending in a newline); durable against ``kill -9`` on return,
        and against power loss too when the log was opened with ``fsync``.

        Raises ``OSError`` with nothing of ``lines`` left in the file.
        """
        data = ("".join(lines) if len(lines) > 1 else lines[0]).encode("utf-8")
        if self._torn:  # the remains of an earlier failed write must go before anything else
            os.ftruncate(self._fd, self.size)
            self._torn = False
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # a regular file takes it all at once; finish a short one
                written += os.write(self._fd, data[written:])
            if self.fsync:
                os.fdatasync(self._fd)
        except OSError:
            # Nothing of a failed write may stay: the next line would be glued to a torn one.
            try:
                os.ftruncate(self._fd, self.size)
            except OSError:
                self._torn = True
            raise
        self.size += len(data)

    def append_soon(self, lines: list[str]) -> Future[None]:
        """:meth:`append` on the log's own thread, in order. The caller keeps one call in
        flight at a time and touches the log in no other way meanwhile."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="acklog-fsync")
        self._last = self._writer.submit(self.append, lines)
        return self._last

    def probe(self) -> None:
        """Raise ``OSError`` unless a write beside the log (and its ``fdatasync`` with
        ``fsync``) works now: how a failing log is found working again with no request."""
        path = self.path.with_name(self.path.name + ".probe")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            data = bytes(PROBE_BYTES)
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            if self.fsync:
                os.fdatasync(fd)
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)

    def reset(self) -> None:
        """Empty the log. Only call once every row in it is committed to SQLite."""
        os.ftruncate(self._fd, 0)
        self.size = 0

    def close(self, remove: bool) -> None:
        """Close the file; ``remove`` deletes it (everything in it is in SQLite)."""
        if self._writer is not None:
            self._writer.shutdown(wait=False)
            if self._last is not None and not self._last.done():
                return  # stuck on a stalled disk: its descriptor stays open for it
        os.close(self._fd)
        if remove:
            self.path.unlink(missing_ok=True)


def hold_lock(path: str, exclusive: bool = True) -> int:
    """Open and lock ``<path>.lock``; returns the descriptor (closing it releases the lock).

    A store holds it exclusively; :func:`.schema.replay_log` shared. Raises
    :class:`ConfigError` when the lock is taken: by another open store (a running gateway's,
    or a script's), or by a replay.
    """
    lock_path = f"{path}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        if exclusive:
            raise ConfigError(
                f"{path} is open in another store (it holds {lock_path}); a store must be "
                "the file's only writer: close the other one (or stop the gateway that has "
                "it open; read its trail through GET /api/audit/records), or use another file"
            ) from None
        raise ConfigError(
            f"{path} belongs to a running gateway (it holds {lock_path}); read the trail "
            "through GET /api/audit/records, or stop the gateway first"
        ) from None
    return fd


def close_and_unlock(conn: sqlite3.Connection | None, lock_fd: int | None) -> None:
    """Close the connection, then release the lock :func:`hold_lock` took (in that order)."""
    try:
        if conn is not None:
            conn.close()
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
