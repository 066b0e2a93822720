"""Segmented chain verification (helpers.gateway.store.verify) finds what one pass finds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from helpers.gateway.store import AuditStore, ChainReport
from helpers.gateway.store.chain import verify_chain
from helpers.gateway.store.schema import CHAIN_TABLES
from helpers.gateway.store.verify import ChainCursor, verify_segment

SECRET = b"0123456789abcdef0123456789abcdef"


def _trail(db: Path, pairs: int = 6) -> AuditStore:
    store = AuditStore.open(db, secret=SECRET)
    for i in range(pairs):
        ctx = store.add_context("c", f"user-{i % 3}", f"question {i}", approved=i % 4 != 0)
        store.add_audit(ctx.context_id, "c", "openai", "gpt-4o", prompt_tokens=i,
                        cost_usd=0.001 * i, metadata={"i": i})  # fmt: skip
    store.commit()
    return store


def _walk(conn: sqlite3.Connection, limit: int, head=None) -> tuple[ChainReport, int]:  # type: ignore[no-untyped-def]
    cursor, steps = ChainCursor(), 0
    while True:
        steps += 1
        report, cursor = verify_segment(conn, CHAIN_TABLES, cursor, limit, head)
        if report is not None:
            return report, steps
        assert steps < 1000, "no progress"


TAMPERING = [
    "",  # intact
    "UPDATE audits SET cost_usd = 0 WHERE seq = 4",
    "UPDATE contexts SET approved = 1 - approved WHERE seq = 7",
    "UPDATE audits SET metadata = x'00ff' WHERE seq = 6",
    "DELETE FROM contexts WHERE seq = 5",
    "DELETE FROM contexts WHERE seq = 1",
    "DELETE FROM audits WHERE seq = 12",  # the last row
    # a copy of row 6 under the same seq in the other table (a repeated seq)
    "INSERT INTO contexts SELECT 6, 'dup', client_id, user_hash, query_hash, user_role, "
    "user_department, data_sources, policies, approved, block_reason, request_context, "
    "expires_at, created_at, prev_hash, row_hash FROM contexts WHERE seq = 5",
    # the same, the other way round: a copy of context 5 as an audit with seq 5
    "INSERT INTO audits SELECT 5, 'dup', context_id, client_id, provider, model, prompt_tokens, "
    "completion_tokens, total_tokens, latency_ms, cost_usd, metadata, created_at, prev_hash, "
    "row_hash FROM audits WHERE seq = 4",
    "UPDATE audits SET seq = -2 WHERE seq = 2; UPDATE audits SET seq = 2 WHERE seq = 4;"
    "UPDATE audits SET seq = 4 WHERE seq = -2",
    "UPDATE contexts SET seq = -1 WHERE seq = 1",
]


@pytest.mark.parametrize("sql", TAMPERING)
@pytest.mark.parametrize("limit", [1, 2, 3, 5, 1000])
def test_segments_report_exactly_what_one_pass_reports(
    tmp_path: Path, sql: str, limit: int
) -> None:
    store = _trail(tmp_path / "t.db")
    head = store.verified_head
    store.close()
    conn = sqlite3.connect(tmp_path / "t.db")
    if sql:
        conn.executescript(sql)
        conn.commit()
    whole = verify_chain(conn, CHAIN_TABLES, head)
    segmented, steps = _walk(conn, limit, head)
    conn.close()
    assert segmented == whole
    assert whole.ok == (sql == "")
    if whole.ok:
        assert whole.checked == 12 and -(-12 // limit) <= steps <= -(-12 // limit) + 1


def test_a_row_changed_between_segments_is_reported(tmp_path: Path) -> None:
    store = _trail(tmp_path / "t.db")
    store.close()
    conn = sqlite3.connect(tmp_path / "t.db")
    report, cursor = verify_segment(conn, CHAIN_TABLES, ChainCursor(), 4)
    assert report is None and cursor.seq == 4 and cursor.checked == 4
    conn.execute("UPDATE audits SET row_hash = 'x' WHERE seq = 4")  # the row it stopped at
    conn.commit()
    report, _ = verify_segment(conn, CHAIN_TABLES, cursor, 4)
    conn.close()
    assert report is not None and not report.ok


def test_limit_must_be_positive(tmp_path: Path) -> None:
    with AuditStore.open(tmp_path / "t.db", secret=SECRET) as store:
        with pytest.raises(ValueError, match="at least 1"):
            verify_segment(store.connection, CHAIN_TABLES, ChainCursor(), 0)


def test_an_empty_chain_is_intact(tmp_path: Path) -> None:
    with AuditStore.open(tmp_path / "t.db", secret=SECRET) as store:
        report, _ = verify_segment(store.connection, CHAIN_TABLES, ChainCursor(), 10)
    assert report == ChainReport(True, 0)
