"""The pipeline benchmark: pre-check, LLM call and audit end to end, and the overhead targets.

``python -m helpers.bench pipeline [--quick]`` runs, offline by default:

1. a closed-loop run of the labelled corpus through the full pipeline (embedded gateway,
   provider stand-in at a small time scale, real SDKs), with verdict correctness;
2. paired runs (the same prompt direct and governed, random order) for each client library
   and audit mode, against a stand-in with no simulated delay, since the provider's jitter
   is the paired method's noise and the difference does not depend on the scale;
3. the floor: in-process decision time, and /health, pre-check and audit per HTTP client.

It writes every record to a results file (the format :func:`helpers.lab.load_results.load_results`
reads) and a JSON summary with the machine, full percentiles, errors, and each target
marked met or missed with its value. Benchmarks are not tests: nothing here fails a build.
The same measurements, smaller, are explained in ``03_latency_analysis.ipynb`` and
``04_measurement_method.ipynb``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.lab.latency_floor import measure_floor
from helpers.lab.load_results import LOAD_USER, LoadConfig, LoadRun, save_results
from helpers.lab.loadgen import run_load
from helpers.lab.machine import machine_info, machine_line, pinned, write_report
from helpers.lab.pipeline_stats import paired_overhead, step_table, verdicts
from helpers.lab.stats import summarize
from helpers.settings import PROJECT_ROOT
from helpers.stack import start_stack

__all__ = [
    "PAIRED_CONFIGS",
    "TARGETS",
    "Target",
    "TargetResult",
    "build_parser",
    "check_targets",
    "main",
    "run_pipeline_bench",
]

#: Paired configurations: label -> (gateway client transport, audit mode).
PAIRED_CONFIGS: dict[str, tuple[str, str]] = {
    "httpx_sync": ("httpx", "sync"),
    "httpx_background": ("httpx", "background"),
    "aiohttp_sync": ("aiohttp", "sync"),
    "aiohttp_background": ("aiohttp", "background"),
}


@dataclass(frozen=True)
class Target:
    """A limit on one statistic of one paired configuration's overhead, in ms."""

    config: str
    stat: str
    limit_ms: float

    @property
    def name(self) -> str:
        return f"{self.config}_overhead_{self.stat}_ms"


#: Offline, embedded gateway, paired governance overhead (governed minus direct).
TARGETS: tuple[Target, ...] = (
    Target("httpx_sync", "p50", 2.0),
    Target("httpx_sync", "p99", 3.0),
    Target("httpx_background", "p50", 0.9),
    Target("aiohttp_background", "p50", 0.45),
)


@dataclass(frozen=True)
class TargetResult:
    target: Target
    value_ms: float
    n: int

    @property
    def met(self) -> bool:
        return not math.isnan(self.value_ms) and self.value_ms <= self.target.limit_ms

    def as_dict(self) -> dict[str, Any]:
        value = None if math.isnan(self.value_ms) else round(self.value_ms, 4)
        return {
            "value": value,
            "limit": self.target.limit_ms,
            "unit": "ms",
            "met": self.met,
            "n": self.n,
            "config": self.target.config,
            "stat": self.target.stat,
        }

    def __repr__(self) -> str:
        state = "met" if self.met else "MISSED"
        return (
            f"<TargetResult {self.target.name} {self.value_ms:.3f} <= "
            f"{self.target.limit_ms:g} {state} n={self.n}>"
        )


def check_targets(
    overheads: Mapping[str, np.ndarray], targets: tuple[Target, ...] = TARGETS
) -> list[TargetResult]:
    """Each target against its configuration's per-pair overheads (NaN when not measured)."""
    out = []
    for t in targets:
        values = np.asarray(overheads.get(t.config, []), float)
        if values.size == 0:
            out.append(TargetResult(t, math.nan, 0))
            continue
        s = summarize(values)
        out.append(TargetResult(t, {"p50": s.p50, "p99": s.p99, "p90": s.p90}[t.stat], s.n))
    return out


