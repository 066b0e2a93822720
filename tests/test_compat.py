"""Compatibility mode: the embedded gateway answers as a stock AxonFlow agent, over real HTTP.

Each extension is refused the way the agent refuses it, and each test checks the normal
gateway too, so it fails if the extension were missing in both modes (docs/compat.md).
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from helpers.errors import ConfigError
from helpers.gateway.app import EXTENSION_ROUTES, EXTENSIONS, axonflow_settings
from helpers.gateway.metrics import AXONFLOW_METRICS
from helpers.settings import Settings

from .conftest import ThreadedGateway, hermetic_settings

PRE = "/api/policy/pre-check"
AUDIT = "/api/audit/llm-call"
AGENT_404 = "404 page not found\n"
# Each extension with the method it serves (a GET on a POST-only one is a 404 too).
EXTENSION_CALLS = [
    ("GET", "/api/audit/records"),
    ("GET", "/api/audit/verify"),
    ("GET", "/api/audit/export"),
    ("POST", "/api/policies/reload"),
    ("POST", "/api/reply/check"),
    ("POST", "/v1/chat/completions"),
]
SSN_QUERY = "My SSN is 123-45-6789, please summarise my account"
CREDENTIAL_QUERY = "mysql -u root --password=S3cr3t! shop"

Make = Callable[..., ThreadedGateway]


@pytest.fixture
def start(make_gateway: Make, tmp_path: Path) -> Make:
    """``make_gateway`` with a database file of its own for each gateway of a test."""
    count = itertools.count()
    return lambda **kw: make_gateway(db=tmp_path / f"gw{next(count)}.db", **kw)


def client(gw: ThreadedGateway) -> httpx.Client:
    return httpx.Client(base_url=gw.url, timeout=10)


def pre_check(http: httpx.Client, query: str = "What is a vector index?") -> httpx.Response:
    return http.post(PRE, json={"user_token": "user-123", "client_id": "acme", "query": query})


def audit_body(context_id: str) -> dict[str, object]:
    return {
        "context_id": context_id, "client_id": "acme", "provider": "openai",
        "model": "gpt-4o-mini", "latency_ms": 120,
        "token_usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }  # fmt: skip


def metric_names(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def test_the_call_table_covers_every_extension_endpoint() -> None:
    assert {path for _, path in EXTENSION_CALLS} == set(EXTENSION_ROUTES.values())


@pytest.mark.parametrize(("method", "path"), EXTENSION_CALLS)
def test_every_extension_endpoint_answers_the_agents_plain_text_404(
    start: Make, method: str, path: str
) -> None:
    with client(start(compat="axonflow")) as compat, client(start()) as normal:
        for verb in {method, "GET", "POST"}:
            r = compat.request(verb, path, json={})
            assert r.status_code == 404, (verb, path)
            assert r.headers["content-type"] == "text/plain; charset=utf-8"
            assert r.text == AGENT_404
        assert normal.request(method, path, json={}).status_code != 404


def test_unknown_paths_and_wrong_methods_answer_like_the_agents_router(start: Make) -> None:
    with client(start(compat="axonflow")) as http:
        missing = http.get("/nope")
        assert (missing.status_code, missing.text) == (404, AGENT_404)
        assert missing.headers["x-content-type-options"] == "nosniff"
        wrong = http.get(PRE)
        assert wrong.status_code == 405 and wrong.content == b""
    with client(start()) as http:  # the normal gateway keeps the contract's JSON
        assert http.get("/nope").json()["success"] is False


def test_axonflows_own_endpoints_still_answer(start: Make) -> None:
    with client(start(compat="axonflow")) as http:
        pre = pre_check(http)
        assert pre.status_code == 200 and pre.json()["approved"] is True
        audit = http.post(AUDIT, json=audit_body(pre.json()["context_id"]))
        assert audit.status_code == 200 and audit.json()["success"] is True
        assert http.get("/prometheus").status_code == 200
        bad = http.post("/api/request", content=b"{")
        assert bad.status_code == 400 and bad.json()["error"] == "Invalid request body"


def test_health_is_the_agents_and_lists_no_extensions(start: Make) -> None:
    with client(start(compat="axonflow")) as http:
        body = http.get("/health").json()
    assert set(body) == {"status", "service", "timestamp", "version"}
    assert body["status"] == "healthy" and body["service"] == "axonflow-agent"
    with client(start()) as http:
        normal = http.get("/health").json()
    assert normal["extensions"] == list(EXTENSIONS) and normal["auth"] == "community"


def test_a_retried_audit_gets_a_new_id(start: Make) -> None:
    ids = {}
    for mode in ("axonflow", ""):
        with client(start(compat=mode)) as http:
            context_id = pre_check(http).json()["context_id"]
            body = audit_body(context_id)
            key = {"Idempotency-Key": "retry-1"}
            ids[mode] = [http.post(AUDIT, json=body, headers=key).json()["audit_id"] for _ in "ab"]
    assert ids["axonflow"][0] != ids["axonflow"][1]  # AxonFlow stores every copy
    assert ids[""][0] == ids[""][1]  # the normal gateway: the same audit


def test_a_reused_idempotency_key_is_not_a_conflict(start: Make) -> None:
    with client(start(compat="axonflow")) as http:
        context_id = pre_check(http).json()["context_id"]
        key = {"Idempotency-Key": "same-key"}
        first = http.post(AUDIT, json=audit_body(context_id), headers=key)
        other = {**audit_body(context_id), "model": "gpt-4o"}
        second = http.post(AUDIT, json=other, headers=key)
    assert (first.status_code, second.status_code) == (200, 200)  # the agent ignores the header


def test_metrics_carry_axonflows_names_only(start: Make) -> None:
    names = {}
    for mode in ("axonflow", ""):
        with client(start(compat=mode)) as http:
            context_id = pre_check(http).json()["context_id"]
            for _ in "ab":  # a repeat, so the normal gateway counts a duplicate
                http.post(AUDIT, json=audit_body(context_id))
            names[mode] = metric_names(http.get("/prometheus").text)
    assert names["axonflow"] == set(AXONFLOW_METRICS)
    assert "axonflow_gateway_audit_duplicates_total" in names[""] - names["axonflow"]


def test_no_redacted_query_under_redaction(start: Make) -> None:
    bodies = {}
    for mode in ("axonflow", ""):
        with client(start(compat=mode, pii_action="redact")) as http:
            bodies[mode] = pre_check(http, SSN_QUERY).json()
    compat, normal = bodies["axonflow"], bodies[""]
    assert compat["approved"] is True and compat["requires_redaction"] is True
    assert "redacted_query" not in compat
    assert "123-45-6789" not in normal["redacted_query"]


def test_only_axonflows_posture_switches_count(start: Make) -> None:
    # SECRET_ACTION is this project's switch: a stock agent ignores it.
    with client(start(compat="axonflow", secret_action="warn")) as http:
        assert pre_check(http, CREDENTIAL_QUERY).json()["approved"] is False
    with client(start(secret_action="warn")) as http:
        assert pre_check(http, CREDENTIAL_QUERY).json()["approved"] is True
    # PII_ACTION is AxonFlow's: it still counts.
    with client(start(compat="axonflow", pii_action="warn")) as http:
        assert pre_check(http, SSN_QUERY).json()["approved"] is True


def test_axonflow_settings_reset_the_projects_switches() -> None:
    mine = hermetic_settings(
        secret_action="log", ssn_rules="layout", inspect_replies=True, pii_action="warn"
    )
    stock = axonflow_settings(mine)
    assert (stock.secret_action, stock.ssn_rules, stock.inspect_replies) == ("block", "ssa", False)
    assert stock.pii_action == "warn"


@pytest.mark.parametrize(
    ("raw", "expected"), [("axonflow", "axonflow"), ("AxonFlow", "axonflow"), ("off", "")]
)
def test_the_environment_switch(raw: str, expected: str) -> None:
    settings = Settings.load(env={"GATEWAY_COMPAT": raw}, dotenv_path=None)
    assert settings.compat == expected


def test_an_unknown_mode_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_COMPAT='agent' is not one of off, axonflow"):
        Settings.load(env={"GATEWAY_COMPAT": "agent"}, dotenv_path=None)


def test_the_command_line_flag_rejects_an_unknown_mode() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "helpers.gateway", "--compat", "agent"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "invalid choice: 'agent'" in done.stderr


def test_the_live_agent_switch_keeps_only_the_process_environments_url(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("AXONFLOW_AGENT_URL=http://127.0.0.1:9\nOPENAI_API_KEY=from-dotenv\n")
    env = {"NOTEBOOKS_OFFLINE": "1", "OPENAI_API_KEY": "from-env"}
    # Offline alone: no agent, no key.
    plain = Settings.load(env={**env, "AXONFLOW_AGENT_URL": "http://127.0.0.1:8123"},
                          dotenv_path=dotenv)  # fmt: skip
    assert plain.agent_url == "" and not plain.openai_api_key
    # Deliberately live: the environment's agent, still no key.
    live_env = {**env, "NOTEBOOKS_LIVE_AGENT": "1", "AXONFLOW_AGENT_URL": "http://127.0.0.1:8123"}
    live = Settings.load(env=live_env, dotenv_path=dotenv)
    assert live.agent_url == "http://127.0.0.1:8123" and not live.openai_api_key
    # A .env cannot supply the URL, nor switch itself live.
    no_url = {**env, "NOTEBOOKS_LIVE_AGENT": "1"}
    assert Settings.load(env=no_url, dotenv_path=dotenv).agent_url == ""
    dotenv.write_text("NOTEBOOKS_LIVE_AGENT=1\n")
    env_url = {**env, "AXONFLOW_AGENT_URL": "http://127.0.0.1:8123"}
    assert Settings.load(env=env_url, dotenv_path=dotenv).agent_url == ""
