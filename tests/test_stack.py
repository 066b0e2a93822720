"""Backend resolution: offline by default, a healthy agent URL means live, a dead one falls back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.server import start_gateway
from helpers.settings import Settings
from helpers.stack import start_stack


def _settings(**env: str) -> Settings:
    return Settings.load(env=env, dotenv_path=None)


def test_offline_by_default_and_stops_what_it_started(capsys: pytest.CaptureFixture[str]) -> None:
    with start_stack(_settings(), time_scale=0) as stack:
        line = capsys.readouterr().out.strip()
        assert "gateway: offline embedded gateway" in line
        assert "openai: offline stand-in" in line and "anthropic: offline stand-in" in line
        assert "simulated, time scale x0" in line
        assert stack.offline
        with stack.sync_gateway_client() as gateway:
            assert gateway.health().ok
        with stack.openai_client() as llm:
            assert any(m.id == "gpt-4o-mini" for m in llm.models.list().data)
        services = list(stack._services)
        gateway_pid = stack.gateway_pid
        assert gateway_pid is not None and gateway_pid != os.getpid()
        cmdline = Path(f"/proc/{gateway_pid}/cmdline").read_bytes().split(b"\0")
        assert b"helpers.gateway" in cmdline
    assert services and all(not s.running for s in services)


def test_healthy_agent_url_is_used_as_the_live_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    # Any server answering AxonFlow's /health counts as an agent; here another embedded one.
    with start_gateway() as agent:
        with start_stack(_settings(AXONFLOW_AGENT_URL=agent.url), time_scale=0) as stack:
            assert stack.gateway.live and stack.gateway.url == agent.url
            assert "gateway: LIVE AxonFlow agent" in capsys.readouterr().out
            assert len(stack._services) == 1  # only the stand-in was started
            assert stack.gateway_pid is None


def test_unreachable_agent_url_falls_back_with_a_note(capsys: pytest.CaptureFixture[str]) -> None:
    with start_stack(_settings(AXONFLOW_AGENT_URL="http://127.0.0.1:9"), time_scale=0) as stack:
        out = capsys.readouterr().out
        assert not stack.gateway.live
        assert "did not answer /health; using the embedded gateway instead" in out


def test_describe_never_shows_a_key() -> None:
    settings = _settings(OPENAI_API_KEY="placeholder-abcdefghijklmnopqrstuvwxyz")
    with start_stack(settings, time_scale=0, quiet=True) as stack:
        assert stack.openai.live and not stack.anthropic.live
        assert "abcdefghijklmnop" not in stack.describe() + repr(stack)
        assert "openai: LIVE OpenAI API" in stack.describe()
