"""``python -m helpers.bench proxy``: the report is produced and well-formed.

Nothing here asserts that the machine was fast; only that a tiny real run measures every
mode for every query, pairs them, and checks every corpus verdict.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.bench.__main__ import main as bench_main
from helpers.bench.proxy import build_parser, run_proxy_bench
from helpers.corpus import load_corpus
from helpers.lab.proxy_modes import MODES, ModeRun, approved_queries


def test_subcommand_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench_main(["proxy", "--help"])
    assert exc.value.code == 0
    assert "--time-scale" in capsys.readouterr().out
    assert build_parser().parse_args([]).out.name == "bench-proxy.json"


def test_queries_are_benign_approved_and_seeded() -> None:
    benign = {r.query for r in load_corpus() if r.family == "benign" and r.expected_approved}
    first = approved_queries(500, seed=3)
    assert len(first) == 500 and set(first) <= benign
    assert first == approved_queries(500, seed=3) and first != approved_queries(500, seed=4)


def test_overheads_are_paired_differences() -> None:
    frame = pd.DataFrame({
        "direct_ms": [10.0, 20.0], "gateway_ms": [11.0, 23.0], "proxy_ms": [12.0, 21.0],
        "proxy_openai_ms": [13.0, 22.0], "direct_stream_ttft_ms": [5.0, 6.0],
        "proxy_stream_ttft_ms": [7.0, 6.5], "direct_stream_ms": [30.0, 31.0],
        "proxy_stream_ms": [33.0, 35.0],
    })  # fmt: skip
    o = ModeRun(frame, 0.0, 0).overheads()
    assert np.allclose(o["gateway_mode"], [1.0, 3.0]) and np.allclose(o["proxy_request"], [2, 1])
    assert np.allclose(o["proxy_ttft_added"], [2.0, 0.5])
    assert np.allclose(o["proxy_stream_added"], [3.0, 4.0])


@pytest.mark.slow
def test_a_tiny_run_writes_a_complete_report(tmp_path: Path) -> None:
    out = tmp_path / "bench-proxy.json"
    assert run_proxy_bench(n=8, out=out) == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "proxy" and report["machine"]["cores"] >= 1
    assert report["n"] + report["errors"] == 8 and report["errors"] == 0
    v = report["verdicts"]
    assert v["decisions"] == len(load_corpus()) == v["same_as_pre_check"]
    assert set(report["modes_ms"]) == {
        f"{m}_ttft" for m in ("direct_stream", "proxy_stream")
    } | set(MODES)
    for summary in [*report["modes_ms"].values(), *report["overhead_ms"].values()]:
        assert summary["n"] == 8 and summary["p50"] <= summary["p99"] <= summary["max"]
    assert set(report["overhead_ms"]) == {
        "gateway_mode",
        "proxy_request",
        "proxy_openai",
        "proxy_ttft_added",
        "proxy_stream_added",
    }
