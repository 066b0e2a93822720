"""Pacing and per-request bookkeeping shared by the OpenAI and Anthropic stand-in routes.

* :func:`pace` releases a reply's tokens at the simulated rate. When the delay per token
  is below a millisecond (fast models, small time scales) it releases several tokens per
  sleep, because ``asyncio.sleep`` cannot wait usefully for less than that.
* :func:`paced_response` sends a planned reply, as a JSON body or an event stream, at its
  simulated time.
* :class:`StandinState` owns the simulator, the fault rates and a request counter. Each
  request gets an RNG seeded from (seed, request body, counter), so identical requests get
  different latency draws, yet a run that sends the same sequence again is reproducible.

Introduced in ``01_gateway_mode_openai.ipynb``.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response, StreamingResponse

from .faults import FaultRates, parse_fail_header
from .latency import SimulatedLatency
from .simulator import Simulator

__all__ = [
    "MIN_SLEEP_S",
    "RECEIVED_KEPT",
    "RequestContext",
    "StandinState",
    "pace",
    "paced_response",
]

MIN_SLEEP_S = 0.001
#: How many request bodies a stand-in keeps for ``GET /standin/received``.
RECEIVED_KEPT = 64
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


async def pace(tokens: Sequence[str], per_token_s: float) -> AsyncIterator[Sequence[str]]:
    """Yield ``tokens`` in batches so token *i* goes out about ``(i + 1) * per_token_s``
    after the call; batches hold every token due within the next :data:`MIN_SLEEP_S`.

    Deadlines are measured from the start, so sleep overshoot does not accumulate.
    """
    if not tokens:
        return
    if per_token_s <= 0:
        yield tokens
        return
    loop = asyncio.get_running_loop()
    start = loop.time()
    i, n = 0, len(tokens)
    while i < n:
        wait = start + (i + 1) * per_token_s - loop.time()
        if wait >= MIN_SLEEP_S:
            await asyncio.sleep(wait)
        due = math.floor((loop.time() - start + MIN_SLEEP_S) / per_token_s)
        j = min(n, max(i + 1, due))
        yield tokens[i:j]
        i = j


async def paced_response(
    latency: SimulatedLatency,
    headers: dict[str, str],
    content: dict[str, Any] | AsyncIterator[str],
) -> Response:
    """A JSON body after the whole simulated reply time, or an event stream from the TTFT on.

    A stream's headers go out with its first token, as a real stream's do, so a client
    timing "first chunk" and one timing "response started" both see the simulated TTFT.
    Both carry the simulated times in ``x-standin-simulated-ttft-ms`` and ``-total-ms``.
    """
    headers = {
        **headers,
        "x-standin-simulated-ttft-ms": f"{latency.ttft_s * 1000:.1f}",
        "x-standin-simulated-total-ms": f"{latency.total_s * 1000:.1f}",
    }
    if isinstance(content, dict):
        if latency.wall_total_s > 0:
            await asyncio.sleep(latency.wall_total_s)
        return JSONResponse(content, headers=headers)
    if latency.wall_ttft_s > 0:
        await asyncio.sleep(latency.wall_ttft_s)
    return StreamingResponse(content, media_type="text/event-stream", headers=headers)


@dataclass(frozen=True)
class RequestContext:
    """What one request is given before it is answered: its number, RNG and ids."""

    number: int
    rng: random.Random
    digest: bytes

    def make_id(self, prefix: str, length: int = 24) -> str:
        """A provider-looking id (``chatcmpl-...``, ``msg_...``), unique per request."""
        value = int.from_bytes(self.digest, "big")
        chars = []
        for _ in range(length):
            value, rem = divmod(value, len(_ALPHABET))
            chars.append(_ALPHABET[rem])
        return prefix + "".join(chars)


class StandinState:
    """The app-wide state of one stand-in server (kept on ``app.state.standin``)."""

    def __init__(self, simulator: Simulator, faults: FaultRates) -> None:
        self.simulator = simulator
        self.faults = faults
        self._counter = itertools.count()
        #: The last bodies received, ``(api, raw JSON)``: what a provider would have seen
        #: (``GET /standin/received``), so a test or a notebook can show it.
        self.received: deque[tuple[str, bytes]] = deque(maxlen=RECEIVED_KEPT)

    @property
    def time_scale(self) -> float:
        return self.simulator.time_scale

    def begin(self, api: str, body: bytes) -> RequestContext:
        """Number the request and seed its RNG from (seed, api, body, number)."""
        number = next(self._counter)
        self.received.append((api, body))
        h = hashlib.sha256(f"{self.simulator.seed}\x1f{api}\x1f{number}\x1f".encode())
        h.update(body)
        digest = h.digest()
        return RequestContext(number, random.Random(int.from_bytes(digest[:8], "big")), digest)

    def fault_for(self, headers: Mapping[str, str], rng: random.Random) -> str | None:
        """The fault to inject, if any. A bad ``x-standin-fail`` raises ``ValueError``.

        The configured-rate draw happens even when the header decides, so the latency
        draws that follow are the same whichever way the fault was chosen.
        """
        drawn = self.faults.draw(rng)
        header = headers.get("x-standin-fail")
        if header:
            rule = parse_fail_header(header)
            raw = headers.get("x-stainless-retry-count", "0")
            retry_count = int(raw) if raw.strip().isdigit() else 0
            return rule.kind if rule.applies(retry_count) else drawn
        return drawn

    def __repr__(self) -> str:
        return f"<StandinState {self.simulator!r} faults={self.faults!r}>"
