"""make test cannot reach a paid API: no .env, no key, no live agent, nothing off loopback.

The root ``conftest.py`` pins the run offline before collection; these tests check that it
did, that ``Settings`` honours the switch wherever a key comes from, and that a stack
started with key-shaped values and a dead agent URL in its environment stays offline.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.settings import LIVE_SWITCHES, OFFLINE_SWITCH, PROJECT_ROOT, Settings


def _key_shaped(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(30)


def _live_env() -> dict[str, str]:
    return {
        "OPENAI_API_KEY": _key_shaped("sk-"),
        "ANTHROPIC_API_KEY": _key_shaped("sk-ant-"),
        "AXONFLOW_AGENT_URL": "http://127.0.0.1:9",  # the discard port: nothing answers
        "AXONFLOW_CLIENT_SECRET": _key_shaped("cs-"),
    }


def test_the_test_run_itself_is_pinned_offline() -> None:
    assert os.environ.get(OFFLINE_SWITCH) == "1"
    assert not [name for name in LIVE_SWITCHES if name in os.environ]


def test_settings_ignore_env_and_dotenv_when_offline(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("".join(f"{k}={v}\n" for k, v in _live_env().items()))
    live = Settings.load(env=_live_env(), dotenv_path=dotenv)
    assert live.openai_api_key and live.agent_url  # the same sources switch live otherwise
    from_file = Settings.load(env={}, dotenv_path=dotenv)
    assert from_file.anthropic_api_key and from_file.agent_url
    for env in ({OFFLINE_SWITCH: "1", **_live_env()}, {OFFLINE_SWITCH: "true"}):
        s = Settings.load(env=env, dotenv_path=dotenv)
        assert s.offline_forced
        assert not (s.openai_api_key or s.anthropic_api_key or s.client_secret)
        assert s.agent_url == ""


def test_offline_in_dotenv_drops_the_live_switches(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    lines = {**_live_env(), OFFLINE_SWITCH: "true", "STANDIN_TIME_SCALE": "0.5"}
    dotenv.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    s = Settings.load(env={}, dotenv_path=dotenv)
    assert s.offline_forced and not s.openai_api_key and s.agent_url == ""
    assert s.standin_time_scale == 0.5  # the rest of the file still applies
    pinned = Settings.load(env={OFFLINE_SWITCH: "1"}, dotenv_path=dotenv)
    assert pinned.standin_time_scale == 1.0  # pinned by the environment: .env is not read


def test_a_bad_offline_value_is_a_clear_error() -> None:
    from helpers.errors import ConfigError

    with pytest.raises(ConfigError, match="NOTEBOOKS_OFFLINE='maybe' is not a boolean"):
        Settings.load(env={OFFLINE_SWITCH: "maybe"}, dotenv_path=None)


@pytest.mark.slow
def test_a_stack_with_live_looking_settings_stays_offline() -> None:
    code = (
        "from helpers.stack import start_stack\n"
        "with start_stack(time_scale=0, quiet=True) as stack:\n"
        "    assert stack.offline, stack.describe()\n"
        "    ctx = stack.sync_gateway_client().pre_check('What is RAG?', user_token='user-123')\n"
        "    reply = stack.openai_client().chat.completions.create(\n"
        "        model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'hi'}])\n"
        "    print(ctx.approved, reply.usage.total_tokens > 0, stack.describe())\n"
    )
    env = {**os.environ, **_live_env(), OFFLINE_SWITCH: "1"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("True True gateway: offline embedded gateway")
    assert "LIVE" not in done.stdout


def test_connections_off_loopback_are_refused_before_any_packet() -> None:
    with socket.socket() as s:
        # 203.0.113.0/24 is TEST-NET-3: documentation only; the guard refuses before connect.
        with pytest.raises(ConnectionRefusedError, match="tests stay on loopback"):
            s.connect(("203.0.113.7", 443))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with socket.create_connection(s.getsockname(), timeout=5):
            pass  # loopback is fine
