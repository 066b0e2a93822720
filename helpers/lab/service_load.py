"""The governed service under load, and the gateway's own view of the same requests.

:func:`load_service` drives ``POST /chat`` (governed) and ``POST /chat/direct`` (the same
model call without governance) of :mod:`helpers.service` in a closed loop at a given
concurrency. Each job is a **pair**: the same message sent both ways, one after the other,
the order alternating from pair to pair, so both arms see the same machine state. The
overhead a user of the service pays is governed minus direct *per pair*, over the pairs
whose governed request was answered: a blocked request skips the model call, and mixing it
in would make governance look faster than no governance. :func:`read_histograms` reads the gateway's
``/prometheus`` histograms (server-side handling time) and :func:`histogram_quantile`
estimates a percentile from the buckets the way Prometheus does, so the notebook can put
the gateway's share beside the client's. Introduced in ``10_real_application.ipynb``.

>>> text = '''m_bucket{le="0.5"} 2
... m_bucket{le="1.0"} 4
... m_bucket{le="+Inf"} 4
... m_sum 2.2
... m_count 4'''
>>> h = read_histograms(text)["m"]
>>> h.count, round(histogram_quantile(h, 0.5), 3)
(4, 0.5)
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from time import perf_counter_ns

import httpx
import numpy as np

from .loop_thread import run_async

__all__ = ["Histogram", "ServiceLoad", "histogram_quantile", "load_service", "read_histograms"]

_LINE = re.compile(r'^(\w+)_bucket\{le="([^"]+)"\} (\S+)$')


@dataclass(frozen=True)
class Histogram:
    """One Prometheus histogram: cumulative ``(upper bound, count)`` buckets, sum, count."""

    name: str
    buckets: tuple[tuple[float, int], ...]
    total: float
    count: int

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def since(self, before: Histogram) -> Histogram:
        """What was observed after ``before`` (an earlier read of the same histogram)."""
        if [b for b, _ in before.buckets] != [b for b, _ in self.buckets]:
            raise ValueError(f"{self.name}: bucket bounds differ between the two reads")
        buckets = tuple(
            (b, n - m) for (b, n), (_, m) in zip(self.buckets, before.buckets, strict=True)
        )
        return Histogram(self.name, buckets, self.total - before.total, self.count - before.count)


def read_histograms(text: str) -> dict[str, Histogram]:
    """Every histogram in a Prometheus text exposition, by metric name."""
    buckets: dict[str, list[tuple[float, int]]] = {}
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if m := _LINE.match(line):
            bound = math.inf if m[2] == "+Inf" else float(m[2])
            buckets.setdefault(m[1], []).append((bound, int(float(m[3]))))
        elif line.startswith("#") or " " not in line:
            continue
        else:
            name, value = line.rsplit(" ", 1)
            if name.endswith("_sum"):
                sums[name[:-4]] = float(value)
            elif name.endswith("_count"):
                counts[name[:-6]] = int(float(value))
    return {
        name: Histogram(name, tuple(b), sums.get(name, 0.0), counts.get(name, 0))
        for name, b in buckets.items()
    }


def histogram_quantile(h: Histogram, q: float) -> float:
    """Percentile ``q`` (0-1) by linear interpolation inside the bucket that holds it."""
    if not 0 <= q <= 1:
        raise ValueError(f"q must be between 0 and 1, got {q}")
    if h.count == 0:
        return math.nan
    rank, lower, below = q * h.count, 0.0, 0
    for bound, cumulative in h.buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bucket: its bound is all we know
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0)
        lower, below = bound, cumulative
    return lower


@dataclass(frozen=True)
class ServiceLoad:
    """Client-side latencies (ms) of governed and direct requests, aligned by pair, the
    governed outcome of each pair, and the outcome counts of all requests."""

    governed_ms: tuple[float, ...]
    direct_ms: tuple[float, ...]
    pair_outcomes: tuple[str, ...]
    outcomes: dict[str, int]
    concurrency: int

    def answered(self) -> tuple[np.ndarray, np.ndarray]:
        """Governed and direct times of the pairs whose governed request was answered."""
        keep = np.asarray([o == "answered" for o in self.pair_outcomes], bool)
        return np.asarray(self.governed_ms)[keep], np.asarray(self.direct_ms)[keep]

    def summary(self) -> dict[str, float]:
        """Over the answered pairs: median and p95 of each arm, and of the per-pair overhead
        (governed minus direct); ``pairs`` says how many pairs that is."""
        g, d = self.answered()
        if g.size == 0:
            raise ValueError("no pair was answered: there is no overhead to report")
        overhead = g - d
        return {
            "pairs": float(g.size),
            "governed_p50_ms": float(np.percentile(g, 50)),
            "direct_p50_ms": float(np.percentile(d, 50)),
            "governed_p95_ms": float(np.percentile(g, 95)),
            "direct_p95_ms": float(np.percentile(d, 95)),
            "overhead_p50_ms": float(np.percentile(overhead, 50)),
            "overhead_p95_ms": float(np.percentile(overhead, 95)),
        }


async def _drive(url: str, messages: list[str], n: int, concurrency: int) -> ServiceLoad:
    pairs: dict[int, dict[str, tuple[float, str]]] = {}
    outcomes: dict[str, int] = {}
    jobs = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def send(path: str, body: dict[str, str]) -> tuple[float, str]:
            t0 = perf_counter_ns()
            r = await client.post(path, json=body)
            ms = (perf_counter_ns() - t0) / 1e6
            outcome = r.json().get("outcome", str(r.status_code))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            return ms, outcome

        async def worker() -> None:
            for i in jobs:
                # One user per request: per-user rate limits would otherwise decide outcomes.
                body = {"user": f"load-{i}", "message": messages[i % len(messages)]}
                order = ("/chat", "/chat/direct") if i % 2 == 0 else ("/chat/direct", "/chat")
                pairs[i] = {path: await send(path, body) for path in order}

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    done = [pairs[i] for i in sorted(pairs)]
    return ServiceLoad(
        governed_ms=tuple(p["/chat"][0] for p in done),
        direct_ms=tuple(p["/chat/direct"][0] for p in done),
        pair_outcomes=tuple(p["/chat"][1] for p in done),
        outcomes=dict(sorted(outcomes.items())),
        concurrency=concurrency,
    )


def load_service(url: str, messages: list[str], n: int = 200, concurrency: int = 8) -> ServiceLoad:
    """``n`` pairs (a governed and a direct request for the same message), ``concurrency``
    pairs at a time.

    The service must run with ``--baseline`` (which serves ``/chat/direct``).
    """
    if n < 1 or concurrency < 1 or not messages:
        raise ValueError("need n >= 1, concurrency >= 1 and at least one message")
    return run_async(lambda: _drive(url, messages, n, concurrency))
