"""The acknowledgement log of a store: durable first, SQLite right after,
replayed after a crash, and refused when damaged."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from helpers.errors import ConfigError, StorageUnavailable
from helpers.gateway.store import APPLY_AFTER_S, AuditStore, acklog
from helpers.gateway.store.acklog import close_and_unlock
from helpers.gateway.store.commits import DROP_CONTEXTS_AT
from tests.conftest import stored_contexts

SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


def _log_of(db: Path) -> Path:
    return Path(str(db) + ".acklog")


def _stored_ids(db: Path) -> tuple[set[str], set[str]]:
    with sqlite3.connect(db) as conn:
        contexts = {r[0] for r in conn.execute("SELECT context_id FROM contexts")}
        audits = {r[0] for r in conn.execute("SELECT audit_id FROM audits")}
    conn.close()
    return contexts, audits


def _die(store: AuditStore) -> None:
    """What ``kill -9`` leaves: rows not yet handed to the applier never reach SQLite, the log
    stays, and the process's lock on the file is gone."""
    commits = store._commits
    commits._unapplied.clear()
    commits.applier.close(drain=False)
    commits.log.close(remove=False)
    close_and_unlock(store.connection, store._lock_fd)


async def _acknowledge(store: AuditStore, n: int) -> list[str]:
    async def request(i: int) -> str:
        ctx = store.add_context("c", f"user-{i}", f"query {i}", approved=True)
        await store.committed(ctx)
        return ctx.context_id

    return list(await asyncio.gather(*(request(i) for i in range(n))))


def test_contexts_kept_for_lookups_are_dropped_once_sqlite_has_them(db: Path) -> None:
    # A run of pre-checks that nothing looks up (no audit follows) must not keep every
    # context in memory: once DROP_CONTEXTS_AT are kept, an acknowledgement forgets those
    # the applier has committed.
    store = AuditStore.open(db, secret=SECRET)

    async def run() -> int:
        await _acknowledge(store, 3 * DROP_CONTEXTS_AT)
        await store.applied()
        await _acknowledge(store, 1)
        return len(store._commits._contexts)  # logged contexts kept until SQLite has them

    try:
        assert asyncio.run(run()) <= DROP_CONTEXTS_AT
    finally:
        store.close()


def test_acknowledged_rows_are_in_the_log_before_sqlite(db: Path) -> None:
    store = AuditStore.open(db, secret=SECRET)
    ids = asyncio.run(_acknowledge(store, 5))
    logged = _log_of(db).read_text()
    assert all(i in logged for i in ids)  # durable in the log the moment it is acknowledged
    assert "query 1" not in logged and "user-1" not in logged  # keyed hashes only
    # Readable at once (the audit of a fresh context must find it), then in SQLite on close.
    assert all(store.context_owner(i) is not None for i in ids)
    store.close()
    assert not _log_of(db).exists()
    assert _stored_ids(db)[0] == set(ids)


def test_rows_reach_sqlite_after_the_delay_without_a_read(db: Path) -> None:
    async def main(store: AuditStore) -> int:
        await _acknowledge(store, 3)
        await asyncio.sleep(APPLY_AFTER_S * 5)
        return len(store._commits._unapplied)

    store = AuditStore.open(db, secret=SECRET)
    assert asyncio.run(main(store)) == 0
    assert store.verify_chain().checked == 3
    store.close()


def test_rows_only_in_the_log_are_replayed_on_open(db: Path) -> None:
    store = AuditStore.open(db, secret=SECRET)
    first = asyncio.run(_acknowledge(store, 2))
    store.commit()  # in SQLite now
    kept = _log_of(db).read_bytes()
    later = asyncio.run(_acknowledge(store, 3))
    crashed = _log_of(db).read_bytes()
    _die(store)  # as if the process died before SQLite got the last three
    assert crashed.startswith(kept)
    with AuditStore.open(db, secret=SECRET) as reopened:
        assert {c.context_id for c in stored_contexts(reopened)} == set(first + later)
        assert reopened.verify_chain().ok
    assert not _log_of(db).exists()


def test_replay_skips_rows_sqlite_already_has(db: Path) -> None:
    store = AuditStore.open(db, secret=SECRET)
    ids = asyncio.run(_acknowledge(store, 4))
    store.commit()
    saved = _log_of(db).read_bytes()
    store.close()
    _log_of(db).write_bytes(saved)  # a crash between the SQLite commit and removing the log
    with AuditStore.open(db, secret=SECRET) as again:
        assert sorted(c.context_id for c in stored_contexts(again)) == sorted(ids)
        assert again.verify_chain().checked == 4


def _crashed_with_log(db: Path, n: int = 3) -> Path:
    """A store whose last ``n`` acknowledged rows are only in its log."""
    store = AuditStore.open(db, secret=SECRET)
    asyncio.run(_acknowledge(store, n))
    _die(store)
    return _log_of(db)


