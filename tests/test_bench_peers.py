"""``python -m helpers.bench peers``: the pieces that need no peer.

The pairing, the report and the figure are checked on calls whose cost is known (a fake
clock advanced by each call); one tiny real run, with no peer installed, checks that the
gateway's setups are measured, answered with real completions and audited. Nothing here
asserts that the machine was fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers.bench.__main__ import main as bench_main
from helpers.bench.peers import (
    SETUPS,
    TARGETS,
    Answer,
    NotACompletion,
    PairedRun,
    build_parser,
    build_report,
    completion_text,
    litellm_config,
    paired_iterations,
    plot_peers,
    run_peers_bench,
    save_figure,
)

COMPLETION = {
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "An answer."}}],
    "usage": {"prompt_tokens": 4, "completion_tokens": 3},
}


class FakeClock:
    """Nanoseconds that move only when a fake call says how long it took."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def call(self, ms: float, text: str = "same", audit: bool = False) -> Callable[[str], Answer]:
        def run(query: str) -> Answer:
            self.now += int(ms * 1e6)
            return Answer(text, f"audit-{query}" if audit else None)

        return run


def test_every_setup_runs_once_per_iteration_in_a_random_order() -> None:
    clock = FakeClock()
    calls = {
        "direct": clock.call(1.0),
        "proxy_openai": clock.call(1.5, audit=True),
        "portkey": clock.call(4.0),
    }
    run = paired_iterations(
        calls, [f"q{i}" for i in range(40)], governed=["proxy_openai"], warmup=5, clock=clock
    )
    assert run.n == 40 and run.errors == 0
    assert all(sorted(order.split(",")) == sorted(calls) for order in run.frame["order"])
    assert len(set(run.frame["order"])) > 1  # shuffled, not one fixed order
    overheads = run.overheads()
    assert set(overheads) == {"proxy_openai", "portkey"}
    assert np.allclose(overheads["proxy_openai"], 0.5) and np.allclose(overheads["portkey"], 3.0)
    assert run.checks["proxy_openai"] == {"same_text": 40, "audit_ids": 40}
    assert run.checks["portkey"] == {"same_text": 40}


def test_warmup_is_run_but_not_kept() -> None:
    seen: list[str] = []
    clock = FakeClock()

    def direct(query: str) -> Answer:
        seen.append(query)
        return Answer("same")

    run = paired_iterations({"direct": direct}, ["a", "b", "c"], warmup=2, clock=clock)
    assert seen == ["a", "b", "a", "b", "c"] and run.n == 3


def test_a_failed_call_drops_its_whole_iteration_and_is_counted() -> None:
    clock = FakeClock()

    def flaky(query: str) -> Answer:
        if query == "q3":
            raise NotACompletion("HTTP 502: bad gateway")
        return Answer("same")

    run = paired_iterations(
        {"direct": clock.call(1.0), "litellm": flaky}, [f"q{i}" for i in range(6)], warmup=0
    )
    assert run.n == 5 and run.errors == 1
    assert run.error_examples[0].startswith("litellm: NotACompletion: HTTP 502")
    assert len(run.overheads()["litellm"]) == 5  # still paired


def test_a_different_text_or_a_missing_audit_is_counted() -> None:
    clock = FakeClock()
    calls = {
        "direct": clock.call(1.0),
        "proxy_request": clock.call(1.2, text="an error page"),
        "proxy_openai": clock.call(1.2),  # governed, but returns no audit id
    }
    run = paired_iterations(
        calls, ["q"] * 4, governed=["proxy_request", "proxy_openai"], warmup=0, clock=clock
    )
    assert run.checks["proxy_request"]["same_text"] == 0
    assert run.checks["proxy_openai"] == {"same_text": 4, "audit_ids": 0}
    report = build_report(run, machine={"cores": 2})
    assert report["real_completions"] is False and report["all_audited"] is False


def test_the_baseline_must_be_one_of_the_calls() -> None:
    with pytest.raises(ValueError, match="baseline 'direct'"):
        paired_iterations({"portkey": FakeClock().call(1.0)}, ["q"])


def test_completion_text_accepts_a_completion_and_nothing_else() -> None:
    assert completion_text(COMPLETION) == "An answer."
    for body in (
        {"error": {"message": "Internal error"}},
        {"choices": [], "usage": {}},
        {"choices": [{"message": {"content": ""}}], "usage": {"completion_tokens": 0}},
        "<html>Welcome</html>",
    ):
        with pytest.raises(NotACompletion):
            completion_text(body)


def _run(proxy_ms: float, portkey_ms: float, n: int = 50) -> PairedRun:
    clock = FakeClock()
    calls = {
        "direct": clock.call(1.0),
        "proxy_openai": clock.call(1.0 + proxy_ms, audit=True),
        "portkey": clock.call(1.0 + portkey_ms),
    }
    return paired_iterations(
        calls, [f"q{i}" for i in range(n)], governed=["proxy_openai"], warmup=0, clock=clock
    )


