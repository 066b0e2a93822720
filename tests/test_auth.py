"""helpers.gateway.auth: who may do what, tried the way an attacker would, over real HTTP.

One gateway holds two clients (``acme``, ``globex``) and an operator token. Every client
endpoint and every operator endpoint is tried with no credential, a wrong one, another
client's, a mismatched client id, a token in the URL and an oversized header; community mode
on loopback is checked to answer as it always has. The comparison of secrets is checked by
what it calls (one :func:`hmac.compare_digest` on two digests per request), not by a timer.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from axonflow import AxonFlow
from axonflow.exceptions import AuthenticationError

from helpers.errors import ConfigError
from helpers.gateway.auth import MAX_AUTHORIZATION, Authenticator, same_secret
from helpers.settings import Secret, Settings
from tests.conftest import ThreadedGateway
from tests.provider_fakes import ProxyFactory

TOKEN = "operator-t0ken-for-tests"
SECRETS = {"acme": Secret("acme-s3cret"), "globex": Secret("globex-s3cret")}
PRE = "/api/policy/pre-check"
AUDIT = "/api/audit/llm-call"
REQUEST = "/api/request"
CHAT = "/v1/chat/completions"
BENIGN = "What are best practices for AI model deployment?"


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


ACME = basic("acme", "acme-s3cret")
BEARER = f"Bearer {TOKEN}"
HUGE = "Basic " + "A" * (MAX_AUTHORIZATION + 100)


@pytest.fixture
def secured(make_proxy: ProxyFactory) -> ThreadedGateway:
    """A gateway with client secrets and an operator token, its providers the stand-ins."""
    return make_proxy(client_secrets=SECRETS, admin_token=Secret(TOKEN))


def context_id(url: str) -> str:
    body = {"client_id": "acme", "query": BENIGN}
    r = httpx.post(url + PRE, json=body, headers={"authorization": ACME}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["context_id"]


def client_call(url: str, endpoint: str, client_id: str, headers: dict[str, str]) -> httpx.Response:
    """One call to a client endpoint naming ``client_id`` (body or ``X-Client-ID``)."""
    if endpoint == PRE:
        body: dict[str, Any] = {"client_id": client_id, "query": BENIGN}
    elif endpoint == AUDIT:
        body = {
            "context_id": context_id(url),
            "client_id": client_id,
            "provider": "openai",
            "model": "gpt-4o-mini",
            "response_summary": "ok",
        }
    elif endpoint == REQUEST:
        body = {"client_id": client_id, "query": BENIGN, "skip_llm": True}
    else:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": BENIGN}]}
        headers = {**headers, "x-client-id": client_id}
    return httpx.post(url + endpoint, json=body, headers=headers, timeout=10)


def error_of(r: httpx.Response) -> str:
    """The error message in AxonFlow's shape, or in OpenAI's on ``/v1/chat/completions``."""
    body = r.json()
    if "success" in body:
        assert body["success"] is False
        return body["error"]
    return body["error"]["message"]


CLIENT_ENDPOINTS = [PRE, AUDIT, REQUEST, CHAT]
# (attempt, client id named in the request, Authorization header, status, error contains)
CLIENT_ATTEMPTS = [
    ("no credential", "acme", None, 401, "Authentication required"),
    ("wrong secret", "acme", basic("acme", "guess"), 401, "Invalid client credentials"),
    ("another client's secret", "acme", basic("acme", "globex-s3cret"), 401, "Invalid client"),
    ("unknown client", "mallory", basic("mallory", "acme-s3cret"), 401, "Invalid client"),
    ("empty secret", "acme", basic("acme", ""), 401, "Invalid client"),
    ("malformed Basic", "acme", "Basic %%%", 401, "Malformed"),
    ("operator token as a client", "acme", BEARER, 401, ""),  # Basic, or a key: wording varies
    ("oversized header", "acme", HUGE, 401, "too large"),
    ("body names another client", "globex", ACME, 403, "Tenant mismatch"),
    ("right credential", "acme", ACME, 200, None),
]


@pytest.mark.parametrize("endpoint", CLIENT_ENDPOINTS)
def test_client_endpoints_against_every_attempt(secured: ThreadedGateway, endpoint: str) -> None:
    for attempt, client_id, authorization, status, message in CLIENT_ATTEMPTS:
        if endpoint == CHAT and attempt == "no credential":
            message = "Invalid client credentials"  # the OpenAI SDK's wording: an API key
        headers = {} if authorization is None else {"authorization": authorization}
        r = client_call(secured.url, endpoint, client_id, headers)
        assert r.status_code == status, (attempt, r.text)
        if message is not None:
            assert message in error_of(r), (attempt, r.text)


def test_the_openai_sdks_api_key_must_name_the_same_client(secured: ThreadedGateway) -> None:
    right = {"authorization": "Bearer acme:acme-s3cret"}
    assert client_call(secured.url, CHAT, "acme", right).status_code == 200
    r = client_call(secured.url, CHAT, "globex", right)
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    r = client_call(secured.url, CHAT, "acme", {"authorization": "Bearer acme:guess"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


def test_the_proxy_tenant_is_the_authenticated_client(secured: ThreadedGateway) -> None:
    body = {"query": BENIGN, "skip_llm": True}  # no client_id in the body: the credential's
    r = httpx.post(secured.url + REQUEST, json=body, headers={"authorization": ACME}, timeout=10)
    assert r.status_code == 200 and r.json()["policy_info"]["tenant_id"] == "acme"


OPERATOR_ENDPOINTS = [
    ("GET", "/api/audit/records"),
    ("GET", "/api/audit/export"),
    ("GET", "/api/audit/verify"),
    ("POST", "/api/policies/reload"),
    ("GET", "/prometheus"),
]
# (attempt, Authorization header, query string, status, error contains)
OPERATOR_ATTEMPTS = [
    ("no credential", None, "", 401, "Operator token required"),
    ("wrong token", "Bearer not-the-token", "", 401, "Invalid operator token"),
    ("token in the query string", None, f"?access_token={TOKEN}", 401, "Operator token"),
    ("token as ?token=", None, f"?token={TOKEN}", 401, "Operator token required"),
    ("a client's right credential", ACME, "", 403, "client credentials cannot"),
    ("a client's wrong credential", basic("acme", "guess"), "", 401, "Invalid client"),
    ("oversized header", "Bearer " + "t" * (MAX_AUTHORIZATION + 100), "", 401, "too large"),
    ("the token in lower case scheme", f"bearer {TOKEN}", "", 200, None),
    ("the token", BEARER, "", 200, None),
]


@pytest.mark.parametrize(("method", "path"), OPERATOR_ENDPOINTS)
def test_operator_endpoints_against_every_attempt(
    secured: ThreadedGateway, method: str, path: str
) -> None:
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        for attempt, authorization, query, status, message in OPERATOR_ATTEMPTS:
            headers = {} if authorization is None else {"authorization": authorization}
            r = http.request(method, path + query, headers=headers)
            assert r.status_code == status, (attempt, r.text)
            if message is not None:
                assert message in error_of(r), (attempt, r.text)


def test_health_is_open_and_says_the_mode(
    secured: ThreadedGateway, gateway: ThreadedGateway
) -> None:
    assert httpx.get(secured.url + "/health").json()["auth"] == "client_credentials"
    assert httpx.get(gateway.url + "/health").json()["auth"] == "community"


def test_community_mode_on_loopback_asks_for_nothing(gateway: ThreadedGateway) -> None:
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        pre = http.post(PRE, json={"client_id": "anyone", "query": BENIGN})
        assert pre.status_code == 200
        audit = {
            "context_id": pre.json()["context_id"],
            "client_id": "anyone",
            "provider": "openai",
            "model": "gpt-4o-mini",
        }
        assert http.post(AUDIT, json=audit).status_code == 200
        for method, path in OPERATOR_ENDPOINTS:
            assert http.request(method, path).status_code == 200, path


def test_an_operator_token_alone_guards_only_the_operator_endpoints(
    make_gateway: Callable[..., ThreadedGateway],
) -> None:
    gw = make_gateway(admin_token=Secret(TOKEN))
    with httpx.Client(base_url=gw.url, timeout=10) as http:
        assert http.post(PRE, json={"client_id": "anyone", "query": BENIGN}).status_code == 200
        community = {"authorization": basic("community", "")}  # what SDK 9.5 always sends
        assert http.get("/api/audit/records", headers=community).status_code == 403
        assert http.get("/api/audit/records", headers={"authorization": BEARER}).status_code == 200


def test_the_official_sdk_authenticates_with_its_normal_configuration(
    secured: ThreadedGateway,
) -> None:
    async def three_steps(secret: str) -> tuple[Any, Any]:
        sdk = AxonFlow(
            endpoint=secured.url, client_id="acme", client_secret=secret, cache_enabled=False
        )
        async with sdk:
            ok = await sdk.get_policy_approved_context(user_token="u1", query=BENIGN)
            proxied = await sdk.proxy_llm_call("u1", BENIGN, "chat", None)
            return ok, proxied

    ok, proxied = asyncio.run(three_steps("acme-s3cret"))
    assert ok.approved is True and proxied.success is True
    assert proxied.policy_info.tenant_id == "acme"
    with pytest.raises(AuthenticationError):
        asyncio.run(three_steps("guess"))


# --- the comparison -----------------------------------------------------------------------


@pytest.fixture
def compares(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every :func:`hmac.compare_digest` call the gateway makes, recorded and then done."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (ACME, 200),
        (basic("acme", "guess"), 401),
        (basic("acme", "globex-s3cret"), 401),
        (basic("mallory", "acme-s3cret"), 401),  # an unknown client meets a decoy
        (basic("acme", "x" * 1000), 401),  # a long guess: still two 32-byte digests
    ],
)
def test_each_credential_costs_one_constant_time_compare_of_digests(
    make_gateway: Callable[..., ThreadedGateway],
    compares: list[tuple[bytes, bytes]],
    authorization: str,
    status: int,
) -> None:
    gw = make_gateway(client_secrets=SECRETS)
    compares.clear()
    body = {"client_id": "acme", "query": BENIGN}
    r = httpx.post(gw.url + PRE, json=body, headers={"authorization": authorization}, timeout=10)
    assert r.status_code == status
    assert [(len(a), len(b)) for a, b in compares] == [(32, 32)]


def test_the_operator_token_costs_one_compare_and_community_mode_none(
    make_gateway: Callable[..., ThreadedGateway], compares: list[tuple[bytes, bytes]]
) -> None:
    gw = make_gateway(admin_token=Secret(TOKEN))
    compares.clear()
    for authorization in (BEARER, "Bearer wrong"):
        httpx.get(gw.url + "/api/audit/records", headers={"authorization": authorization})
    assert len(compares) == 2
    compares.clear()
    httpx.post(
        gw.url + PRE, json={"client_id": "a", "query": BENIGN}, headers={"authorization": ACME}
    )
    assert compares == []  # community mode: nothing compared on the hot path


@pytest.mark.parametrize(
    ("given", "expected", "same"),
    [
        ("s3cret", "s3cret", True),
        ("s3cret", "s3cre", False),
        ("", "s3cret", False),
        ("pässwörd", "pässwörd", True),
        ("pässwörd", "passwort", False),
    ],
)
def test_same_secret(given: str, expected: str, same: bool) -> None:
    import hashlib

    assert same_secret(given, hashlib.sha256(expected.encode()).digest()) is same


# --- secrets stay secret ------------------------------------------------------------------


def test_no_secret_in_any_repr() -> None:
    s = Settings.load(
        env={"GATEWAY_CLIENT_SECRETS": "acme:acme-s3cret", "GATEWAY_ADMIN_TOKEN": TOKEN},
        dotenv_path=None,
    )
    auth = Authenticator(s.client_secrets, s.admin_token)
    for text in (repr(s), str(s), repr(auth), repr(s.client_secrets), repr(s.admin_token)):
        assert "acme-s3cret" not in text and TOKEN not in text
    assert repr(auth) == "<Authenticator clients=['acme'] operator_token=set>"


# --- no open gateway by accident ----------------------------------------------------------


SECURE_ENV = {"GATEWAY_CLIENT_SECRETS": "acme:acme-s3cret", "GATEWAY_ADMIN_TOKEN": TOKEN}


@pytest.mark.parametrize(
    ("host", "env", "refused", "names"),
    [
        ("127.0.0.1", {}, False, []),
        ("localhost", {}, False, []),
        ("::1", {}, False, []),
        ("127.0.0.2", {}, False, []),
        ("0.0.0.0", {}, True, ["GATEWAY_CLIENT_SECRETS", "GATEWAY_ADMIN_TOKEN"]),
        ("192.168.1.20", {"GATEWAY_ADMIN_TOKEN": TOKEN}, True, ["GATEWAY_CLIENT_SECRETS"]),
        ("::", {"GATEWAY_CLIENT_SECRETS": "acme:x"}, True, ["GATEWAY_ADMIN_TOKEN"]),
        ("gateway.internal", {}, True, ["GATEWAY_CLIENT_SECRETS", "GATEWAY_ADMIN_TOKEN"]),
        ("0.0.0.0", SECURE_ENV, False, []),
    ],
)
def test_binding_beyond_loopback_needs_secrets_and_a_token(
    host: str, env: dict[str, str], refused: bool, names: list[str]
) -> None:
    from helpers.gateway.__main__ import open_bind_problem

    problem = open_bind_problem(host, Settings.load(env=env, dotenv_path=None))
    assert (problem is not None) is refused
    for name in names:
        assert name in (problem or "")
    assert "--insecure-bind" in (problem or "--insecure-bind")


def test_the_cli_refuses_an_open_bind_before_binding() -> None:
    import subprocess
    import sys

    from helpers.settings import PROJECT_ROOT

    command = [sys.executable, "-m", "helpers.gateway", "--host", "0.0.0.0", "--port", "0"]
    done = subprocess.run(
        [*command, "--db", ":memory:"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
        env={"PATH": "", "PYTHONPATH": str(PROJECT_ROOT), "NOTEBOOKS_OFFLINE": "1"},
    )
    assert done.returncode == 2 and done.stdout == ""
    assert "refusing to bind 0.0.0.0" in done.stderr
    assert "GATEWAY_CLIENT_SECRETS" in done.stderr and "GATEWAY_ADMIN_TOKEN" in done.stderr


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "(community mode: no client credentials required; no operator token)"),
        (SECURE_ENV, "(client credentials required (1 client(s)); operator token required)"),
    ],
)
def test_the_start_up_line_says_the_mode(env: dict[str, str], says: str) -> None:
    from helpers.server import start_gateway

    with start_gateway(env=env) as svc:
        assert says in svc.stdout_tail(5)
        assert TOKEN not in svc.stdout_tail(50) + svc.stderr_tail(50)


def test_a_clients_file(tmp_path: Any) -> None:
    path = tmp_path / "clients"
    path.write_text("# one client a line\nacme:from-file\n\nglobex: g-secret \n")
    env = {"GATEWAY_CLIENTS_FILE": str(path), "GATEWAY_CLIENT_SECRETS": "acme:from-env"}
    s = Settings.load(env=env, dotenv_path=None)
    assert s.client_secrets == {"acme": Secret("from-env"), "globex": Secret("g-secret")}
    path.write_text("acme:ok\nthis line has no colon-secret\n")
    with pytest.raises(ConfigError, match=r"clients, line 2: expected 'client_id:secret'") as info:
        Settings.load(env={"GATEWAY_CLIENTS_FILE": str(path)}, dotenv_path=None)
    assert "colon" not in str(info.value)  # the line may hold a secret: never echoed
