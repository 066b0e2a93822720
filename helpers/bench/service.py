"""The governed web service under concurrent load: ``python -m helpers.bench service``.

Starts the embedded gateway, the provider stand-ins (simulated latency x ``time_scale``) and
``python -m helpers.service --baseline``, each in its own process, then drives ``/chat``
(governed) and ``/chat/direct`` (the same model call, ungoverned) interleaved at the given
concurrency with :func:`helpers.lab.service_load.load_service`. The JSON report has the
machine, both latency distributions, the overhead at p50 and p95, the outcome counts, and
the gateway's own pre-check and audit histograms (from ``/prometheus``) over the run.
Benchmarks are not tests: nothing here fails a build. ``10_real_application.ipynb`` runs
a smaller version.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import httpx

from helpers.lab.machine import machine_info, machine_line, write_report
from helpers.lab.service_load import histogram_quantile, load_service, read_histograms
from helpers.lab.stats import summarize
from helpers.server import start_gateway, start_service, start_standins
from helpers.settings import PROJECT_ROOT

__all__ = ["QUESTIONS", "add_service_arguments", "run_service_bench"]

QUESTIONS = [
    "How do we monitor LLM calls?",
    "What is RAG?",
    "My SSN is 123-45-6789",
    "How do we cut token costs?",
]
_HISTOGRAMS = ("precheck", "audit")


def _gateway_view(url: str) -> dict[str, Any]:
    hist = read_histograms(httpx.get(url + "/prometheus", timeout=10).text)
    out = {}
    for step in _HISTOGRAMS:
        h = hist[f"axonflow_gateway_{step}_duration_milliseconds"]
        out[step] = {
            "count": h.count,
            "mean_ms": h.mean,
            "p50_ms": histogram_quantile(h, 0.5),
            "p95_ms": histogram_quantile(h, 0.95),
            "p99_ms": histogram_quantile(h, 0.99),
        }
    return out


def run_service_bench(n: int, concurrency: int, time_scale: float, out: Path) -> int:
    gateway = start_gateway()
    standins = start_standins(time_scale=time_scale)
    service = None
    try:
        service = start_service(
            "helpers.service", ["--gateway", gateway.url, "--llm-url", standins.url, "--baseline"]
        )
        load_service(service.url, QUESTIONS, n=min(50, n), concurrency=concurrency)  # warm-up
        run = load_service(service.url, QUESTIONS, n=n, concurrency=concurrency)
        report = {
            "benchmark": "service",
            "machine": machine_info(),
            "config": {
                "n": n,
                "concurrency": concurrency,
                "time_scale": time_scale,
                "warmup": min(50, n),
            },
            "outcomes": run.outcomes,
            "governed_ms": summarize(run.governed_ms).as_dict(),
            "direct_ms": summarize(run.direct_ms).as_dict(),
            "overhead": run.summary(),
            "gateway_side_including_warmup": _gateway_view(gateway.url),
        }
    finally:
        for s in (service, standins, gateway):
            if s is not None:
                s.stop()
    write_report(out, report)
    print(machine_line(report["machine"]))
    o = report["overhead"]
    print(f"outcomes {run.outcomes}")
    print(f"overhead p50 {o['overhead_p50_ms']:.2f} ms, p95 {o['overhead_p95_ms']:.2f} ms")
    print(f"governed p50 {o['governed_p50_ms']:.2f} ms, direct p50 {o['direct_p50_ms']:.2f} ms")
    print(f"report: {out}")
    return 0


def add_service_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=500, help="governed (and direct) requests")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    p.add_argument("--time-scale", type=float, default=0.02, help="stand-in latency x S")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "bench-service.json")
