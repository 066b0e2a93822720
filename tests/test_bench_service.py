"""``python -m helpers.bench service`` writes a complete JSON report (tiny run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.bench.__main__ import main


def test_service_bench_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench-service.json"
    assert main(["service", "--n", "12", "--concurrency", "3", "--time-scale", "0",
                 "--out", str(out)]) == 0  # fmt: skip
    report = json.loads(out.read_text())
    assert report["benchmark"] == "service" and report["config"]["n"] == 12
    assert report["outcomes"] == {"answered": 9, "blocked": 3, "ungoverned": 12}
    assert report["governed_ms"]["n"] == report["direct_ms"]["n"] == 12
    over = report["overhead"]
    # Per pair, over the 9 answered pairs (the blocked ones skip the model call).
    assert over["pairs"] == 9 and over["overhead_p50_ms"] <= over["overhead_p95_ms"]
    # Warm-up and run: 12 + 12 governed requests reached the gateway.
    assert report["gateway_side_including_warmup"]["precheck"]["count"] == 24
    assert "report:" in capsys.readouterr().out
