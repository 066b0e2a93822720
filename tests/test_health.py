"""Storage health: faults classified, counted, logged once per change, and recovered from."""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time

import pytest

from helpers.errors import StorageUnavailable
from helpers.gateway.store import health as health_module
from helpers.gateway.store.health import StorageHealth, backoff, classify

NOW = "2026-01-15T12:00:00.000000Z"


def _sqlite_error(*statements: str) -> sqlite3.Error:
    conn = sqlite3.connect(":memory:")
    try:
        for sql in statements:
            conn.execute(sql)
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError(f"{statements!r} did not fail")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "disk_full"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk_full"),
        (OSError(errno.EROFS, "Read-only file system"), "read_only"),
        (OSError(errno.EACCES, "Permission denied"), "read_only"),
        (OSError(errno.EIO, "Input/output error"), "io_error"),
        (OSError(errno.EBADF, "Bad file descriptor"), "other"),
        (
            _sqlite_error("CREATE TABLE t (x)", "PRAGMA query_only=ON", "INSERT INTO t VALUES (1)"),
            "read_only",
        ),
        (_sqlite_error("SELECT * FROM missing"), "other"),
        (ValueError("odd"), "other"),
    ],
)
def test_classify_names_the_kind_and_keeps_the_text(error: BaseException, kind: str) -> None:
    assert classify(error) == (kind, str(error))


def test_sqlite_busy_is_locked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "x.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(db, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as info:
        other.execute("BEGIN IMMEDIATE")
    holder.close()
    other.close()
    assert classify(info.value)[0] == "locked"


def test_backoff_doubles_from_50_ms_up_to_1_s() -> None:
    assert [backoff(n) for n in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff(10_000) == 1.0


def test_one_log_line_per_change_not_per_error(caplog: pytest.LogCaptureFixture) -> None:
    health = StorageHealth(now=lambda: NOW)
    caplog.set_level(logging.WARNING, logger="helpers.gateway.store")
    full = OSError(errno.ENOSPC, "No space left on device")
    errors = [health.failed("log", full) for _ in range(100)]
    health.failed("log", OSError(errno.EIO, "Input/output error"))  # another kind: one line
    health.cleared("log")
    health.cleared("log")  # healthy already: nothing to say
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert lines[0].startswith("storage degraded: acknowledgement log: disk full")
    assert lines[1].startswith("storage still degraded, now: acknowledgement log: I/O error")
    assert lines[2].startswith("storage recovered: the acknowledgement log works again")
    assert "101 log error(s)" in lines[2]
    assert all(isinstance(e, StorageUnavailable) and e.__cause__ is full for e in errors)
    assert errors[0].retry_after_s == 1
    assert errors[0].reason == "acknowledgement log: disk full ([Errno 28] No space left on device)"


def test_state_reports_faults_counts_and_since() -> None:
    health = StorageHealth(now=lambda: NOW)
    assert health.state().healthy and not health.faulty
    health.failed("sqlite", OSError(errno.EIO, "Input/output error"))
    health.stalled("log", 1.5)
    health.stalled("log", 2.5)  # the same stall: counted once
    state = health.state(backlog_rows=7)
    assert not state.healthy and health.faulty
    assert state.reason == (
        "acknowledgement log: stalled (nothing finished for 2.5 s); "
        "copy into SQLite: I/O error ([Errno 5] Input/output error)"
    )
    assert state.since == NOW and state.backlog_rows == 7
    assert state.errors == (("log", "stalled", 1), ("sqlite", "io_error", 1))
    health.stalled("sqlite", 9.0)  # a failing part stalling on its retry keeps its cause
    assert "copy into SQLite: I/O error" in str(health.state().reason)
    health.cleared("log")
    health.cleared("sqlite")
    assert repr(health.state()) == "<StorageState healthy>" and not health.faulty


def test_a_probe_recovers_a_part_while_no_request_comes() -> None:
    health = StorageHealth(now=lambda: NOW)
    disk_back = threading.Event()
    calls = []

    def probe() -> None:
        calls.append(time.monotonic())
        if not disk_back.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")

    health.add_probe("log", probe)
    health.failed("log", OSError(errno.ENOSPC, "No space left on device"))
    time.sleep(0.5)
    assert not health.state().healthy and len(calls) >= 2  # retried, backing off
    disk_back.set()
    deadline = time.monotonic() + 10
    while not health.state().healthy:
        assert time.monotonic() < deadline, "the probe did not recover the log"
        time.sleep(0.02)
    assert health.state().errors == (("log", "disk_full", 1),)  # probes are not counted
    health.close()


def test_a_read_fault_ends_after_a_quiet_spell(monkeypatch: pytest.MonkeyPatch) -> None:
    health = StorageHealth(now=lambda: NOW)
    health.failed("read", OSError(errno.EIO, "Input/output error"))
    assert not health.state().healthy
    monkeypatch.setattr(health_module, "READ_FAULT_HOLD_S", 0.0)
    time.sleep(0.01)
    assert health.state().healthy
