"""The terminal walkthrough end to end, offline: real gateway, real SDK, stand-in provider."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from helpers.plots import format_ms
from helpers.settings import LIVE_SWITCHES, OFFLINE_SWITCH
from helpers.walkthrough import show_request


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


@pytest.mark.parametrize(
    ("provider", "user", "role"),
    [("openai", "user-123", "engineer"), ("anthropic", "user-789", "admin")],
)
def test_approved_query_runs_all_three_steps(provider: str, user: str, role: str) -> None:
    done = _run("--provider", provider, "--user", user)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert out.startswith("AxonFlow Gateway Mode - Python Example")
    assert f"Context: {{'user_role': '{role}'" in out  # the context names the user's own role
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


def _dead_agent_env() -> dict[str, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if k != OFFLINE_SWITCH}
    env.update({name: "" for name in LIVE_SWITCHES})  # "" beats any value a .env may hold
    env["AXONFLOW_AGENT_URL"] = dead
    return env


def test_a_dead_agent_url_is_an_error_not_a_silent_fallback() -> None:
    cmd = [sys.executable, "-m", "helpers.walkthrough", "--time-scale", "0"]
    env = _dead_agent_env()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2, done.stdout[-2000:]
    assert "is not answering" in done.stderr and "--fallback" in done.stderr
    assert "Step 1" not in done.stdout
    done = subprocess.run([*cmd, "--fallback"], capture_output=True, text=True, timeout=120,
                          env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "did not answer /health; using the embedded gateway instead" in done.stderr
    assert "gateway: offline embedded gateway" in done.stdout


def test_an_unknown_user_is_a_guest() -> None:
    done = _run("--user", "someone-new", "--provider", "openai")
    assert "Context: {'user_role': 'guest', 'department': 'unknown'}" in done.stdout


def test_default_models_are_ones_the_installed_sdks_know() -> None:
    import typing

    from anthropic.types import Model as AnthropicModel
    from openai.types import ChatModel

    from helpers.settings import DEFAULT_MODELS

    def names(alias: object) -> set[str]:
        out: set[str] = set()
        for arg in typing.get_args(alias) or (alias,):
            out |= names(arg) if typing.get_args(arg) else {arg} if isinstance(arg, str) else set()
        return out

    assert DEFAULT_MODELS["openai"] in names(ChatModel)
    assert DEFAULT_MODELS["anthropic"] in names(AnthropicModel)


def test_show_request_masks_credentials_and_keeps_the_rest() -> None:
    import httpx

    request = httpx.Request(
        "POST", "http://127.0.0.1:9/api/policy/pre-check?x=1",
        headers={"Authorization": "Basic c2VjcmV0LWlk", "X-License-Key": "lic-123",
                 "X-Client-ID": "app1"},
    )  # fmt: skip
    text = show_request(request)
    assert text.splitlines()[0] == "POST /api/policy/pre-check?x=1"
    assert "Authorization: Basic ****" in text and "X-License-Key: ****" in text
    assert "X-Client-ID: app1" in text
    assert "c2VjcmV0LWlk" not in text and "lic-123" not in text
