"""Charts of the latency notebook: distributions, where the time goes, overhead, load.

Every chart carries a title with n, axis labels with units, and says "simulated" wherever
the provider stand-in's latency appears. The overhead and floor charts are in
:mod:`helpers.lab.overhead_plots`. Single-axes functions take ``ax=None`` and return
the axes; multi-panel ones return the figure. Nothing changes matplotlib settings at import
(the style is :func:`helpers.plots.use_style`). Introduced in ``03_latency_analysis.ipynb``.

>>> steps = {"pre_check_ms": "pre-check"}
>>> fig = plot_step_distributions(run.frame(), steps, run_label="main")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from helpers.plots import COLORS
from helpers.settings import PROJECT_ROOT

from .stats import ecdf

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "FIGURES_DIR",
    "STEP_COLORS",
    "axes_or_new",
    "log_ms_axis",
    "plot_approved_vs_blocked",
    "plot_ecdf",
    "plot_open_vs_closed",
    "plot_step_distributions",
    "plot_step_percentiles",
    "plot_sweep",
    "save_figure",
]

FIGURES_DIR = PROJECT_ROOT / "notebooks" / "figures"
STEP_COLORS = {
    "pre-check": "#3b6ea8",
    "LLM call": COLORS["simulated"],
    "audit": "#e08a2c",
    "other": "#8fb58f",
    "time to first token": "#7a5aa6",
    "total": "#333333",
    "pre-check + audit": "#b0413e",
}


def axes_or_new(ax: Axes | None, figsize: tuple[float, float] = (7.0, 3.0)) -> Axes:
    """``ax``, or the axes of a new figure of ``figsize`` when it is ``None``."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


#: Leading digits of the labelled ticks on a log axis that spans less than two decades,
#: finest first: the finest set that gives at most a dozen labels is used.
_NICE = (
    (1.0, 1.2, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0),
    (1.0, 1.5, 2.0, 3.0, 5.0, 7.0),
    (1.0, 2.0, 3.0, 5.0),
    (1.0, 2.0, 5.0),
    (1.0, 3.0),
)


def _nice_ticks(lo: float, hi: float, most: int = 12) -> list[float]:
    """Round values (1, 1.5, 2, 3 ... times a power of ten) from the last one at or below
    ``lo`` to the first one at or above ``hi``, at most ``most`` of them, so that both ends
    of the data have a labelled tick beyond them."""
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 2)
    for leads in _NICE:
        every = sorted(round(m * 10.0**k, 12) for k in decades for m in leads)
        below = [t for t in every if t <= lo * (1 + 1e-9)]
        above = [t for t in every if t >= hi * (1 - 1e-9)]
        first, last = below[-1], above[0]
        ticks = [t for t in every if first <= t <= last]
        if len(ticks) <= most:
            return ticks
    return ticks


def log_ms_axis(ax: Axes, axis: str = "x") -> None:
    """Log scale with plain numbers (1, 10, 100 ms read faster than powers of ten). Call it
    after plotting. When the data span less than two decades, round values are
    labelled all the way across (2, 3, 5, ..., 10, 15, 20, ...), and the axis ends on a
    labelled tick on each side, so that no curve runs past the last label."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    target.set_major_formatter(plain)
    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    span = hi / lo if lo > 0 else math.inf
    if span < 200:
        ticks = _nice_ticks(lo, hi)
        (ax.set_xlim if axis == "x" else ax.set_ylim)(ticks[0], ticks[-1])
        target.set_major_locator(FixedLocator(ticks))
        target.set_minor_formatter(NullFormatter())
        return

    target.set_minor_formatter(NullFormatter())


def save_figure(fig: Figure, name: str, folder: Path = FIGURES_DIR) -> Path:
    """Save ``fig`` as ``folder/name.png`` (folder created if needed); returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, format="png")
    return path


