"""Part A of the wire contract, through real HTTP against a started gateway."""

from __future__ import annotations

import base64
import sqlite3
import uuid
from datetime import datetime, timedelta

import httpx
import pytest

from .conftest import FakeClock

PRE = "/api/policy/pre-check"
AUDIT = "/api/audit/llm-call"
BENIGN = "What are best practices for AI model deployment?"


def pre_check(http: httpx.Client, query: str = BENIGN, **extra: object) -> httpx.Response:
    return http.post(
        PRE, json={"user_token": "user-123", "client_id": "acme", "query": query, **extra}
    )


def audit_body(context_id: str, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "context_id": context_id, "client_id": "acme", "provider": "openai",
        "model": "gpt-4o-mini", "response_summary": "ok", "latency_ms": 640,
        "token_usage": {"prompt_tokens": 25, "completion_tokens": 150, "total_tokens": 175},
    }  # fmt: skip
    body.update(extra)
    return body


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def is_uuid4(value: str) -> bool:
    return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value


# --- health, routing, error shape -----------------------------------------------------------


def test_health_shape(http: httpx.Client, clock: FakeClock) -> None:
    r = http.get("/health")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "healthy" and body["service"] == "axonflow-agent"
    assert isinstance(body["version"], str) and body["version"]
    assert parse_time(body["timestamp"]) == clock.now


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nope", 404), ("POST", "/api/policy/other", 404), ("GET", PRE, 405),
     ("PUT", AUDIT, 405), ("POST", "/health", 405), ("DELETE", "/api/audit/records", 405)],
)  # fmt: skip
def test_routing_errors_are_contract_json(
    http: httpx.Client, method: str, path: str, status: int
) -> None:
    r = http.request(method, path)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["success"] is False and isinstance(body["error"], str) and body["error"]


# --- pre-check ------------------------------------------------------------------------------


def test_pre_check_approved_fields(http: httpx.Client, clock: FakeClock) -> None:
    r = pre_check(http)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert is_uuid4(body["context_id"])
    assert body["approved"] is True
    assert body["policies"] == []
    assert "block_reason" not in body
    assert "approved_data" not in body
    assert parse_time(body["expires_at"]) == clock.now + timedelta(minutes=5)
    rl = body["rate_limit"]
    assert isinstance(rl["limit"], int) and isinstance(rl["remaining"], int)
    assert 0 <= rl["remaining"] < rl["limit"]
    parse_time(rl["reset_at"])
    assert body["requires_redaction"] is False


def test_each_pre_check_gets_a_new_context(http: httpx.Client) -> None:
    ids = {pre_check(http).json()["context_id"] for _ in range(5)}
    assert len(ids) == 5


def test_blocked_is_http_200_with_reason(http: httpx.Client) -> None:
    r = pre_check(http, "My SSN is 123-45-6789, can you check my benefits?")
    assert r.status_code == 200
    body = r.json()
    assert body["approved"] is False
    assert body["policies"] == ["sys_pii_ssn"]
    assert "sys_pii_ssn" in body["block_reason"]
    assert "123-45-6789" not in body["block_reason"]


def test_every_finding_is_reported(http: httpx.Client) -> None:
    body = pre_check(http, "Call +1-415-555-0132, SSN 123-45-6789").json()
    assert body["approved"] is False
    assert body["policies"] == ["sys_pii_ssn", "sys_pii_phone"]
    assert "sys_pii_ssn" in body["block_reason"]


def test_non_critical_pii_is_reported_not_blocked(http: httpx.Client) -> None:
    body = pre_check(http, "Email the summary to jane.doe@example.com please").json()
    assert body["approved"] is True
    assert body["policies"] == ["sys_pii_email"]
    assert "block_reason" not in body


def test_sql_injection_blocked(http: httpx.Client) -> None:
    body = pre_check(http, "Find order 5' UNION SELECT password FROM accounts--").json()
    assert body["approved"] is False
    assert any(p.startswith("sqli_") for p in body["policies"])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "Invalid request body"),
        (b"", "Invalid request body"),
        (b"[]", "Invalid request body"),
        (b'"a string"', "Invalid request body"),
        (b"42", "Invalid request body"),
        (b"null", "Invalid request body"),
        (b"\xff\xfe", "Invalid request body"),
        (b"[" * 100_000, "Invalid request body"),
        (b'{"client_id": "a", "query": "\\ud800"}', "Invalid request body"),
        (b'{"client_id": "a", "query": 7}', "Invalid request body"),
        (b'{"client_id": 7, "query": "hi"}', "Invalid request body"),
        (b'{"client_id": "a", "query": "hi", "user_token": 5}', "Invalid request body"),
        (b'{"client_id": "a", "query": "hi", "data_sources": "db"}', "Invalid request body"),
        (b'{"client_id": "a", "query": "hi", "data_sources": [1]}', "Invalid request body"),
        (b'{"client_id": "a", "query": "hi", "context": []}', "Invalid request body"),
        (b'{"client_id": "a"}', "query field is required"),
        (b'{"client_id": "a", "query": ""}', "query field is required"),
        (b"{}", "query field is required"),
        (b'{"query": "hi"}', "client_id field is required"),
        (b'{"query": "hi", "client_id": ""}', "client_id field is required"),
    ],
)
def test_pre_check_bad_input(http: httpx.Client, payload: bytes, message: str) -> None:
    r = http.post(PRE, content=payload, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"success": False, "error": message}


