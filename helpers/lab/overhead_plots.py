"""Charts of governance overhead: paired differences, their drivers, and the floor under them.

The paired overhead (governed minus direct, per pair) with its p50 and p99 marked and the
published 3-5 ms claim drawn as a labelled band; overhead per client library and audit
mode; overhead against prompt length; and the floor decomposition (decision in process,
transport floor, gateway's own cost). Same conventions as :mod:`helpers.lab.latency_plots`.
Introduced in ``03_latency_analysis.ipynb``.

>>> ax = plot_overhead(np.random.default_rng(0).normal(1.5, 0.2, 500))   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from helpers.plots import COLORS

from .latency_plots import STEP_COLORS, axes_or_new, log_ms_axis
from .stats import summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "CLAIM_MS",
    "plot_floor",
    "plot_libraries",
    "plot_overhead",
    "plot_overhead_by_config",
    "plot_overhead_vs_length",
]

#: AxonFlow's published overhead claim for gateway mode, drawn as a band and labelled "claim".
CLAIM_MS = (3.0, 5.0)


def _claim_band(ax: Axes, claim: tuple[float, float]) -> None:
    """The published claim as a labelled band across the overhead axis."""
    label = f"claim: AxonFlow {claim[0]:g}-{claim[1]:g} ms"
    ax.axvspan(*claim, color="#f2c14e", alpha=0.35, label=label)


def plot_overhead(
    overhead_ms: Sequence[float],
    *,
    label: str = "paired overhead",
    claim: tuple[float, float] | None = CLAIM_MS,
    ax: Axes | None = None,
) -> Axes:
    """Histogram of per-pair overhead (governed minus direct), p50 and p99 marked, and the
    published claim drawn as a labelled band."""
    ax = axes_or_new(ax)
    arr = np.asarray(overhead_ms, float)
    s = summarize(arr)
    hi = max(s.p99 * 1.5, (claim[1] * 1.1) if claim else 0.0)
    lo = min(0.0, float(np.percentile(arr, 0.5)))
    bins = np.linspace(lo, hi, 80)
    ax.hist(
        np.clip(arr, lo, hi),
        bins=bins,
        color=COLORS["measured"],
        alpha=0.85,
        label=f"measured pairs (n={s.n})",
    )
    if claim:
        _claim_band(ax, claim)
    for q, value, style in (("p50", s.p50, "-"), ("p99", s.p99, "--")):
        ax.axvline(value, color="#b0413e", linestyle=style, label=f"{q} = {value:.2f} ms")
    ax.set_xlabel("governed minus direct (ms); values past the right edge are piled there")
    ax.set_ylabel("pairs")
    ax.set_title(f"Paired governance overhead, {label}, n={s.n}")
    ax.legend(fontsize=8)
    return ax


def plot_overhead_by_config(
    overheads: Mapping[str, Sequence[float]],
    *,
    claim: tuple[float, float] | None = CLAIM_MS,
    ax: Axes | None = None,
) -> Axes:
    """Box plot per configuration (client library x audit mode) with p50 labelled."""
    ax = axes_or_new(ax, (8.0, 3.2))
    names = list(overheads)
    data = [np.asarray(overheads[k], float) for k in names]
    ax.boxplot(data, orientation="horizontal", whis=(1, 99), showfliers=False, widths=0.5)
    ax.set_yticks(
        range(1, len(names) + 1), [f"{k}\n(n={len(d)})" for k, d in zip(names, data, strict=True)]
    )
    for i, d in enumerate(data, start=1):
        ax.annotate(
            f"p50 {np.median(d):.2f} ms",
            (float(np.percentile(d, 99)), i),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    if claim:
        _claim_band(ax, claim)
        ax.legend(fontsize=8, loc="lower right")
    ax.invert_yaxis()
    ax.set_xlabel("paired overhead on the request path (ms); box p25-p75, whiskers p1-p99")
    n = sum(len(d) for d in data)
    ax.set_title(f"On-path governance overhead by client library and audit mode, n={n} pairs")
    return ax


def plot_overhead_vs_length(pairs: pd.DataFrame, *, label: str, ax: Axes | None = None) -> Axes:
    """Per-pair overhead against prompt length (log x), with the median per length bin."""
    ax = axes_or_new(ax)
    ax.scatter(
        pairs["prompt_chars"],
        pairs["overhead_ms"],
        s=6,
        alpha=0.4,
        color=COLORS["measured"],
        label="one pair",
    )
    edges = np.geomspace(max(pairs["prompt_chars"].min(), 1), pairs["prompt_chars"].max() + 1, 9)
    xs, meds = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        sel = pairs[(pairs["prompt_chars"] >= a) & (pairs["prompt_chars"] < b)]
        if len(sel) >= 3:
            # Drawn at the bin's real median length, not its geometric centre.
            xs.append(float(sel["prompt_chars"].median()))
            meds.append(float(sel["overhead_ms"].median()))
    ax.plot(xs, meds, color="#b0413e", marker="o", label="median per length bin")
    log_ms_axis(ax)
    ax.set_xlabel("prompt length (characters, log scale)")
    ax.set_ylabel("paired overhead (ms)")
    top = float(pairs["overhead_ms"].quantile(0.99)) * 1.3
    bottom = min(0.0, float(pairs["overhead_ms"].quantile(0.01)))
    ax.set_ylim(bottom=bottom, top=top)
    hidden = int(((pairs["overhead_ms"] > top) | (pairs["overhead_ms"] < bottom)).sum())
    if hidden:  # the y axis is clipped to the bulk of the pairs: say by how much
        ax.annotate(
            f"{hidden} pair(s) outside {bottom:.1f} to {top:.1f} ms not shown",
            xy=(0.99, 0.97),
            xycoords="axes fraction",
            ha="right",
            va="top",
            fontsize=8,
        )
    ax.set_title(f"Overhead against prompt length, {label}, n={len(pairs)} pairs")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_floor(
    decomposition: pd.DataFrame, *, library: str, n: int, ax: Axes | None = None
) -> Axes:
    """Stacked bars (p50, ms): decision in process, transport floor, gateway's own cost."""
    ax = axes_or_new(ax, (7.0, 3.0))
    colors = ["#b0413e", "#6b6b6b", COLORS["measured"]]  # all three measured
    left = np.zeros(len(decomposition))
    for color, col in zip(colors, decomposition.columns, strict=True):
        values = decomposition[col].to_numpy(float)
        ax.barh(decomposition.index, values, left=left, color=color, label=col, edgecolor="white")
        left += values
    for i, total in enumerate(left):
        ax.annotate(
            f"{total:.2f} ms",
            (total, i),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.invert_yaxis()
    ax.set_xlim(0, left.max() * 1.25)
    ax.set_xlabel("median time on the client (ms)")
    ax.set_title(f"The floor under each step ({library}), n={n} per step")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3)
    return ax


