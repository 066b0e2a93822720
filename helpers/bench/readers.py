"""Pre-check latency while someone reads the trail: the gateway benchmark's reader section.

A gateway is started on a seeded trail (200,000 rows; 20,000 with ``--quick``). Pre-checks
are timed on the client, sequentially through one keep-alive ``httpx.Client``, in three
conditions: with no reader, while another client verifies the whole chain again and again
(``GET /api/audit/verify``, polled until done), and while it pages through
``GET /api/audit/records`` (1,000 rows a page, following ``next``) again and again. The
reader is a process of its own, as an operator's notebook beside an application would be.

The machine is shared and its load drifts, so the conditions are interleaved: ``rounds``
rounds, each running the three in a shuffled order with ``n / rounds`` pre-checks, and the
samples of each condition pooled. A verification still running when its block ends is
waited for, so it never spills into the next block. Each round's p50 is reported too.
"""

from __future__ import annotations

import multiprocessing
import random
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
                "bench",
                f"user-{i % 50}",
                f"seeded question {i}",
                approved=i % 7 != 0,
                policies=["sys_pii_email"] if i % 7 == 0 else [],
                user_role="engineer",
            )
            store.add_audit(
                ctx.context_id,
                "bench",
                "openai",
                "gpt-4o-mini",
                prompt_tokens=25,
                completion_tokens=150,
                latency_ms=640,
                cost_usd=0.0001,
            )
            if i % 5000 == 4999:
                store.commit()
        store.commit()
    return time.perf_counter() - t0


def _verify_forever(url: str, stop: Any, ready: Any, out: Any) -> None:
    done: list[float] = []
    rows, data = 0, {}
    with httpx.Client(base_url=url, timeout=60.0) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            data = client.get("/api/audit/verify", params={"wait": "0.5"}).json()
            ready.set()
            while data.get("done") is False and not stop.is_set():
                data = client.get(
                    "/api/audit/verify", params={"job": data["job"], "wait": "0.5"}
                ).json()
            rows = data.get("checked", 0)
            if data.get("done") and data.get("ok"):
                done.append(time.perf_counter() - t0)
        while data.get("done") is False:  # let it finish: the next block starts quiet
            data = client.get("/api/audit/verify", params={"job": data["job"], "wait": "5"}).json()
    out.put((done, rows))


def _page_forever(url: str, stop: Any, ready: Any, out: Any) -> None:
    done: list[float] = []
    rows = 0
    with httpx.Client(base_url=url, timeout=60.0) as client:
        after = None
        while not stop.is_set():
            t0 = time.perf_counter()
            params: dict[str, Any] = (
                {"limit": PAGE} if after is None else {"limit": PAGE, "after": after}
            )
            data = client.get("/api/audit/records", params=params).json()
            ready.set()
            done.append(time.perf_counter() - t0)
            rows += data.get("count", 0)
            after = data.get("next")  # None at the end: start again from the first row
    out.put((done, rows))


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


Reader = Callable[[str, Any, Any, Any], None]
_READERS: dict[str, Reader | None] = {
    "idle": None,
    "verify": _verify_forever,
    "records": _page_forever,
}


def _block(url: str, n: int, warmup: int, user: str, reader: Reader | None) -> dict[str, Any]:
    """One block of pre-checks, with ``reader`` running in a process of its own."""
    ctx = multiprocessing.get_context("spawn")
    stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = None
    if reader is not None:
        proc = ctx.Process(target=reader, args=(url, stop, ready, out), daemon=True)
        proc.start()
        # The reader is under way (started, imported, answered once) before the first timed
        # pre-check, so its start-up is not counted as reading.
        if not ready.wait(timeout=120):
            raise RuntimeError("the benchmark's reader process did not start")
    t0 = time.perf_counter()
    samples, errors = _pre_checks(url, n, warmup, user)
    seconds = time.perf_counter() - t0
    done: list[float] = []
    rows = 0
    if proc is not None:
        stop.set()
        done, rows = out.get(timeout=300)
        proc.join(timeout=60)
    return {"samples": samples, "errors": errors, "seconds": seconds, "done": done, "rows": rows}


def _pooled(blocks: list[dict[str, Any]], reading: bool) -> dict[str, Any]:
    samples = [x for b in blocks for x in b["samples"]]
    out: dict[str, Any] = {
        "pre_check": summarize(samples).as_dict(),
        "errors": sum(b["errors"] for b in blocks),
        "seconds": round(sum(b["seconds"] for b in blocks), 2),
        "p50_by_round": [round(summarize(b["samples"]).p50, 3) for b in blocks],
    }
    if reading:
        # Whole verifications (or pages) finished, how long each took, and rows read.
        done = [x for b in blocks for x in b["done"]]
        out["reader_steps_done"] = len(done)
        out["reader_step_s"] = summarize(done).as_dict() if done else None
        out["reader_rows"] = sum(b["rows"] for b in blocks)
    return out


def reader_section(
    tmp: Path,
    rows: int,
    n: int,
    warmup: int,
    user: str,
    pin: Callable[[int | None], Any],
    rounds: int = 5,
) -> dict[str, Any]:
    """Seed a trail of ``rows`` rows, then time pre-checks idle, during verify, during
    paging: ``rounds`` interleaved rounds of ``n / rounds`` pre-checks per condition."""
    db = tmp / "bench-readers.db"
    seconds = seed_trail(db, rows)
    blocks: dict[str, list[dict[str, Any]]] = {name: [] for name in _READERS}
    order = random.Random(11)
    per_block, warm = max(1, n // rounds), max(1, warmup // rounds)
    with start_gateway(db_path=db) as gw, pin(gw.pid) as pinning:
        # The first read waits for the gateway's reader process to be up: not in any block.
        httpx.get(f"{gw.url}/api/audit/records", params={"limit": 1}, timeout=60.0)
        for _ in range(rounds):
            names = list(_READERS)
            order.shuffle(names)
            for name in names:
                blocks[name].append(_block(gw.url, per_block, warm, user, _READERS[name]))
    idle, verify, records = (_pooled(blocks[k], k != "idle") for k in _READERS)
    base = idle["pre_check"]["p50"]
    return {
        "rows": rows,
        "seed_s": round(seconds, 2),
        "pinning": pinning,
        "rounds": rounds,
        "client": f"httpx.Client {httpx.__version__}, keep-alive, sequential pre-checks; the "
        "reader is a second httpx.Client in a process of its own",
        "idle": idle,
        "during_verify": verify,
        "during_records": records,
        "verify_p50_shift_ms": verify["pre_check"]["p50"] - base,
        "records_p50_shift_ms": records["pre_check"]["p50"] - base,
        "records_page_rows": PAGE,
    }
