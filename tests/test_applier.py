"""The applier thread: SQLite failures retried with back-off, nothing applied twice, and
waits for it that give up at once on a failure and soon after a stall."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from helpers.errors import StorageUnavailable
from helpers.gateway.store import AuditStore
from helpers.gateway.store.applier import ROWS_PER_STATEMENT, Applier
from helpers.gateway.store.health import STALL_AFTER_S, StorageHealth
from helpers.gateway.store.schema import connect

SECRET = b"0123456789abcdef0123456789abcdef"
#: Generous for a shared machine; a hang still fails.
BOUND_S = STALL_AFTER_S + 2.0


def _rows(n: int) -> list[tuple[str, tuple[Any, ...]]]:
    """``n`` chained context rows, made by a store that is then dropped unapplied."""
    with AuditStore.open(":memory:", secret=SECRET) as store:
        rows = [store.append_context("c", "u", f"q{i}", approved=True).row for i in range(n)]
    return [("contexts", row) for row in rows]


def _count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        n = conn.execute("SELECT COUNT(*) FROM contexts").fetchone()[0]
    conn.close()
    return int(n)


def _caught_up(applier: Applier, seq: int) -> None:
    """Wait for the applier to have ``seq`` in SQLite (it retries by itself)."""
    deadline = time.monotonic() + 10
    while applier.applied_seq < seq:
        assert time.monotonic() < deadline, applier
        time.sleep(0.01)


class _Flaky:
    """A connection whose commits fail as told; ``landing`` ones commit first, then fail."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.failures: list[str] = []

    def commit(self) -> None:
        if self.failures and self.failures[0] == "landing":
            self.conn.commit()
        if self.failures:
            self.failures.pop(0)
            error = sqlite3.OperationalError("disk I/O error")
            error.sqlite_errorcode = sqlite3.SQLITE_IOERR_WRITE
            raise error
        self.conn.commit()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "a.db"
    connect(str(path), fsync=False).close()
    return path


def test_a_commit_that_failed_but_landed_is_not_applied_twice(db: Path) -> None:
    flaky = _Flaky(connect(str(db), fsync=False, check_same_thread=False))
    flaky.failures = ["landing", "plain"]
    health = StorageHealth(now=lambda: "t")
    applier = Applier(flaky, 0, health)  # type: ignore[arg-type]
    rows = _rows(5)
    applier.submit(rows)
    _caught_up(applier, 5)  # retried with back-off until it went in
    applier.close()
    assert _count(db) == 5 and applier.failure is None
    assert health.state().healthy and health.state().errors == (("sqlite", "io_error", 2),)


def test_waits_give_up_at_once_while_sqlite_fails_and_resume_after(db: Path) -> None:
    blocker = sqlite3.connect(db, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    writer = connect(str(db), fsync=False, check_same_thread=False)
    writer.execute("PRAGMA busy_timeout=0")  # a locked database fails at once, not stalls
    applier = Applier(writer, 0, StorageHealth(now=lambda: "t"))
    applier.submit(_rows(3))
    deadline = time.monotonic() + 10
    while applier.failure is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match="database locked"):
        applier.wait(3)
    with pytest.raises(StorageUnavailable, match="database locked"):
        asyncio.run(applier.caught_up(3))
    assert time.monotonic() - started < 1.0  # known to fail: no waiting
    blocker.rollback()
    blocker.close()
    _caught_up(applier, 3)  # its next retry goes in: no restart
    asyncio.run(asyncio.wait_for(applier.caught_up(3), 1))
    applier.close()
    assert _count(db) == 3


def test_a_stalled_statement_is_given_up_on_after_the_stall_bound(db: Path) -> None:
    release = threading.Event()
    writer = connect(str(db), fsync=False, check_same_thread=False)
    # Every SQLite step of the applier's connection waits until released: a stalled disk.
    writer.set_progress_handler(lambda: release.wait(30) and 0, 1)
    health = StorageHealth(now=lambda: "t")
    applier = Applier(writer, 0, health)
    applier.submit(_rows(2))
    time.sleep(0.1)
    for wait in (lambda: applier.wait(2), lambda: asyncio.run(applier.caught_up(2))):
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="stalled"):
            wait()
        assert time.monotonic() - started < BOUND_S
    assert "stalled" in str(health.state().reason)
    release.set()
    _caught_up(applier, 2)
    assert health.state().healthy  # the next finished batch ends the stall
    applier.close()
    assert _count(db) == 2


def test_a_batch_larger_than_one_statement_lands_row_for_row_in_both_tables(db: Path) -> None:
    """Rows go in as one executemany per table and slice: interleaved tables and more rows
    than one statement takes must all land, each exactly as logged."""
    n = 2 * ROWS_PER_STATEMENT + 7
    with AuditStore.open(":memory:", secret=SECRET) as store:
        rows: list[tuple[str, tuple[Any, ...]]] = []
        for i in range(n):
            ctx = store.append_context("c", "u", f"q{i}", approved=True)
            rows.append(("contexts", ctx.row))
            audit = store.append_audit(ctx.record_id, "c", "openai", "m", prompt_tokens=i)
            rows.append(("audits", audit.row))
    writer = connect(str(db), fsync=False, check_same_thread=False)
    applier = Applier(writer, 0, StorageHealth(now=lambda: "t"))
    applier.submit(rows)
    _caught_up(applier, 2 * n)
    applier.close()
    with sqlite3.connect(db) as conn:
        stored = {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY seq").fetchall()
            for table in ("contexts", "audits")
        }
    conn.close()
    for table in ("contexts", "audits"):
        assert stored[table] == [row for name, row in rows if name == table]
