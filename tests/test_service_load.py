"""Driving the governed service under load, and reading the gateway's histograms."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from helpers.lab.service_load import (
    Histogram,
    ServiceLoad,
    histogram_quantile,
    load_service,
    read_histograms,
)
from helpers.server import RunningService, start_gateway, start_service, start_standins


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[RunningService, RunningService]]:
    gateway, standins = start_gateway(), start_standins(time_scale=0)
    service = start_service(
        "helpers.service", ["--gateway", gateway.url, "--llm-url", standins.url, "--baseline"]
    )
    yield gateway, service
    for s in (service, standins, gateway):
        s.stop()


def test_load_and_histograms(stack: tuple[RunningService, RunningService]) -> None:
    gateway, service = stack
    run = load_service(service.url, ["What is RAG?", "My SSN is 123-45-6789"], n=20, concurrency=4)
    assert len(run.governed_ms) == len(run.direct_ms) == 20
    assert run.outcomes == {"answered": 10, "blocked": 10, "ungoverned": 20}
    assert run.pair_outcomes == ("answered", "blocked") * 10  # pairs follow the messages
    summary = run.summary()
    g, d = run.answered()
    assert summary["pairs"] == 10 == len(g)
    assert summary["overhead_p50_ms"] == pytest.approx(float(np.median(g - d)))
    assert summary["governed_p50_ms"] == pytest.approx(float(np.median(g)))
    hist = read_histograms(httpx.get(gateway.url + "/prometheus").text)
    pre = hist["axonflow_gateway_precheck_duration_milliseconds"]
    assert pre.count == 20 and pre.total > 0
    assert 0 < histogram_quantile(pre, 0.5) <= histogram_quantile(pre, 0.99)


def test_quantile_interpolates_inside_a_bucket() -> None:
    h = Histogram("m", ((1.0, 0), (2.0, 10), (math.inf, 10)), 15.0, 10)
    assert histogram_quantile(h, 0.5) == 1.5 and histogram_quantile(h, 1.0) == 2.0
    assert h.mean == 1.5
    assert math.isnan(histogram_quantile(Histogram("e", (), 0.0, 0), 0.5))
    later = Histogram("m", ((1.0, 3), (2.0, 14), (math.inf, 15)), 30.0, 15)
    delta = later.since(h)
    assert delta.buckets == ((1.0, 3), (2.0, 4), (math.inf, 5)) and delta.count == 5
    with pytest.raises(ValueError, match="bucket bounds"):
        later.since(Histogram("m", ((1.0, 0), (math.inf, 0)), 0.0, 0))
    with pytest.raises(ValueError, match="between 0 and 1"):
        histogram_quantile(h, 1.5)


def test_overhead_is_paired_and_leaves_out_blocked_pairs() -> None:
    run = ServiceLoad(
        governed_ms=(12.0, 1.0, 30.0, 31.0),
        direct_ms=(10.0, 10.0, 10.0, 30.0),
        pair_outcomes=("answered", "blocked", "answered", "answered"),
        outcomes={},
        concurrency=1,
    )
    s = run.summary()
    # per pair: 2, 20 and 1 ms; the blocked pair (1 ms against 10) is not an overhead
    assert s["pairs"] == 3 and s["overhead_p50_ms"] == 2.0
    # the difference of the medians would say 20 ms: not what any pair paid
    assert s["governed_p50_ms"] == 30.0 and s["direct_p50_ms"] == 10.0
    blocked = ServiceLoad((1.0,), (10.0,), ("blocked",), {}, 1)
    with pytest.raises(ValueError, match="no pair was answered"):
        blocked.summary()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="n >= 1"):
        load_service("http://127.0.0.1:9", [], n=1)
