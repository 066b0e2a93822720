"""The gateway benchmark runs end to end and writes a well-formed report.

This checks the report's shape and its verdict count, never whether the machine was fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.corpus import CORPUS_DIR, load_corpus


@pytest.mark.slow
def test_quick_bench_writes_a_complete_report(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "helpers.bench", "gateway", "--quick", "--no-wrk", "--n", "40",
           "--pin", "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"report written to {out}" in done.stdout
    report = json.loads(out.read_text())
    assert report["benchmark"] == "gateway"
    assert {"cores", "python", "cpu"} <= set(report["machine"])
    assert report["decision"]["corpus"]["rows"] == len(load_corpus())
    assert report["decision"]["corpus"]["correct"] == report["decision"]["corpus"]["rows"]
    adversarial = report["decision"]["adversarial"]
    rows = load_corpus(CORPUS_DIR / "adversarial")
    assert (
        adversarial["rows"]
        == len(rows)
        == sum(c["rows"] for c in adversarial["by_category"].values())
    )
    assert set(adversarial["by_category"]) == {r.category for r in rows}
    assert adversarial["correct"] + len(adversarial["misses"]) == adversarial["rows"]
    assert all(ms > 0 for ms in adversarial["flood_ms_worst_of_3"].values())
    assert "flood_worst_ms" in report["targets"]
    assert report["decision"]["document_5kb_approved"] is True
    assert report["decision"]["decision_us_5kb_document"]["n"] == 50
    assert "decision_5kb_document_p50_us" in report["targets"]
    for step in ("health", "pre_check", "audit"):
        s = report["http"][step]
        assert s["n"] == 40
        assert 0 < s["p50"] <= s["p90"] <= s["p99"] <= s["p999"] <= s["max"]
    assert report["http"]["errors"] == 0
    readers = report["readers"]
    assert readers["rows"] == 20_000
    for phase in ("idle", "during_verify", "during_records"):
        assert readers[phase]["pre_check"]["n"] == 40 and readers[phase]["errors"] == 0
        assert len(readers[phase]["p50_by_round"]) == readers["rounds"]
    assert readers["during_records"]["reader_rows"] >= 1000  # at least one whole page
    assert "--no-wrk" in report["throughput"]["skipped"]  # said in the report, not dropped
    assert {"pre_check_p99_during_verify_ms", "pre_check_p50_shift_during_records_ms"} <= set(
        report["targets"]
    )
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        assert report["pinning"] == {"gateway_cpu": cpus[-1], "client_cpus": cpus[:-1]}
    else:
        assert report["pinning"] is None
    assert report["disk_bytes_per_audit"] is None or report["disk_bytes_per_audit"] > 0
    for name, target in report["targets"].items():
        assert {"value", "limit", "unit", "met"} <= set(target), name
        assert isinstance(target["met"], bool)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs two CPUs")
def test_pinned_separates_gateway_and_client_then_restores_both() -> None:
    from helpers.lab.machine import pinned

    mine = os.sched_getaffinity(0)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        try:
            before = os.sched_getaffinity(child.pid)
            with pinned(child.pid) as pin:
                assert pin is not None
                assert os.sched_getaffinity(child.pid) == {pin["gateway_cpu"]}
                assert os.sched_getaffinity(0) == set(pin["client_cpus"])
                assert pin["gateway_cpu"] not in pin["client_cpus"]
            assert os.sched_getaffinity(child.pid) == before
            assert os.sched_getaffinity(0) == mine
        finally:
            child.kill()
    with pinned(None) as nothing:
        assert nothing is None and os.sched_getaffinity(0) == mine


def test_only_runs_the_named_sections_and_names_a_wrong_one(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "helpers.bench", "gateway", "--only", "readers,speed"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "unknown section(s) speed; pick from decision, http, throughput" in done.stderr