def plot_ecdf(
    samples: Mapping[str, Sequence[float]],
    *,
    title: str,
    xlabel: str | None = None,
    log: bool = True,
    ax: Axes | None = None,
    colors: Mapping[str, str] | None = None,
) -> Axes:
    """One ECDF step line per sample, n in each legend entry."""
    ax = axes_or_new(ax)
    for name, values in samples.items():
        arr = np.asarray(values, float)
        arr = arr[np.isfinite(arr)]
        if arr.size == 0:
            continue
        x, y = ecdf(arr)
        color = (colors or {}).get(name)
        ax.step(x, y, where="post", label=f"{name} (n={arr.size})", color=color)
    if log:
        log_ms_axis(ax)
    ax.set_xlabel(xlabel or f"time on the client (ms{', log scale' if log else ''})")
    ax.set_ylabel("fraction of requests ≤ x")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_step_distributions(
    df: pd.DataFrame,
    steps: Mapping[str, str],
    *,
    run_label: str,
    simulated: Sequence[str] = ("LLM call", "time to first token"),
) -> Figure:
    """One row per step: its ECDF (log x) and, beside it, a histogram on log-spaced bins."""
    import matplotlib.pyplot as plt

    # Shared x per column: the steps are compared, so one scale for all of them.
    fig, axes = plt.subplots(
        len(steps), 2, figsize=(9.0, 2.1 * len(steps)), squeeze=False, sharex="col"
    )
    for (col, name), (ax_e, ax_h) in zip(steps.items(), axes, strict=True):
        values = df[col].dropna().to_numpy(float)
        values = values[values > 0]
        sim = " (simulated)" if name in simulated else ""
        color = STEP_COLORS.get(name, COLORS["measured"])
        if values.size == 0:
            ax_e.set_title(f"{name}: no samples")
            continue
        x, y = ecdf(values)
        ax_e.step(x, y, where="post", color=color)
        ax_e.set_ylim(0, 1.02)
        ax_e.set_ylabel("fraction ≤ x")
        ax_e.set_title(f"{name}{sim}: ECDF, n={values.size}", fontsize=9)
        bins = np.geomspace(values.min(), values.max() * 1.0001, 40)
        ax_h.hist(values, bins=bins, color=color, edgecolor="white", linewidth=0.3)
        ax_h.set_ylabel("requests")
        ax_h.set_title(f"{name}{sim}: histogram, n={values.size}", fontsize=9)
    # The columns share their x axis: ticks and limits are set once every step is drawn,
    # so that they cover the slowest step, not only the first.
    for ax in axes.flat:
        log_ms_axis(ax)
    for ax in axes[-1]:
        ax.set_xlabel("time on the client (ms, log scale)")
    fig.suptitle(f"Per-step latency, {run_label}; LLM steps: simulated provider latency")
    return fig


