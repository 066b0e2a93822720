"""The gateway's reader: reads of the trail run in another process, never on the event loop.

Listing records, verifying the chain and exporting read thousands of rows and hash each one
in Python; on the gateway's event loop a 200,000-row verification held every pre-check for
seconds. Here they run in a separate process that opens the database **read-only** (WAL, so
the gateway's applier thread keeps writing meanwhile), at the lowest CPU priority there is:
``SCHED_IDLE`` on Linux, where it runs only on a CPU nothing else wants and a waking
pre-check takes the CPU back at once (``nice`` alone still gives it a share, and a woken
task may wait for it); :data:`READER_NICE` elsewhere.

* :class:`Reader` keeps one worker process (started by the first read, which waits for it:
  starting Python and importing the package takes a second or more on a busy machine, a
  cost a gateway nobody reads from never pays) and runs named operations in it:
  ``records`` (one page of the joined trail) and ``verify`` (one segment of the chain,
  :func:`~.store.verify.verify_segment`).
* :func:`export_lines` streams the whole joined trail as JSON Lines from a process of its
  own (``python -m helpers.gateway.reader <db> <filters>``), one query and one snapshot.

A gateway on ``":memory:"`` (tests, scripts) has no file another process could open; its
reads run in process, as they always did.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import multiprocessing
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

import orjson

from .store import AuditStore
from .store.query import RecordFilter, RecordKey, iter_records, list_records, record_key
from .store.schema import CHAIN_TABLES
from .store.verify import verify_segment

__all__ = ["READER_NICE", "Reader", "RecordsPage", "export_lines"]

#: How much the reader process lowers its CPU priority where ``SCHED_IDLE`` is missing.
READER_NICE = 10
#: Export lines written (and sent on) per chunk.
EXPORT_CHUNK_ROWS = 500

_conn: sqlite3.Connection | None = None  # the worker process's read-only connection


class RecordsPage(NamedTuple):
    """One page of ``/api/audit/records`` as the reader hands it over: the rows as a JSON
    array, how many, and the key of the last one (where the next page starts)."""

    json: bytes
    count: int
    last: RecordKey | None


def _verify(conn: sqlite3.Connection, cursor: Any, limit: int, head: Any) -> Any:
    return verify_segment(conn, CHAIN_TABLES, cursor, limit, head)


def _records(conn: sqlite3.Connection, where: RecordFilter, page: dict[str, Any]) -> RecordsPage:
    # Encoded here, so the gateway's event loop only copies the page's bytes into its reply.
    rows = list_records(conn, where, **page)
    return RecordsPage(orjson.dumps(rows), len(rows), record_key(rows[-1]) if rows else None)


_OPERATIONS: dict[str, Callable[..., Any]] = {"records": _records, "verify": _verify}


def _open_read_only(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA query_only=ON")
    return conn


def _die_with_parent(parent: int) -> None:
    """Go when the gateway goes, even by ``kill -9``: an orphaned reader would hold its
    pipes and its share of the CPU (Linux ``PR_SET_PDEATHSIG``; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(0)


def _lower_priority() -> None:
    """Step aside for the gateway: ``SCHED_IDLE`` where the OS has it, else ``nice``."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or refused
        os.nice(READER_NICE)


def _start_worker(path: str, parent: int) -> None:
    global _conn
    _die_with_parent(parent)
    _lower_priority()
    _conn = _open_read_only(path)


def _ready() -> tuple[int, str]:
    if os.sched_getscheduler(0) == getattr(os, "SCHED_IDLE", -1):
        return os.getpid(), "SCHED_IDLE"
    return os.getpid(), f"nice {os.getpriority(os.PRIO_PROCESS, 0)}"


def _run(name: str, args: tuple[Any, ...]) -> Any:
    assert _conn is not None, "the reader process was not initialised"
    return _OPERATIONS[name](_conn, *args)


class Reader:
    """Runs read operations against ``store``'s file in one worker process.

    >>> reader = Reader(store)                      # doctest: +SKIP
    >>> rows = await reader.call("records", RecordFilter(), {"limit": 10})  # doctest: +SKIP
    """

    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self.in_process = store.path == ":memory:"
        self._pool: ProcessPoolExecutor | None = None
        self._started: asyncio.Future[tuple[int, str]] | None = None

    def __repr__(self) -> str:
        where = "in process" if self.in_process else f"worker={'up' if self._pool else 'idle'}"
        return f"<Reader {self.store.path} {where}>"

    def start(self) -> None:
        """Start the worker process in the background (on the running loop); idempotent."""
        if self.in_process or self._pool is not None:
            return
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self.store.path, os.getpid()),
        )
        self._started = asyncio.get_running_loop().run_in_executor(self._pool, _ready)
        self._started.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def ready(self) -> None:
        """Return once the worker process is up (at once when reading in process)."""
        self.start()
        if self._started is not None:
            await self._guard(self._pool, asyncio.shield(self._started))

    async def call(self, name: str, *args: Any) -> Any:
        """Run operation ``name`` and return its result (raises what it raised)."""
        if self.in_process:
            return _OPERATIONS[name](self.store.connection, *args)
        await self.ready()
        pool = self._pool
        assert pool is not None
        future = asyncio.get_running_loop().run_in_executor(pool, _run, name, args)
        return await self._guard(pool, future)

    async def _guard(self, pool: ProcessPoolExecutor | None, awaitable: Any) -> Any:
        try:
            return await awaitable
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = self._started = None  # the next read starts a fresh worker
            raise RuntimeError("the gateway's reader process died; retry the read") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _chunks(conn: sqlite3.Connection, where: RecordFilter) -> Iterator[bytes]:
    """The joined trail matching ``where`` as JSON Lines, :data:`EXPORT_CHUNK_ROWS` a chunk."""
    rows = iter_records(conn, where)
    while chunk := list(itertools.islice(rows, EXPORT_CHUNK_ROWS)):
        yield b"".join(orjson.dumps(r) + b"\n" for r in chunk)


async def export_lines(store: AuditStore, where: RecordFilter) -> AsyncIterator[bytes]:
    """The joined trail matching ``where`` as JSON Lines, in chunks, oldest first.

    A file store is read by a process of its own, so the loop only forwards bytes; it is
    stopped if the consumer stops early (a client that disconnects).
    """
    if store.path == ":memory:":
        for chunk in _chunks(store.connection, where):
            yield chunk
            await asyncio.sleep(0)
        return
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "helpers.gateway.reader",
        store.path,
        orjson.dumps(where.to_json()).decode(),
        str(os.getpid()),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        while chunk := await proc.stdout.read(1 << 16):
            yield chunk
        error = (await proc.stderr.read()).decode(errors="replace").strip()
        if await proc.wait() != 0:
            raise RuntimeError(f"export failed: {error.splitlines()[-1] if error else '?'}")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _export_main(argv: list[str]) -> int:
    """``python -m helpers.gateway.reader <db> <filters as JSON> <gateway pid>``: JSON Lines
    on stdout."""
    path, where, parent = argv[0], RecordFilter(**orjson.loads(argv[1])), int(argv[2])
    _die_with_parent(parent)
    _lower_priority()
    conn = _open_read_only(path)
    out = sys.stdout.buffer
    for chunk in _chunks(conn, where):
        out.write(chunk)
    out.flush()
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(_export_main(sys.argv[1:]))
