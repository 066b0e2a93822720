"""helpers.client: the gateway client, its transports and result types.

Three layers of tests:
- pure units: TokenUsage, parsing contract-shaped replies, constructor defaults;
- the wire, against a small real HTTP server in a thread (headers, bodies, keep-alive,
  status and non-JSON mapping), for both async transports and the blocking client;
- behaviour, against the real embedded gateway started with ``helpers.server``.
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import inspect
import json
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from helpers.client import (
    AuditResult,
    GatewayClient,
    HealthResult,
    PreCheckResult,
    RateLimitInfo,
    SyncGatewayClient,
    TokenUsage,
)
from helpers.errors import (
    BadRequest,
    GatewayHTTPError,
    GatewayTimeout,
    GatewayUnavailable,
    Unauthorized,
)
from helpers.settings import Settings

KINDS = ["httpx", "aiohttp", "sync"]
BLANK = Settings()  # hermetic: ignore the developer's AXONFLOW_* variables and .env


class _Awaitable:
    """Presents a SyncGatewayClient with awaitable methods, so one scenario runs on all three."""

    def __init__(self, client: SyncGatewayClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            return attr(*args, **kwargs)

        return call


def run(kind: str, url: str, scenario: Callable[[Any], Awaitable[Any]], **kw: Any) -> Any:
    """Run ``scenario(client)`` with a fresh client of the given kind, closed afterwards."""
    kw.setdefault("settings", BLANK)

    async def main() -> Any:
        if kind == "sync":
            with SyncGatewayClient(url, **kw) as client:
                return await scenario(_Awaitable(client))
        async with GatewayClient(url, transport=kind, **kw) as client:
            return await scenario(client)

    return asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ TokenUsage


def test_token_usage_total_defaults_to_the_sum() -> None:
    assert TokenUsage(12, 30).total_tokens == 42
    assert TokenUsage(12, 30, total_tokens=50).total_tokens == 50
    assert TokenUsage(0, 0).as_dict() == {"prompt_tokens": 0, "completion_tokens": 0,
                                          "total_tokens": 0}  # fmt: skip


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((-1, 0), ValueError),
        ((0, -5), ValueError),
        ((1, 1, -2), ValueError),
        ((1.5, 0), TypeError),
        (("3", 0), TypeError),
        ((True, 0), TypeError),
        ((None, 0), TypeError),
    ],
)
def test_token_usage_rejects_bad_counts(args: tuple[Any, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        TokenUsage(*args)


def test_token_usage_is_frozen() -> None:
    usage = TokenUsage(1, 2)
    with pytest.raises(FrozenInstanceError):
        usage.prompt_tokens = 5  # type: ignore[misc]


def test_token_usage_from_openai_object_and_dict() -> None:
    from openai.types import CompletionUsage

    usage = CompletionUsage(prompt_tokens=11, completion_tokens=7, total_tokens=18)
    assert TokenUsage.from_openai(usage) == TokenUsage(11, 7, 18)
    assert TokenUsage.from_openai({"prompt_tokens": 2, "completion_tokens": 3}) == TokenUsage(2, 3)
    # The Responses API names them input/output.
    responses = {"input_tokens": 4, "output_tokens": 6, "total_tokens": 10}
    assert TokenUsage.from_openai(responses) == TokenUsage(4, 6, 10)


def test_token_usage_from_anthropic_object_and_dict() -> None:
    from anthropic.types import Usage

    assert TokenUsage.from_anthropic(Usage(input_tokens=25, output_tokens=9)) == TokenUsage(25, 9)
    assert TokenUsage.from_anthropic({"input_tokens": 1, "output_tokens": 2}).total_tokens == 3


# ------------------------------------------------------------------ parsing replies

APPROVED = {
    "context_id": "0b6a4c5e-51f5-4d39-9d5e-8f0b8c4a2d11",
    "approved": True,
    "policies": [],
    "expires_at": "2025-03-01T12:05:00.123456789Z",
}
BLOCKED = {
    "context_id": "7c0e3f5e-2b8e-4b8a-9a51-3f6d2b1e9c42",
    "approved": False,
    "policies": ["sys_pii_ssn", "sys_pii_email"],
    "block_reason": "Blocked by sys_pii_ssn: the query contains a US Social Security number",
    "expires_at": "2025-03-01T12:05:00Z",
    "rate_limit": {"limit": 60, "remaining": 59, "reset_at": "2025-03-01T12:01:00Z"},
    "requires_redaction": True,
    "approved_data": {"rows": 3},
}


def test_parse_approved_pre_check_with_defaults() -> None:
    r = PreCheckResult.from_response(APPROVED, 0.5)
    assert r.approved and r.policies == () and r.block_reason is None
    assert r.expires_at == datetime(2025, 3, 1, 12, 5, 0, 123456, tzinfo=UTC)
    assert r.rate_limit is None and r.requires_redaction is False and r.approved_data is None
    assert r.duration_ms == 0.5 and r.raw is APPROVED


def test_parse_blocked_pre_check_with_every_optional_field() -> None:
    r = PreCheckResult.from_response(BLOCKED, 1.25)
    assert not r.approved
    assert r.policies == ("sys_pii_ssn", "sys_pii_email")
    assert r.block_reason is not None and "sys_pii_ssn" in r.block_reason
    assert r.rate_limit == RateLimitInfo(60, 59, datetime(2025, 3, 1, 12, 1, tzinfo=UTC))
    assert r.requires_redaction is True and r.approved_data == {"rows": 3}
    assert repr(r) == (
        "<PreCheckResult approved=False policies=['sys_pii_ssn', 'sys_pii_email'] "
        f"block_reason={BLOCKED['block_reason']!r} context_id={BLOCKED['context_id']!r} "
        "1.250 ms>"
    )


@pytest.mark.parametrize(
    "reply",
    [
        [],
        {"approved": True, "expires_at": "2025-03-01T12:05:00Z"},
        {**APPROVED, "approved": "yes"},
        {**APPROVED, "expires_at": "tomorrow"},
        {**APPROVED, "expires_at": None},
    ],
)
def test_malformed_pre_check_reply_is_an_http_error(reply: Any) -> None:
    with pytest.raises(GatewayHTTPError):
        PreCheckResult.from_response(reply, 0.1)


def test_parse_audit_and_health() -> None:
    a = AuditResult.from_response({"success": True, "audit_id": "a-1"}, 0.3)
    assert (a.audit_id, a.success, a.duration_ms) == ("a-1", True, 0.3)
    with pytest.raises(GatewayHTTPError):
        AuditResult.from_response({"success": True}, 0.3)
    h = HealthResult.from_response(
        {"status": "healthy", "service": "axonflow-agent", "version": "1.0",
         "timestamp": "2025-03-01T12:00:00Z"}, 0.2,
    )  # fmt: skip
    assert h.ok and h.timestamp == datetime(2025, 3, 1, 12, tzinfo=UTC)
    assert not HealthResult.from_response({"status": "degraded"}, 0.2).ok


# ------------------------------------------------------------------ construction


def test_defaults_come_from_settings_and_repr_masks_the_secret() -> None:
    settings = Settings.load(
        env={"AXONFLOW_AGENT_URL": "http://gw.example:9000/", "AXONFLOW_CLIENT_ID": "app1",
             "AXONFLOW_CLIENT_SECRET": "s3cret-value"},
        dotenv_path=None,
    )  # fmt: skip
    client = SyncGatewayClient(settings=settings)
    try:
        assert client.url == "http://gw.example:9000"
        assert client.client_id == "app1" and client.tenant_id == "app1"
        assert (
            repr(client)
            == "<SyncGatewayClient http://gw.example:9000 client_id='app1' transport=httpx>"
        )
        assert "s3cret" not in repr(client)
    finally:
        client.close()


def test_default_url_is_axonflows_and_repr_names_the_transport() -> None:
    gw = GatewayClient(settings=BLANK, transport="aiohttp")
    assert gw.url == "http://localhost:8080"
    assert (
        repr(gw) == "<GatewayClient http://localhost:8080 client_id='community' transport=aiohttp>"
    )


def test_the_client_reads_no_environment_and_no_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("AXONFLOW_AGENT_URL", "http://from-env.example:9")
    monkeypatch.setenv("AXONFLOW_CLIENT_ID", "env-app")
    (tmp_path / ".env").write_text("AXONFLOW_AGENT_URL=http://from-dotenv.example:9\n")
    monkeypatch.chdir(tmp_path)
    for client in (GatewayClient(), SyncGatewayClient()):
        assert (client.url, client.client_id) == ("http://localhost:8080", "community")
    plain = SimpleNamespace(agent_url="http://given:1", client_id="app2", client_secret="x",
                            license_key="")  # fmt: skip
    assert SyncGatewayClient(settings=plain).url == "http://given:1"  # any object will do


def test_the_copyable_modules_import_only_the_error_hierarchy_from_this_project() -> None:
    import ast
    from pathlib import Path

    import helpers.client as room

    for name in ("gateway_client.py", "results.py"):
        tree = ast.parse((Path(room.__file__).parent / name).read_text())
        ours = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
            and node.module.startswith("helpers")
        } | {
            f".{node.module}" for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level > 0
        }  # fmt: skip
        assert ours <= {"helpers.errors", ".results"}, (name, ours)


def test_unknown_transport_is_rejected() -> None:
    with pytest.raises(ValueError, match="transport="):
        GatewayClient("http://x", settings=BLANK, transport="urllib")
    with pytest.raises(ValueError, match="http_client"):
        GatewayClient("http://x", settings=BLANK, transport="aiohttp",
                      http_client=httpx.AsyncClient())  # fmt: skip


def test_injected_httpx_client_still_gets_the_headers_and_stays_open() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "healthy"})

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            gw = GatewayClient("http://gw.test", client_id="app9", settings=BLANK, http_client=http)
            assert (await gw.health()).ok
            await gw.aclose()
            assert not http.is_closed  # the caller owns it
        assert seen[0].headers["X-Client-ID"] == "app9"
        assert seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"app9:").decode()

    asyncio.run(main())


# ------------------------------------------------------------------ the wire (threaded server)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be observed

    def _answer(self) -> None:
        srv: Any = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        srv.seen.append({"method": self.command, "path": self.path, "headers": self.headers,
                         "body": body, "peer": self.client_address})  # fmt: skip
        if srv.reply is not None:
            status, ctype, payload = srv.reply
        elif self.path.startswith("/api/policy/pre-check"):
            status, ctype, payload = 200, "application/json", json.dumps(APPROVED).encode()
        elif self.path.startswith("/api/audit/records"):
            status, ctype, payload = 200, "application/json", b'{"records": []}'
        else:
            status, ctype = 200, "application/json"
            payload = b'{"success": true, "audit_id": "a-1", "status": "healthy"}'
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake() -> Iterator[Any]:
    srv: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.seen, srv.reply = [], None
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("kind", KINDS)
def test_pre_check_headers_and_body_like_sdk_9_5(fake: Any, kind: str) -> None:
    async def scenario(gw: Any) -> PreCheckResult:
        return await gw.pre_check("hi", user_token="u1", data_sources=["crm"], context={"k": 1})

    result = run(kind, fake.url, scenario)
    assert result.approved and result.duration_ms > 0
    req = fake.seen[-1]
    assert (req["method"], req["path"]) == ("POST", "/api/policy/pre-check")
    h = req["headers"]
    assert h["Authorization"] == "Basic " + base64.b64encode(b"community:").decode()
    assert h["X-Client-ID"] == "community" and h["X-Tenant-ID"] == "community"
    assert "X-License-Key" not in h
    assert h["User-Agent"] == "gateway-mode-client/1.0"
    assert h["Content-Type"] == "application/json"
    assert json.loads(req["body"]) == {"user_token": "u1", "client_id": "community", "query": "hi",
                                       "data_sources": ["crm"], "context": {"k": 1}}  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_credentials_tenant_and_license_headers(fake: Any, kind: str) -> None:
    async def scenario(gw: Any) -> None:
        await gw.health()

    run(kind, fake.url, scenario, client_id="app1", client_secret="s3cret",
        tenant_id="acme", license_key="lic-1")  # fmt: skip
    h = fake.seen[-1]["headers"]
    assert h["Authorization"] == "Basic " + base64.b64encode(b"app1:s3cret").decode()
    assert (h["X-Client-ID"], h["X-Tenant-ID"], h["X-License-Key"]) == ("app1", "acme", "lic-1")


@pytest.mark.parametrize("kind", KINDS)
def test_audit_body_rounds_latency_and_fills_total(fake: Any, kind: str) -> None:
    async def scenario(gw: Any) -> AuditResult:
        return await gw.audit("ctx-1", "openai", "gpt-4o-mini",
                              {"prompt_tokens": 3, "completion_tokens": 4},
                              latency_ms=12.6, metadata={"run": 1})  # fmt: skip

    assert run(kind, fake.url, scenario).audit_id == "a-1"
    assert json.loads(fake.seen[-1]["body"]) == {
        "context_id": "ctx-1", "client_id": "community", "provider": "openai",
        "model": "gpt-4o-mini", "response_summary": "", "latency_ms": 13,
        "token_usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        "metadata": {"run": 1},
    }  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_record_filters_become_query_parameters(fake: Any, kind: str) -> None:
    since = datetime(2025, 3, 1, 12, tzinfo=UTC)

    async def scenario(gw: Any) -> list[dict[str, Any]]:
        return await gw.list_records(since=since, approved=False, limit=5, model=None)

    assert run(kind, fake.url, scenario) == []
    url = urlsplit(fake.seen[-1]["path"])
    assert url.path == "/api/audit/records"
    assert parse_qs(url.query) == {"since": ["2025-03-01T12:00:00+00:00"], "approved": ["false"],
                                   "limit": ["5"]}  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_one_connection_is_kept_alive_across_calls(fake: Any, kind: str) -> None:
    async def scenario(gw: Any) -> None:
        for _ in range(5):
            await gw.pre_check("hello")

    run(kind, fake.url, scenario)
    assert len({req["peer"] for req in fake.seen}) == 1


ERROR_REPLIES = [
    ((400, "application/json", b'{"success": false, "error": "query field is required"}'),
     BadRequest, "query field is required"),
    ((401, "application/json", b'{"success": false, "error": "unknown client secret"}'),
     Unauthorized, "unknown client secret"),
    ((500, "application/json", b'{"success": false, "error": "disk full"}'),
     GatewayHTTPError, "disk full"),
    ((502, "text/html", b"<html><h1>Bad Gateway</h1></html>"), GatewayHTTPError, "Bad Gateway"),
    ((200, "text/plain", b"hello from something else"), GatewayHTTPError, "hello from something"),
    ((200, "application/json", b'{"status": "ok"}'), GatewayHTTPError, "context_id"),
]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("reply", "error", "text"), ERROR_REPLIES)
def test_status_and_body_map_to_errors(
    fake: Any, kind: str, reply: tuple[int, str, bytes], error: type[Exception], text: str
) -> None:
    fake.reply = reply

    async def scenario(gw: Any) -> None:
        await gw.pre_check("hi")

    with pytest.raises(error) as info:
        run(kind, fake.url, scenario)
    assert type(info.value) is error  # a 500 is not a BadRequest
    assert info.value.status_code == reply[0]  # type: ignore[attr-defined]
    assert text in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_connection_refused_says_how_to_start_a_gateway(kind: str) -> None:
    url = f"http://127.0.0.1:{_free_port()}"

    async def scenario(gw: Any) -> None:
        await gw.pre_check("hi")

    with pytest.raises(GatewayUnavailable) as info:
        run(kind, url, scenario)
    message = str(info.value)
    assert url in message
    assert "python -m helpers.gateway --port 8080" in message
    assert "helpers.stack" in message and "AXONFLOW_AGENT_URL" in message


@pytest.mark.parametrize("kind", KINDS)
def test_silent_server_is_a_timeout(kind: str) -> None:
    # A socket that listens but never accepts: the connection is made, no reply ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"

        async def scenario(gw: Any) -> None:
            await gw.health()

        with pytest.raises(GatewayTimeout, match="did not answer within 0.3 s"):
            run(kind, url, scenario, timeout=0.3)


# ------------------------------------------------------------------ the real gateway


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    from helpers.server import start_gateway

    with start_gateway() as svc:
        yield svc.url


def _is_uuid4(text: str) -> bool:
    return uuid.UUID(text).version == 4


@pytest.mark.parametrize("kind", KINDS)
def test_health_is_ok(gateway: str, kind: str) -> None:
    async def scenario(gw: Any) -> HealthResult:
        return await gw.health()

    h = run(kind, gateway, scenario)
    assert h.ok and h.service == "axonflow-agent" and h.version
    assert h.timestamp is not None and h.timestamp.tzinfo is not None


@pytest.mark.parametrize("kind", KINDS)
def test_approved_pre_check_fields(gateway: str, kind: str) -> None:
    async def scenario(gw: Any) -> PreCheckResult:
        return await gw.pre_check("What is the capital of France?", user_token="user-123")

    before = datetime.now(UTC)
    r = run(kind, gateway, scenario)
    assert r.approved is True and r.policies == () and r.block_reason is None
    assert _is_uuid4(r.context_id)
    # expires_at is "now + 5 minutes" (a semantic check with a generous margin, not a speed test)
    assert before + timedelta(minutes=4) < r.expires_at < before + timedelta(minutes=6)
    assert isinstance(r.rate_limit, RateLimitInfo)
    assert 0 <= r.rate_limit.remaining <= r.rate_limit.limit
    assert r.requires_redaction is False
    assert r.duration_ms > 0 and r.raw["context_id"] == r.context_id


@pytest.mark.parametrize("kind", KINDS)
def test_blocked_pre_check_is_a_result_not_an_error(gateway: str, kind: str) -> None:
    async def scenario(gw: Any) -> PreCheckResult:
        return await gw.pre_check("My SSN is 123-45-6789", user_token="user-123")

    r = run(kind, gateway, scenario)
    assert r.approved is False
    assert "sys_pii_ssn" in r.policies
    assert isinstance(r.block_reason, str) and r.block_reason


@pytest.mark.parametrize("kind", KINDS)
def test_audit_returns_an_audit_id_and_is_listed(gateway: str, kind: str) -> None:
    async def scenario(gw: Any) -> tuple[PreCheckResult, AuditResult, list[dict[str, Any]]]:
        ctx = await gw.pre_check("Summarise this ticket", user_token="user-123")
        usage = TokenUsage(prompt_tokens=20, completion_tokens=30)
        audit = await gw.audit(
            ctx.context_id, "openai", "gpt-4o-mini", usage,
            latency_ms=41.7, response_summary="ok", metadata={"kind": kind},
        )  # fmt: skip
        return ctx, audit, await gw.list_records(limit=10_000)

    ctx, audit, records = run(kind, gateway, scenario)
    assert audit.success is True and _is_uuid4(audit.audit_id)
    assert any(ctx.context_id in json.dumps(r) and audit.audit_id in json.dumps(r)
               for r in records)  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_blocked_context_may_be_audited(gateway: str, kind: str) -> None:
    async def scenario(gw: Any) -> AuditResult:
        ctx = await gw.pre_check("Card 4111 1111 1111 1111 please", user_token="user-123")
        assert not ctx.approved
        return await gw.audit(ctx.context_id, "none", "refused")

    assert run(kind, gateway, scenario).success


@pytest.mark.parametrize("kind", KINDS)
def test_audit_with_unknown_context_is_bad_request(gateway: str, kind: str) -> None:
    async def scenario(gw: Any) -> None:
        await gw.audit(str(uuid.uuid4()), "openai", "gpt-4o-mini")

    with pytest.raises(BadRequest, match="Invalid or expired context") as info:
        run(kind, gateway, scenario)
    assert info.value.status_code == 400


@pytest.mark.parametrize("kind", KINDS)
def test_empty_query_is_bad_request(gateway: str, kind: str) -> None:
    async def scenario(gw: Any) -> None:
        await gw.pre_check("", user_token="user-123")

    with pytest.raises(BadRequest, match="query field is required"):
        run(kind, gateway, scenario)


@pytest.mark.parametrize("kind", KINDS)
def test_audit_without_provider_is_bad_request(gateway: str, kind: str) -> None:
    async def scenario(gw: Any) -> None:
        ctx = await gw.pre_check("hello", user_token="user-123")
        await gw.audit(ctx.context_id, "", "gpt-4o-mini")

    with pytest.raises(BadRequest, match="provider"):
        run(kind, gateway, scenario)


@pytest.mark.parametrize("kind", KINDS)
def test_extensions_verify_and_filtered_records(gateway: str, kind: str) -> None:
    async def scenario(gw: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        await gw.pre_check("My SSN is 123-45-6789", user_token="user-123")
        return await gw.verify_audit_chain(), await gw.list_records(approved=False)

    verify, blocked = run(kind, gateway, scenario)
    assert verify["success"] is True and verify["ok"] is True
    assert blocked and all(r["approved"] is False for r in blocked)


@pytest.mark.parametrize("kind", KINDS)
def test_extension_reload_policies(gateway: str, kind: str) -> None:
    async def scenario(gw: Any) -> dict[str, Any]:
        return await gw.reload_policies()

    assert run(kind, gateway, scenario)["success"] is True


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_record_filter_is_bad_request(gateway: str, kind: str) -> None:
    async def scenario(gw: Any) -> None:
        await gw.list_records(colour="blue")

    with pytest.raises(BadRequest, match="colour"):
        run(kind, gateway, scenario)


@pytest.fixture(scope="module")
def authenticated_gateway() -> Iterator[str]:
    from helpers.server import start_gateway

    with start_gateway(env={"GATEWAY_CLIENT_SECRETS": "app1:s3cret"}) as svc:
        yield svc.url


@pytest.mark.parametrize("kind", KINDS)
def test_authenticated_mode_wrong_secret_is_unauthorized(
    authenticated_gateway: str, kind: str
) -> None:
    async def scenario(gw: Any) -> PreCheckResult:
        return await gw.pre_check("hello", user_token="user-123")

    with pytest.raises(Unauthorized) as info:
        run(kind, authenticated_gateway, scenario, client_id="app1", client_secret="wrong")
    assert info.value.status_code == 401
    ok = run(kind, authenticated_gateway, scenario, client_id="app1", client_secret="s3cret")
    assert ok.approved


def test_every_client_has_the_same_public_methods() -> None:
    public = {"pre_check", "audit", "check_reply", "health", "verify_audit_chain",
              "list_records", "reload_policies"}  # fmt: skip
    for name in public:
        a, s = getattr(GatewayClient, name), getattr(SyncGatewayClient, name)
        assert inspect.iscoroutinefunction(a) and not inspect.iscoroutinefunction(s)
        assert list(inspect.signature(a).parameters) == list(inspect.signature(s).parameters)


# ------------------------------------------------------------------ the README's snippet


def test_the_readmes_three_steps_run_as_printed(
    make_gateway: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The snippet a reader copies first runs against the gateway and an OpenAI stand-in."""
    import re
    from pathlib import Path

    from helpers.standins import create_standin_app
    from tests.conftest import ThreadedGateway

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    gateway = make_gateway()
    with ThreadedGateway(create_standin_app(time_scale=0, seed=0)) as llm:
        monkeypatch.setenv("OPENAI_BASE_URL", llm.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "offline-stand-in")
        code = snippet.replace("http://localhost:8080", gateway.url)
        for query in (None, "My SSN is 123-45-6789"):
            if query:
                code = code.replace("What are best practices for AI model deployment?", query)
            scope: dict[str, Any] = {}
            exec(compile(code, "README.md", "exec"), scope)  # noqa: S102
            scope["gateway"].close()
            scope["llm"].close()
            if query is None:
                assert scope["pre"].approved and scope["usage"].total_tokens > 0
        assert "blocked: Blocked by policy sys_pii_ssn" in capsys.readouterr().out
    with SyncGatewayClient(gateway.url) as reader:
        records = reader.list_records()
    assert len(records) == 2 and sum(bool(r.get("audit_id")) for r in records) == 1