def plot_step_percentiles(
    table: pd.DataFrame,
    *,
    run_label: str,
    simulated: Sequence[str] = ("LLM call", "time to first token"),
    percentiles: Sequence[str] = ("p50", "p90", "p99"),
    ax: Axes | None = None,
) -> Axes:
    """Grouped horizontal bars: the chosen percentiles (ms) of every step of a
    :func:`helpers.lab.pipeline_stats.step_table`, each labelled with its value, on a log
    axis (the governance steps and the provider call differ by an order of magnitude)."""
    steps = list(table.index)
    ax = axes_or_new(ax, (9.0, 0.75 * len(steps) + 1.4))
    shades = {"p50": 1.0, "p90": 0.7, "p95": 0.6, "p99": 0.45, "p99.9": 0.3}
    height = 0.8 / len(percentiles)
    for j, q in enumerate(percentiles):
        for i, step in enumerate(steps):
            value = float(table.loc[step, q])
            y = i + (j - (len(percentiles) - 1) / 2) * height
            color = STEP_COLORS.get(step, COLORS["measured"])
            ax.barh(y, value, height * 0.92, color=color, alpha=shades.get(q, 0.6))
            ax.annotate(
                f"{q} {value:.2f}",
                (value, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
    labels = [
        f"{s} (simulated)\nn={int(table.loc[s, 'n'])}"
        if s in simulated
        else f"{s}\nn={int(table.loc[s, 'n'])}"
        for s in steps
    ]
    ax.set_yticks(range(len(steps)), labels, fontsize=8)
    ax.invert_yaxis()
    lo = float(table[list(percentiles)].min().min())
    hi = float(table[list(percentiles)].max().max())
    ax.set_xlim(lo / 2, hi * 4)  # room for the value labels right of the longest bar
    log_ms_axis(ax)
    ax.set_xlabel(
        "time on the client (ms, log scale); bars from darkest: " + ", ".join(percentiles)
    )
    ax.set_title(f"Per-step percentiles, {run_label}")
    return ax


def plot_approved_vs_blocked(df: pd.DataFrame, *, run_label: str) -> Figure:
    """Two panels: total time and pre-check time, approved against blocked (log x)."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.0, 3.0), sharey=True)
    gov = df[(df["arm"] == "governed") & (df["error"] == "") & df["approved"].notna()]
    groups = {"approved": gov[gov["approved"] == True], "blocked": gov[gov["approved"] == False]}  # noqa: E712
    colors = {"approved": COLORS["measured"], "blocked": "#b0413e"}
    plot_ecdf(
        {k: v["total_ms"] for k, v in groups.items()},
        ax=ax1,
        colors=colors,
        title="Total per request (approved incl. simulated LLM)",
        xlabel="total (ms, log scale)",
    )
    plot_ecdf(
        {k: v["pre_check_ms"] for k, v in groups.items()},
        ax=ax2,
        colors=colors,
        title="Pre-check alone",
        xlabel="pre-check (ms, log scale)",
    )
    ax2.set_ylabel("")
    fig.suptitle(f"Approved against blocked, {run_label}, n={len(gov)}")
    return fig


def plot_sweep(table: pd.DataFrame, *, label: str, ax: Axes | None = None) -> Axes:
    """Closed loop: throughput (x) against p99 total latency (y, log), one point per C."""
    ax = axes_or_new(ax)
    ax.plot(
        table["throughput_rps"],
        table["total_p99_ms"],
        marker="o",
        color=COLORS["measured"],
        label="p99 total",
    )
    ax.plot(
        table["throughput_rps"],
        table["total_p50_ms"],
        marker="s",
        color="#8fb58f",
        linestyle="--",
        label="p50 total",
    )
    for _, row in table.iterrows():
        ax.annotate(
            f"C={int(row['concurrency'])}",
            (row["throughput_rps"], row["total_p99_ms"]),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=8,
        )
    log_ms_axis(ax, "y")
    ax.set_xlabel("throughput (completed requests/s)")
    ax.set_ylabel("latency per request (ms, log)")
    ax.set_title(f"Concurrency sweep, closed loop, {label}, n={int(table['n'].sum())}")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_open_vs_closed(
    closed: pd.DataFrame, opened: Mapping[str, pd.DataFrame], *, closed_label: str
) -> Figure:
    """Side by side: the closed-loop view, then each open-loop rate with latency from the
    planned start (what a user waits) beside service time from the actual start."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, 1 + len(opened), figsize=(3.3 * (1 + len(opened)), 3.0), sharex=True, sharey=True
    )
    plot_ecdf(
        {"service time": closed["total_ms"]},
        ax=axes[0],
        title=f"Closed loop\n{closed_label}",
        xlabel="ms (log)",
        log=False,
        colors={"service time": COLORS["measured"]},
    )
    for ax, (label, df) in zip(axes[1:], opened.items(), strict=True):
        samples = {
            "from planned start": df["total_ms"],
            "service time": df["total_ms"] - df["start_lag_ms"],
        }
        plot_ecdf(
            samples,
            ax=ax,
            title=f"Open loop\n{label}",
            xlabel="ms (log)",
            log=False,
            colors={"from planned start": "#b0413e", "service time": COLORS["measured"]},
        )
        ax.set_ylabel("")
    for ax in axes:  # shared x: once every panel is drawn, so the limits cover them all
        log_ms_axis(ax)
    fig.suptitle("Closed against open loop: latency per request (LLM latency simulated)")
    return fig
