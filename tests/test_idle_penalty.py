"""Warm against idle, against a real offline stack (no assertion about how fast it was)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import matplotlib
import pytest

matplotlib.use("Agg")

from helpers.lab.idle_penalty import measure_idle_penalty, plot_idle_penalty
from helpers.stack import Stack, start_stack

from .conftest import hermetic_settings


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with start_stack(hermetic_settings(), time_scale=0, quiet=True) as s:
        yield s


def test_one_row_per_gap_and_the_gaps_are_really_slept(stack: Stack) -> None:
    t0 = time.perf_counter()
    table = measure_idle_penalty(stack, gaps_ms=(0, 4), n=25, warmup=5, transport="httpx")
    elapsed = time.perf_counter() - t0
    assert list(table.index) == [0, 4]
    # 30 iterations x 2 calls x 4 ms of sleep at the second gap, at the very least.
    assert elapsed >= 30 * 2 * 0.004
    assert (table["n"] == 25).all()
    above = table["pre_check_p50_ms"] - table["health_p50_ms"]
    assert table["pre_check_above_floor_p50_ms"].tolist() == pytest.approx(above.tolist())
    assert (table[["health_p50_ms", "pre_check_p50_ms"]] > 0).all().all()
    assert (table["pre_check_p99_ms"] >= table["pre_check_p50_ms"]).all()
    assert table.attrs["transport"] == "httpx"


@pytest.mark.parametrize(
    "kwargs", [{"n": 0}, {"warmup": -1}, {"gaps_ms": ()}, {"gaps_ms": (1, -2)}]
)
def test_bad_arguments_are_refused(stack: Stack, kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match="at least one gap"):
        measure_idle_penalty(stack, **kwargs)


def test_the_chart_has_units_n_and_one_label_per_gap(stack: Stack) -> None:
    table = measure_idle_penalty(stack, gaps_ms=(0, 1), n=5, warmup=1)
    ax = plot_idle_penalty(table)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0 ms idle", "1 ms idle"]
    assert "(ms)" in ax.get_ylabel() and "n=5" in ax.get_title() and "aiohttp" in ax.get_title()
    assert len([t for t in ax.texts if t.get_text().startswith("+")]) == 2