# ------------------------------------------------------------------ operations with several steps


def test_verify_polls_a_running_job_in_both_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """One operation, two drivers: a 202 'not done' answer is polled until the report."""
    import helpers.client.gateway_client as gateway_client

    monkeypatch.setattr(gateway_client, "POLL_EVERY_S", 0.0)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url.query, "ascii"))
        if request.url.params.get("job") != "j1" or len(seen) < 3:
            return httpx.Response(202, json={"done": False, "job": "j1", "checked": len(seen)})
        report = {"done": True, "success": True, "ok": True, "checked": 9, "first_broken": None}
        return httpx.Response(200, json={**report, "job": "j1"})

    want = {"success": True, "ok": True, "checked": 9, "first_broken": None}
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        with SyncGatewayClient("http://gw.test", settings=BLANK, http_client=http) as gw:
            assert gw.verify_audit_chain() == want
    assert seen == ["", "job=j1", "job=j1"]

    async def main() -> dict[str, Any]:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport) as http:
            gw = GatewayClient("http://gw.test", settings=BLANK, http_client=http)
            return await gw.verify_audit_chain()

    seen.clear()
    assert asyncio.run(main()) == want and seen == ["", "job=j1", "job=j1"]


def test_the_three_files_the_readme_names_work_on_their_own(tmp_path: Any) -> None:
    """Copied with empty package files, the client imports and builds its requests alone."""
    import re
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    section = (root / "README.md").read_text(encoding="utf-8").split("## Copy the client")[1]
    files = re.findall(r"^- `([\w/]+\.py)`", section, re.M)
    assert files == ["helpers/client/gateway_client.py", "helpers/client/results.py",
                     "helpers/errors.py"]  # fmt: skip
    for name in [*files, "helpers/__init__.py", "helpers/client/__init__.py"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if name in files:
            shutil.copy(root / name, tmp_path / name)
        else:
            (tmp_path / name).write_text("")
    code = (
        "import helpers, sys\n"
        "from helpers.client.gateway_client import SyncGatewayClient, TokenUsage\n"
        "assert helpers.__file__.startswith(sys.argv[1]), helpers.__file__\n"
        "assert 'helpers.settings' not in sys.modules\n"
        "import httpx\n"
        "reply = httpx.Response(200, json={'status': 'healthy'})\n"
        "http = httpx.Client(transport=httpx.MockTransport(lambda request: reply))\n"
        "print(SyncGatewayClient('http://gw', http_client=http).health().ok,\n"
        "      TokenUsage(1, 2).total_tokens)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert out.stdout.split() == ["True", "3"], out.stderr
