"""``python -m helpers.bench pipeline``: the report is produced and well-formed.

Benchmarks are not tests: nothing here asserts that the machine was fast, only that the
targets are evaluated correctly from given numbers and that a (tiny) real run writes a
complete JSON summary and a results file the notebook can reload.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from helpers.bench.__main__ import main as bench_main
from helpers.bench.pipeline import (
    PAIRED_CONFIGS,
    TARGETS,
    Target,
    build_parser,
    check_targets,
    run_pipeline_bench,
)
from helpers.lab.load_results import load_results


def test_targets_are_the_documented_ones() -> None:
    assert [(t.config, t.stat, t.limit_ms) for t in TARGETS] == [
        ("httpx_sync", "p50", 2.0),
        ("httpx_sync", "p99", 3.0),
        ("httpx_background", "p50", 0.9),
        ("aiohttp_background", "p50", 0.45),
    ]
    assert {t.config for t in TARGETS} <= set(PAIRED_CONFIGS)


@pytest.mark.parametrize(
    ("values", "stat", "limit", "met"),
    [
        (np.linspace(0.0, 2.0, 101), "p50", 1.0, True),  # p50 exactly 1.0: at the limit
        (np.linspace(0.0, 2.0, 101), "p50", 0.99, False),
        (np.linspace(0.0, 2.0, 101), "p99", 1.98, True),
        (np.linspace(0.0, 2.0, 101), "p99", 1.97, False),
    ],
)
def test_check_targets_compares_the_named_percentile(
    values: np.ndarray, stat: str, limit: float, met: bool
) -> None:
    (result,) = check_targets({"cfg": values}, (Target("cfg", stat, limit),))
    assert result.met is met and result.n == 101
    assert result.as_dict()["met"] is met and result.as_dict()["limit"] == limit


def test_an_unmeasured_target_is_missed_not_skipped() -> None:
    (result,) = check_targets({}, (Target("aiohttp_background", "p50", 0.45),))
    assert not result.met and math.isnan(result.value_ms)
    assert result.as_dict()["value"] is None and "MISSED" in repr(result)


def test_subcommand_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench_main(["pipeline", "--help"])
    assert exc.value.code == 0
    assert "--quick" in capsys.readouterr().out
    args = build_parser().parse_args([])
    assert args.out.name == "bench-pipeline.json" and args.load_user == "svc-loadtest"


@pytest.mark.slow
def test_a_tiny_run_writes_a_complete_report(tmp_path: Path) -> None:
    out, records = tmp_path / "bench-pipeline.json", tmp_path / "records.json"
    rc = run_pipeline_bench(
        quick=True, n=24, pairs=12, floor_n=10, out=out, records=records, progress=False, pin=True
    )
    assert rc == 0
    report = json.loads(out.read_text())
    cpus = sorted(os.sched_getaffinity(0))  # restored after the run
    pinning = {"gateway_cpu": cpus[-1], "client_cpus": cpus[:-1]} if len(cpus) > 1 else None
    assert report["pinning"] == pinning
    assert report["benchmark"] == "pipeline" and report["machine"]["cores"] >= 1
    main = report["main"]
    assert main["n"] == 24 and main["verdicts"]["decisions"] + main["errors"] == 24
    assert {"pre-check", "audit", "total"} <= set(main["steps_ms"])
    assert set(report["paired"]) == set(PAIRED_CONFIGS)
    for section in report["paired"].values():
        assert section["pairs"] + section["errors"] >= 12
        assert {"p50", "p99", "p999", "max", "n"} <= set(section["overhead_ms"])
    assert len(report["floor"]["libraries"]) == 4 and report["floor"]["n"] == 10
    assert set(report["targets"]) == {t.name for t in TARGETS}
    for t in report["targets"].values():
        assert isinstance(t["met"], bool) and isinstance(t["value"], float) and t["unit"] == "ms"
    runs = load_results(records)
    assert list(runs) == ["main", *(f"paired_{k}" for k in PAIRED_CONFIGS)]
    assert len(runs["paired_httpx_sync"].records) == 24
