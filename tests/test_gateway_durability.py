"""Durability, concurrency and live reload, through real HTTP against gateway processes."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import pytest

from helpers.gateway.store import AuditStore
from helpers.server import start_gateway
from helpers.settings import DATA_DIR

PRE = "/api/policy/pre-check"
AUDIT = "/api/audit/llm-call"


def _audit(ctx: str) -> dict[str, object]:
    return {
        "context_id": ctx,
        "client_id": "acme",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "token_usage": {"prompt_tokens": 3, "completion_tokens": 5},
        "latency_ms": 12,
    }


async def _post_until_killed(
    url: str, gateway_kill, workers: int, kill_after: int
) -> tuple[set, set]:  # type: ignore[no-untyped-def]
    """Post pre-check + audit pairs from many tasks; SIGKILL the gateway mid-stream."""
    acked_contexts: set[str] = set()
    acked_audits: set[str] = set()
    killed = asyncio.Event()

    async def worker(client: httpx.AsyncClient, n: int) -> None:
        for i in range(10_000):
            if killed.is_set():
                return
            body = {"user_token": "svc-loadtest", "client_id": "acme", "query": f"question {n}-{i}"}
            try:
                r = await client.post(PRE, json=body)
                if r.status_code != 200:
                    continue
                ctx = r.json()["context_id"]
                acked_contexts.add(ctx)
                r = await client.post(AUDIT, json=_audit(ctx))
                if r.status_code == 200:
                    acked_audits.add(r.json()["audit_id"])
            except httpx.HTTPError:
                return  # the gateway is gone; anything not acknowledged may be lost
            if len(acked_audits) >= kill_after and not killed.is_set():
                killed.set()
                gateway_kill()

    limits = httpx.Limits(max_connections=workers)
    async with httpx.AsyncClient(base_url=url, timeout=5, limits=limits) as client:
        await asyncio.gather(*(worker(client, n) for n in range(workers)))
    return acked_contexts, acked_audits


@pytest.mark.slow
def test_acknowledged_records_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "durable.db"
    gw = start_gateway(db_path=db)
    contexts, audits = asyncio.run(_post_until_killed(gw.url, gw.kill, workers=16, kill_after=300))
    deadline = time.monotonic() + 5
    while gw.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not gw.running and gw.returncode == -9
    gw.stop()  # releases the bookkeeping; the supplied database file is kept
    assert len(audits) >= 300
    with AuditStore.open(db) as store:  # the key file beside the db is reused
        for ctx in contexts:
            assert store.context_owner(ctx) is not None, ctx
        stored = {a.audit_id for a in store.list_audits(limit=100_000)}
        assert set(audits) <= stored, set(audits) - stored
        report = store.verify_chain()
    assert report.ok, report.problem
    # And the gateway starts again on the same file and keeps the chain going.
    with start_gateway(db_path=db) as again, httpx.Client(base_url=again.url) as http:
        ctx = http.post(PRE, json={"client_id": "acme", "query": "after restart"}).json()[
            "context_id"
        ]
        assert http.post(AUDIT, json=_audit(ctx)).status_code == 200
        verify = http.get("/api/audit/verify").json()
    assert verify["ok"] is True and verify["checked"] >= len(contexts) + len(audits) + 2


@pytest.mark.slow
def test_concurrent_clients_exact_counts_and_exact_rate_limit(tmp_path: Path) -> None:
    async def run(url: str) -> tuple[int, list[bool]]:
        # This test counts; it does not time. No pool timeout: 320 tasks share 100 connections,
        # and on a busy machine waiting for one can take longer than any fixed limit.
        timeout = httpx.Timeout(30, pool=None)
        async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:

            async def pair(i: int) -> int:
                body = {"user_token": "svc-loadtest", "client_id": "acme", "query": f"q{i}"}
                ctx = (await client.post(PRE, json=body)).json()["context_id"]
                r = await client.post(AUDIT, json=_audit(ctx))
                return r.status_code

            statuses = await asyncio.gather(*(pair(i) for i in range(320)))
            guest = {"user_token": "walk-in-guest", "client_id": "acme", "query": "hello"}
            replies = await asyncio.gather(*(client.post(PRE, json=guest) for _ in range(32)))
            return statuses.count(200), [r.json()["approved"] for r in replies]

    with start_gateway(db_path=tmp_path / "c.db") as gw:
        ok, guest_verdicts = asyncio.run(run(gw.url))
        records = httpx.get(f"{gw.url}/api/audit/records", params={"limit": 5000}).json()
    assert ok == 320
    audited = [r for r in records["records"] if r.get("audit_id")]
    assert len(audited) == 320
    guest_limit = 10  # data/users.yaml: guest, 10 requests per 60 s
    assert guest_verdicts.count(True) == guest_limit
    assert guest_verdicts.count(False) == 32 - guest_limit


def test_custom_policies_reload_without_restart(tmp_path: Path) -> None:
    policies = tmp_path / "policies.yaml"
    shutil.copy(DATA_DIR / "policies.yaml", policies)
    query = {"user_token": "user-123", "client_id": "acme", "query": "Status of Operation Kestrel?"}
    with start_gateway(db_path=tmp_path / "r.db", extra_args=["--policies", str(policies)]) as gw, \
            httpx.Client(base_url=gw.url) as http:  # fmt: skip
        assert http.post(PRE, json=query).json()["approved"] is True
        original = policies.read_text()
        policies.write_text(
            original
            + """
  - id: no_kestrel
    keywords: [Operation Kestrel]
    action: block
    severity: high
    reason: Operation Kestrel is not public
"""
        )
        r = http.post("/api/policies/reload")
        assert r.status_code == 200 and r.json()["success"] is True
        body = http.post(PRE, json=query).json()
        assert body["approved"] is False and body["policies"] == ["no_kestrel"]
        # A malformed edit is refused with a clear error; the previous rules stay in force.
        policies.write_text(original + "\n  - id: broken\n    action: explode\n")
        r = http.post("/api/policies/reload")
        assert r.status_code == 400
        assert "policies.yaml" in r.json()["error"] and "broken" in r.json()["error"]
        assert http.post(PRE, json=query).json()["policies"] == ["no_kestrel"]
        # Restoring the file is picked up without calling reload (checked once a second).
        policies.write_text(original)
        deadline = time.monotonic() + 5
        while http.post(PRE, json=query).json()["approved"] is False:
            assert time.monotonic() < deadline, "edited policies file not picked up"
            time.sleep(0.2)
