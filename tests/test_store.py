"""The audit store: read-back, keyed hashing, the hash chain, and durable group commit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers.errors import ConfigError
from helpers.gateway.store import AuditStore
from helpers.gateway.store.chain import GENESIS, hash_value, is_expired
from helpers.settings import PROJECT_ROOT
from tests.conftest import stored_contexts, stored_records

if TYPE_CHECKING:
    from conftest import FakeClock

SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def store(db: Path, clock: FakeClock) -> Iterator[AuditStore]:
    with AuditStore.open(db, secret=SECRET, clock=clock) as s:
        yield s


def _fill(store: AuditStore, clock: FakeClock, n: int = 3) -> list[str]:
    """n contexts, each audited once; returns the ids in insertion order."""
    ids = []
    for i in range(n):
        ctx = store.add_context("community", f"user-{i}", f"question {i}", approved=True)
        clock.advance(1)
        audit = store.add_audit(
            ctx.context_id,
            "community",
            "openai",
            "gpt-4o",
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=0.0001,
        )
        clock.advance(1)
        ids += [ctx.context_id, audit.audit_id]
    store.commit()
    return ids


# -- insert and read back --------------------------------------------------------------------


def test_context_round_trip(store: AuditStore, clock: FakeClock) -> None:
    ctx = store.add_context(
        "app-1", "user-123", "What is our refund policy?", approved=False,
        policies=["sqli_union_based", "sys_pii_email"], block_reason="SQL injection",
        data_sources=["crm"], user_role="engineer", user_department="support",
        request_context={"b": 1, "a": [1, 2]}, ttl_s=60,
    )  # fmt: skip
    [got] = stored_contexts(store)
    assert got == ctx
    assert got.policies == ("sqli_union_based", "sys_pii_email")
    assert got.approved is False and got.user_role == "engineer"
    assert got.request_context == {"a": [1, 2], "b": 1}
    assert got.created_at == "2026-01-15T12:00:00.000000Z"
    assert got.expires_at == "2026-01-15T12:01:00.000000Z"
    assert got.user_hash == hash_value(SECRET, "user-123")
    assert repr(got).startswith(f"<ContextRecord {ctx.context_id} blocked")
    assert store.context_owner(ctx.context_id) == ("app-1", got.expires_at)
    assert store.context_owner("no-such-id") is None


def test_audit_round_trip(store: AuditStore) -> None:
    ctx = store.add_context("app-1", "u", "q", approved=True)
    audit = store.add_audit(ctx.context_id, "app-1", "anthropic", "claude-3-haiku-20240307",
                            prompt_tokens=120, completion_tokens=30, latency_ms=850,
                            cost_usd=0.0000675, metadata={"route": "faq"})  # fmt: skip
    store.commit()
    [got] = store.list_audits(context_id=ctx.context_id)
    assert got == audit
    assert (got.total_tokens, got.latency_ms, got.cost_usd) == (150, 850, 0.0000675)
    assert got.metadata == {"route": "faq"}
    assert json.loads(json.dumps(asdict(got)))["model"] == "claude-3-haiku-20240307"


def test_expiry_follows_the_clock(store: AuditStore, clock: FakeClock) -> None:
    ctx = store.add_context("c", "u", "q", approved=True, ttl_s=300)
    assert stored_contexts(store) == [ctx]
    clock.advance(299)
    assert not is_expired(ctx.expires_at, clock())
    clock.advance(1)
    assert is_expired(ctx.expires_at, clock())
    assert stored_contexts(store) == [ctx]  # expired, still on record


@pytest.mark.parametrize(
    ("field", "value"),
    [("prompt_tokens", -1), ("completion_tokens", 1.5), ("total_tokens", True),
     ("latency_ms", "12"), ("cost_usd", float("nan")), ("cost_usd", -0.1),
     ("metadata", {"x": object()})],
)  # fmt: skip
def test_bad_audit_values_are_rejected(store: AuditStore, field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        store.add_audit("ctx", "c", "openai", "gpt-4o", **{field: value})


def test_non_string_fields_are_rejected(store: AuditStore) -> None:
    with pytest.raises(ValueError, match="client_id"):
        store.add_context(42, "u", "q", approved=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="policies"):
        store.add_context("c", "u", "q", approved=True, policies="sys_pii_email")


# -- keyed hashing ------------------------------------------------------------------------------


def test_hash_value_is_keyed_hmac() -> None:
    assert hash_value(b"k1", "hello") == hash_value(b"k1", "hello")
    assert hash_value(b"k1", "hello") != hash_value(b"k2", "hello")
    assert len(hash_value(b"k1", "hello")) == 64


def test_raw_query_and_token_never_reach_the_file(db: Path) -> None:
    query, token = "Send the Zanzibar-7731 report to Bob", "tok-Quokka-99"
    with AuditStore.open(db) as store:
        ctx = store.add_context("c", token, query, approved=True)
        store.add_audit(ctx.context_id, "c", "openai", "gpt-4o")
    on_disk = b"".join(p.read_bytes() for p in db.parent.glob("audit.db*") if p.suffix != ".key")
    assert b"Zanzibar" not in on_disk and b"Quokka" not in on_disk
    assert ctx.context_id.encode() in on_disk  # the check can see the file's content
    key = db.with_name("audit.db.key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key.read_text().strip())) == 32


def test_key_file_survives_restart_and_differs_per_install(tmp_path: Path) -> None:
    with AuditStore.open(tmp_path / "a.db") as a:
        first = a.hash("user-123")
    with AuditStore.open(tmp_path / "a.db") as a:
        assert a.hash("user-123") == first
    with AuditStore.open(tmp_path / "b.db") as b:
        assert b.hash("user-123") != first


def test_missing_key_file_for_existing_records_is_an_error(db: Path) -> None:
    with AuditStore.open(db) as store:
        store.add_context("c", "u", "q", approved=True)
    db.with_name("audit.db.key").unlink()
    with pytest.raises(ConfigError, match="key file"):
        AuditStore.open(db)


def test_not_a_database_is_a_config_error(db: Path) -> None:
    db.write_text("hello, I am not SQLite" * 100)
    with pytest.raises(ConfigError, match="audit.db"):
        AuditStore.open(db, secret=SECRET)


# -- the hash chain ----------------------------------------------------------------------


def test_chain_links_both_tables_in_order(store: AuditStore, clock: FakeClock) -> None:
    _fill(store, clock, 3)
    report = store.verify_chain()
    assert report.ok and report.checked == 6 and report.first_broken is None
    first = stored_contexts(store)[0]
    assert first.prev_hash == GENESIS and first.seq == 1
    assert store.head.seq == 6


def _tamper(db: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    other = sqlite3.connect(db)  # a separate connection, as an attacker would use
    if params:
        other.execute(sql, params)
    else:
        other.executescript(sql)
    other.commit()
    other.close()


@pytest.mark.parametrize(
    ("sql", "broken_seq", "problem"),
    [
        ("UPDATE audits SET cost_usd = 0 WHERE seq = 4", 4, "changed after it was written"),
        ("UPDATE contexts SET approved = 1 - approved WHERE seq = 3", 3, "changed"),
        ("UPDATE audits SET metadata = '{\"x\":1}' WHERE seq = 2", 2, "changed"),
        ("UPDATE audits SET metadata = x'00ff' WHERE seq = 4", 4, "changed"),
        ("UPDATE contexts SET policies = '[\"sys_pii_ssn\"]' WHERE seq = 5", 5, "changed"),
        ("DELETE FROM contexts WHERE seq = 3", 4, "does not link to the row before it"),
        ("DELETE FROM contexts WHERE seq = 1", 2, "start of the chain"),
        # reorder: two audits exchange their places in the chain
        ("UPDATE audits SET seq = -2 WHERE seq = 2; UPDATE audits SET seq = 2 WHERE seq = 4;"
         "UPDATE audits SET seq = 4 WHERE seq = -2", 2, "changed"),
    ],
)  # fmt: skip
def test_tampering_is_found_at_the_first_broken_record(
    store: AuditStore, clock: FakeClock, db: Path, sql: str, broken_seq: int, problem: str
) -> None:
    _fill(store, clock, 3)
    assert store.verify_chain().ok
    _tamper(db, sql)
    report = store.verify_chain()
    assert not report.ok
    assert report.first_broken is not None and report.first_broken[2] == broken_seq
    table = "contexts" if broken_seq % 2 else "audits"
    assert report.first_broken[0] == table
    assert problem in report.problem


def test_edit_with_recomputed_row_hash_breaks_the_next_link(
    store: AuditStore, clock: FakeClock, db: Path
) -> None:
    from helpers.gateway.store.chain import AUDIT_COLUMNS, row_hash

    _fill(store, clock, 2)
    row = list(asdict(store.list_audits()[0]).values())
    row[AUDIT_COLUMNS.index("cost_usd")] = 0.0  # the forger lowers the cost ...
    forged = row_hash(row[-2], "audits", row[: len(AUDIT_COLUMNS)])  # ... and re-hashes it
    _tamper(db, "UPDATE audits SET cost_usd = 0.0, row_hash = ? WHERE seq = 2", (forged,))
    report = store.verify_chain()
    assert report.first_broken[2] == 3 and "seq 2" in report.problem


def test_rows_cut_from_the_end_are_found_while_open(
    store: AuditStore, clock: FakeClock, db: Path
) -> None:
    ids = _fill(store, clock, 2)
    _tamper(db, "DELETE FROM audits WHERE seq = 4")
    report = store.verify_chain()
    assert not report.ok and report.first_broken == ("audits", ids[-1], 4)
    assert "deleted from the end" in report.problem


def test_reopen_continues_the_chain(db: Path, clock: FakeClock) -> None:
    with AuditStore.open(db, secret=SECRET, clock=clock) as store:
        _fill(store, clock, 2)
        head = store.head
    with AuditStore.open(db, secret=SECRET, clock=clock) as store:
        assert store.head == head
        ctx = store.add_context("c", "u", "q", approved=True)
        store.commit()
        assert (ctx.seq, ctx.prev_hash) == (head.seq + 1, head.row_hash)
        report = store.verify_chain()
    assert report.ok and report.checked == 5


def test_a_second_writer_is_refused(db: Path) -> None:
    with AuditStore.open(db, secret=SECRET) as a:
        with pytest.raises(ConfigError, match="open in another store"):
            AuditStore.open(db, secret=SECRET)
        a.add_context("a", "u", "q", approved=True)
        a.commit()
    with AuditStore.open(db, secret=SECRET) as b:  # free again once the first closed
        assert b.verify_chain().checked == 1


# -- durable acknowledgement ---------------------------------------------------------------


def test_committed_returns_at_once_when_nothing_is_pending(store: AuditStore) -> None:
    asyncio.run(store.committed())
    assert store.commit_count == 0


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from helpers.gateway.store import AuditStore

    async def main():
        # acknowledged through the acknowledgement log; with fsync, written and synced on
        # the log's own thread
        store = AuditStore.open(sys.argv[1], fsync=sys.argv[2] == "fsync")

        async def request(i):
            ctx = store.add_context("c", "user-1", f"query {i}", approved=True)
            await store.committed(ctx)
            audit = store.add_audit(ctx.context_id, "c", "openai", "gpt-4o", prompt_tokens=i)
            await store.committed(audit)
            sys.stdout.write(f"{ctx.context_id} {audit.audit_id}\\n")
            sys.stdout.flush()

        sys.stdout.write("ready\\n")
        sys.stdout.flush()
        for batch in range(100_000):
            await asyncio.gather(*(request(batch * 8 + i) for i in range(8)))

    asyncio.run(main())
    """
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["no-fsync", "fsync"])
def test_acknowledged_records_survive_kill_9(db: Path, tmp_path: Path, mode: str) -> None:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    with subprocess.Popen(
        [sys.executable, str(script), str(db), mode], stdout=subprocess.PIPE, cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline() == b"ready\n"
            acked: list[bytes] = []
            while len(acked) < 500:  # kill it mid-stream, while it is still writing
                line = proc.stdout.readline()
                assert line, "writer exited early"
                acked.append(line)
        finally:
            proc.send_signal(signal.SIGKILL)
        acked += proc.stdout.read().splitlines(keepends=True)  # acknowledged before it died
    assert proc.returncode == -signal.SIGKILL
    complete = [line.split() for line in acked if line.endswith(b"\n")]
    context_ids = {c.decode() for c, _ in complete}
    audit_ids = {a.decode() for _, a in complete}

    log = Path(f"{db}.acklog")
    # The store leaves acknowledged rows in its log that SQLite may not have yet.
    assert log.exists()
    with AuditStore.open(db) as store:  # replays the log, if any
        assert store.verify_chain().ok
    assert not log.exists()
    with sqlite3.connect(db) as fresh:
        stored_ctx = {r[0] for r in fresh.execute("SELECT context_id FROM contexts")}
        stored_audits = {r[0] for r in fresh.execute("SELECT audit_id FROM audits")}
    fresh.close()
    assert len(context_ids) >= 500
    assert context_ids <= stored_ctx and audit_ids <= stored_audits


# -- read-back -------------------------------------------------------------------------------


@pytest.fixture
def trail(store: AuditStore, clock: FakeClock) -> AuditStore:
    """Three decisions: an approved one audited twice, a blocked one never audited, one
    audited by another client through anthropic; plus an audit of an unknown context."""
    a = store.add_context("app-1", "alice", "q1", approved=True, user_role="engineer")
    clock.advance(1)
    store.add_audit(a.context_id, "app-1", "openai", "gpt-4o", prompt_tokens=10, cost_usd=0.1)
    clock.advance(1)
    store.add_audit(a.context_id, "app-1", "openai", "gpt-4o-mini", prompt_tokens=20)
    clock.advance(1)
    store.add_context("app-1", "bob", "q2", approved=False, policies=["sys_pii_ssn"],
                      block_reason="SSN")  # fmt: skip
    clock.advance(1)
    c = store.add_context("app-2", "alice", "q3", approved=True)
    clock.advance(1)
    store.add_audit(c.context_id, "app-2", "anthropic", "claude-3-haiku")
    clock.advance(1)
    store.add_audit("ghost", "app-2", "openai", "gpt-4o")
    store.commit()
    return store


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["gpt-4o", "gpt-4o-mini", None, "claude-3-haiku", "gpt-4o"]),
        ({"client_id": "app-1"}, ["gpt-4o", "gpt-4o-mini", None]),
        ({"provider": "openai"}, ["gpt-4o", "gpt-4o-mini", "gpt-4o"]),
        ({"model": "claude-3-haiku"}, ["claude-3-haiku"]),
        ({"approved": False}, [None]),
        ({"approved": True}, ["gpt-4o", "gpt-4o-mini", "claude-3-haiku"]),
        ({"since": "2026-01-15T12:00:02Z"}, ["gpt-4o-mini", None, "claude-3-haiku", "gpt-4o"]),
        ({"until": datetime(2026, 1, 15, 12, 0, 2, tzinfo=UTC)}, ["gpt-4o"]),
        ({"limit": 2, "offset": 1}, ["gpt-4o-mini", None]),
    ],
)  # fmt: skip
def test_list_records_filters(trail: AuditStore, filters: dict, expected: list) -> None:
    assert [r["model"] for r in stored_records(trail, **filters)] == expected


