"""The floor under every gateway number: the decision itself, and the HTTP client carrying it.

Two measurements, both on the client with ``perf_counter_ns``:

* :func:`decision_times`: :meth:`helpers.gateway.engine.DecisionEngine.decide` in process, no
  network at all: what the policy check itself costs.
* :func:`measure_floor`: per HTTP client library, ``GET /health`` (the transport floor: the
  same client, the same server, no work behind it), the pre-check and the audit. Each
  iteration visits every library in a random order and, inside each, the health call and
  the pre-check + audit in a random order, so drift on a shared machine hits all alike.
  ``httpx.AsyncClient``, ``aiohttp`` and ``httpx.Client`` go through this project's
  :mod:`helpers.client`; ``http.client`` is the standard library with nothing on top, the
  raw floor of Python HTTP.

Introduced in ``04_measurement_method.ipynb``.

>>> floor = measure_floor(stack, n=300)                             # doctest: +SKIP
>>> floor.table().loc["aiohttp", "pre_check_p50_ms"]                # doctest: +SKIP
"""

from __future__ import annotations

import http.client
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from helpers.corpus import CorpusRow, load_corpus
from helpers.gateway.engine import DecisionEngine
from helpers.settings import Settings

from .load_results import LOAD_USER
from .loop_thread import run_async
from .stats import paired_differences
from .timing import timed_call
from .workload import user_for

__all__ = [
    "LIBRARIES",
    "FloorResult",
    "RawHTTPClient",
    "approved_work",
    "decision_times",
    "measure_floor",
]

#: Client libraries compared, from the raw floor up.
LIBRARIES = ("http.client", "aiohttp", "httpx.AsyncClient", "httpx.Client")
_STEPS = ("health", "pre_check", "audit")


def decision_times(
    rows: Sequence[CorpusRow] | None = None,
    *,
    passes: int = 5,
    load_user: str = LOAD_USER,
    settings: Settings | None = None,
) -> np.ndarray:
    """In-process decision time (ms) for every corpus row, ``passes`` times, after one
    discarded warm-up pass. Rate limits are off: this is the policy check alone."""
    rows = list(load_corpus() if rows is None else rows)
    engine = DecisionEngine.from_settings(settings or Settings.load(), rate_limits=False)
    work = [(r.query, user_for(r, load_user)) for r in rows]
    for query, user in work:
        engine.decide(query, user)
    out = []
    for _ in range(passes):
        for query, user in work:
            t0 = perf_counter_ns()
            engine.decide(query, user)
            out.append((perf_counter_ns() - t0) / 1e6)
    return np.asarray(out)


class RawHTTPClient:
    """The standard library's ``http.client`` on one keep-alive connection: JSON in, JSON
    out, no retries, no pool, no headers beyond what HTTP/1.1 needs."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self._conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=timeout
        )

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        self._conn.request(method, path, body=data, headers=headers)
        resp = self._conn.getresponse()
        return resp.status, json.loads(resp.read())

    def close(self) -> None:
        self._conn.close()

    def __repr__(self) -> str:
        return f"<RawHTTPClient {self._conn.host}:{self._conn.port}>"


@dataclass(frozen=True, eq=False)
class FloorResult:
    """Samples in ms: ``samples[library][step]`` with steps health, pre_check and audit,
    aligned by iteration; ``decision_ms`` is the in-process decision."""

    samples: dict[str, dict[str, np.ndarray]]
    decision_ms: np.ndarray = field(default_factory=lambda: np.empty(0))
    warmup: int = 0

    @property
    def n(self) -> int:
        return min((len(s["health"]) for s in self.samples.values()), default=0)

    def table(self) -> pd.DataFrame:
        """Per library: p50 of each call, and p50/p99 of the per-iteration differences
        above the same library's ``/health`` floor (the gateway's own cost)."""
        rows = {}
        for lib, s in self.samples.items():
            pre_above = paired_differences(s["pre_check"], s["health"])
            audit_above = paired_differences(s["audit"], s["health"])
            gov = s["pre_check"] + s["audit"]
            rows[lib] = {
                "n": len(s["health"]),
                "health_p50_ms": float(np.median(s["health"])),
                "pre_check_p50_ms": float(np.median(s["pre_check"])),
                "audit_p50_ms": float(np.median(s["audit"])),
                "pre_check_above_floor_p50_ms": float(np.median(pre_above)),
                "audit_above_floor_p50_ms": float(np.median(audit_above)),
                "governance_p50_ms": float(np.median(gov)),
                "governance_p99_ms": float(np.percentile(gov, 99)),
            }
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "client library"
        return table

    def decomposition(self, library: str = "httpx.AsyncClient") -> pd.DataFrame:
        """Medians (ms) splitting pre-check and audit into: the in-process decision (pre-check
        only), the transport floor, and the gateway's remaining cost above both."""
        s = self.samples[library]
        floor = float(np.median(s["health"]))
        decision = float(np.median(self.decision_ms)) if self.decision_ms.size else 0.0
        pre_above = float(np.median(paired_differences(s["pre_check"], s["health"])))
        audit_above = float(np.median(paired_differences(s["audit"], s["health"])))
        return pd.DataFrame(
            {
                "decision (in process)": [decision, 0.0],
                "HTTP transport floor (/health)": [floor, floor],
                "gateway's own cost above the floor": [max(pre_above - decision, 0.0), audit_above],
            },
            index=pd.Index(["pre-check", "audit"], name="step"),
        )

    def frame(self) -> pd.DataFrame:
        """Long format: library, step, iteration, ms."""
        parts = [
            pd.DataFrame({"library": lib, "step": step, "iteration": np.arange(len(v)), "ms": v})
            for lib, s in self.samples.items()
            for step, v in s.items()
        ]
        return pd.concat(parts, ignore_index=True)

    def __repr__(self) -> str:
        return f"<FloorResult libraries={list(self.samples)} n={self.n} warmup={self.warmup}>"


