"""Pre-check latency while someone reads the trail: the gateway benchmark's reader section.

A gateway is started on a seeded trail (200,000 rows; 20,000 with ``--quick``). Pre-checks
are timed on the client, sequentially through one keep-alive ``httpx.Client``, in three
phases: with no reader, while a second client verifies the whole chain again and again
(``GET /api/audit/verify``, polled until done), and while it pages through
``GET /api/audit/records`` (1,000 rows a page) again and again. The reader runs in a thread
of this process with its own connection, so the gateway serves both at once, as it would
an operator's notebook and an application.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from helpers.gateway.store import AuditStore
from helpers.lab.stats import summarize
from helpers.server import start_gateway

__all__ = ["reader_section", "seed_trail"]

PAGE = 1000


def seed_trail(db: Path, rows: int) -> float:
    """Write ``rows`` chained rows (pre-check and audit pairs) to ``db``; returns seconds."""
    t0 = time.perf_counter()
    with AuditStore.open(db) as store:
        for i in range(rows // 2):
            ctx = store.add_context(
                "bench", f"user-{i % 50}", f"seeded question {i}", approved=i % 7 != 0,
                policies=["sys_pii_email"] if i % 7 == 0 else [], user_role="engineer",
            )  # fmt: skip
            store.add_audit(ctx.context_id, "bench", "openai", "gpt-4o-mini", prompt_tokens=25,
                            completion_tokens=150, latency_ms=640, cost_usd=0.0001)  # fmt: skip
            if i % 5000 == 4999:
                store.commit()
        store.commit()
    return time.perf_counter() - t0


def _verify_forever(url: str, stop: threading.Event, done: list[float], rows: list[int]) -> None:
    with httpx.Client(base_url=url, timeout=60.0) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            data = client.get("/api/audit/verify", params={"wait": "0.5"}).json()
            while data.get("done") is False and not stop.is_set():
                rows.append(data["checked"])
                data = client.get("/api/audit/verify",
                                  params={"job": data["job"], "wait": "0.5"}).json()  # fmt: skip
            rows.append(data.get("checked", 0))
            if data.get("done") and data.get("ok"):
                done.append(time.perf_counter() - t0)


def _page_forever(url: str, stop: threading.Event, done: list[float], rows: list[int]) -> None:
    with httpx.Client(base_url=url, timeout=60.0) as client:
        offset = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            r = client.get("/api/audit/records", params={"limit": PAGE, "offset": offset})
            count = r.json().get("count", 0)
            done.append(time.perf_counter() - t0)
            rows.append(count)
            offset = offset + PAGE if count == PAGE else 0


def _pre_checks(url: str, n: int, warmup: int, user: str) -> tuple[list[float], int]:
    samples: list[float] = []
    errors = 0
    with httpx.Client(base_url=url, timeout=10.0) as client:
        for i in range(warmup + n):
            body = {"user_token": user, "client_id": "bench", "query": f"How do I plan {i}?"}
            t0 = time.perf_counter_ns()
            r = client.post("/api/policy/pre-check", json=body)
            r.json()
            dt = (time.perf_counter_ns() - t0) / 1e6
            errors += r.status_code != 200
            if i >= warmup:
                samples.append(dt)
    return samples, errors


Reader = Callable[[str, threading.Event, list[float], list[int]], None]


def _phase(url: str, n: int, warmup: int, user: str, reader: Reader | None) -> dict[str, Any]:
    stop, done, rows = threading.Event(), [], []
    thread = None
    if reader is not None:
        thread = threading.Thread(target=reader, args=(url, stop, done, rows), daemon=True)
        thread.start()
        time.sleep(0.5)  # the reader is under way before the first timed pre-check
    t0 = time.perf_counter()
    samples, errors = _pre_checks(url, n, warmup, user)
    seconds = time.perf_counter() - t0
    stop.set()
    if thread is not None:
        thread.join(timeout=120)
    out: dict[str, Any] = {"pre_check": summarize(samples).as_dict(), "errors": errors,
                           "seconds": round(seconds, 2)}  # fmt: skip
    if reader is not None:
        # Whole verifications (or pages) finished, how long each took, and rows read: the
        # rows checked so far by the verification running when the phase ended, or the
        # rows of every page.
        out["reader_steps_done"] = len(done)
        out["reader_step_s"] = summarize(done).as_dict() if done else None
        out["reader_rows"] = (rows[-1] if rows else 0) if reader is _verify_forever else sum(rows)
    return out


def reader_section(
    tmp: Path, rows: int, n: int, warmup: int, user: str, pin: Callable[[int | None], Any]
) -> dict[str, Any]:
    """Seed a trail of ``rows`` rows, then time pre-checks idle, during verify, during paging."""
    db = tmp / "bench-readers.db"
    seconds = seed_trail(db, rows)
    with start_gateway(db_path=db) as gw, pin(gw.pid) as pinning:
        # The first read waits for the gateway's reader process to be up: not in any phase.
        httpx.get(f"{gw.url}/api/audit/records", params={"limit": 1}, timeout=60.0)
        idle = _phase(gw.url, n, warmup, user, None)
        verify = _phase(gw.url, n, warmup, user, _verify_forever)
        records = _phase(gw.url, n, warmup, user, _page_forever)
    base = idle["pre_check"]["p50"]
    return {
        "rows": rows,
        "seed_s": round(seconds, 2),
        "pinning": pinning,
        "client": f"httpx.Client {httpx.__version__}, keep-alive, sequential pre-checks; the "
        "reader is a second httpx.Client in a thread of the benchmark",
        "idle": idle,
        "during_verify": verify,
        "during_records": records,
        "verify_p50_shift_ms": verify["pre_check"]["p50"] - base,
        "records_p50_shift_ms": records["pre_check"]["p50"] - base,
        "records_page_rows": PAGE,
    }
