"""Gateway mode against proxy mode, paired per query, timed on the client.

For each query, in a random order per query, against the same gateway and stand-ins:

* ``direct``: the app's own OpenAI call (no governance at all);
* ``gateway``: pre-check, the same direct call, audit (gateway mode, three requests);
* ``proxy``: one ``POST /api/request`` carrying the LLM call (the body the official SDK
  sends; timed through a plain ``httpx.Client`` so the SDK's own overhead is not counted);
* ``proxy_openai``: the ``openai`` SDK pointed at the gateway's ``/v1/chat/completions``;
* ``direct_stream`` and ``proxy_stream``: the same call streamed, directly and through the
  gateway, with time to first token (TTFT) and to the last chunk.

Overheads are per-query differences against ``direct`` (``MEASURING.md``: paired, same
provider stand-in, interleaved in random order). Introduced in ``11_proxy_mode.ipynb``;
``python -m helpers.bench proxy`` runs it at scale.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pandas as pd

from helpers.client import LLMReply, SyncGatewayClient, call_llm_sync
from helpers.corpus import load_corpus

from .load_results import LOAD_USER
from .timing import timed_call

__all__ = ["MODES", "ModeRun", "approved_queries", "measure_modes", "proxy_request_body"]

MODES = ("direct", "gateway", "proxy", "proxy_openai", "direct_stream", "proxy_stream")
MODEL = "gpt-4o-mini"


def approved_queries(n: int, seed: int = 0) -> list[str]:
    """``n`` benign corpus queries labelled approved (cycled if needed), in a seeded order."""
    pool = [row.query for row in load_corpus() if row.family == "benign" and row.expected_approved]
    random.Random(seed).shuffle(pool)
    return [pool[i % len(pool)] for i in range(n)]


def proxy_request_body(query: str, user_token: str = LOAD_USER) -> dict[str, Any]:
    """The body of ``POST /api/request`` carrying one chat call, as the official SDK sends it."""
    return {
        "query": query,
        "user_token": user_token,
        "client_id": None,
        "request_type": "chat",
        "context": {"provider": "openai", "model": MODEL},
        "media": None,
        "skip_llm": None,
    }


@dataclass(frozen=True)
class ModeRun:
    """One row per query: each mode's client-side time in ms, and TTFT for the streams."""

    frame: pd.DataFrame = field(repr=False)
    time_scale: float
    errors: int
    error_examples: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.frame)

    def overheads(self) -> dict[str, np.ndarray]:
        """Per-query differences in ms: what each way of governing adds to the direct call."""
        f = self.frame
        return {
            "gateway_mode": (f["gateway_ms"] - f["direct_ms"]).to_numpy(),
            "proxy_request": (f["proxy_ms"] - f["direct_ms"]).to_numpy(),
            "proxy_openai": (f["proxy_openai_ms"] - f["direct_ms"]).to_numpy(),
            "proxy_ttft_added": (f["proxy_stream_ttft_ms"] - f["direct_stream_ttft_ms"]).to_numpy(),
            "proxy_stream_added": (f["proxy_stream_ms"] - f["direct_stream_ms"]).to_numpy(),
        }

    def __repr__(self) -> str:
        return f"<ModeRun n={self.n} errors={self.errors} time_scale=x{self.time_scale:g}>"


def _stream(client: Any, query: str) -> tuple[float, float]:
    """(TTFT, total) in ms for one streamed answer."""
    reply = call_llm_sync(client, MODEL, [{"role": "user", "content": query}], stream=True)
    total = reply.latency_ms
    return (total if reply.ttft_ms is None else reply.ttft_ms), total


def measure_modes(
    stack: Any,
    queries: Sequence[str],
    *,
    user_token: str = LOAD_USER,
    seed: int = 0,
    warmup: int = 5,
) -> ModeRun:
    """Every mode for every query, in a random order per query (``stack`` from
    :func:`helpers.proxy_stack.start_proxy_stack`). The first ``warmup`` queries are run
    and discarded (connections, imports)."""
    import openai

    rng = random.Random(seed)
    direct = stack.openai_client(max_retries=0)
    proxied = openai.OpenAI(
        base_url=stack.gateway.url + "/v1", api_key="governed-by-gateway", max_retries=0
    )
    gateway = SyncGatewayClient(url=stack.gateway.url, settings=stack.settings)
    http = httpx.Client(base_url=stack.gateway.url, timeout=30)
    messages = lambda q: [{"role": "user", "content": q}]  # noqa: E731

    def run_direct(q: str) -> LLMReply:
        return call_llm_sync(direct, MODEL, messages(q))

    def run_gateway(q: str) -> None:
        pre = gateway.pre_check(q, user_token)
        if not pre.approved:
            raise RuntimeError(f"pre-check blocked a query labelled approved: {q!r}")
        answer = run_direct(q)
        gateway.audit(
            pre.context_id, "openai", MODEL, answer.usage, latency_ms=round(answer.latency_ms)
        )

    def run_proxy(q: str) -> None:
        r = http.post("/api/request", json=proxy_request_body(q, user_token))
        if r.status_code != 200 or not r.json().get("success"):
            raise RuntimeError(f"/api/request failed: {r.status_code} {r.text[:200]}")

    def run_proxy_openai(q: str) -> None:
        call_llm_sync(proxied, MODEL, messages(q), user=user_token)

    steps: dict[str, Callable[[str], Any]] = {
        "direct": run_direct,
        "gateway": run_gateway,
        "proxy": run_proxy,
        "proxy_openai": run_proxy_openai,
    }
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    proxied_stream = proxied.with_options(default_headers={"X-User-Token": user_token})
    try:
        for i, q in enumerate([*queries[:warmup], *queries]):
            order = list(MODES)
            rng.shuffle(order)
            row: dict[str, Any] = {"query_index": i - warmup}
            try:
                for mode in order:
                    if mode == "direct_stream":
                        row["direct_stream_ttft_ms"], row["direct_stream_ms"] = _stream(direct, q)
                    elif mode == "proxy_stream":
                        row["proxy_stream_ttft_ms"], row["proxy_stream_ms"] = _stream(
                            proxied_stream, q
                        )
                    else:
                        row[f"{mode}_ms"] = timed_call(steps[mode], q)[0]
            except (openai.OpenAIError, httpx.HTTPError, RuntimeError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            if i >= warmup:
                row["order"] = ",".join(order)
                rows.append(row)
    finally:
        http.close()
        gateway.close()
        direct.close()
        proxied.close()
    return ModeRun(pd.DataFrame(rows), stack.time_scale, len(errors), tuple(errors[:5]))
