"""Tests for helpers.lab.timing: the timer, its marks, and the latency breakdown table.

A fake clock makes every duration exact, so nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import math
import time

import pytest

from helpers.lab.timing import MEASURED, SIMULATED, Timer, breakdown_table, timed, timed_call


class FakeClock:
    """Integer nanoseconds that advance only when told to."""

    def __init__(self) -> None:
        self.now = 1_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += round(ms * 1e6)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_timed_measures_the_block(clock: FakeClock) -> None:
    with timed(clock) as t:
        clock.advance_ms(12.5)
    clock.advance_ms(100)  # after the block: must not count
    assert t.ms == 12.5
    assert not t.running


def test_ms_while_running_is_time_so_far(clock: FakeClock) -> None:
    with timed(clock) as t:
        clock.advance_ms(3)
        assert t.running
        assert t.ms == 3.0
        clock.advance_ms(2)
    assert t.ms == 5.0


def test_timer_stops_when_the_block_raises(clock: FakeClock) -> None:
    with pytest.raises(RuntimeError), timed(clock) as t:
        clock.advance_ms(7)
        raise RuntimeError("the call failed")
    clock.advance_ms(50)
    assert t.ms == 7.0


def test_first_mark_wins(clock: FakeClock) -> None:
    with timed(clock) as t:
        clock.advance_ms(4)
        t.mark("first token")
        clock.advance_ms(6)
        t.mark("first token")  # a later token: ignored
        t.mark("done")
    assert t.ms_at("first token") == 4.0
    assert t.marks_ms == {"first token": 4.0, "done": 10.0}


def test_unknown_mark_names_the_marks_made(clock: FakeClock) -> None:
    with timed(clock) as t:
        t.mark("first token")
    with pytest.raises(KeyError, match=r"'last token'.*'first token'"):
        t.ms_at("last token")


def test_unknown_mark_without_any_marks(clock: FakeClock) -> None:
    t = Timer(clock)
    with pytest.raises(KeyError, match="none"):
        t.ms_at("first token")


def test_stop_is_idempotent(clock: FakeClock) -> None:
    t = Timer(clock)
    clock.advance_ms(1)
    t.stop()
    clock.advance_ms(1)
    t.stop()
    assert t.ms == 1.0


def test_repr_shows_duration_and_marks(clock: FakeClock) -> None:
    with timed(clock) as t:
        clock.advance_ms(1.25)
        t.mark("first token")
        clock.advance_ms(1)
    assert repr(t) == "<Timer 2.250 ms first token=1.250 ms>"
    running = Timer(clock)
    assert repr(running).startswith("<Timer running 0.000 ms")


def test_default_clock_is_monotonic_and_non_negative() -> None:
    with timed() as t:
        t.mark("inside")
    assert 0 <= t.ms_at("inside") <= t.ms


def test_breakdown_table_rows_shares_and_sources() -> None:
    table = breakdown_table(
        {"pre-check": 2.0, "LLM call": 996.0, "audit": 2.0}, simulated={"LLM call"}
    )
    assert list(table.index) == ["pre-check", "LLM call", "audit", "total"]
    assert list(table.columns) == ["time (ms)", "share of total (%)", "source"]
    assert table.loc["total", "time (ms)"] == 1000.0
    assert table.loc["LLM call", "share of total (%)"] == 99.6
    assert table.loc["pre-check", "share of total (%)"] == 0.2
    assert table.loc["LLM call", "source"] == SIMULATED
    assert table.loc["audit", "source"] == MEASURED


def test_breakdown_table_without_simulated_steps() -> None:
    table = breakdown_table({"pre-check": 1.0, "LLM call": 3.0})
    assert set(table.loc[["pre-check", "LLM call"], "source"]) == {MEASURED}


def test_breakdown_table_all_zero_has_zero_shares() -> None:
    table = breakdown_table({"pre-check": 0.0, "audit": 0.0})
    assert table.loc["pre-check", "share of total (%)"] == 0.0


@pytest.mark.parametrize(
    ("steps", "simulated", "message"),
    [
        ({}, (), "at least one step"),
        ({"pre-check": 1.0}, ("LLM",), r"\['LLM'\].*not steps"),
        ({"pre-check": -1.0}, (), "must be >= 0"),
        ({"pre-check": math.nan}, (), "must be >= 0"),
    ],
)
def test_breakdown_table_rejects_bad_input(
    steps: dict[str, float], simulated: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        breakdown_table(steps, simulated)


def test_timed_call_returns_the_milliseconds_and_what_the_function_returned() -> None:
    ms, out = timed_call(lambda a, b: time.sleep(0.002) or a + b, 2, 3)
    assert out == 5 and ms >= 2.0  # the sleep is a lower bound, whatever the machine
