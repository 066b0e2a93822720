"""The terminal walkthrough end to end, offline: real gateway, real SDK, stand-in provider."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from helpers.walkthrough import format_ms


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0.42, "0.42ms"), (0.049, "0.05ms"), (3.14159, "3.1ms"), (850.4, "850ms"), (12.0, "12ms")],
)
def test_format_ms_keeps_sub_millisecond_precision(ms: float, text: str) -> None:
    assert format_ms(ms) == text


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("AXONFLOW_AGENT_URL", None)
    cmd = [sys.executable, "-m", "helpers.walkthrough", "--time-scale", "0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_approved_query_runs_all_three_steps(provider: str) -> None:
    done = _run("--provider", provider)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert out.startswith("AxonFlow Gateway Mode - Python Example")
    for line in ("Step 1: Policy Pre-Check...", "Approved: True", "Step 3: Audit Logging...",
                 "Latency Breakdown", "Governance:"):  # fmt: skip
        assert line in out
    assert "(simulated latency, stand-in)" in out
    assert re.search(r"Context ID: [0-9a-f-]{36}", out)
    assert re.search(r"Audit ID: [0-9a-f-]{36}", out)
    assert re.search(r"Tokens: \d+ prompt, \d+ completion", out)
    assert re.search(r"Pre-check:\s+\d+(\.\d+)?ms", out)


def test_blocked_query_skips_the_llm_and_still_exits_0() -> None:
    done = _run("--query", "My SSN is 123-45-6789", "--provider", "openai")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "Approved: False" in out and "sys_pii_ssn" in out
    assert "skipped: the query was blocked" in out
    assert "Response received" not in out
    assert re.search(r"Audit ID: [0-9a-f-]{36}", out)
