"""Proxy mode's ``POST /api/request``, driven by the official SDK (``axonflow`` 9.5).

The gateway runs in process on loopback; its provider environment points at the stand-ins
(or at a provider that hangs, or nowhere). Every approved call must land in the audit trail
with its outcome; every block must be the contract's 403.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest
from axonflow import AxonFlow
from axonflow.exceptions import AuthenticationError, PolicyViolationError

from helpers.gateway.proxy import go_duration
from tests.provider_fakes import ProxyFactory, bad_provider, openai_at, records

ASK = "What are best practices for AI model deployment?"


def sdk_call(url: str, query: str, context: dict[str, Any] | None = None, **kw: Any) -> Any:
    async def go() -> Any:
        async with AxonFlow(endpoint=url, cache_enabled=False, **kw) as client:
            return await client.proxy_llm_call("user-123", query, "chat", context)

    return asyncio.run(go())


def post(url: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(url + "/api/request", json=body, timeout=10, **kw)


def test_sdk_proxy_call_answers_and_is_audited_like_gateway_mode(make_proxy: ProxyFactory) -> None:
    gw = make_proxy()
    response = sdk_call(gw.url, ASK)
    assert response.success is True and response.blocked is False
    text = response.data["data"]
    assert isinstance(text, str) and len(text) > 20
    meta = response.metadata  # the SDK lifts data.metadata: this project's extension fields
    assert meta["provider"] == "openai" and meta["model"] == "gpt-4o-mini"
    usage = meta["token_usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert response.policy_info.tenant_id == "community"
    assert response.policy_info.processing_time.endswith(("s", "ms", "µs"))
    [row] = records(gw.url)
    assert row["context_id"] == meta["context_id"] and row["audit_id"] == meta["audit_id"]
    assert (row["provider"], row["model"]) == ("openai", "gpt-4o-mini")
    assert row["prompt_tokens"] == usage["prompt_tokens"]
    assert row["completion_tokens"] == usage["completion_tokens"]
    assert row["latency_ms"] == round(meta["latency_ms"]) and row["cost_usd"] > 0
    assert row["metadata"]["mode"] == "proxy" and row["metadata"]["outcome"] == "ok"
    assert ASK not in str(row)  # hashes only, as in gateway mode
    assert httpx.get(gw.url + "/api/audit/verify").json()["ok"] is True


@pytest.mark.parametrize(
    ("query", "policy"),
    [
        ("My SSN is 123-45-6789, can you check my benefits?", "sys_pii_ssn"),
        ("5'/**/UNION/**/ALL/**/SELECT/**/NULL,NULL", "sqli_union_based"),
        ("5' UnIoN SeLeCt sku FROM inventory", "sqli_union_based"),
        ("Card 4111 1111 1111 1111 please", "sys_pii_credit_card"),
    ],
)
def test_sdk_raises_policy_violation_and_nothing_reaches_the_llm(
    make_proxy: ProxyFactory, query: str, policy: str
) -> None:
    gw = make_proxy()
    with pytest.raises(PolicyViolationError) as caught:
        sdk_call(gw.url, query)
    assert caught.value.policy == policy
    [row] = records(gw.url)
    assert row["approved"] is False and row["audit_id"] is None  # decided, never called


@pytest.mark.parametrize(
    "query",
    [
        "Please drop me a line about the release",
        "Select the best option for our users",
        "Card 4111 1111 1111 1112 is not a valid number",
        "Order 123-45-678 shipped",
    ],
)
def test_benign_look_alikes_go_through(make_proxy: ProxyFactory, query: str) -> None:
    gw = make_proxy()
    assert sdk_call(gw.url, query).success is True


def test_proxy_decides_exactly_as_the_pre_check(make_proxy: ProxyFactory) -> None:
    from helpers.corpus import load_corpus

    gw = make_proxy()
    user = "svc-loadtest"  # the load user: no rate limit to tell the two calls apart
    for row in load_corpus()[::10]:  # every family of the labelled corpus
        query = row.query
        pre = httpx.post(
            gw.url + "/api/policy/pre-check",
            timeout=10,
            json={"client_id": "community", "user_token": user, "query": query},
        )
        proxied = post(gw.url, {"query": query, "user_token": user, "skip_llm": True})
        assert (proxied.status_code == 200) == pre.json()["approved"], query
        if proxied.status_code == 403:
            info = proxied.json()["policy_info"]
            assert sorted(info["policies_evaluated"]) == sorted(pre.json()["policies"]), query


def test_block_body_matches_the_contract(make_proxy: ProxyFactory) -> None:
    gw = make_proxy()
    r = post(gw.url, {"query": "Call +1-415-555-0132, SSN 123-45-6789", "user_token": "u"})
    assert r.status_code == 403
    body = r.json()
    assert body["success"] is False and body["blocked"] is True
    assert "Social Security" in body["block_reason"] and "123-45-6789" not in body["block_reason"]
    # the blocking policy first (the SDK reports [0]), the non-blocking finding after it
    assert body["policy_info"]["policies_evaluated"] == ["sys_pii_ssn", "sys_pii_phone"]


def test_context_is_honoured(make_proxy: ProxyFactory) -> None:
    gw = make_proxy()
    context = {
        "provider": "anthropic",
        "model": "claude-3-5-haiku-20241022",
        "max_tokens": 8,
        "temperature": 0.2,
        "system_prompt": "Answer in one line.",
    }
    response = sdk_call(gw.url, ASK, context)
    assert response.success, response.error
    assert response.metadata["provider"] == "anthropic"
    assert response.metadata["token_usage"]["completion_tokens"] <= 8
    [row] = records(gw.url)
    assert (row["provider"], row["model"]) == ("anthropic", "claude-3-5-haiku-20241022")
    assert row["request_context"]["system_prompt"] == "Answer in one line."


def test_skip_llm_answers_the_mock_and_audits_it(make_proxy: ProxyFactory) -> None:
    gw = make_proxy(env={})  # no provider at all: skip_llm needs none
    body = post(gw.url, {"query": ASK, "skip_llm": True}).json()
    assert body["success"] is True and body["data"]["data"] == "test_response_hourly_validation"
    [row] = records(gw.url)
    assert row["provider"] == "mock" and row["metadata"]["skip_llm"] is True


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        (b"{not json", 400, "Invalid request body"),
        (b"[]", 400, "Invalid request body"),
        (b'{"query": 7}', 400, "Invalid request body"),
        (b'{"query": ""}', 400, "query field is required"),
        (b'{"query": "hi", "context": []}', 400, "context must be an object"),
        (b'{"query": "hi", "skip_llm": "yes"}', 400, "skip_llm must be true, false or null"),
        (b'{"query": "hi", "context": {"provider": "gemini"}}', 400, "context.provider='gemini'"),
        (b'{"query": "hi", "context": {"max_tokens": 0}}', 400, "context.max_tokens=0"),
        (b'{"query": "hi", "context": {"max_tokens": true}}', 400, "context.max_tokens=True"),
        (b'{"query": "hi", "context": {"temperature": 9}}', 400, "context.temperature=9"),
        (b'{"query": "hi", "context": {"model": ""}}', 400, "context.model=''"),
        (b'{"query": "hi", "context": {"system_prompt": 1}}', 400, "context.system_prompt"),
        (b'{"query": "hi", "request_type": "mcp-query"}', 400, "request_type 'mcp-query'"),
    ],
)
def test_bad_input_is_a_clear_error_and_stores_nothing(
    make_proxy: ProxyFactory, payload: bytes, status: int, message: str
) -> None:
    gw = make_proxy()
    r = httpx.post(gw.url + "/api/request", content=payload, timeout=10)
    assert r.status_code == status
    body = r.json()
    assert body["success"] is False and body["blocked"] is False
    assert body["error"].startswith(message)
    assert records(gw.url, expected=0) == []


def test_oversized_body_is_413(make_proxy: ProxyFactory) -> None:
    gw = make_proxy(max_body_bytes=2048)
    r = post(gw.url, {"query": "x" * 5000})
    assert r.status_code == 413 and r.json()["blocked"] is False


def _failed(gw_url: str, context: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    response = sdk_call(gw_url, ASK, context)
    [row] = records(gw_url)
    return response, row


def test_missing_key_is_a_clear_error_in_the_v62_form(make_proxy: ProxyFactory) -> None:
    gw = make_proxy(env={"ANTHROPIC_API_KEY": "k"})
    response, row = _failed(gw.url, {"provider": "openai"})
    assert response.success is False and "OPENAI_API_KEY" in response.error
    assert row["approved"] is True and row["metadata"]["outcome"] == "provider_no_key"
    assert row["completion_tokens"] == 0


def test_unreachable_provider_is_reported_and_audited(make_proxy: ProxyFactory) -> None:
    gw = make_proxy(
        env={
            "OPENAI_API_KEY": "k",
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "GATEWAY_PROVIDER_RETRIES": "0",
        }
    )
    response, row = _failed(gw.url)
    assert response.success is False and "unreachable" in response.error
    assert "OPENAI_BASE_URL" in response.error
    assert row["metadata"]["outcome"] == "provider_unreachable"


def test_hanging_provider_times_out_cleanly(make_proxy: ProxyFactory) -> None:
    with bad_provider("hang") as hung:
        gw = make_proxy(env=openai_at(hung.url, timeout_s="0.3"))
        response, row = _failed(gw.url)
    assert response.success is False and "timed out" in response.error
    assert hung.requests == 1
    assert row["metadata"]["outcome"] == "provider_timeout" and row["latency_ms"] >= 300


def test_tenant_is_the_basic_username_else_the_body(make_proxy: ProxyFactory) -> None:
    gw = make_proxy()
    basic = "Basic " + base64.b64encode(b"acme:").decode()
    post(gw.url, {"query": ASK, "skip_llm": True}, headers={"authorization": basic})
    post(gw.url, {"query": ASK, "skip_llm": True, "client_id": "globex"})
    assert sorted(r["client_id"] for r in records(gw.url, expected=2)) == ["acme", "globex"]


def test_authenticated_mode_refuses_a_wrong_secret(make_proxy: ProxyFactory) -> None:
    from helpers.settings import Secret

    gw = make_proxy(client_secrets={"acme": Secret("s3cret")})
    with pytest.raises(AuthenticationError):
        sdk_call(gw.url, ASK, client_id="acme", client_secret="wrong")
    assert sdk_call(gw.url, ASK, client_id="acme", client_secret="s3cret").success is True


@pytest.mark.parametrize(
    ("ns", "text"),
    [(850, "850ns"), (850_000, "850µs"), (1_234_567, "1.235ms"), (2_500_000_000, "2.5s")],
)
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text
