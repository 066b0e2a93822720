"""A run against a live provider asks first: counts, a rough cost, and the opt-in."""

from __future__ import annotations

import socket

import pytest

from helpers.errors import PaidCallsNotAllowed
from helpers.gateway.pricing import PricingTable
from helpers.lab.load_results import LoadConfig
from helpers.lab.loadgen import run_load
from helpers.lab.paid_calls import FREE_CALLS, check_paid_calls, estimate_paid_calls
from helpers.lab.workload import build_workload
from helpers.settings import Settings
from helpers.stack import Backend, Stack


def _dead_url() -> str:
    with socket.socket() as s:  # a loopback port nobody listens on once this closes
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _stack(live: tuple[str, ...], allow: bool = False) -> Stack:
    url = _dead_url()
    settings = Settings.load(env={}, dotenv_path=None, allow_paid_runs=allow)
    return Stack(
        settings,
        Backend("gateway", url, False, "embedded gateway"),
        Backend("openai", url + "/v1", "openai" in live, "OpenAI API"),
        Backend("anthropic", url, "anthropic" in live, "Anthropic API"),
        time_scale=1.0,
    )


def test_offline_runs_are_free_whatever_their_size() -> None:
    config = LoadConfig.closed(n=500, seed=1)
    estimate = check_paid_calls(_stack(()), build_workload(config), config)
    assert estimate.total == 0 and estimate.cost_usd == 0
    assert "stand-in" in str(estimate)


def test_estimate_counts_live_providers_only_and_pairs_twice() -> None:
    config = LoadConfig.paired(n=40, seed=3)
    items = build_workload(config)
    estimate = estimate_paid_calls(_stack(("openai",)), items, config)
    n_openai = sum(item.provider == "openai" for item in items)
    assert 0 < n_openai < len(items)
    assert estimate.calls == {"openai": 2 * n_openai}
    table = PricingTable.load()
    expected = sum(
        2 * table.cost("openai", i.model, max(1, len(i.prompt) // 4), config.max_tokens)
        for i in items
        if i.provider == "openai"
    )
    assert estimate.cost_usd == pytest.approx(expected)
    assert f"{2 * n_openai} billed LLM calls (openai {2 * n_openai})" in str(estimate)


def test_a_large_live_run_is_refused_before_anything_is_sent() -> None:
    config = LoadConfig.closed(n=50, concurrency=2, seed=1)
    with pytest.raises(
        PaidCallsNotAllowed, match=r"would send \d+ billed LLM calls.*ALLOW_PAID_RUNS"
    ):
        run_load(_stack(("openai", "anthropic")), config, progress=False)


def test_a_handful_or_an_opt_in_goes_ahead() -> None:
    small = LoadConfig.closed(n=FREE_CALLS, concurrency=1, warmup=0, seed=1)
    assert check_paid_calls(_stack(("openai", "anthropic")), build_workload(small), small).total
    big = LoadConfig.closed(n=50, concurrency=2, warmup=0, seed=1)
    items = build_workload(big)
    with pytest.raises(PaidCallsNotAllowed):
        check_paid_calls(_stack(("openai",)), items, big)
    assert check_paid_calls(_stack(("openai",), allow=True), items, big).total > FREE_CALLS
    assert check_paid_calls(_stack(("openai",)), items, big, allowed=True).total > FREE_CALLS
