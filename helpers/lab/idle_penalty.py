"""Warm against idle: the same calls after the machine has had nothing to do for a while.

A gateway under steady traffic answers from warm CPU caches. One that has idled, even for a
millisecond, starts each request cold: on a small virtual machine the idle CPU is halted and
its caches are refilled by whatever else ran, so the same Python code runs several times
slower. The paired runs in ``04_measurement_method.ipynb`` always meet the gateway after an
idle spell (it waits while the LLM call runs), so they see more than the back-to-back floor.

:func:`measure_idle_penalty` makes that visible: before every call it sleeps ``gap`` ms, then
times ``GET /health`` and a pre-check through one client, in random order, for each gap.
Introduced in ``04_measurement_method.ipynb``.

>>> table = measure_idle_penalty(stack, gaps_ms=(0, 1, 5), n=200)   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from time import perf_counter_ns
from typing import Any

import pandas as pd
from matplotlib.axes import Axes

from helpers.plots import COLORS

from .latency_floor import approved_work
from .latency_plots import axes_or_new
from .loop_thread import run_async
from .stats import summarize

__all__ = ["measure_idle_penalty", "plot_idle_penalty"]


async def _measure(
    stack: Any, gaps_ms: Sequence[float], n: int, warmup: int, transport: str, seed: int
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    work = approved_work(seed=seed)
    client = stack.gateway_client(transport=transport)
    out: list[dict[str, Any]] = []
    try:
        for gap in gaps_ms:
            samples: dict[str, list[float]] = {"health": [], "pre_check": []}
            for i in range(warmup + n):
                query, user = work[i % len(work)]
                for step in rng.sample(["health", "pre_check"], 2):
                    if gap > 0:
                        await asyncio.sleep(gap / 1000)
                    t0 = perf_counter_ns()
                    if step == "health":
                        await client.health()
                    else:
                        await client.pre_check(query, user_token=user)
                    if i >= warmup:
                        samples[step].append((perf_counter_ns() - t0) / 1e6)
            for step, values in samples.items():
                out.append({"idle_ms": gap, "step": step, **summarize(values).as_dict()})
    finally:
        await client.aclose()
    return out


def measure_idle_penalty(
    stack: Any,
    *,
    gaps_ms: Sequence[float] = (0.0, 1.0, 5.0),
    n: int = 200,
    warmup: int = 20,
    transport: str = "aiohttp",
    seed: int = 7,
) -> pd.DataFrame:
    """Per idle gap: percentiles (ms) of ``/health`` and of a pre-check, and their p50 gap.

    One row per gap, columns ``health_p50_ms``, ``pre_check_p50_ms``,
    ``pre_check_above_floor_p50_ms``, the p99 of both, and ``n``. The first ``warmup``
    iterations of each gap are discarded.
    """
    if n < 1 or warmup < 0 or any(g < 0 for g in gaps_ms) or not gaps_ms:
        raise ValueError("need n >= 1, warmup >= 0 and at least one gap, all gaps >= 0 ms")
    rows = run_async(lambda: _measure(stack, gaps_ms, n, warmup, transport, seed))
    long = pd.DataFrame(rows)
    wide = long.pivot(index="idle_ms", columns="step", values=["p50", "p99"])
    table = pd.DataFrame(
        {
            "health_p50_ms": wide[("p50", "health")],
            "pre_check_p50_ms": wide[("p50", "pre_check")],
            "pre_check_above_floor_p50_ms": wide[("p50", "pre_check")] - wide[("p50", "health")],
            "health_p99_ms": wide[("p99", "health")],
            "pre_check_p99_ms": wide[("p99", "pre_check")],
            "n": n,
        }
    )
    table.attrs["transport"] = transport
    return table


def plot_idle_penalty(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Grouped bars (p50, ms) per idle gap: the ``/health`` floor and the pre-check."""
    ax = axes_or_new(ax, (7.0, 3.0))
    labels = [f"{g:g} ms idle" for g in table.index]
    x = range(len(table))
    width = 0.38
    ax.bar(
        [i - width / 2 for i in x],
        table["health_p50_ms"],
        width,
        color="#6b6b6b",
        label="GET /health (the floor)",
    )
    ax.bar(
        [i + width / 2 for i in x],
        table["pre_check_p50_ms"],
        width,
        color=COLORS["measured"],
        label="pre-check",
    )
    for i, (top, above) in enumerate(
        zip(table["pre_check_p50_ms"], table["pre_check_above_floor_p50_ms"], strict=True)
    ):
        ax.annotate(
            f"+{above * 1000:.0f} µs",
            (i + width / 2, top),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    ax.set_xticks(list(x), labels)
    ax.set_ylim(0, float(table["pre_check_p50_ms"].max()) * 1.25)
    ax.set_ylabel("median time on the client (ms)")
    transport = table.attrs.get("transport", "")
    ax.set_title(
        f"Warm against idle ({transport}): p50 after sleeping before each call, "
        f"n={int(table['n'].iloc[0])} per bar"
    )
    ax.legend(fontsize=8, loc="upper left")
    return ax
