"""Settings precedence, parsing errors, and secrets that never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.errors import ConfigError
from helpers.settings import Secret, Settings


def test_defaults_are_offline_community_mode() -> None:
    s = Settings.load(env={}, dotenv_path=None)
    assert s.agent_url == "" and s.client_id == "community"
    assert not s.openai_api_key and not s.anthropic_api_key
    assert s.pii_block_critical and s.sqli_block_mode == "block" and s.sqli_scanner_mode == "basic"
    assert not s.authenticated


def test_environment_beats_dotenv_beats_defaults(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("AXONFLOW_CLIENT_ID=from-dotenv\nAXONFLOW_AGENT_URL=http://dotenv:8080/\n")
    s = Settings.load(env={"AXONFLOW_CLIENT_ID": "from-env"}, dotenv_path=env_file)
    assert s.client_id == "from-env"
    assert s.agent_url == "http://dotenv:8080"


def test_secrets_are_masked_everywhere() -> None:
    s = Settings.load(env={"OPENAI_API_KEY": "placeholder-abcdefghijklmnopqrstuvwxyz",
                           "GATEWAY_CLIENT_SECRETS": "acme:hunter2"}, dotenv_path=None)  # fmt: skip
    text = repr(s) + str(s)
    assert "abcdefghijklmnop" not in text and "hunter2" not in text
    assert s.openai_api_key.get() == "placeholder-abcdefghijklmnopqrstuvwxyz"
    assert s.client_secrets["acme"] == Secret("hunter2") and s.authenticated


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"PII_BLOCK_CRITICAL": "maybe"}, "PII_BLOCK_CRITICAL='maybe'"),
        ({"SQLI_BLOCK_MODE": "loud"}, "block, warn"),
        ({"SQLI_SCANNER_MODE": "advanced"}, "off, basic"),
        ({"STANDIN_TIME_SCALE": "fast"}, "not a number"),
        ({"STANDIN_TIME_SCALE": "-1"}, "at least 0"),
        ({"GATEWAY_CLIENT_SECRETS": "nocolon"}, "client_id:secret"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        Settings.load(env=env, dotenv_path=None)


@pytest.mark.parametrize(
    ("raw", "value"), [("0", False), ("false", False), ("TRUE", True), ("1", True)]
)
def test_pii_switch_values(raw: str, value: bool) -> None:
    assert (
        Settings.load(env={"PII_BLOCK_CRITICAL": raw}, dotenv_path=None).pii_block_critical is value
    )


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.load(env={}, dotenv_path=None, colour="blue")


@pytest.mark.parametrize(
    ("env", "pii_action", "sqli_mode", "dangerous", "profile"),
    [
        ({}, "block", "block", None, ""),
        ({"AXONFLOW_PROFILE": "default"}, "warn", "warn", True, "default"),
        ({"AXONFLOW_PROFILE": "Strict"}, "block", "block", None, "strict"),
        ({"PII_ACTION": "redact"}, "redact", "block", None, ""),
        ({"PII_ACTION": "LOG", "AXONFLOW_PROFILE": "strict"}, "log", "block", None, "strict"),
        ({"PII_BLOCK_CRITICAL": "false"}, "warn", "block", None, ""),
        ({"PII_BLOCK_CRITICAL": "0", "PII_ACTION": "redact"}, "redact", "block", None, ""),
        ({"AXONFLOW_PROFILE": "default", "PII_BLOCK_CRITICAL": "true"}, "block", "warn", True,
         "default"),
        ({"AXONFLOW_PROFILE": "default", "SQLI_BLOCK_MODE": "block"}, "warn", "block", None,
         "default"),
        ({"SQLI_BLOCK_MODE": "warn"}, "block", "warn", None, ""),
    ],
)  # fmt: skip
def test_posture_precedence(
    env: dict[str, str], pii_action: str, sqli_mode: str, dangerous: bool | None, profile: str
) -> None:
    s = Settings.load(env=env, dotenv_path=None)
    assert (s.pii_action, s.sqli_block_mode, s.dangerous_block, s.profile) == (
        pii_action, sqli_mode, dangerous, profile
    )  # fmt: skip
    assert s.pii_block_critical is (pii_action == "block")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"PII_ACTION": "mask"}, "PII_ACTION='mask'"),
        ({"AXONFLOW_PROFILE": "dev"}, "AXONFLOW_PROFILE"),
    ],
)
def test_bad_posture_values_name_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Settings.load(env=env, dotenv_path=None)


@pytest.mark.parametrize(
    ("env", "action"),
    [
        ({}, "block"),
        ({"SECRET_ACTION": "Redact"}, "redact"),
        ({"AXONFLOW_PROFILE": "default"}, "block"),  # a profile never unblocks credentials
        ({"AXONFLOW_PROFILE": "default", "SECRET_ACTION": "warn"}, "warn"),
    ],
)
def test_secret_action(env: dict[str, str], action: str) -> None:
    assert Settings.load(env=env, dotenv_path=None).secret_action == action


def test_bad_secret_action_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="SECRET_ACTION='mask' is not one of block, redact"):
        Settings.load(env={"SECRET_ACTION": "mask"}, dotenv_path=None)
