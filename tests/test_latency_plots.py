"""helpers.lab.latency_plots and helpers.lab.overhead_plots: every chart says what it shows.

Charts are drawn from synthetic records with known values; the checks are the conventions
(title with n, units on the axes, "simulated" where the stand-in's latency appears, the
claim band labelled "claim", p50/p99 marked where they are) and that PNGs are written.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from helpers.lab.latency_plots import (
    plot_approved_vs_blocked,
    plot_ecdf,
    plot_open_vs_closed,
    plot_step_distributions,
    plot_step_percentiles,
    plot_sweep,
    save_figure,
)
from helpers.lab.overhead_plots import (
    CLAIM_MS,
    plot_floor,
    plot_libraries,
    plot_overhead,
    plot_overhead_by_config,
    plot_overhead_vs_length,
)


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def records(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Governed requests: a third blocked (no LLM call), lognormal step times."""
    rng = np.random.default_rng(seed)
    approved = np.arange(n) % 3 != 0
    pre, audit = rng.lognormal(0, 0.3, n), rng.lognormal(-0.2, 0.3, n)
    llm = np.where(approved, rng.lognormal(3.3, 0.3, n), np.nan)
    lag = rng.uniform(0, 2, n)
    total = pre + np.nan_to_num(llm) + audit + 0.1 + lag
    return pd.DataFrame(
        {
            "arm": "governed",
            "error": "",
            "approved": pd.array(approved, dtype="boolean"),
            "pre_check_ms": pre,
            "llm_ms": llm,
            "ttft_ms": llm / 2,
            "audit_ms": audit,
            "total_ms": total,
            "start_lag_ms": lag,
            "governance_ms": pre + audit,
        }
    )


def _texts(ax: plt.Axes) -> str:
    return " ".join(
        [
            ax.get_title(),
            ax.get_xlabel(),
            ax.get_ylabel(),
            *(t.get_text() for t in ax.get_legend().get_texts()),
        ]
        if ax.get_legend()
        else [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    )


def test_ecdf_has_n_in_legend_and_log_axis() -> None:
    ax = plot_ecdf({"a": [1.0, 2.0, 4.0], "b": [3.0, np.nan]}, title="t", xlabel="ms (log)")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["a (n=3)", "b (n=1)"] and ax.get_xscale() == "log"
    x, y = ax.get_lines()[0].get_data()
    assert list(x) == [1.0, 2.0, 4.0] and y[-1] == 1.0


def test_step_distributions_one_row_per_step_with_simulated_labels() -> None:
    steps = {"pre_check_ms": "pre-check", "llm_ms": "LLM call", "audit_ms": "audit"}
    fig = plot_step_distributions(records(), steps, run_label="test run")
    axes = fig.get_axes()
    assert len(axes) == 6
    titles = [ax.get_title() for ax in axes]
    assert titles[0] == "pre-check: ECDF, n=200" and titles[1] == "pre-check: histogram, n=200"
    assert titles[2] == "LLM call (simulated): ECDF, n=133"
    assert all(ax.get_xscale() == "log" for ax in axes)
    assert "ms" in axes[-1].get_xlabel() and "test run" in fig._suptitle.get_text()


def test_step_percentiles_one_bar_per_step_and_percentile_with_values() -> None:
    from helpers.lab.pipeline_stats import step_table

    steps = {"pre_check_ms": "pre-check", "llm_ms": "LLM call", "audit_ms": "audit"}
    table = step_table(records(), steps)
    ax = plot_step_percentiles(table, run_label="one at a time")
    assert len(ax.patches) == 3 * 3 and ax.get_xscale() == "log"
    widths = sorted(round(p.get_width(), 6) for p in ax.patches)
    assert widths == sorted(
        round(float(v), 6) for v in table[["p50", "p90", "p99"]].to_numpy().ravel()
    )
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[1] == "LLM call (simulated)\nn=133" and ticks[0] == "pre-check\nn=200"
    notes = [t.get_text() for t in ax.texts]
    assert f"p99 {table.loc['audit', 'p99']:.2f}" in notes
    assert "ms" in ax.get_xlabel() and "one at a time" in ax.get_title()


def test_overhead_marks_p50_p99_and_the_claim_band() -> None:
    values = np.arange(1, 101, dtype=float) / 100  # 0.01 .. 1.00 ms
    ax = plot_overhead(values, label="httpx, sync audit")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"claim: AxonFlow {CLAIM_MS[0]:g}-{CLAIM_MS[1]:g} ms" in labels
    assert "p50 = 0.51 ms" in labels and "p99 = 0.99 ms" in labels
    vlines = sorted(line.get_xdata()[0] for line in ax.get_lines())
    assert vlines == pytest.approx([0.505, 0.9901])
    assert "n=100" in ax.get_title() and "ms" in ax.get_xlabel()


def test_overhead_by_config_annotates_medians() -> None:
    ax = plot_overhead_by_config({"httpx, sync": np.full(10, 2.0), "aiohttp, bg": np.full(5, 0.5)})
    notes = [t.get_text() for t in ax.texts]
    assert notes == ["p50 2.00 ms", "p50 0.50 ms"] and "n=15" in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "httpx, sync\n(n=10)",
        "aiohttp, bg\n(n=5)",
    ]