def test_pre_check_ignores_unknown_keys_and_accepts_optional_fields(http: httpx.Client) -> None:
    r = pre_check(http, data_sources=["crm"], context={"user_role": "admin"}, surprise=[1, 2])
    assert r.status_code == 200 and r.json()["approved"] is True


def test_context_is_not_trusted_for_authorization(http: httpx.Client) -> None:
    query = "SELECT * FROM audit_logs"
    as_engineer = pre_check(http, query, context={"user_role": "admin"}).json()
    assert as_engineer["approved"] is False


def test_community_mode_accepts_any_token_and_sdk_headers(http: httpx.Client) -> None:
    headers = {
        "Authorization": "Basic " + base64.b64encode(b"community:").decode(),
        "X-Tenant-ID": "t1", "X-Client-ID": "c1", "X-License-Key": "lic",
        "X-Axonflow-Client": "python-sdk/9.5", "X-User-Token": "x", "User-Agent": "axonflow-sdk",
    }  # fmt: skip
    body = {"user_token": "", "client_id": "anyone", "query": BENIGN}
    r = http.post(PRE, json=body, headers=headers)
    assert r.status_code == 200 and r.json()["approved"] is True


def test_body_over_limit_is_413(make_gateway, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(clock=clock, max_body_bytes=2048)
    with httpx.Client(base_url=gw.url) as http:
        r = http.post(PRE, json={"client_id": "a", "query": "x" * 4096})
        assert r.status_code == 413
        assert r.json()["success"] is False and "2048" in r.json()["error"]
        assert pre_check(http).status_code == 200  # still serving


def test_keeps_serving_after_bad_input(http: httpx.Client) -> None:
    for payload in (b"{", b"[]", b'{"query": 1}', b"\x00" * 100):
        assert http.post(PRE, content=payload).status_code == 400
    assert pre_check(http).status_code == 200


# --- audit ------------------------------------------------------------------------------------


def test_audit_success(http: httpx.Client) -> None:
    ctx = pre_check(http).json()["context_id"]
    r = http.post(AUDIT, json=audit_body(ctx))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["success"] is True and is_uuid4(body["audit_id"])


def test_blocked_context_may_be_audited_twice(http: httpx.Client) -> None:
    ctx = pre_check(http, "My SSN is 123-45-6789").json()["context_id"]
    first = http.post(AUDIT, json=audit_body(ctx, token_usage=None, response_summary="refused"))
    second = http.post(AUDIT, json=audit_body(ctx))
    assert first.status_code == second.status_code == 200
    assert first.json()["audit_id"] != second.json()["audit_id"]


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        (("context_id", "client_id", "provider", "model"), "context_id field is required"),
        (("client_id", "provider", "model"), "client_id field is required"),
        (("provider", "model"), "provider field is required"),
        (("model",), "model field is required"),
    ],
)
def test_audit_required_fields_in_order(
    http: httpx.Client, drop: tuple[str, ...], message: str
) -> None:
    ctx = pre_check(http).json()["context_id"]
    body = {k: v for k, v in audit_body(ctx).items() if k not in drop}
    r = http.post(AUDIT, json=body)
    assert r.status_code == 400 and r.json() == {"success": False, "error": message}


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -1, "completion_tokens": 1},
        {"prompt_tokens": 1.5, "completion_tokens": 1},
        {"prompt_tokens": "3", "completion_tokens": 1},
        {"prompt_tokens": True, "completion_tokens": 1},
        {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": -2},
        "many",
    ],
)
def test_audit_rejects_bad_token_counts(http: httpx.Client, usage: object) -> None:
    ctx = pre_check(http).json()["context_id"]
    r = http.post(AUDIT, json=audit_body(ctx, token_usage=usage))
    assert r.status_code == 400
    assert r.json()["success"] is False and r.json()["error"]


def test_audit_unknown_context(http: httpx.Client) -> None:
    r = http.post(AUDIT, json=audit_body(str(uuid.uuid4())))
    assert r.status_code == 400
    assert r.json() == {"success": False, "error": "Invalid or expired context"}