def test_a_line_cut_short_by_a_crash_is_ignored(db: Path) -> None:
    log = _crashed_with_log(db)
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:2]) + lines[2][:40])  # the last write never completed
    with AuditStore.open(db, secret=SECRET) as store:
        assert len(stored_contexts(store)) == 2 and store.verify_chain().ok


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda lines: [lines[0], b"not a log line\n", *lines[2:]], "line 2: not a log entry"),
        (lambda lines: [lines[0], lines[1].replace(b'"c"', b'"x"'), lines[2]],
         "line 2: does not match its row hash"),
        (lambda lines: [lines[0], lines[2]], "line 2: does not continue the chain"),
        (lambda lines: [lines[0], lines[1].replace(b'["contexts"', b'["users"'), lines[2]],
         "line 2: not a row of this store"),
    ],
)  # fmt: skip
def test_a_damaged_log_is_refused_naming_the_line(db: Path, damage, problem) -> None:  # type: ignore[no-untyped-def]
    log = _crashed_with_log(db)
    log.write_bytes(b"".join(damage(log.read_bytes().splitlines(keepends=True))))
    before = log.read_bytes()
    with pytest.raises(ConfigError, match=problem) as info:
        AuditStore.open(db, secret=SECRET)
    assert str(log) in str(info.value)
    assert log.read_bytes() == before  # nothing replayed, nothing thrown away
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM contexts").fetchone()[0] == 0
    conn.close()


def test_a_failed_log_write_is_never_acknowledged(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AuditStore.open(db, secret=SECRET)
    real_write = os.write

    def full_disk(fd: int, data: object) -> int:
        real_write(fd, bytes(data)[:50])  # type: ignore[call-overload] # then the disk is full
        raise OSError(28, "No space left on device")

    async def main() -> tuple[list[object], str]:
        monkeypatch.setattr(acklog.os, "write", full_disk)
        results = await asyncio.gather(
            *(store.committed(store.add_context("c", "u", f"q{i}", approved=True))
              for i in range(3)),
            return_exceptions=True,
        )  # fmt: skip
        monkeypatch.setattr(acklog.os, "write", real_write)
        kept = store.add_context("c", "u", "after", approved=True)
        await store.committed(kept)
        return results, kept.context_id

    results, kept = asyncio.run(main())
    failed = [r for r in results if isinstance(r, StorageUnavailable)]
    assert failed and all(isinstance(r.__cause__, OSError) for r in failed)
    assert "disk full" in failed[0].reason
    acknowledged = [r for r in results if not isinstance(r, BaseException)]
    log_text = _log_of(db).read_text()
    assert log_text.count("\n") == len(acknowledged) + 1  # no torn line left behind
    store.close()
    with AuditStore.open(db, secret=SECRET) as reopened:
        assert kept in {c.context_id for c in stored_contexts(reopened)}
        assert reopened.verify_chain().ok


def test_fsync_mode_shares_one_write_per_loop_turn(db: Path) -> None:
    store = AuditStore.open(db, secret=SECRET, fsync=True)
    asyncio.run(_acknowledge(store, 50))
    assert store.commit_count == 1
    store.close()
    assert len(_stored_ids(db)[0]) == 50


def test_a_snapshot_after_a_crash_includes_rows_only_in_the_log(db: Path, tmp_path: Path) -> None:
    from helpers.trail import snapshot_db, verify_db

    _crashed_with_log(db, n=4)
    copy = snapshot_db(db, tmp_path / "copy.db")
    report = verify_db(copy)
    assert report.ok and report.checked == 4


def test_commits_wait_when_sqlite_falls_too_far_behind(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows the applier has not copied yet are held in memory; past a bound, new commits
    wait for it instead of letting that queue grow without limit. Here another connection
    holds SQLite's write lock, so the applier is stuck until it lets go."""
    from helpers.gateway.store import commits

    monkeypatch.setattr(commits, "MAX_BACKLOG_ROWS", 10)
    store = AuditStore.open(db, secret=SECRET)
    blocker = sqlite3.connect(db, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # the applier's own BEGIN IMMEDIATE now waits

    async def main() -> tuple[int, bool, int]:
        first = [await _acknowledge(store, 1) for _ in range(11)]  # the last one begins 10 behind
        await asyncio.sleep(2 * APPLY_AFTER_S)  # the rows have gone to the (stuck) applier
        ctx = store.add_context("c", "user-x", "one more", approved=True)
        waiting = asyncio.ensure_future(store.committed(ctx))
        await asyncio.sleep(0.3)
        held = not waiting.done()
        blocker.rollback()  # storage is back
        await asyncio.wait_for(waiting, 10)
        return len(first), held, store._commits.applier.applied_seq

    acknowledged, held, applied = asyncio.run(main())
    blocker.close()
    store.close()
    assert acknowledged == 11 and held  # the 12th waited while SQLite was 11 rows behind
    assert applied >= 11 and len(_stored_ids(db)[0]) == 12


def test_remains_of_a_failed_write_are_cut_before_the_next_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write cut short whose remains could not be truncated at once (the disk failing
    harder) must not have the next line glued to it: the next append cuts them first, or
    fails too."""
    log = acklog.AckLog(tmp_path / "x.acklog", fsync=False)
    log.append(["a b first\n"])
    real_write, real_truncate = os.write, os.ftruncate

    def torn_write(fd: int, data: object) -> int:
        real_write(fd, bytes(data)[:4])  # type: ignore[call-overload]
        raise OSError(5, "Input/output error")

    def failing_truncate(fd: int, size: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(acklog.os, "write", torn_write)
    monkeypatch.setattr(acklog.os, "ftruncate", failing_truncate)
    with pytest.raises(OSError):
        log.append(["a b second\n"])
    monkeypatch.setattr(acklog.os, "write", real_write)
    with pytest.raises(OSError):  # the remains are still there: refuse rather than glue
        log.append(["a b third\n"])
    monkeypatch.setattr(acklog.os, "ftruncate", real_truncate)
    log.append(["a b fourth\n"])
    log.close(remove=False)
    assert (tmp_path / "x.acklog").read_text() == "a b first\na b fourth\n"