def test_overhead_vs_length_draws_binned_medians() -> None:
    rng = np.random.default_rng(2)
    chars = rng.integers(20, 8000, 300)
    pairs = pd.DataFrame({"prompt_chars": chars, "overhead_ms": 0.5 + chars / 4000})
    ax = plot_overhead_vs_length(pairs, label="httpx")
    medians = ax.get_lines()[0].get_ydata()
    assert np.all(np.diff(medians) > 0)  # overhead grows with length in this sample
    assert "n=300" in ax.get_title() and "characters" in ax.get_xlabel()


def test_approved_vs_blocked_two_panels() -> None:
    fig = plot_approved_vs_blocked(records(), run_label="r")
    ax1, ax2 = fig.get_axes()
    assert [t.get_text() for t in ax1.get_legend().get_texts()] == [
        "approved (n=133)",
        "blocked (n=67)",
    ]
    assert "simulated" in ax1.get_title() and "n=200" in fig._suptitle.get_text()


def test_sweep_annotates_concurrency() -> None:
    table = pd.DataFrame(
        {
            "concurrency": [1, 4, 16],
            "n": [100, 200, 400],
            "throughput_rps": [30.0, 100.0, 150.0],
            "total_p99_ms": [50.0, 60.0, 200.0],
            "total_p50_ms": [35.0, 38.0, 90.0],
        }
    )
    ax = plot_sweep(table, label="httpx")
    assert [t.get_text() for t in ax.texts] == ["C=1", "C=4", "C=16"]
    assert "n=700" in ax.get_title() and "req" in ax.get_xlabel() and ax.get_yscale() == "log"


def test_open_vs_closed_panels() -> None:
    df = records()
    fig = plot_open_vs_closed(df, {"R=50/s": df, "R=90/s": df}, closed_label="C=8")
    axes = fig.get_axes()
    assert len(axes) == 3 and "Closed loop" in axes[0].get_title()
    labels = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert labels == ["from planned start (n=200)", "service time (n=200)"]
    assert "simulated" in fig._suptitle.get_text()


def test_floor_stacks_and_totals() -> None:
    d = pd.DataFrame(
        {
            "decision (in process)": [0.01, 0.0],
            "HTTP transport floor (/health)": [0.3, 0.3],
            "gateway's own cost above the floor": [0.24, 0.15],
        },
        index=pd.Index(["pre-check", "audit"], name="step"),
    )
    ax = plot_floor(d, library="aiohttp", n=300)
    assert [t.get_text() for t in ax.texts] == ["0.55 ms", "0.45 ms"]
    assert "n=300" in ax.get_title() and "ms" in ax.get_xlabel()


