"""The replies benchmark: what inspecting a streamed answer costs.

``python -m helpers.bench replies [--quick]`` starts a paced upstream (a stand-in:
:mod:`.paced_upstream`) and two embedded gateways in front of it under ``PII_ACTION=redact``,
one with reply inspection on and one with ``GATEWAY_INSPECT_REPLIES=false``, then measures,
client-side, in random order per round:

1. time to first token: directly from the upstream, through each gateway; and the arrival
   time of the hold-back window (the first ``HOLD_BACK + 1`` characters, directly), which is
   what inspection may add by design;
2. a 100 KB answer streamed as fast as the upstream can, with one card and one SSN per
   10,000 characters (``sparse``) and in every sentence (``dense``, the worst case):
   characters per second through each gateway and the gateway's CPU time per answer (from
   ``/proc``).

It checks that every inspected answer came back with the identifiers redacted, and writes a
JSON report. Benchmarks are not tests. Explained in ``docs/gateway.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from helpers.gateway.replies import HOLD_BACK
from helpers.lab.machine import cpu_seconds, machine_info, machine_line, write_report
from helpers.lab.stats import summarize
from helpers.server import RunningService, start_gateway, start_service
from helpers.settings import PROJECT_ROOT

__all__ = ["main", "run_replies_bench"]

_ASK = {
    "model": "gpt-4o-mini",
    "stream": True,
    "messages": [{"role": "user", "content": "Summarise the customer record."}],
}
_HEADERS = {"X-User-Token": "svc-loadtest"}


def _stream(http: httpx.Client, url: str, window: int) -> tuple[float, float, float, str]:
    """One streamed answer: (TTFT, time to ``window`` characters, total time) in ms, text."""
    t0 = time.perf_counter()
    first = at_window = None
    parts: list[str] = []
    size = 0
    with http.stream("POST", url, json=_ASK, headers=_HEADERS) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            text = (choices[0].get("delta") or {}).get("content") or ""
            if not text:
                continue
            now = time.perf_counter()
            first = first or now
            size += len(text)
            if at_window is None and size >= window:
                at_window = now
            parts.append(text)
    end = time.perf_counter()
    ms = lambda t: ((t or end) - t0) * 1000  # noqa: E731
    return ms(first), ms(at_window), ms(end), "".join(parts)


def _gateways(upstream: str) -> dict[str, RunningService]:
    env = {
        "OPENAI_API_KEY": "paced-stand-in",
        "OPENAI_BASE_URL": upstream + "/v1",
        "GATEWAY_PROVIDER_RETRIES": "0",
        "PII_ACTION": "redact",
    }
    return {
        "inspection on": start_gateway(env=env),
        "inspection off": start_gateway(env={**env, "GATEWAY_INSPECT_REPLIES": "false"}),
    }


def _bulk(
    http: httpx.Client, gw: RunningService, rounds: int, *, check: bool
) -> tuple[dict[str, float], bool]:
    """``rounds`` 100 KB answers through ``gw``: throughput and the gateway's CPU per answer;
    and, when ``check``, whether every card number in them was redacted."""
    url = gw.url + "/v1/chat/completions"
    _stream(http, url, 1)  # warm-up, discarded
    cpu0, t0, chars, clean = cpu_seconds(gw.pid), time.perf_counter(), 0, True
    for _ in range(rounds):
        text = _stream(http, url, 1)[3]
        chars += len(text)
        clean &= not check or "4111" not in text
    wall, cpu = time.perf_counter() - t0, cpu_seconds(gw.pid) - cpu0
    stats = {
        "chars_per_s": round(chars / wall),
        "gateway_cpu_ms_per_answer": round(cpu / rounds * 1000, 1),
        "answer_chars": chars // rounds,
    }
    return stats, clean


def run_replies_bench(*, quick: bool, out: Path) -> int:
    rounds = 20 if quick else 100
    bulk_rounds = 3 if quick else 10
    report: dict[str, Any] = {"benchmark": "replies", "quick": quick, "machine": machine_info()}
    report["load_before"] = os.getloadavg()
    paced = start_service("helpers.bench.paced_upstream", ["--size", "400", "--piece", "4"])
    services = [paced]
    try:
        near = _gateways(paced.url)
        services += near.values()
        bulk: dict[str, dict[str, RunningService]] = {}
        for kind in ("sparse", "dense"):
            args = ["--size", "102400", "--piece", "20", "--gap-ms", "0"]
            if kind == "sparse":
                args.append("--sparse")
            upstream = start_service("helpers.bench.paced_upstream", args)
            services.append(upstream)
            bulk[kind] = _gateways(upstream.url)
            services += bulk[kind].values()
        targets = {"direct": paced.url, **{k: g.url for k, g in near.items()}}
        ttft: dict[str, list[float]] = {k: [] for k in targets}
        window_ms: list[float] = []
        redacted_ok = True
        with httpx.Client(timeout=60) as http:
            for url in targets.values():  # warm-up, discarded
                _stream(http, url + "/v1/chat/completions", HOLD_BACK + 1)
            order = list(targets)
            for _ in range(rounds):
                random.shuffle(order)
                for name in order:
                    url = targets[name] + "/v1/chat/completions"
                    first, at_window, _, text = _stream(http, url, HOLD_BACK + 1)
                    ttft[name].append(first)
                    if name == "direct":
                        window_ms.append(at_window)
                    if name == "inspection on":
                        redacted_ok &= "4111" not in text and "[CREDIT_CARD_" in text
            bulk_stats: dict[str, dict[str, dict[str, float]]] = {}
            for kind, gateways in bulk.items():
                bulk_stats[kind] = {}
                for name, gw in gateways.items():
                    stats, clean = _bulk(http, gw, bulk_rounds, check=name == "inspection on")
                    bulk_stats[kind][name] = stats
                    redacted_ok &= clean
    finally:
        for service in reversed(services):
            service.stop()
    report["rounds"] = rounds
    report["hold_back_chars"] = HOLD_BACK
    report["ttft_ms"] = {k: summarize(v).as_dict() for k, v in ttft.items()}
    report["window_arrival_ms"] = summarize(window_ms).as_dict()
    added = summarize(ttft["inspection on"]).p50 - summarize(ttft["inspection off"]).p50
    allowed = summarize(window_ms).p50 - summarize(ttft["direct"]).p50 + 1.0
    report["ttft_added_p50_ms"] = round(added, 3)
    report["ttft_budget_p50_ms"] = round(allowed, 3)
    report["bulk_100kb"] = bulk_stats
    report["cpu_ratio"] = {
        kind: round(
            by_name["inspection on"]["gateway_cpu_ms_per_answer"]
            / by_name["inspection off"]["gateway_cpu_ms_per_answer"],
            2,
        )
        for kind, by_name in bulk_stats.items()
    }
    report["redacted_every_inspected_answer"] = redacted_ok
    write_report(out, report)
    _print(report)
    print(f"\nreport written to {out}")
    return 0


def _print(r: dict[str, Any]) -> None:
    print(machine_line(r["machine"], r["load_before"]))
    print(f"\n{'time to first token (ms)':<32}{'n':>6}{'p50':>9}{'p99':>9}")
    for name, s in r["ttft_ms"].items():
        print(f"{name:<32}{s['n']:>6}{s['p50']:>9.2f}{s['p99']:>9.2f}")
    w = r["window_arrival_ms"]
    print(f"{'first 65 chars, direct':<32}{w['n']:>6}{w['p50']:>9.2f}{w['p99']:>9.2f}")
    print(
        f"\nTTFT added by inspection, p50: {r['ttft_added_p50_ms']:.2f} ms "
        f"(budget: window arrival + 1 ms = {r['ttft_budget_p50_ms']:.2f} ms)"
    )
    for kind, by_name in r["bulk_100kb"].items():
        for name, s in by_name.items():
            print(
                f"100 KB answer ({kind} identifiers), {name}: {s['chars_per_s']:,} chars/s, "
                f"gateway CPU {s['gateway_cpu_ms_per_answer']} ms per answer"
            )
        print(f"  gateway CPU, inspection on / off: {r['cpu_ratio'][kind]}x")
    print(f"every inspected answer redacted: {r['redacted_every_inspected_answer']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.bench replies", description=__doc__)
    p.add_argument("--quick", action="store_true", help="20 rounds instead of 100")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "bench-replies.json")
    args = p.parse_args(argv)
    return run_replies_bench(quick=args.quick, out=args.out)


if __name__ == "__main__":
    sys.exit(main())
