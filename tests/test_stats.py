"""Percentiles, ECDF and paired differences against distributions with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.lab.stats import ecdf, paired_differences, summarize


def test_uniform_grid_percentiles() -> None:
    s = summarize(np.arange(1, 1001, dtype=float))  # 1..1000
    assert s.n == 1000
    assert s.p50 == pytest.approx(500.5)
    assert s.p90 == pytest.approx(900.1)
    assert s.p99 == pytest.approx(990.01)
    assert s.max == 1000 and s.min == 1 and s.mean == pytest.approx(500.5)


def test_lognormal_median_and_tail() -> None:
    rng = np.random.default_rng(1)
    mu, sigma = np.log(645.0), (np.log(1094.0) - np.log(645.0)) / 1.645
    s = summarize(rng.lognormal(mu, sigma, 200_000))
    assert s.p50 == pytest.approx(645.0, rel=0.01)
    assert s.p95 == pytest.approx(1094.0, rel=0.01)


def test_row_labels_and_repr() -> None:
    s = summarize([1.0, 2.0, 3.0])
    assert list(s.row()) == ["n", "p50", "p90", "p95", "p99", "p99.9", "max"]
    assert repr(s).startswith("<LatencySummary n=3 p50=2.000")


def test_as_dict_rounds_the_floats_when_asked() -> None:
    s = summarize([1.0, 2.0, 4.0])
    assert s.as_dict()["mean"] == pytest.approx(7 / 3) and s.as_dict()["mean"] != 2.3333
    rounded = s.as_dict(digits=4)
    assert rounded["mean"] == 2.3333 and rounded["n"] == 3 and list(rounded) == list(s.as_dict())


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_summarize_refuses_bad_samples(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        summarize(bad)


def test_ecdf_steps() -> None:
    x, y = ecdf([3.0, 1.0, 2.0, 2.0])
    assert x.tolist() == [1.0, 2.0, 2.0, 3.0]
    assert y.tolist() == [0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError):
        ecdf([])


def test_paired_differences() -> None:
    d = paired_differences([10.0, 12.0, 9.0], [9.0, 10.5, 9.0])
    assert d.tolist() == [1.0, 1.5, 0.0]
    with pytest.raises(ValueError, match="differ in length"):
        paired_differences([1.0], [1.0, 2.0])


@pytest.mark.parametrize(
    ("q", "n", "ok"),
    [(50, 2, True), (50, 1, False), (99, 100, True), (99, 99, False), (99.9, 1000, True),
     (99.9, 60, False), (95, 60, True), (100, 10**6, False)],
)  # fmt: skip
def test_a_percentile_needs_a_sample_above_it(q: float, n: int, ok: bool) -> None:
    from helpers.lab.stats import supported

    assert supported(q, n) is ok


def test_row_leaves_out_what_sixty_samples_cannot_support() -> None:
    row = summarize(np.arange(60, dtype=float)).row(supported_only=True)
    assert np.isnan(row["p99"]) and np.isnan(row["p99.9"])
    assert row["p95"] == pytest.approx(np.percentile(np.arange(60), 95))
    assert row["n"] == 60 and row["max"] == 59
    assert not np.isnan(summarize(np.arange(60, dtype=float)).row()["p99.9"])