def _rounded_rows(table: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    """A table by row label, ``n`` as an int and every other value rounded to 4 decimals."""
    return {
        label: {k: int(v) if k == "n" else round(float(v), 4) for k, v in row.items()}
        for label, row in table.iterrows()
    }


def _main_section(run: LoadRun) -> dict[str, Any]:
    return {
        "config": run.config.as_dict(),
        "n": len(run.records),
        "errors": run.errors,
        "wall_s": round(run.wall_s, 3),
        "throughput_rps": round(run.throughput, 2),
        "verdicts": verdicts(run),
        "steps_ms": _rounded_rows(step_table(run)),
        "time_scale": run.time_scale,
        "note": "LLM call and total include simulated provider latency (stand-in, scaled)",
    }


def _paired_section(run: LoadRun) -> dict[str, Any]:
    pairs = paired_overhead(run)
    q = run.audit_queue
    return {
        "config": run.config.as_dict(),
        "pairs": len(pairs),
        "errors": run.errors,
        "overhead_ms": summarize(pairs["overhead_ms"].to_numpy()).as_dict(digits=4),
        "raw_difference_ms": summarize(pairs["raw_ms"].to_numpy()).as_dict(digits=4),
        "pre_check_ms": summarize(pairs["pre_check_ms"].to_numpy()).as_dict(digits=4),
        "audit_on_path_ms": summarize(pairs["audit_ms"].to_numpy()).as_dict(digits=4),
        "audit_queue": None if q is None else q.as_dict(),
        "time_scale": run.time_scale,
    }


def run_pipeline_bench(
    *,
    quick: bool = False,
    out: Path,
    records: Path,
    n: int | None = None,
    pairs: int | None = None,
    time_scale: float = 0.02,
    load_user: str = LOAD_USER,
    progress: bool | None = None,
    floor_n: int | None = None,
    pin: bool = False,
) -> int:
    n = n or (300 if quick else 1000)
    pairs = pairs or (200 if quick else 1000)
    report: dict[str, Any] = {"benchmark": "pipeline", "quick": quick, "machine": machine_info()}
    runs: dict[str, LoadRun] = {}
    with (
        start_stack(time_scale=time_scale) as stack,
        pinned(stack.gateway_pid if pin else None) as pinning,
    ):
        report["pinning"] = pinning
        report["backends"] = stack.describe()
        print(f"1/3 closed loop, {n} corpus queries, C=8, full pipeline ...", flush=True)
        cfg = LoadConfig.closed(n=n, concurrency=8, load_user=load_user)
        runs["main"] = run_load(stack, cfg, label="main", progress=progress)
    report["main"] = _main_section(runs["main"])
    overheads: dict[str, np.ndarray] = {}
    report["paired"] = {}
    with start_stack(time_scale=0, quiet=True) as fast, pinned(fast.gateway_pid if pin else None):
        report["paired_backends"] = fast.describe()
        for i, (label, (transport, audit)) in enumerate(PAIRED_CONFIGS.items(), start=1):
            print(f"2/3 paired {i}/{len(PAIRED_CONFIGS)}: {label}, {pairs} pairs ...", flush=True)
            cfg = LoadConfig.paired(n=pairs, transport=transport, audit=audit, load_user=load_user)
            run = run_load(fast, cfg, label=f"paired_{label}", progress=progress)
            runs[run.label] = run
            report["paired"][label] = _paired_section(run)
            overheads[label] = paired_overhead(run)["overhead_ms"].to_numpy()
        print(
            "3/3 the floor: decision in process, /health, pre-check, audit per client ...",
            flush=True,
        )
        floor = measure_floor(fast, n=floor_n or (200 if quick else 600), load_user=load_user)
    report["floor"] = {
        "decision_ms": summarize(floor.decision_ms).as_dict(digits=4),
        "libraries": _rounded_rows(floor.table()),
        "n": floor.n,
    }
    results = check_targets(overheads)
    report["targets"] = {r.target.name: r.as_dict() for r in results}
    report["records_file"] = str(records)
    save_results(records, runs, extra={"floor": report["floor"], "machine": report["machine"]})
    write_report(out, report)
    _print(report)
    print(f"\nrecords written to {records}\nreport written to {out}")
    return 0


def _print(r: dict[str, Any]) -> None:
    print(f"\n{machine_line(r['machine'])}")
    main = r["main"]
    v = main["verdicts"]
    print(
        f"main run: {main['n']} requests, {main['errors']} errors, "
        f"{v['correct']}/{v['decisions']} decided as labelled, {main['throughput_rps']} req/s"
    )
    print(f"\n{'paired overhead (ms)':<26}{'pairs':>7}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    for label, p in r["paired"].items():
        s = p["overhead_ms"]
        print(
            f"{label:<26}{p['pairs']:>7}{s['p50']:>9.3f}{s['p90']:>9.3f}{s['p99']:>9.3f}{s['max']:>9.3f}"
        )
    print("\ntargets:")
    for name, t in r["targets"].items():
        value = "n/a" if t["value"] is None else f"{t['value']:.3f}"
        print(f"  {'met   ' if t['met'] else 'MISSED'} {name:<36} {value} <= {t['limit']:g} ms")


def build_parser(prog: str = "python -m helpers.bench pipeline") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="The governed pipeline end to end: "
        "per-step latency, paired overhead targets, the floor.",
    )
    p.add_argument("--quick", action="store_true", help="small samples (300 queries, 200 pairs)")
    p.add_argument("--n", type=int, help="corpus queries in the closed-loop run (default 1000)")
    p.add_argument("--pairs", type=int, help="pairs per paired configuration (default 1000)")
    p.add_argument(
        "--time-scale",
        type=float,
        default=0.02,
        help="stand-in time scale for the closed-loop run (simulated latency x S)",
    )
    p.add_argument(
        "--load-user",
        default=LOAD_USER,
        help="user_token for rows not about roles (default %(default)s)",
    )
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "bench-pipeline.json")
    p.add_argument(
        "--records",
        type=Path,
        default=PROJECT_ROOT / "reports" / "bench-pipeline-records.json",
        help="results file with every request (reload with load_results)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--pin",
        action="store_true",
        help="keep the gateway and this process on separate CPUs (recorded in the report)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_pipeline_bench(
        quick=args.quick,
        out=args.out,
        records=args.records,
        n=args.n,
        pairs=args.pairs,
        time_scale=args.time_scale,
        load_user=args.load_user,
        progress=False if args.no_progress else None,
        pin=args.pin,
    )


if __name__ == "__main__":
    sys.exit(main())
