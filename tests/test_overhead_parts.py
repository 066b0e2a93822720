"""helpers.lab.overhead_parts: the parts of a paired overhead add up, and the verdict reads
the numbers it is given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.lab.latency_floor import FloorResult
from helpers.lab.overhead_parts import claim_verdict, decompose_overhead


def _floor(health: float, pre: float, audit: float, n: int = 5) -> FloorResult:
    lib = {"health": np.full(n, health), "pre_check": np.full(n, pre), "audit": np.full(n, audit)}
    return FloorResult({"httpx.AsyncClient": lib})


def test_each_part_is_the_difference_it_names_and_they_add_up() -> None:
    pairs = pd.DataFrame(
        {"overhead_ms": [2.0, 2.2, 2.4], "pre_check_ms": [0.9, 1.0, 1.1], "audit_ms": [0.8] * 3}
    )
    parts = decompose_overhead(pairs, _floor(health=0.5, pre=0.7, audit=0.6))
    assert parts.floor_ms == pytest.approx(1.0)  # two /health round trips
    assert parts.gateway_ms == pytest.approx(0.3)  # 1.3 back to back, above the floor
    assert parts.idle_ms == pytest.approx(0.5)  # 1.8 in the pairs against 1.3 back to back
    assert parts.rest_ms == pytest.approx(0.4)  # 2.2 in total against 1.8 in the two calls
    assert parts.total_ms == pytest.approx(2.2)
    assert sum(parts.parts().values()) == pytest.approx(parts.total_ms)
    assert parts.table().loc["paired overhead, p50 (measured)", "ms"] == pytest.approx(2.2)
    assert parts.sum_line() == "1.000 + 0.500 + 0.300 + 0.400 = 2.200 ms (measured: 2.200 ms)"


def test_decomposing_needs_the_same_library_and_some_pairs() -> None:
    pairs = pd.DataFrame({"overhead_ms": [1.0], "pre_check_ms": [0.5], "audit_ms": [0.4]})
    with pytest.raises(ValueError, match="aiohttp"):
        decompose_overhead(pairs, _floor(0.1, 0.2, 0.2), library="aiohttp")
    with pytest.raises(ValueError, match="no pairs"):
        decompose_overhead(pairs.iloc[:0], _floor(0.1, 0.2, 0.2))


@pytest.mark.parametrize(
    ("p50", "p99", "expected"),
    [
        (1.14, 2.5, "the p50 is below AxonFlow's claimed 3-5 ms, the p99 below it."),
        (3.0, 5.0, "the p50 is within AxonFlow's claimed 3-5 ms, the p99 within it."),
        (2.0, 13.75, "the p50 is below AxonFlow's claimed 3-5 ms, the p99 above it."),
        (5.61, 13.75, "the p50 is above AxonFlow's claimed 3-5 ms, the p99 above it."),
    ],
)
def test_the_verdict_places_p50_and_p99_against_the_claim(
    p50: float, p99: float, expected: str
) -> None:
    sentence = claim_verdict(p50, p99)
    assert sentence.endswith(expected)
    assert f"{p50:.2f} ms at p50" in sentence and f"{p99:.2f} ms at p99" in sentence


def test_a_negative_part_is_subtracted_in_the_printed_sum() -> None:
    pairs = pd.DataFrame({"overhead_ms": [1.5], "pre_check_ms": [1.0], "audit_ms": [0.8]})
    parts = decompose_overhead(pairs, _floor(health=0.5, pre=0.7, audit=0.6))
    assert parts.rest_ms == pytest.approx(-0.3)
    assert parts.sum_line() == "1.000 + 0.500 + 0.300 - 0.300 = 1.500 ms (measured: 1.500 ms)"