def test_libraries_reference_line_is_the_decision() -> None:
    table = pd.DataFrame(
        {
            "n": [300, 300],
            "health_p50_ms": [0.25, 0.7],
            "pre_check_p50_ms": [0.45, 0.95],
            "audit_p50_ms": [0.4, 0.85],
        },
        index=["http.client", "httpx.AsyncClient"],
    )
    ax = plot_libraries(table, decision_ms=0.008)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "policy decision in process (p50 8 µs)" in labels
    assert ax.get_xscale() == "log" and "n=300" in ax.get_title()
    assert not ax.patches, "bars on a log axis have no meaningful length: dots only"
    dots = [c.get_offsets()[:, 0] for c in ax.collections]
    assert sorted(float(v) for d in dots for v in d) == sorted(
        float(v) for col in ("health_p50_ms", "pre_check_p50_ms", "audit_p50_ms")
        for v in table[col]
    )  # fmt: skip


def test_save_figure_writes_png(tmp_path: Path) -> None:
    ax = plot_ecdf({"a": [1.0, 2.0]}, title="t")
    path = save_figure(ax.figure, "ecdf", folder=tmp_path / "figures")
    assert path == tmp_path / "figures" / "ecdf.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nan_only_step_is_reported_not_drawn() -> None:
    df = records()
    df["ttft_ms"] = math.nan
    fig = plot_step_distributions(df, {"ttft_ms": "time to first token"}, run_label="r")
    assert fig.get_axes()[0].get_title() == "time to first token: no samples"


def test_overhead_vs_length_says_what_its_clipped_axis_hides() -> None:
    rng = np.random.default_rng(1)
    lengths = np.repeat([64, 256, 1024, 4096], 50)
    overhead = rng.normal(1.0, 0.1, lengths.size)
    overhead[:3] = [40.0, 55.0, -20.0]  # far outside the bulk
    pairs = pd.DataFrame({"prompt_chars": lengths, "overhead_ms": overhead})
    ax = plot_overhead_vs_length(pairs, label="test")
    notes = [t.get_text() for t in ax.texts]
    assert any(t.startswith("3 pair(s) outside") for t in notes), notes
    xs, _ = ax.lines[0].get_data()
    assert sorted(xs) == [64, 256, 1024, 4096]  # medians at the real prompt lengths


@pytest.mark.parametrize(("lo", "hi"), [(1.4, 10.9), (1.45, 7.2), (0.5, 40.0), (5.0, 60.0)])
def test_a_short_log_axis_is_labelled_past_both_ends_of_the_data(lo: float, hi: float) -> None:
    ax = plot_ecdf({"a": np.geomspace(lo, hi, 50)}, title="t")
    shown = [float(t.get_text()) for t in ax.get_xticklabels() if t.get_text()]
    left, right = ax.get_xlim()
    assert shown[0] <= lo and shown[-1] >= hi  # no curve runs past the last label
    assert (left, right) == (shown[0], shown[-1]) and 4 <= len(shown) <= 12
    assert ax.get_xlabel() == "time on the client (ms, log scale)"


def test_shared_axes_cover_the_slowest_panel() -> None:
    df = records()
    df.loc[0, "total_ms"] = 900.0  # one slow request, drawn in the last row
    steps = {"pre_check_ms": "pre-check", "total_ms": "total"}
    fig = plot_step_distributions(df, steps, run_label="r")
    for ax in fig.get_axes():
        assert ax.get_xlim()[1] >= 900.0
    closed = pd.DataFrame({"total_ms": [1.0, 2.0, 3.0]})
    opened = pd.DataFrame({"total_ms": [2.0, 500.0], "start_lag_ms": [0.0, 400.0]})
    fig = plot_open_vs_closed(closed, {"R=1/s": opened}, closed_label="C=1")
    assert all(ax.get_xlim()[1] >= 500.0 for ax in fig.get_axes())