def approved_work(
    rows: Sequence[CorpusRow] | None = None, load_user: str = LOAD_USER, seed: int = 7
) -> list[tuple[str, str]]:
    """``(query, user_token)`` for every approved corpus row, in a seeded random order."""
    rows = load_corpus() if rows is None else rows
    work = [(r.query, user_for(r, load_user)) for r in rows if r.expected_approved]
    random.Random(seed).shuffle(work)
    return work


async def _atimed(coro: Any) -> tuple[float, Any]:
    t0 = perf_counter_ns()
    out = await coro
    return (perf_counter_ns() - t0) / 1e6, out


_AUDIT_ARGS = ("openai", "gpt-4o-mini", {"prompt_tokens": 12, "completion_tokens": 48})


async def _visit(
    lib: str, client: Any, query: str, user: str, order: list[str]
) -> dict[str, float]:
    """One library, one iteration: health and (pre-check, then its audit) in ``order``."""
    out: dict[str, float] = {}
    for what in order:
        if lib == "http.client":
            if what == "health":
                out["health"], _ = timed_call(client.request, "GET", "/health")
                continue
            body = {"user_token": user, "client_id": "community", "query": query}
            out["pre_check"], (_, ctx) = timed_call(
                client.request, "POST", "/api/policy/pre-check", body
            )
            audit = {
                "context_id": ctx["context_id"],
                "client_id": "community",
                "provider": _AUDIT_ARGS[0],
                "model": _AUDIT_ARGS[1],
                "token_usage": {**_AUDIT_ARGS[2], "total_tokens": 60},
            }
            out["audit"], _ = timed_call(client.request, "POST", "/api/audit/llm-call", audit)
        elif lib == "httpx.Client":
            if what == "health":
                out["health"], _ = timed_call(client.health)
                continue
            out["pre_check"], ctx = timed_call(client.pre_check, query, user)
            out["audit"], _ = timed_call(client.audit, ctx.context_id, *_AUDIT_ARGS)
        else:
            if what == "health":
                out["health"], _ = await _atimed(client.health())
                continue
            out["pre_check"], ctx = await _atimed(client.pre_check(query, user))
            out["audit"], _ = await _atimed(client.audit(ctx.context_id, *_AUDIT_ARGS))
    return out


async def _measure(
    stack: Any,
    libraries: Sequence[str],
    work: list[tuple[str, str]],
    n: int,
    warmup: int,
    seed: int,
) -> dict[str, dict[str, np.ndarray]]:
    clients: dict[str, Any] = {}
    for lib in libraries:
        if lib == "http.client":
            clients[lib] = RawHTTPClient(stack.gateway.url)
        elif lib == "httpx.Client":
            clients[lib] = stack.sync_gateway_client()
        elif lib in ("httpx.AsyncClient", "aiohttp"):
            clients[lib] = stack.gateway_client(
                transport="httpx" if lib.startswith("httpx") else "aiohttp"
            )
        else:
            raise ValueError(f"unknown client library {lib!r}; choose from {LIBRARIES}")
    rng = random.Random(seed)
    samples: dict[str, dict[str, list[float]]] = {lib: {s: [] for s in _STEPS} for lib in libraries}
    try:
        for i in range(warmup + n):
            query, user = work[i % len(work)]
            for lib in rng.sample(list(libraries), len(libraries)):
                order = rng.sample(["health", "governed"], 2)
                got = await _visit(lib, clients[lib], query, user, order)
                if i >= warmup:
                    for step in _STEPS:
                        samples[lib][step].append(got[step])
    finally:
        for lib, client in clients.items():
            if lib in ("httpx.AsyncClient", "aiohttp"):
                await client.aclose()
            else:
                client.close()
    return {lib: {s: np.asarray(v) for s, v in steps.items()} for lib, steps in samples.items()}


def measure_floor(
    stack: Any,
    *,
    n: int = 300,
    warmup: int = 30,
    libraries: Sequence[str] = LIBRARIES,
    rows: Sequence[CorpusRow] | None = None,
    load_user: str = LOAD_USER,
    seed: int = 7,
    decision_passes: int = 5,
) -> FloorResult:
    """Measure every library against ``stack``'s gateway, and the in-process decision.

    Approved corpus queries only, sent as :func:`helpers.lab.workload.user_for` decides; the
    first ``warmup`` iterations are discarded (connection set-up, first-call costs).
    """
    rows = [r for r in (load_corpus() if rows is None else rows) if r.expected_approved]
    work = approved_work(rows, load_user, seed)
    samples = run_async(lambda: _measure(stack, libraries, work, n, warmup, seed))
    decisions = decision_times(
        rows, passes=decision_passes, load_user=load_user, settings=stack.settings
    )
    return FloorResult(samples, decisions, warmup)