def test_audit_expired_context(http: httpx.Client, clock: FakeClock) -> None:
    ctx = pre_check(http).json()["context_id"]
    clock.advance(299)
    assert http.post(AUDIT, json=audit_body(ctx)).status_code == 200
    clock.advance(2)
    r = http.post(AUDIT, json=audit_body(ctx))
    assert r.status_code == 400 and r.json()["error"] == "Invalid or expired context"


def test_audit_from_another_client_is_refused(http: httpx.Client) -> None:
    ctx = pre_check(http).json()["context_id"]
    r = http.post(AUDIT, json=audit_body(ctx, client_id="someone-else"))
    assert r.status_code == 400 and r.json()["error"] == "Invalid or expired context"


# --- authenticated mode -------------------------------------------------------------------------


def test_authenticated_mode(make_gateway, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    from helpers.settings import Secret

    gw = make_gateway(clock=clock, client_secrets={"acme": Secret("s3cret")})
    good = "Basic " + base64.b64encode(b"acme:s3cret").decode()
    bad = "Basic " + base64.b64encode(b"acme:wrong").decode()
    body = {"client_id": "acme", "query": BENIGN}
    with httpx.Client(base_url=gw.url) as http:
        for headers in ({}, {"Authorization": bad}, {"Authorization": "Basic %%%"}):
            r = http.post(PRE, json=body, headers=headers)
            assert r.status_code == 401
            assert r.json()["success"] is False and r.json()["error"]
        assert http.post(PRE, json=body, headers={"Authorization": good}).status_code == 200
        assert http.get("/health").status_code == 200


# --- environment switches -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "query", "approved", "policies"),
    [
        ({"pii_block_critical": False}, "My SSN is 123-45-6789", True, ["sys_pii_ssn"]),
        ({"sqli_block_mode": "warn"}, "id=1' OR '1'='1", True, None),
        ({"sqli_scanner_mode": "off"}, "id=1' OR '1'='1", True, []),
    ],
)
def test_axonflow_switches(make_gateway, clock, overrides, query, approved, policies) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(clock=clock, **overrides)
    with httpx.Client(base_url=gw.url) as http:
        body = pre_check(http, query).json()
    assert body["approved"] is approved
    if policies is None:
        assert body["policies"] and all(p.startswith("sqli_") for p in body["policies"])
    else:
        assert body["policies"] == policies


# --- what is stored -----------------------------------------------------------------------------


def test_raw_query_and_token_never_stored(make_gateway, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "secret.db"
    gw = make_gateway(clock=clock, db=db)
    marker = "ZebraQuokkaMarker"
    with httpx.Client(base_url=gw.url) as http:
        body = {
            "user_token": "TokenMarkerXyz",
            "client_id": "acme",
            "query": f"Tell me about {marker}",
        }
        ctx = http.post(PRE, json=body).json()["context_id"]
        http.post(AUDIT, json=audit_body(ctx, response_summary="SummaryMarkerAbc"))
    gw.__exit__(None, None, None)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("secret.db*"))
    for secret in (marker, "TokenMarkerXyz", "SummaryMarkerAbc"):
        assert secret.encode() not in raw
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM contexts").fetchone()[0] == 1
    assert con.execute("SELECT COUNT(*) FROM audits").fetchone()[0] == 1
    con.close()


@pytest.mark.parametrize(
    "payload",
    [b'{"client_id": "a", "query": "hi", "context": {"x": NaN}}',
     b'{"client_id": "a", "query": "hi", "context": {"x": Infinity}}'],
)  # fmt: skip
def test_non_json_constants_are_invalid(http: httpx.Client, payload: bytes) -> None:
    r = http.post(PRE, content=payload)
    assert r.status_code == 400 and r.json()["error"] == "Invalid request body"


def test_chunked_body_over_limit_is_413(make_gateway, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(clock=clock, max_body_bytes=2048)

    def chunks():  # no Content-Length: the server must count as the body arrives
        yield b'{"client_id": "a", "query": "'
        for _ in range(10):
            yield b"x" * 512
        yield b'"}'

    with httpx.Client(base_url=gw.url) as http:
        r = http.post(PRE, content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["success"] is False
        assert pre_check(http).status_code == 200


def test_chunked_body_within_limit_is_read(http: httpx.Client) -> None:
    def chunks():
        yield b'{"client_id": "a", '
        yield b'"query": "hello there"}'

    r = http.post(PRE, content=chunks())
    assert r.status_code == 200 and r.json()["approved"] is True


def test_prometheus_exposes_sub_millisecond_histograms(http: httpx.Client) -> None:
    pre_check(http)
    r = http.get("/prometheus")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'axonflow_gateway_precheck_requests_total{status="success",approved="true"} 1' in text
    assert 'axonflow_gateway_precheck_duration_milliseconds_bucket{le="0.05"}' in text
    assert "axonflow_gateway_precheck_duration_milliseconds_count 1" in text
