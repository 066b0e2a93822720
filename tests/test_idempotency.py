"""Idempotent audits: a repeat is the same audit, a different body a new one, also under load."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from helpers.gateway.idempotency import AuditIndex, KeyConflict, Known, fingerprint

from .conftest import FakeClock, ThreadedGateway
from .test_gateway_contract import AUDIT, audit_body, pre_check


def audits_of(http: httpx.Client, context_id: str) -> list[str]:
    rows = http.get("/api/audit/records", params={"limit": 10_000}).json()["records"]
    return sorted(r["audit_id"] for r in rows if r["context_id"] == context_id and r["audit_id"])


def duplicates_metric(http: httpx.Client) -> float:
    for line in http.get("/prometheus").text.splitlines():
        if line.startswith("axonflow_gateway_audit_duplicates_total{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_same_body_twice_is_one_audit(http: httpx.Client) -> None:
    ctx = pre_check(http).json()["context_id"]
    first = http.post(AUDIT, json=audit_body(ctx))
    second = http.post(AUDIT, json=audit_body(ctx))
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert audits_of(http, ctx) == [first.json()["audit_id"]]
    assert duplicates_metric(http) == 1


def test_key_order_and_summary_do_not_make_a_new_audit(http: httpx.Client) -> None:
    ctx = pre_check(http).json()["context_id"]
    body = audit_body(ctx, metadata={"a": 1, "b": [1, 2]})
    first = http.post(AUDIT, json=body).json()["audit_id"]
    reordered = dict(reversed(list(body.items())))
    reordered["metadata"] = {"b": [1, 2], "a": 1}
    reordered["response_summary"] = "a different summary, never stored"
    assert http.post(AUDIT, json=reordered).json()["audit_id"] == first


@pytest.mark.parametrize(
    "change",
    [
        {"latency_ms": 641},
        {"model": "gpt-4o"},
        {"token_usage": {"prompt_tokens": 25, "completion_tokens": 151, "total_tokens": 176}},
        {"metadata": {"attempt": 2}},
    ],
)
def test_different_body_is_a_new_audit(http: httpx.Client, change: dict[str, object]) -> None:
    ctx = pre_check(http).json()["context_id"]
    first = http.post(AUDIT, json=audit_body(ctx)).json()["audit_id"]
    second = http.post(AUDIT, json=audit_body(ctx, **change)).json()["audit_id"]
    assert first != second
    assert audits_of(http, ctx) == sorted([first, second])
    assert duplicates_metric(http) == 0


def test_same_body_on_another_context_is_another_audit(http: httpx.Client) -> None:
    a, b = (pre_check(http).json()["context_id"] for _ in range(2))
    assert (
        http.post(AUDIT, json=audit_body(a)).json() != http.post(AUDIT, json=audit_body(b)).json()
    )


async def _post_copies(url: str, bodies: list[dict[str, object]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        return await asyncio.gather(*(client.post(AUDIT, json=b) for b in bodies))


def test_concurrent_copies_are_one_audit(gateway: ThreadedGateway, http: httpx.Client) -> None:
    ctx = pre_check(http).json()["context_id"]
    other = audit_body(ctx, latency_ms=999)
    bodies = [audit_body(ctx)] * 12 + [other] * 12
    replies = asyncio.run(_post_copies(gateway.url, bodies))
    assert {r.status_code for r in replies} == {200}
    ids = [r.json()["audit_id"] for r in replies]
    assert len(set(ids[:12])) == 1 and len(set(ids[12:])) == 1 and ids[0] != ids[12]
    assert audits_of(http, ctx) == sorted({ids[0], ids[12]})
    assert duplicates_metric(http) == 22
    assert http.get("/api/audit/verify").json()["ok"] is True


def test_repeat_after_restart_is_still_one_audit(
    make_gateway: Callable[..., ThreadedGateway], clock: FakeClock, tmp_path: Path
) -> None:
    db = tmp_path / "restart.db"
    gw = make_gateway(clock=clock, db=db)
    with httpx.Client(base_url=gw.url) as http:
        ctx = pre_check(http).json()["context_id"]
        first = http.post(AUDIT, json=audit_body(ctx)).json()["audit_id"]
    gw.__exit__(None, None, None)
    again = make_gateway(clock=clock, db=db)
    with httpx.Client(base_url=again.url) as http:
        assert http.post(AUDIT, json=audit_body(ctx)).json()["audit_id"] == first
        assert http.post(AUDIT, json=audit_body(ctx, latency_ms=1)).json()["audit_id"] != first
        assert audits_of(http, ctx) != [first] and first in audits_of(http, ctx)


def test_idempotency_key(http: httpx.Client) -> None:
    ctx = pre_check(http).json()["context_id"]
    key = {"Idempotency-Key": "order-7-audit"}
    first = http.post(AUDIT, json=audit_body(ctx), headers=key)
    assert first.status_code == 200
    assert http.post(AUDIT, json=audit_body(ctx), headers=key).json() == first.json()
    clash = http.post(AUDIT, json=audit_body(ctx, latency_ms=5), headers=key)
    assert clash.status_code == 409 and "Idempotency-Key" in clash.json()["error"]
    assert clash.json()["success"] is False
    fresh = http.post(AUDIT, json=audit_body(ctx, latency_ms=5), headers={"Idempotency-Key": "k2"})
    assert fresh.status_code == 200 and fresh.json() != first.json()
    assert len(audits_of(http, ctx)) == 2


@pytest.mark.parametrize("key", ["x" * 256, "tab\there"])
def test_bad_idempotency_key_is_a_400(http: httpx.Client, key: str) -> None:
    ctx = pre_check(http).json()["context_id"]
    r = http.post(AUDIT, json=audit_body(ctx), headers={"Idempotency-Key": key})
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error"]
    assert audits_of(http, ctx) == []


def test_index_evicts_and_then_asks_the_store() -> None:
    index = AuditIndex(horizon="2025-12-31T00:00:00.000000Z", max_contexts=10)
    fp = fingerprint("c", "openai", "m", 1, 2, 3, 4, None)
    for i in range(10):
        index.add(f"ctx-{i}", f"2026-01-01T00:0{i}:00.000000Z", fp, Known(f"a-{i}"))
    index.add("ctx-new", "2026-01-01T00:59:00.000000Z", fp, Known("a-new"))
    assert len(index) == 10 and index.horizon == "2026-01-01T00:00:00.000000Z"
    asked: list[str] = []

    def stored() -> list[tuple[bytes, str]]:
        asked.append("ctx-0")
        return [(fp, "a-0")]

    known = index.find("ctx-0", "2026-01-01T00:00:00.000000Z", fp, stored)
    assert known == Known("a-0") and asked == ["ctx-0"]
    # A context expiring after the horizon was never evicted: no store read.
    assert index.find("ctx-9", "2026-01-01T00:09:00.000000Z", fp, stored) == Known("a-9")
    assert asked == ["ctx-0"]


def test_index_key_conflict_and_prune() -> None:
    index = AuditIndex(horizon="2000-01-01T00:00:00.000000Z")
    fp1 = fingerprint("c", "openai", "m", 1, 2, 3, 4, None)
    fp2 = fingerprint("c", "openai", "m", 1, 2, 3, 5, None)
    index.add("ctx", "2026-01-01T00:05:00.000000Z", fp1, Known("a1"), key=("c", "k"))
    with pytest.raises(KeyConflict):
        index.find("ctx", "2026-01-01T00:05:00.000000Z", fp2, list, key=("c", "k"))
    assert index.find("ctx", "2026-01-01T00:05:00.000000Z", fp2, list, key=("other", "k")) is None
    assert index.prune("2026-01-01T00:06:00.000000Z") == 1 and len(index) == 0
    assert index.find("ctx", "2026-01-01T00:05:00.000000Z", fp2, list, key=("c", "k")) is None
