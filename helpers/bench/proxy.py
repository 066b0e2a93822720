"""The proxy benchmark: what the proxy hop adds, beside gateway mode's governance overhead.

``python -m helpers.bench proxy [--quick]`` runs, offline by default, against one embedded
gateway with proxy mode on and the provider stand-ins (no simulated delay by default: the
differences do not depend on it, their noise does):

1. verdicts: every labelled corpus query through the pre-check and through
   ``/api/request`` (``skip_llm``), counted against its label and against each other;
2. paired modes (:func:`helpers.lab.proxy_modes.measure_modes`): per query, the direct
   call, gateway mode (pre-check + call + audit), ``/api/request``, the OpenAI-compatible
   endpoint, and a stream directly and through the gateway, in random order per query.

It writes a JSON report with the machine, n, errors, full percentiles of every mode and of
every paired difference (gateway mode's overhead, the proxy hop's added latency and TTFT).
Benchmarks are not tests: nothing here fails a build. Explained in ``11_proxy_mode.ipynb``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import httpx

from helpers.corpus import load_corpus
from helpers.lab.machine import machine_info, machine_line, write_report
from helpers.lab.proxy_modes import approved_queries, measure_modes
from helpers.lab.stats import summarize
from helpers.lab.workload import user_for
from helpers.proxy_stack import start_proxy_stack
from helpers.settings import PROJECT_ROOT

__all__ = ["build_parser", "main", "proxy_verdicts", "run_proxy_bench"]


def proxy_verdicts(url: str) -> dict[str, int]:
    """Each corpus row through the pre-check and ``/api/request``: as labelled, and alike."""
    rows = load_corpus()
    labelled = agree = 0
    with httpx.Client(base_url=url, timeout=30) as http:
        for row in rows:
            body = {"query": row.query, "user_token": user_for(row)}  # roles kept, no rate limit
            pre = http.post("/api/policy/pre-check", json={**body, "client_id": "community"})
            proxied = http.post("/api/request", json={**body, "skip_llm": True})
            approved = proxied.status_code == 200
            labelled += approved == row.expected_approved
            agree += approved == pre.json()["approved"]
    return {"decisions": len(rows), "as_labelled": labelled, "same_as_pre_check": agree}


def run_proxy_bench(
    *, quick: bool = False, out: Path, n: int | None = None, time_scale: float = 0.0
) -> int:
    n = n or (150 if quick else 1000)
    report: dict[str, Any] = {"benchmark": "proxy", "quick": quick, "machine": machine_info()}
    with start_proxy_stack(time_scale=time_scale) as stack:
        report["backends"] = stack.describe()
        print(
            "1/2 verdicts: the labelled corpus through pre-check and /api/request ...", flush=True
        )
        report["verdicts"] = proxy_verdicts(stack.gateway.url)
        print(f"2/2 paired modes: {n} queries, six ways each, random order ...", flush=True)
        run = measure_modes(stack, approved_queries(n, seed=1))
    frame = run.frame
    report["n"] = run.n
    report["errors"] = run.errors
    report["error_examples"] = list(run.error_examples)
    report["time_scale"] = time_scale
    report["note"] = (
        "client-side times; the stand-in's simulated provider latency is scaled by time_scale "
        "(0 = none), so every difference below is governance and proxying, measured"
    )
    columns = [c for c in frame.columns if c.endswith("_ms")]
    report["modes_ms"] = {
        c.removesuffix("_ms"): summarize(frame[c]).as_dict(digits=4) for c in columns
    }
    report["overhead_ms"] = {k: summarize(v).as_dict(digits=4) for k, v in run.overheads().items()}
    write_report(out, report)
    _print(report)
    print(f"\nreport written to {out}")
    return 0


def _print(r: dict[str, Any]) -> None:
    print(f"\n{machine_line(r['machine'])}")
    v = r["verdicts"]
    print(
        f"verdicts: {v['as_labelled']}/{v['decisions']} as labelled, "
        f"{v['same_as_pre_check']}/{v['decisions']} the same as the pre-check"
    )
    print(f"paired queries: {r['n']}, errors: {r['errors']}, time scale x{r['time_scale']:g}")
    print(
        f"\n{'added to the direct call (ms)':<32}{'n':>6}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}"
    )
    for label, s in r["overhead_ms"].items():
        print(
            f"{label:<32}{s['n']:>6}{s['p50']:>9.3f}{s['p90']:>9.3f}{s['p99']:>9.3f}{s['max']:>9.3f}"
        )


def build_parser(prog: str = "python -m helpers.bench proxy") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Proxy mode against gateway mode: added latency, TTFT, verdicts.",
    )
    p.add_argument("--quick", action="store_true", help="small sample (150 queries)")
    p.add_argument("--n", type=int, help="paired queries (default 1000)")
    p.add_argument(
        "--time-scale", type=float, default=0.0, help="stand-in simulated latency x S (default 0)"
    )
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "bench-proxy.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_proxy_bench(quick=args.quick, out=args.out, n=args.n, time_scale=args.time_scale)


if __name__ == "__main__":
    sys.exit(main())