def test_the_report_rates_each_setup_against_portkey_and_checks_the_targets() -> None:
    load = {"before": [0.2, 0.3, 0.4], "after": [0.5, 0.4, 0.4]}
    report = build_report(
        _run(proxy_ms=1.0, portkey_ms=2.5), machine={"cores": 2}, load=load,
        audited={"block": {"returned": 50, "missing": 0}},
    )  # fmt: skip
    assert report["n"] == 50 and report["load"] == load
    assert report["overhead_ms"]["proxy_openai"]["p50"] == pytest.approx(1.0)
    assert report["ratio_to_portkey"]["proxy_openai"] == {"p50": 0.4, "p99": 0.4}
    assert report["real_completions"] is True and report["all_audited"] is True
    assert len(report["samples_ms"]["portkey"]) == 50
    rows = {(t["setup"], t["stat"]): t for t in report["targets"]}
    assert len(rows) == len(TARGETS)
    assert rows[("proxy_openai", "p50")]["met"] is True
    assert rows[("proxy_request", "p50")]["met"] is None  # not in this run
    slow = build_report(_run(proxy_ms=2.0, portkey_ms=2.5), machine={"cores": 2})
    assert {t["met"] for t in slow["targets"] if t["setup"] == "proxy_openai"} == {False}
    json.dumps(report)  # the report is plain JSON


def test_without_portkey_no_target_is_claimed() -> None:
    clock = FakeClock()
    run = paired_iterations(
        {"direct": clock.call(1.0), "proxy_openai": clock.call(2.0)}, ["q"] * 3, warmup=0,
        clock=clock,
    )  # fmt: skip
    report = build_report(run, machine={"cores": 2}, skipped={"portkey": "node not found"})
    assert report["ratio_to_portkey"] == {} and report["skipped"] == {"portkey": "node not found"}
    assert all(t["met"] is None for t in report["targets"])


def test_an_audit_id_missing_from_the_trail_fails_the_audit_check() -> None:
    report = build_report(
        _run(1.0, 2.5), machine={"cores": 2}, audited={"block": {"returned": 50, "missing": 1}}
    )
    assert report["all_audited"] is False


def test_the_figure_is_drawn_from_the_report_on_a_log_axis(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    machine = {"cores": 2, "cpu": "Test CPU", "python": "3.11.7", "measured_at": "now"}
    load = {"before": [0.25, 0.3, 0.4], "after": [0.5, 0.4, 0.4]}
    report = json.loads(json.dumps(build_report(_run(1.0, 2.5), machine=machine, load=load)))
    ax = plot_peers(report)
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["proxy /v1/chat/completions, block", "Portkey gateway"]
    title = ax.get_title()
    assert "n=50" in title and "Test CPU" in title and "load 0.25 before, 0.50 after" in title
    notes = [t.get_text() for t in ax.texts]
    assert notes[0] == "p50 1.00  p99 1.00 ms" and notes[1] == "p50 2.50  p99 2.50 ms"
    plt.close(ax.figure)
    path = save_figure(report, tmp_path / "peers.png")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_litellm_is_configured_for_the_stand_in_with_its_guardrail_off_by_default() -> None:
    config = yaml.safe_load(litellm_config("http://127.0.0.1:9/v1", "sk-test"))
    [model] = config["model_list"]
    assert model["litellm_params"]["api_base"] == "http://127.0.0.1:9/v1"
    [guard] = config["guardrails"]
    params = guard["litellm_params"]
    assert params["guardrail"] == "litellm_content_filter" and params["default_on"] is False
    assert {p["action"] for p in params["patterns"]} == {"MASK"}
    assert config["general_settings"]["master_key"] == "sk-test"


def test_subcommand_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench_main(["peers", "--help"])
    assert exc.value.code == 0
    assert "--peers" in capsys.readouterr().out
    assert build_parser().parse_args([]).out.name == "bench-peers.json"
    with pytest.raises(SystemExit) as unknown:
        bench_main(["peers", "--peers", "vllm"])
    assert unknown.value.code == 2 and "unknown vllm" in capsys.readouterr().err


def test_setups_have_unique_names_and_the_targets_name_them() -> None:
    names = [s.name for s in SETUPS]
    assert len(names) == len(set(names)) and names[0] == "direct"
    assert {t.setup for t in TARGETS} <= set(names)


@pytest.mark.slow
def test_a_tiny_run_without_peers_measures_and_audits_the_gateway(tmp_path: Path) -> None:
    out, figure = tmp_path / "peers.json", tmp_path / "peers.png"
    status = run_peers_bench(n=4, out=out, figure=figure, warmup=1, cpu_n=2, peers=())
    report = json.loads(out.read_text())
    assert status == 0 and report["n"] == 4 and report["errors"] == 0
    assert set(report["overhead_ms"]) == {
        "gateway_mode", "proxy_openai", "proxy_request", "proxy_openai_redact",
        "proxy_request_redact",
    }  # fmt: skip
    assert report["real_completions"] is True and report["all_audited"] is True
    assert report["audited"]["block"] == {"returned": 12, "missing": 0}
    assert all(t["met"] is None for t in report["targets"])
    assert report["cpu_ms_per_request"]["gateway_mode"]["server_requests_per_call"] == 2
    assert report["load"]["before"] and figure.read_bytes().startswith(b"\x89PNG")
