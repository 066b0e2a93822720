"""helpers.trail: read-back, join, costs, gaps, integrity and export on a real gateway's trail.

Each test builds a small trail through the gateway's HTTP API (real SQLite, real hashing),
with a settable clock so times are known, then reads it back the way the notebook does.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from helpers.client import SyncGatewayClient, TokenUsage
from helpers.gateway.pricing import PricingTable
from helpers.settings import PROJECT_ROOT
from helpers.trail import (
    EXPORT_SCHEMA,
    EXPORT_VERSION,
    add_costs,
    blocked_share,
    blocking_policy,
    export_trail,
    find_gaps,
    join_trail,
    read_trail,
    rollup,
    snapshot_db,
    split_trail,
    tamper_copy,
    user_labels,
    verify_db,
)

from .conftest import FakeClock, ThreadedGateway, hermetic_settings

SSN_QUERY = "My SSN is 123-45-6789, fill in the form"


@dataclass
class Trail:
    gw: ThreadedGateway
    client: SyncGatewayClient
    db: Path
    clock: FakeClock
    ids: dict[str, str]  # label -> context_id
    audits: dict[str, str]  # label -> audit_id


@contextmanager
def _started_trail(db: Path) -> Iterator[Trail]:
    """Six decisions: four audited (two providers, a dated id, an unknown model), one
    approved and never audited (a gap), one blocked; three carry a simulated_at."""
    from helpers.gateway import create_app

    clock = FakeClock()
    gw = ThreadedGateway(create_app(hermetic_settings(), db_path=str(db), clock=clock))
    gw.__enter__()
    client = SyncGatewayClient(gw.url, settings=hermetic_settings())
    try:
        ids, audits = {}, {}
        calls = [
            ("a", "user-123", "openai", "gpt-4o-mini", (100, 50), "2025-06-03T09:10:00Z"),
            ("b", "user-345", "anthropic", "claude-3-5-haiku-20241022", (200, 80),
             "2025-06-03T09:40:00Z"),
            ("c", "user-234", "openai", "gpt-4o-2024-08-06", (1000, 500),
             "2025-06-03T10:05:00Z"),
            ("d", "user-123", "acme", "mystery-1", (10, 10), None),
        ]  # fmt: skip
        for label, user, provider, model, (p, c), at in calls:
            ctx = {"simulated_at": at} if at else None
            pre = client.pre_check("How do we deploy safely?", user_token=user, context=ctx)
            clock.advance(1)
            result = client.audit(pre.context_id, provider, model, TokenUsage(p, c),
                                  latency_ms=700, metadata={"latency": "simulated"})  # fmt: skip
            ids[label], audits[label] = pre.context_id, result.audit_id
            clock.advance(1)
        gap = client.pre_check("Summarise the release notes", user_token="user-567")
        ids["gap"] = gap.context_id
        clock.advance(1)
        blocked = client.pre_check(SSN_QUERY, user_token="user-123",
                                   context={"simulated_at": "2025-06-03T10:30:00Z"})  # fmt: skip
        ids["blocked"] = blocked.context_id
        yield Trail(gw, client, db, clock, ids, audits)
    finally:
        client.close()
        gw.__exit__(None, None, None)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    """One trail for the tests that only read it."""
    with _started_trail(tmp_path_factory.mktemp("trail") / "trail.db") as t:
        yield t


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    """A trail whose gateway is stopped, so its file can be copied (the tests edit copies only)."""
    with _started_trail(tmp_path_factory.mktemp("stopped") / "trail.db") as t:
        _stop(t)
        yield t


def _stop(t: Trail) -> None:
    """Stop the gateway so its database file can be copied (it holds the file exclusively)."""
    t.client.close()
    t.gw.__exit__(None, None, None)


# -- reading -------------------------------------------------------------------------------


def test_read_trail_rows_types_and_event_time(shared: Trail) -> None:
    df = read_trail(shared.client)
    assert len(df) == 6
    assert df["audited"].sum() == 4
    assert (
        str(df["decided_at"].dtype).startswith("datetime64") and df["decided_at"].dt.tz is not None
    )
    by_ctx = df.set_index("context_id")
    assert by_ctx.loc[shared.ids["a"], "event_time"] == pd.Timestamp("2025-06-03T09:10:00Z")
    # No simulated_at: the gateway's own decision time stands in.
    assert by_ctx.loc[shared.ids["d"], "event_time"] == by_ctx.loc[shared.ids["d"], "decided_at"]
    assert pd.isna(by_ctx.loc[shared.ids["d"], "app_time"])
    assert by_ctx.loc[shared.ids["blocked"], "blocking_policy"] == "sys_pii_ssn"
    assert by_ctx.loc[shared.ids["a"], "prompt_tokens"] == 100
    # Nothing of the raw text is in what came back.
    text = df.to_json(date_format="iso")
    assert "123-45-6789" not in text and "user-123" not in text


def test_read_trail_pages_and_passes_filters(shared: Trail) -> None:
    assert len(read_trail(shared.client, page_size=2)) == 6
    anthropic = read_trail(shared.client, provider="anthropic")
    assert list(anthropic["context_id"]) == [shared.ids["b"]]
    refused = read_trail(shared.client, approved=False)
    assert list(refused["context_id"]) == [shared.ids["blocked"]]


def test_read_trail_follows_the_cursor_and_keeps_each_row_once(
    make_gateway: Callable[..., ThreadedGateway], tmp_path: Path
) -> None:
    """Pages follow ``next`` (no offset); a decision audited after its page was read comes
    again with its audit on a later page, and only the audited copy is kept."""
    gw = make_gateway(db=tmp_path / "paged.db")
    with SyncGatewayClient(gw.url, settings=hermetic_settings()) as client:
        ids = [
            client.pre_check(f"question {i}", user_token="user-123").context_id for i in range(7)
        ]
        first = client.list_records(limit=3)
        assert len(first) == 3 and first.next  # a full page carries the cursor
        for cid in ids:  # every decision gets its audit after the first page was read
            client.audit(cid, "openai", "gpt-4o-mini", TokenUsage(3, 4), 10)
        # The audits sort after every unaudited decision, so the next pages bring the first
        # page's decisions again, now with their audits.
        second = client.list_records(limit=3, after=first.next)
        assert all(r["audit_id"] for r in second)
        df = read_trail(client, page_size=3)
    assert sorted(df["context_id"]) == sorted(ids) and df["audited"].all()


def test_read_trail_of_an_empty_gateway(make_gateway: Callable[..., ThreadedGateway],
                                        tmp_path: Path) -> None:  # fmt: skip
    gw = make_gateway(db=tmp_path / "empty.db")
    with SyncGatewayClient(gw.url, settings=hermetic_settings()) as client:
        df = read_trail(client)
    assert df.empty and {"event_time", "blocking_policy", "audited"} <= set(df.columns)


def test_user_labels_resolve_only_known_tokens_with_records(shared: Trail) -> None:
    labels = user_labels(shared.client, ["user-123", "user-345", "user-999"])
    assert sorted(labels.values()) == ["user-123", "user-345"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in labels)
    df = read_trail(shared.client)
    assert df.loc[df["context_id"] == shared.ids["b"], "user_hash"].item() in labels


@pytest.mark.parametrize(
    ("reason", "policies", "expected"),
    [
        (
            "Blocked by policy sys_pii_ssn: Query contains a US Social Security number.",
            [],
            "sys_pii_ssn",
        ),
        (
            "Blocked by policy rate_limit: Rate limit exceeded: 10 requests per 60 s",
            [],
            "rate_limit",
        ),
        ("Request blocked: PII detected", ["sys_pii_ssn", "sys_pii_phone"], "sys_pii_ssn"),
        (None, ["sys_pii_email"], None),
        (float("nan"), None, None),
    ],
)
def test_blocking_policy(reason: object, policies: list[str] | None, expected: str | None) -> None:
    assert blocking_policy(reason, policies) == expected  # type: ignore[arg-type]


# -- joining, costs, gaps --------------------------------------------------------------------


def test_split_and_join_keep_gaps_and_blocks(shared: Trail) -> None:
    decisions, audits = split_trail(read_trail(shared.client))
    assert len(decisions) == 6 and len(audits) == 4
    joined = join_trail(decisions, audits)
    link = joined.set_index("context_id")["link"]
    assert link[shared.ids["gap"]] == "decision only"
    assert link[shared.ids["blocked"]] == "decision only"
    assert (link == "audited").sum() == 4


def test_add_costs_splits_the_stored_cost(shared: Trail) -> None:
    decisions, audits = split_trail(read_trail(shared.client))
    costed = add_costs(audits).set_index("context_id")
    table = PricingTable.load()
    c = costed.loc[shared.ids["c"]]
    price = table.price("openai", "gpt-4o")
    assert c["priced_as"] == "gpt-4o"  # the dated id priced as its family
    assert c["input_usd"] == pytest.approx(1000 * price.input_per_1k / 1000)
    assert c["output_usd"] == pytest.approx(500 * price.output_per_1k / 1000)
    assert (costed["input_usd"] + costed["output_usd"]).to_numpy() == pytest.approx(
        costed["cost_usd"].to_numpy()
    )
    d = costed.loc[shared.ids["d"]]
    assert d["priced_as"] == "fallback" and d["cost_usd"] == pytest.approx(20 * 0.01 / 1000)
    # AxonFlow's single price knows gpt-4o-mini by its exact name only.
    a = costed.loc[shared.ids["a"]]
    assert a["axonflow_usd"] == pytest.approx(
        150 * table.price("openai", "gpt-4o-mini").axonflow_per_1k / 1000
    )


def test_rollup_sums_per_group(shared: Trail) -> None:
    decisions, audits = split_trail(read_trail(shared.client))
    costed = add_costs(join_trail(decisions, audits))
    by_provider = rollup(costed, "provider")
    assert by_provider.loc["openai", "calls"] == 2
    assert by_provider.loc["openai", "prompt_tokens"] == 1100
    assert by_provider["cost_usd"].sum() == pytest.approx(costed["cost_usd"].sum())
    assert list(by_provider["cost_usd"]) == sorted(by_provider["cost_usd"], reverse=True)
    by_dept = rollup(costed, ["user_department", "user_role"])
    assert by_dept.loc[("support", "support"), "calls"] == 1


def test_find_gaps_lists_approved_decisions_without_audit(shared: Trail) -> None:
    decisions, audits = split_trail(read_trail(shared.client))
    joined = join_trail(decisions, audits)
    gaps = find_gaps(joined, now=shared.clock.now)
    assert list(gaps["context_id"]) == [shared.ids["gap"]]
    assert gaps["user_department"].tolist() == ["marketing"]
    assert not gaps["expired"].any()
    later = find_gaps(joined, now=shared.clock.now + timedelta(minutes=10))
    assert later["expired"].all()


def test_blocked_share_per_hour(shared: Trail) -> None:
    decisions, _ = split_trail(read_trail(shared.client))
    sim = decisions[decisions["app_time"].notna()]  # the three with a simulated time
    share = blocked_share(sim)
    hours = [t.hour for t in share.index]
    assert hours == [9, 10]
    assert share["decisions"].tolist() == [2, 2]
    assert share["sys_pii_ssn"].tolist() == [0.0, 0.5]


# -- integrity on copies -----------------------------------------------------------------------


def test_snapshot_verifies_and_tampering_is_named(stopped: Trail, tmp_path: Path) -> None:
    clean = snapshot_db(stopped.db, tmp_path / "copy.db")
    report = verify_db(clean)
    assert report.ok and report.checked == 10  # 6 decisions + 4 audits
    assert Path(str(clean) + ".key").exists()  # the hashing key travels with the copy

    edited = tamper_copy(stopped.db, tmp_path / "edited.db", stopped.audits["b"], column="cost_usd",
                         value=0.0)  # fmt: skip
    assert edited.old > 0 and edited.new == 0.0
    broken = verify_db(edited.path)
    assert not broken.ok
    assert broken.first_broken == ("audits", stopped.audits["b"], edited.seq)
    assert verify_db(stopped.db).ok  # the original was never touched


def test_deleting_a_row_breaks_the_next_link(stopped: Trail, tmp_path: Path) -> None:
    gone = tamper_copy(
        stopped.db, tmp_path / "gone.db", stopped.ids["b"], table="contexts", column=None
    )
    report = verify_db(gone.path)
    assert not report.ok and report.first_broken[2] == gone.seq + 1
    with sqlite3.connect(gone.path) as conn:
        assert conn.execute("SELECT count(*) FROM contexts").fetchone()[0] == 5


def test_deleting_the_last_row_needs_an_anchored_head(stopped: Trail, tmp_path: Path) -> None:
    # A file alone cannot show rows cut from its end: the documented limit of verify_db.
    last = tamper_copy(stopped.db, tmp_path / "tail.db", stopped.ids["blocked"], table="contexts",
                       column=None)  # fmt: skip
    assert verify_db(last.path).ok


def test_tamper_copy_rejects_bad_requests(stopped: Trail, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a column"):
        tamper_copy(stopped.db, tmp_path / "x.db", stopped.audits["a"], column="nope")
    with pytest.raises(ValueError, match="no audits row"):
        tamper_copy(stopped.db, tmp_path / "y.db", "00000000-0000-4000-8000-000000000000")
    with pytest.raises(ValueError, match="table must be"):
        tamper_copy(stopped.db, tmp_path / "z.db", stopped.audits["a"], table="users")


def test_snapshot_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        snapshot_db(tmp_path / "nope.db", tmp_path / "copy.db")


# -- export --------------------------------------------------------------------------------------


def test_export_csv_and_jsonl_follow_the_schema(shared: Trail, tmp_path: Path) -> None:
    decisions, audits = split_trail(read_trail(shared.client))
    joined = join_trail(decisions, audits)
    result = export_trail(joined, tmp_path / "out")
    names = [f.name for f in EXPORT_SCHEMA]
    assert result.rows == 6 and result.version == EXPORT_VERSION

    with result.csv_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == names and len(rows) == 6
    records = [
        json.loads(line) for line in result.jsonl_path.read_text(encoding="utf-8").splitlines()
    ]
    assert [list(r) for r in records] == [names] * 6

    by_ctx = {r["context_id"]: r for r in records}
    assert {r["status"] for r in records} == {"audited", "approved_not_audited", "blocked"}
    blocked = by_ctx[shared.ids["blocked"]]
    assert blocked["approved"] is False and blocked["policies"] == ["sys_pii_ssn"]
    assert blocked["audit_id"] is None and blocked["prompt_tokens"] is None
    assert blocked["request_context"] == {"simulated_at": "2025-06-03T10:30:00Z"}
    assert blocked["app_time"] == "2025-06-03T10:30:00.000000Z"
    audited = by_ctx[shared.ids["c"]]
    assert isinstance(audited["prompt_tokens"], int) and audited["prompt_tokens"] == 1000
    assert audited["metadata"] == {"latency": "simulated"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", audited["decided_at"])

    csv_by_ctx = {r["context_id"]: r for r in rows}
    assert csv_by_ctx[shared.ids["blocked"]]["approved"] == "false"
    assert csv_by_ctx[shared.ids["blocked"]]["audit_id"] == ""
    assert float(csv_by_ctx[shared.ids["c"]]["cost_usd"]) == audited["cost_usd"]
    assert json.loads(csv_by_ctx[shared.ids["c"]]["metadata"]) == {"latency": "simulated"}
    # Neither file holds the raw query or token.
    for path in (result.csv_path, result.jsonl_path):
        text = path.read_text(encoding="utf-8")
        assert "123-45-6789" not in text and "user-123" not in text


def test_schema_document_lists_every_field_with_its_type() -> None:
    doc = (PROJECT_ROOT / "docs" / "audit-export-schema.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `(\w+)` \| ([^|]+(?:\\\|[^|]+)*) \|", doc, re.M)
    table = {name: kind.replace("\\|", "|").strip() for name, kind in documented}
    assert list(table) == [f.name for f in EXPORT_SCHEMA]
    assert table == {f.name: f.type for f in EXPORT_SCHEMA}
    assert f"version {EXPORT_VERSION}" in doc.lower()


def test_export_version_and_schema_names_are_unique() -> None:
    names = [f.name for f in EXPORT_SCHEMA]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"(string|timestamp|boolean|integer|number|string\[\]|object)(\|null)?",
                            f.type) for f in EXPORT_SCHEMA)  # fmt: skip


def test_join_sorted_by_event_time(shared: Trail) -> None:
    decisions, audits = split_trail(read_trail(shared.client))
    joined = join_trail(decisions, audits)
    assert joined["event_time"].is_monotonic_increasing
    assert joined["event_time"].iloc[0] == datetime(2025, 6, 3, 9, 10, tzinfo=UTC)


def test_snapshot_of_a_locked_file_fails_fast_with_advice(stopped: Trail, tmp_path: Path) -> None:
    # A writer holding an exclusive lock (as a running gateway does) must not hang the copy.
    locked = snapshot_db(stopped.db, tmp_path / "locked.db")
    holder = sqlite3.connect(locked, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(RuntimeError, match="stop it"):
            snapshot_db(locked, tmp_path / "copy.db")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