def test_list_records_rows_are_joined_and_json_able(trail: AuditStore) -> None:
    rows = stored_records(trail, user_hash=trail.hash("alice"))
    assert [r["model"] for r in rows] == ["gpt-4o", "gpt-4o-mini", "claude-3-haiku"]
    first = rows[0]
    assert first["approved"] is True and first["user_role"] == "engineer"
    assert first["policies"] == [] and first["cost_usd"] == 0.1
    blocked = stored_records(trail, approved=False)[0]
    assert blocked["audit_id"] is None and blocked["block_reason"] == "SSN"
    orphan = stored_records(trail)[-1]
    assert orphan["context_id"] == "ghost" and orphan["approved"] is None
    json.dumps(stored_records(trail))


def test_list_audits(trail: AuditStore) -> None:
    assert len(trail.list_audits(provider="openai")) == 3
    ctx = stored_contexts(trail)[0]
    assert [a.model for a in trail.list_audits(context_id=ctx.context_id)] == [
        "gpt-4o", "gpt-4o-mini"]  # fmt: skip


@pytest.mark.parametrize(
    "filters",
    [{"limit": 0}, {"limit": 100_001}, {"offset": -1}, {"since": "yesterday"},
     {"client_id": "x' OR '1'='1"}],
)  # fmt: skip
def test_list_records_rejects_bad_input_or_matches_nothing(
    trail: AuditStore, filters: dict
) -> None:
    if "client_id" in filters:  # values are bound, never spliced into SQL
        assert stored_records(trail, **filters) == []
    else:
        with pytest.raises(ValueError):
            stored_records(trail, **filters)


