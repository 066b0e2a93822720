"""Tables the latency notebook and the pipeline benchmark compute from load-run records.

Everything here is arithmetic on a run's DataFrame (:meth:`helpers.lab.load_results.LoadRun.frame`)
built on :mod:`helpers.lab.stats`: percentile tables per step, the paired overhead (governed
minus direct, per pair), the governance share of each request, and one row per run for a
concurrency sweep or an open-loop rate. Introduced in ``03_latency_analysis.ipynb``.

>>> import pandas as pd
>>> df = pd.DataFrame({"pre_check_ms": [1.0, 2.0, 3.0], "total_ms": [10.0, 20.0, 30.0]})
>>> float(step_table(df, {"pre_check_ms": "pre-check"}).loc["pre-check", "p50"])
2.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from .load_results import LoadRun
from .stats import paired_differences, summarize

__all__ = [
    "STEPS",
    "open_loop_table",
    "paired_overhead",
    "step_table",
    "sweep_table",
    "verdicts",
]

#: Record columns of the pipeline's steps and how tables name them.
STEPS: dict[str, str] = {
    "pre_check_ms": "pre-check",
    "llm_ms": "LLM call",
    "ttft_ms": "time to first token",
    "audit_ms": "audit",
    "governance_ms": "pre-check + audit",
    "total_ms": "total",
}


def _frame(data: LoadRun | pd.DataFrame) -> pd.DataFrame:
    return data.frame() if isinstance(data, LoadRun) else data


def step_table(
    data: LoadRun | pd.DataFrame,
    steps: Mapping[str, str] | None = None,
    *,
    supported_only: bool = False,
) -> pd.DataFrame:
    """p50, p90, p95, p99, p99.9, max and n (ms) for every step that has samples.

    Steps that did not run for a request (NaN: the LLM call of a blocked query, the
    time to first token of a non-streamed call) are left out of that step's sample, so
    each row's ``n`` says how many requests it describes. With ``supported_only=True`` a
    percentile that row's ``n`` cannot support (:func:`helpers.lab.stats.supported`) is NaN.
    """
    df = _frame(data)
    rows = {}
    for col, name in (steps or STEPS).items():
        if col in df:
            values = df[col].dropna().to_numpy(float)
            if values.size:
                rows[name] = summarize(values).row(supported_only=supported_only)
    table = pd.DataFrame.from_dict(rows, orient="index")
    if not table.empty:
        table["n"] = table["n"].astype(int)
    table.index.name = "step (ms)"
    return table


def paired_overhead(
    data: LoadRun | pd.DataFrame, arms: tuple[str, str] = ("governed", "direct")
) -> pd.DataFrame:
    """One row per complete pair: the governed and direct times and their difference.

    ``raw_ms`` is governed minus direct as measured. ``overhead_ms`` first removes from each
    arm the delay the provider stand-in slept on purpose (its ``simulated_ms``): the two
    arms draw independent simulated latencies, and their difference is noise of the
    stand-in, not cost of governance. Where the provider is real (no simulated part),
    ``overhead_ms`` equals ``raw_ms``. Pairs where either arm failed are left out.
    """
    df = _frame(data)
    df = df[df["pair"] >= 0]
    failed = set(df.loc[df["error"] != "", "pair"])
    df = df[~df["pair"].isin(failed)]
    a = df[df["arm"] == arms[0]].set_index("pair").sort_index()
    b = df[df["arm"] == arms[1]].set_index("pair").sort_index()
    both = a.index.intersection(b.index)
    a, b = a.loc[both], b.loc[both]
    sim_a = a["simulated_ms"].fillna(0.0).to_numpy(float)
    sim_b = b["simulated_ms"].fillna(0.0).to_numpy(float)
    raw = paired_differences(a["total_ms"].to_numpy(float), b["total_ms"].to_numpy(float))
    adjusted = paired_differences(
        a["total_ms"].to_numpy(float) - sim_a, b["total_ms"].to_numpy(float) - sim_b
    )
    return pd.DataFrame(
        {
            "prompt_chars": a["prompt_chars"].to_numpy(int),
            "provider": a["provider"].to_numpy(),
            "first_arm": np.where(a["seq"].to_numpy() < b["seq"].to_numpy(), arms[0], arms[1]),
            f"{arms[0]}_ms": a["total_ms"].to_numpy(float),
            f"{arms[1]}_ms": b["total_ms"].to_numpy(float),
            "pre_check_ms": a["pre_check_ms"].to_numpy(float),
            "audit_ms": a["audit_ms"].to_numpy(float),
            "raw_ms": raw,
            "overhead_ms": adjusted,
        },
        index=pd.Index(both, name="pair"),
    )


def verdicts(data: LoadRun | pd.DataFrame) -> dict[str, int]:
    """How many governed decisions matched the corpus labels, and why others did not."""
    df = _frame(data)
    gov = df[(df["arm"] == "governed") & df["approved"].notna()]
    limited = gov["policies"].str.split(";").apply(lambda ids: "rate_limit" in ids)
    correct = gov["correct"].fillna(False).astype(bool)
    return {
        "decisions": len(gov),
        "correct": int(correct.sum()),
        "wrong": int((~correct & ~limited).sum()),
        "rate_limited": int(limited.sum()),
        "errors": int((df["error"] != "").sum()),
    }


def _p(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else math.nan


def sweep_table(runs: Iterable[LoadRun]) -> pd.DataFrame:
    """One row per closed-loop run: concurrency, throughput and latency percentiles."""
    rows = []
    for run in runs:
        df = run.frame()
        ok = df[df["error"] == ""]
        total = ok["total_ms"].to_numpy(float)
        rows.append(
            {
                "concurrency": run.config.concurrency,
                "n": len(df),
                "errors": run.errors,
                "throughput_rps": run.throughput,
                "total_p50_ms": _p(total, 50),
                "total_p99_ms": _p(total, 99),
                "pre_check_p50_ms": _p(ok["pre_check_ms"].dropna().to_numpy(float), 50),
                "pre_check_p99_ms": _p(ok["pre_check_ms"].dropna().to_numpy(float), 99),
            }
        )
    return pd.DataFrame(rows).sort_values("concurrency").reset_index(drop=True)


def open_loop_table(runs: Iterable[LoadRun]) -> pd.DataFrame:
    """One row per run: offered and achieved rate, latency from the planned start (what a
    user waits), service time from the actual start, and the start lag between them."""
    rows = []
    for run in runs:
        df = run.frame()
        ok = df[df["error"] == ""]
        latency = ok["total_ms"].to_numpy(float)
        lag = ok["start_lag_ms"].to_numpy(float)
        service = latency - lag
        span_s = (df["start_ms"].max() - df["start_ms"].min()) / 1000 if len(df) > 1 else math.nan
        rows.append(
            {
                "view": run.config.describe(),
                "offered_rps": run.config.rate if run.config.mode == "open" else math.nan,
                "achieved_rps": run.throughput,
                "started_rps": (len(df) - 1) / span_s if span_s and span_s > 0 else math.nan,
                "n": len(df),
                "errors": run.errors,
                "latency_p50_ms": _p(latency, 50),
                "latency_p99_ms": _p(latency, 99),
                "service_p50_ms": _p(service, 50),
                "service_p99_ms": _p(service, 99),
                "lag_p99_ms": _p(lag, 99),
                "max_in_flight": int(df["in_flight"].max()) if len(df) else 0,
            }
        )
    return pd.DataFrame(rows)
