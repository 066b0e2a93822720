"""Keyset paging of the joined trail (helpers.gateway.store.query): pages by ``after`` give
the rows of the sorted trail, each once, also while rows are appended between pages, and a
page is read through the ``created_at`` indexes rather than by sorting the trail."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.gateway.store import AuditStore
from helpers.gateway.store.query import (
    _AFTER,
    _AUDITED,
    _BEFORE,
    _UNAUDITED,
    RecordFilter,
    iter_records,
    record_key,
)
from tests.conftest import FakeClock, stored_records

SECRET = b"k" * 32


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[AuditStore]:
    with AuditStore.open(tmp_path / "q.db", secret=SECRET, clock=clock) as s:
        yield s


def _mixed(store: AuditStore, clock: FakeClock, n: int, start: int = 0) -> None:
    """n decisions: some never audited, some audited once or twice, some audits of a
    context the store never saw; several rows share a timestamp, so ``seq`` breaks ties."""
    for i in range(start, start + n):
        ctx = store.add_context(f"app-{i % 2}", f"user-{i % 3}", f"q{i}", approved=i % 4 != 0)
        if i % 3:
            clock.advance(1)
        for _ in range(i % 3):  # 0, 1 or 2 audits
            store.add_audit(ctx.context_id, f"app-{i % 2}", "openai" if i % 2 else "anthropic",
                            "m", prompt_tokens=i)  # fmt: skip
        if i % 5 == 0:
            store.add_audit(f"ghost-{i}", "app-0", "openai", "m")
    store.commit()


def _pages(store: AuditStore, limit: int, **filters: Any) -> list[list[dict[str, Any]]]:
    pages, after = [], None
    while True:
        page = stored_records(store, limit=limit, after=after, **filters)
        pages.append(page)
        if len(page) < limit:
            return pages
        after = record_key(page[-1])


@pytest.mark.parametrize("limit", [1, 2, 7, 1000])
@pytest.mark.parametrize(
    "filters",
    [{}, {"client_id": "app-1"}, {"provider": "openai"}, {"approved": False},
     {"since": "2026-01-15T12:00:05Z", "until": "2026-01-15T12:00:20Z"}],
)  # fmt: skip
def test_pages_by_key_are_the_sorted_trail(
    store: AuditStore, clock: FakeClock, limit: int, filters: dict[str, Any]
) -> None:
    _mixed(store, clock, 40)
    everything = list(iter_records(store.connection, RecordFilter(**filters)))
    assert everything  # each filter matches something
    paged = [row for page in _pages(store, limit, **filters) for row in page]
    assert paged == everything
    assert paged[:limit] == stored_records(store, limit=limit, **filters)  # the first page
    if len(everything) > limit:  # offset pages are the same rows
        assert (
            stored_records(store, limit=limit, offset=limit, **filters) == paged[limit : 2 * limit]
        )


def test_pages_cover_every_row_once_while_rows_are_appended(
    store: AuditStore, clock: FakeClock
) -> None:
    _mixed(store, clock, 30)
    seen: list[dict[str, Any]] = []
    after, appended, late = None, 0, []
    while True:
        page = stored_records(store, limit=4, after=after)
        seen += page
        if len(page) < 4:
            break
        after = record_key(page[-1])
        if appended < 10:  # new rows arrive between pages
            _mixed(store, clock, 3, start=100 + 3 * appended)
            appended += 1
        unaudited = [r for r in page if r["audit_id"] is None and r["user_hash"]]
        if unaudited and len(late) < 3:  # a decision already read is audited afterwards
            row = unaudited[0]
            store.add_audit(row["context_id"], row["client_id"], "openai", "late")
            store.commit()
            late.append(row["context_id"])
    final = list(iter_records(store.connection))
    audits = Counter(r["audit_id"] for r in seen if r["audit_id"])
    assert sorted(audits) == sorted(r["audit_id"] for r in final if r["audit_id"])
    assert set(audits.values()) == {1}  # every audit once, the appended ones included
    alone = Counter(r["context_id"] for r in seen if r["audit_id"] is None)
    assert set(alone.values()) == {1}
    never = {r["context_id"] for r in final if r["audit_id"] is None}
    # A decision read while unaudited, then audited, shows a second time with its audit;
    # every other one is read exactly as it ends up.
    assert set(alone) == never | set(late) and len(late) == 3
    assert [record_key(r) for r in seen] == sorted(record_key(r) for r in seen)


def test_after_and_offset_do_not_mix_and_after_is_checked(store: AuditStore) -> None:
    with pytest.raises(ValueError, match="after or with offset, not both"):
        stored_records(store, after=("2026-01-15T12:00:00.000000Z", 1), offset=1)
    with pytest.raises(ValueError, match=r"after must be a \(created_at, seq\) pair"):
        stored_records(store, after=["2026", 1])


def test_a_page_is_read_through_the_created_at_indexes(store: AuditStore) -> None:
    # Both parts walk an index from the key: a range, no full scan and no sort of the trail.
    for part, table in ((_AUDITED, "audits"), (_UNAUDITED, "contexts")):
        sql = f"SELECT * FROM ({part}) WHERE {_AFTER} AND {_BEFORE} ORDER BY created_at, seq"
        plan = [row[3] for row in store.connection.execute(f"EXPLAIN QUERY PLAN {sql} LIMIT 10",
                                                      ("a", 1, "b", 2))]  # fmt: skip
        assert f"{table}_by_created (created_at>? AND created_at<?)" in plan[0]
        assert not any("TEMP B-TREE" in step for step in plan)


def test_an_older_file_gains_the_index_when_opened(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    AuditStore.open(db, secret=SECRET).close()
    con = sqlite3.connect(db)
    con.execute("DROP INDEX audits_by_created")
    con.close()
    with AuditStore.open(db, secret=SECRET) as store:
        names = {r[0] for r in store.connection.execute("SELECT name FROM sqlite_master")}
    assert "audits_by_created" in names