def test_clock_must_be_timezone_aware(db: Path) -> None:
    with AuditStore.open(db, secret=SECRET, clock=lambda: datetime(2026, 1, 1)) as store:
        with pytest.raises(ValueError, match="timezone-aware"):
            store.add_context("c", "u", "q", approved=True)


def test_expiry_uses_ttl(store: AuditStore, clock: FakeClock) -> None:
    ctx = store.add_context("c", "u", "q", approved=True, ttl_s=1.5)
    assert is_expired(ctx.expires_at, clock.now + timedelta(seconds=1.5))
    assert not is_expired(ctx.expires_at, clock.now + timedelta(seconds=1.4))


def test_ids_are_canonical_uuid4s_and_two_sources_do_not_repeat() -> None:
    import uuid

    from helpers.gateway.store import IdSource

    first, second = IdSource(), IdSource()
    ids = {source() for source in (first, second) for _ in range(5000)}  # past one 4 KiB pool
    assert len(ids) == 10_000
    for value in list(ids)[:200]:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == value


@pytest.mark.parametrize("key_len", [1, 16, 32, 63, 64, 65, 200])
@pytest.mark.parametrize("text", ["", "hello", "émoji 🙂 and عربى", "x" * 5000])
def test_keyed_hasher_is_hmac_sha256(key_len: int, text: str) -> None:
    import hmac

    from helpers.gateway.store.chain import keyed_hasher

    secret = bytes(range(256))[:key_len]
    expected = hmac.new(secret, text.encode(), "sha256").hexdigest()
    assert keyed_hasher(secret)(text) == expected == hash_value(secret, text)


def test_row_payload_is_the_canonical_json_for_every_code_point() -> None:
    from helpers.gateway.store.chain import dumps, row_payload

    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    values = (1, every, None, 2**63 - 1, -(2**63), "", '"\\\n\t\x00\x7f\u2028')
    assert row_payload("contexts", values) == dumps(["contexts", *values])
    with_float = (*values, 1e-05, 0.1)
    assert row_payload("audits", with_float) == dumps(["audits", *with_float])
