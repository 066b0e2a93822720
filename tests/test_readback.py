"""The gateway's read endpoints (helpers.gateway.readback, helpers.gateway.reader): paging
bounds, verification with progress, the streaming export, reads in another process, and the
one-writer lock. Behaviour only; the latency they spare other requests is benchmarked."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers.client import SyncGatewayClient
from helpers.errors import ConfigError
from helpers.gateway import readback
from helpers.gateway.reader import Reader
from helpers.gateway.store import AuditStore, RecordFilter

PRE, AUDIT = "/api/policy/pre-check", "/api/audit/llm-call"


def _traffic(http: httpx.Client, n: int) -> list[str]:
    """n pre-checks, every other one audited; returns the context ids."""
    ids = []
    for i in range(n):
        body = {"client_id": "acme", "user_token": f"user-{i % 3}", "query": f"question {i}"}
        ctx = http.post(PRE, json=body).json()["context_id"]
        ids.append(ctx)
        if i % 2 == 0:
            audit = {"context_id": ctx, "client_id": "acme", "provider": "openai",
                     "model": "gpt-4o-mini", "token_usage": {"prompt_tokens": i,
                                                             "completion_tokens": 1}}  # fmt: skip
            assert http.post(AUDIT, json=audit).status_code == 200
    return ids


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=10001", "limit='10001' must be an integer from 1 to 10000; page with next"),
        ("limit=0", "limit='0' must be an integer from 1"),
        ("limit=-5", "limit='-5' must be an integer"),
        ("limit=1e3", "limit='1e3' must be an integer"),
        ("offset=x", "offset='x' must be an integer from 0"),
        ("sort=seq", "Unknown filter(s): sort"),
        ("since=yesterday", "since='yesterday' is not an RFC 3339 timestamp"),
    ],
)
def test_records_pages_are_bounded_and_bad_values_named(
    http: httpx.Client, query: str, message: str
) -> None:
    r = http.get(f"/api/audit/records?{query}")
    assert r.status_code == 400
    assert message in r.json()["error"]


def test_records_page_through_every_acknowledged_row(http: httpx.Client) -> None:
    ids = _traffic(http, 9)
    pages = [http.get(f"/api/audit/records?limit=4&offset={o}").json() for o in (0, 4, 8)]
    assert [p["count"] for p in pages] == [4, 4, 1]
    seen = [r["context_id"] for p in pages for r in p["records"]]
    assert sorted(seen) == sorted(ids)  # each context once: 5 audited, 4 never audited
    assert http.get("/api/audit/records?limit=10000").json()["count"] == 9


def test_records_next_links_page_through_every_row_once(http: httpx.Client) -> None:
    ids = _traffic(http, 9)
    first = http.get("/api/audit/records?limit=4&client_id=acme").json()
    pages, url = [first], first["next_url"]
    while url is not None:
        pages.append(http.get(url).json())
        url = pages[-1]["next_url"]
    assert [p["count"] for p in pages] == [4, 4, 1]
    assert [p["next"] is None for p in pages] == [False, False, True]
    assert "client_id=acme" in first["next_url"] and "limit=4" in first["next_url"]
    seen = [r for p in pages for r in p["records"]]
    assert sorted(r["context_id"] for r in seen) == sorted(ids)
    by_offset = http.get("/api/audit/records?limit=4&offset=4").json()["records"]
    assert by_offset == pages[1]["records"]  # the same order either way
    again = http.get("/api/audit/records", params={"limit": 4, "after": first["next"]}).json()
    assert again["records"] == pages[1]["records"]


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense!",
        "WyIyMDI2LTAxLTE1VDEyOjAwOjAwLjAwMDAwMFoiLDFd" + "x",  # truncated base64 made invalid
        readback.encode_cursor(("2026-01-15", 1)),  # not a stored timestamp
        readback.encode_cursor(("2026-01-15T12:00:00.000000Z", -1)),
        "WyJhIl0",  # ["a"]
        "eyJzZXEiOjF9",  # {"seq":1}
    ],
)
def test_a_bad_cursor_is_a_400_that_says_what_to_pass(http: httpx.Client, cursor: str) -> None:
    r = http.get("/api/audit/records", params={"after": cursor})
    assert r.status_code == 400
    assert "is not a cursor from this endpoint" in r.json()["error"]
    assert http.get("/health").status_code == 200


def test_after_and_offset_together_are_refused(http: httpx.Client) -> None:
    cursor = readback.encode_cursor(("2026-01-15T12:00:00.000000Z", 1))
    r = http.get("/api/audit/records", params={"after": cursor, "offset": 1})
    assert r.status_code == 400 and "not both" in r.json()["error"]


def test_reads_run_in_a_read_only_process_of_their_own(tmp_path: Path) -> None:
    with AuditStore.open(tmp_path / "r.db") as store:
        store.add_context("c", "u", "q", approved=True)
        store.commit()

        async def main() -> tuple[int, Any, str]:
            reader = Reader(store)
            try:
                await reader.ready()
                assert reader._started is not None
                pid, policy = reader._started.result()
                if hasattr(os, "SCHED_IDLE"):  # Linux: runs only on a CPU nobody else wants
                    assert policy == "SCHED_IDLE"
                page = await reader.call("records", RecordFilter(), {"limit": 10})
                with pytest.raises(ValueError) as info:  # what the worker raised comes back
                    await reader.call("records", RecordFilter(), {"limit": "ten"})
                return pid, page, str(info.value)
            finally:
                reader.close()

        pid, page, error = asyncio.run(main())
    assert pid != os.getpid()
    rows = json.loads(page.json)  # the page comes back encoded, with its count and last key
    assert page.count == len(rows) == 1 and rows[0]["approved"] is True
    assert page.last == (rows[0]["created_at"], rows[0]["seq"])
    assert "limit must be an integer" in error and "'ten'" in error


def test_verify_reports_progress_then_the_result(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    _traffic(http, 12)  # 18 rows
    monkeypatch.setattr(readback, "SEGMENT_ROWS", 4)
    first = http.get("/api/audit/verify?wait=0")
    assert first.status_code == 202
    job = first.json()
    assert job["done"] is False and job["ok"] is None and job["total"] == 18
    assert 0 <= job["checked"] < 18 and 0 <= job["progress"] < 1
    seen = [job["checked"]]
    for _ in range(200):
        r = http.get(f"/api/audit/verify?job={job['job']}&wait=0.05")
        seen.append(r.json()["checked"])
        if r.json()["done"]:
            break
    final = r.json()
    assert r.status_code == 200 and final["ok"] is True and final["checked"] == 18
    assert final["progress"] == 1.0 and final["job"] == job["job"]
    assert seen == sorted(seen)  # progress never goes back


def test_verify_joins_the_running_job_and_refuses_bad_input(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    _traffic(http, 6)
    monkeypatch.setattr(readback, "SEGMENT_ROWS", 1)
    a = http.get("/api/audit/verify?wait=0").json()
    b = http.get("/api/audit/verify?wait=0").json()
    assert a["job"] == b["job"]  # one verification at a time
    assert http.get("/api/audit/verify?job=nope").status_code == 404
    for bad in ("wait=-1", "wait=31", "wait=soon", "jobs=1"):
        r = http.get(f"/api/audit/verify?{bad}")
        assert r.status_code == 400, bad
    done = http.get(f"/api/audit/verify?job={a['job']}&wait=30").json()
    assert done["done"] is True and done["ok"] is True


def test_the_client_waits_for_a_long_verification(
    gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(base_url=gateway.url) as http:
        _traffic(http, 10)
    monkeypatch.setattr(readback, "SEGMENT_ROWS", 2)
    monkeypatch.setattr(readback, "VERIFY_WAIT_S", 0.0)
    with SyncGatewayClient(gateway.url) as client:
        report = client.verify_audit_chain()
    assert report == {"success": True, "ok": True, "checked": 15, "first_broken": None,
                      "problem": None}  # fmt: skip


def test_export_streams_the_whole_filtered_trail_as_json_lines(http: httpx.Client) -> None:
    ids = _traffic(http, 7)
    with http.stream("GET", "/api/audit/export") as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/x-ndjson"
        assert "content-length" not in r.headers  # streamed, not built in memory first
        lines = list(r.iter_lines())
    rows = [json.loads(line) for line in lines]
    assert sorted(r["context_id"] for r in rows) == sorted(ids)
    paged = http.get("/api/audit/records?limit=100").json()["records"]
    assert rows == paged  # the same rows, the same order, the same JSON
    audited = http.get("/api/audit/export?provider=openai").text.splitlines()
    assert len(audited) == 4 and all('"provider":"openai"' in line for line in audited)
    bad = http.get("/api/audit/export?limit=5")
    assert bad.status_code == 400 and "Unknown filter(s): limit" in bad.json()["error"]


def test_export_of_an_in_memory_gateway_streams_too() -> None:
    from helpers.gateway import create_app
    from tests.conftest import ThreadedGateway, hermetic_settings

    app = create_app(hermetic_settings(), db_path=":memory:")
    with ThreadedGateway(app) as gw, httpx.Client(base_url=gw.url) as http:
        ids = _traffic(http, 3)
        rows = [json.loads(line) for line in http.get("/api/audit/export").text.splitlines()]
        assert sorted(r["context_id"] for r in rows) == sorted(ids)
        assert http.get("/api/audit/verify").json()["ok"] is True


def test_a_running_gateway_is_the_files_only_writer(
    make_gateway: Callable[..., Any], tmp_path: Path
) -> None:
    db = tmp_path / "only.db"
    make_gateway(db=db)
    with pytest.raises(ConfigError, match="open in another store"):
        AuditStore.open(db)
    ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True)  # readers are welcome
    assert ro.execute("SELECT COUNT(*) FROM contexts").fetchone() == (0,)
    ro.close()


def test_a_gateway_does_not_start_on_a_file_a_script_has_open(tmp_path: Path) -> None:
    db = tmp_path / "busy.db"
    with AuditStore.open(db):
        with pytest.raises(ConfigError, match="the file's only writer"):
            AuditStore.open(db)
    AuditStore.open(db).close()  # free again once the script closed it