def plot_libraries(table: pd.DataFrame, decision_ms: float, *, ax: Axes | None = None) -> Axes:
    """Per client library: /health, pre-check and audit medians as dots on a log x axis, and
    the policy decision itself as a reference line.

    Dots, not bars: a bar on a log axis starts at an arbitrary origin, so its length means
    nothing; a dot's position is the value.
    """
    ax = axes_or_new(ax, (8.0, 3.8))
    cols = {
        "health_p50_ms": ("/health (transport floor)", "#6b6b6b", "o"),
        "pre_check_p50_ms": ("pre-check", STEP_COLORS["pre-check"], "D"),
        "audit_p50_ms": ("audit", STEP_COLORS["audit"], "s"),
    }
    y = np.arange(len(table))
    for k, (col, (name, color, marker)) in enumerate(cols.items()):
        ax.scatter(
            table[col], y + (k - 1) * 0.18, color=color, marker=marker, s=36, label=name, zorder=3
        )
    for yi, lo, hi in zip(
        y, table[list(cols)].min(axis=1), table[list(cols)].max(axis=1), strict=True
    ):
        ax.plot([lo, hi], [yi, yi], color="#cccccc", linewidth=1, zorder=1)
    ax.axvline(
        decision_ms,
        color="#b0413e",
        linestyle="--",
        label=f"policy decision in process (p50 {decision_ms * 1000:.0f} µs)",
    )
    ax.set_yticks(y, list(table.index))
    ax.invert_yaxis()
    log_ms_axis(ax)
    ax.set_xlabel("median time on the client (ms, log scale)")
    n = int(table["n"].min()) if "n" in table else 0
    ax.set_title(f"What each HTTP client library costs, n={n} per call and library")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    return ax
