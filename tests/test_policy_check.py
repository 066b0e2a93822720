"""Replaying a candidate policy file: flips, labelled rates, the exit status CI reads, and
the gateway's opt-in masked traffic sample."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from helpers.gateway.policy_check import Replay, main, replay, sample_rows
from helpers.gateway.traffic_sample import TrafficSample
from helpers.settings import DATA_DIR

from .conftest import hermetic_settings

SHIPPED = DATA_DIR / "policies.yaml"

NARROW = """
  - id: launch_dates
    keywords: [launch date of Halcyon]
    action: block
    severity: medium
    reason: launch dates stay inside
    examples:
      block: ["When is the launch date of Halcyon?"]
      allow: ["When is the launch date of the conference?"]
"""

BROAD = """
  - id: budget_talk
    keywords: [budget]
    action: block
    severity: medium
    reason: budget talk stays inside
    examples:
      block: ["What is the budget for the offsite?"]
"""


def _candidate(tmp_path: Path, extra: str = "", drop: str = "") -> Path:
    text = SHIPPED.read_text(encoding="utf-8")
    if drop:
        start = text.index(f"  - id: {drop}")
        end = text.find("\n  - id:", start + 1)
        text = text[:start] + (text[end + 1 :] if end != -1 else "")
    path = tmp_path / "candidate.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def _run(tmp_path: Path, candidate: Path, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "report.json"
    argv = ["--candidate", str(candidate), "--current", str(SHIPPED), "--json", str(out),
            "--resamples", "200", *extra]  # fmt: skip
    code = main(argv, settings=hermetic_settings())
    return code, json.loads(out.read_text()) if out.exists() else {}


def test_a_narrow_rule_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _run(tmp_path, _candidate(tmp_path, NARROW))
    assert code == 0 and report["passed"] is True and report["regressions"] == []
    # Only the new rule's own block example flips; the labelled corpus is unchanged.
    (flip,) = report["flips"]["rows"]
    assert (flip["direction"], flip["source"], flip["policies"]) == (
        "new_block", "examples", ["launch_dates"],
    )  # fmt: skip
    cur, cand = report["labelled"]["current"], report["labelled"]["candidate"]
    assert cur["recall"] == cand["recall"] and cur["false_block_rate"] == cand["false_block_rate"]
    low, high = cur["recall"]["ci95"]
    assert 0.0 <= low <= cur["recall"]["value"] <= high <= 1.0
    assert report["rows"]["corpus"] > 100 and report["rows"]["examples"] > 5
    assert set(report["decision_us"]) == {"current", "candidate"}
    assert "PASS" in capsys.readouterr().out


def test_a_broad_rule_fails_ci_with_its_new_false_blocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _run(tmp_path, _candidate(tmp_path, BROAD))
    assert code == 1 and report["passed"] is False
    false_blocks = [
        f for f in report["flips"]["rows"]
        if f["direction"] == "new_block" and f["expected_blocked"] is False
    ]  # fmt: skip
    assert false_blocks and all(f["policies"] == ["budget_talk"] for f in false_blocks)
    fbr = report["labelled"]
    assert (
        fbr["candidate"]["false_block_rate"]["value"] > fbr["current"]["false_block_rate"]["value"]
    )
    out = capsys.readouterr().out
    assert "FAIL" in out and "must pass are newly blocked" in out
    # The same replay passes when the operator accepts new false blocks.
    code, _ = _run(tmp_path, _candidate(tmp_path, BROAD), "--fail-on", "lost-block")
    assert code == 0


def test_a_removed_rule_is_a_lost_block(tmp_path: Path) -> None:
    code, report = _run(tmp_path, _candidate(tmp_path, drop="unreleased_code_names"))
    assert code == 1
    lost = [f for f in report["flips"]["rows"] if f["direction"] == "lost_block"]
    assert lost and {p for f in lost for p in f["policies"]} == {"unreleased_code_names"}
    assert report["labelled"]["candidate"]["recall"]["value"] < 1.0 or any(
        f["source"] == "examples" for f in lost
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules:\n  - id: x\n    keywords: [a, b\n", "YAML syntax error at line"),
        (NARROW.replace("When is the launch date of the conference?", "launch date of Halcyon"),
         "must pass but the pattern matches it"),
    ],
)  # fmt: skip
def test_a_candidate_that_cannot_load_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    path = tmp_path / "candidate.yaml"
    path.write_text(text if text.startswith("rules:") else "rules:" + text, encoding="utf-8")
    code, report = _run(tmp_path, path)
    err = capsys.readouterr().err
    assert code == 2 and report == {}
    assert str(path) in err and problem in err and "line " in err


def test_an_unknown_regression_name_exits_2(tmp_path: Path) -> None:
    assert _run(tmp_path, _candidate(tmp_path, NARROW), "--fail-on", "everything")[0] == 2


def test_the_sample_is_masked_and_replayed(tmp_path: Path) -> None:
    sample = TrafficSample(capacity=3)
    for text in ("My SSN is 123-45-6789, what is the budget?", "hello", "budget tips", "hi"):
        sample.add(text, "engineer", "platform")
    rows = sample.rows()
    assert len(rows) == 3 and "123-45-6789" not in rows[0].text + rows[1].text
    export = {"rows": [row.as_dict() for row in rows]}
    check = Replay.load(SHIPPED, _candidate(tmp_path, BROAD), hermetic_settings())
    report = replay(check, [], sample=sample_rows(export, check), resamples=50)
    assert [(f.source, f.text) for f in report.flips] == [("sample", "budget tips")]
    assert report.passed  # a new block on unlabelled traffic is not a regression by default
    assert not replay(check, [], sample=sample_rows(export, check), fail_on=["new-block"]).passed


def test_the_sample_ages_out() -> None:
    now = [1000.0]
    sample = TrafficSample(capacity=10, max_age_s=60, clock=lambda: now[0])
    sample.add("first", "engineer", "platform")
    now[0] += 61
    sample.add("second", "engineer", "platform")
    assert [row.text for row in sample.rows()] == ["second"]


def test_the_gateway_keeps_a_masked_sample_only_when_asked(make_gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    body = {"user_token": "user-123", "client_id": "acme", "query": "SSN 123-45-6789 please"}
    off = make_gateway()
    with httpx.Client(base_url=off.url, timeout=10) as http:
        http.post("/api/policy/pre-check", json=body)
        got = http.get("/api/policies/traffic-sample").json()
    assert got["enabled"] is False and got["rows"] == []
    on = make_gateway(db=tmp_path / "on.db", traffic_sample=100, admin_token=_secret("op-token"))
    with httpx.Client(base_url=on.url, timeout=10) as http:
        http.post("/api/policy/pre-check", json=body)
        assert http.get("/api/policies/traffic-sample").status_code == 401
        got = http.get(
            "/api/policies/traffic-sample", headers={"Authorization": "Bearer op-token"}
        ).json()
    assert got["enabled"] is True
    (row,) = got["rows"]
    assert row["text"] == "SSN [SSN_1] please" and row["role"] == "engineer"
    assert "user-123" not in json.dumps(got)


def _secret(value: str):  # type: ignore[no-untyped-def]
    from helpers.settings import Secret

    return Secret(value)


def test_the_sample_switch_is_read_from_the_environment() -> None:
    from helpers.errors import ConfigError
    from helpers.settings import Settings

    assert Settings.load(env={}, dotenv_path=None).traffic_sample == 0
    on = Settings.load(env={"GATEWAY_TRAFFIC_SAMPLE": "500"}, dotenv_path=None)
    assert on.traffic_sample == 500
    with pytest.raises(ConfigError, match="GATEWAY_TRAFFIC_SAMPLE"):
        Settings.load(env={"GATEWAY_TRAFFIC_SAMPLE": "lots"}, dotenv_path=None)


def test_a_malformed_sample_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "sample.json"
    bad.write_text('{"rows": [{"txt": 1}]}')
    code, _ = _run(tmp_path, _candidate(tmp_path, NARROW), "--sample", str(bad))
    assert code == 2 and "has no 'text' string" in capsys.readouterr().err


def test_the_replay_benchmark_writes_a_well_formed_report(tmp_path: Path) -> None:
    from helpers.bench.__main__ import main as bench

    out = tmp_path / "bench.json"
    with pytest.raises(SystemExit) as done:
        bench(["policy-replay", "--n", "70", "--out", str(out)])
    assert done.value.code == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "policy-replay" and report["n_masked"] == 70
    assert report["rows"]["sample"] == 70 and report["replay_s"] > 0
    assert report["target"] == {"n": 10_000, "seconds": 10.0} and report["target_met"] is False
    assert set(report["decision_us"]) == {"current", "candidate"}
