"""The same-run comparison with another tree: both workers answer, interleaved, per scenario."""

from __future__ import annotations

from pathlib import Path

from helpers.bench.baseline import baseline_section
from helpers.bench.gateway import _DOCUMENT_5KB
from helpers.gateway.engine import DecisionEngine
from helpers.settings import PROJECT_ROOT

from .conftest import hermetic_settings


def test_baseline_section_times_both_trees_per_scenario(tmp_path: Path) -> None:
    scenarios = {"short": ["hello", "SSN 123-45-6789"], "flood": ["'" * 10_000]}
    out = baseline_section(PROJECT_ROOT, PROJECT_ROOT, scenarios, rounds=2, worst_of=("flood",))
    assert out["rounds"] == 2 and set(out["scenarios"]) == {"short", "flood"}
    for tree in ("current", "baseline"):
        short = out["scenarios"]["short"][tree]
        assert short["n"] == 4 and 0 < short["p50"] <= short["max"]
        assert out["scenarios"]["flood"][tree]["worst_ms"] > 0


def test_the_5kb_document_is_5kb_of_approved_text() -> None:
    engine = DecisionEngine.from_settings(hermetic_settings(), rate_limits=False)
    assert len(_DOCUMENT_5KB) == 5 * 1024
    assert engine.decide(_DOCUMENT_5KB, "user-123").approved
