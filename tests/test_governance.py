"""One decision for every path (helpers.gateway.governance): each switch means the same on the
pre-check, ``/api/request`` and ``/v1/chat/completions``, streamed or not.

Each test looks at two views over real HTTP: what the provider stand-in received
(``GET /standin/received``) and what the caller got back. And at a third: every file the
gateway wrote (the SQLite trail and its acknowledgement log) must hold no raw value.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from axonflow import AxonFlow
from axonflow.exceptions import PolicyViolationError

from tests.conftest import ThreadedGateway
from tests.provider_fakes import ProxyFactory, records

SSN = "123-45-6789"
CARD = "4111 1111 1111 1111"
AWS_KEY = "AKIA" + "Z7Q2" + "XJ4M" + "P9LK" + "W3RT"  # built here: no key-shaped literal
SYSTEM = f"You help customer {CARD}."
PROMPT = f"Repeat after me: my SSN is {SSN} and my key is {AWS_KEY}."
RAW = (SSN, CARD, AWS_KEY, "4111111111111111", "123456789")


def provider_view(standin: ThreadedGateway) -> dict[str, Any]:
    """The last request body the provider stand-in received."""
    return httpx.get(standin.url + "/standin/received").json()[-1]["body"]


def stored_bytes(tmp_path: Path) -> bytes:
    """Everything the gateway wrote: the database, its WAL and the acknowledgement log."""
    return b"".join(p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file())


def assert_nothing_raw(blob: str | bytes) -> None:
    text = blob if isinstance(blob, str) else blob.decode("utf-8", "replace")
    for value in RAW:
        assert value not in text, f"raw value {value[:4]}… found"


_OPENED: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Every SDK client a test opened is closed when it ends (no socket left to the GC)."""
    yield
    while _OPENED:
        _OPENED.pop().close()


def sdk(gw: ThreadedGateway) -> openai.OpenAI:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="community", max_retries=0)
    _OPENED.append(client)
    return client


def chat(gw: ThreadedGateway, *, stream: bool) -> str:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    client = sdk(gw)
    if not stream:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        return reply.choices[0].message.content or ""
    chunks = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def request(gw: ThreadedGateway) -> str:
    async def go() -> Any:
        async with AxonFlow(endpoint=gw.url, cache_enabled=False) as client:
            context = {"system_prompt": SYSTEM}
            return await client.proxy_llm_call("user-123", PROMPT, "chat", context)

    return asyncio.run(go()).data["data"]


def precheck(gw: ThreadedGateway) -> dict[str, Any]:
    body = {
        "client_id": "community",
        "user_token": "user-123",
        "query": PROMPT,
        "context": {"note": f"card {CARD}"},
    }
    return httpx.post(gw.url + "/api/policy/pre-check", json=body).json()


ECHO = f"my SSN is {SSN} and my key is {AWS_KEY}."


# -- redact: the provider sees placeholders, the caller its own values --------------------------
@pytest.mark.parametrize("path", ["chat", "chat-stream", "request"])
def test_redact_on_every_proxy_path(
    path: str, make_proxy: ProxyFactory, standin: ThreadedGateway, tmp_path: Path
) -> None:
    gw = make_proxy(pii_action="redact", secret_action="redact")
    answer = request(gw) if path == "request" else chat(gw, stream=path == "chat-stream")
    assert answer == ECHO  # the caller's own values, restored
    sent = provider_view(standin)
    assert_nothing_raw(json.dumps(sent))
    contents = [m["content"] for m in sent["messages"]]
    if sent.get("system"):  # Anthropic's shape; these calls go to OpenAI
        contents.insert(0, sent["system"])
    assert contents == [
        "You help customer [CREDIT_CARD_1].",
        "Repeat after me: my SSN is [SSN_1] and my key is [AWS_ACCESS_KEY_1].",
    ]
    [row] = records(gw.url)
    note = {"types": ["credit_card", "ssn", "aws_access_key"], "count": 3}
    assert row["metadata"]["redaction"] == note
    assert_nothing_raw(json.dumps(row))
    assert_nothing_raw(stored_bytes(tmp_path))


def test_redact_on_the_pre_check_and_the_stored_context(
    make_proxy: ProxyFactory, tmp_path: Path
) -> None:
    gw = make_proxy(pii_action="redact", secret_action="redact")
    reply = precheck(gw)
    assert reply["approved"] is True and reply["requires_redaction"] is True
    assert reply["redacted_query"] == (
        "Repeat after me: my SSN is [SSN_1] and my key is [AWS_ACCESS_KEY_1]."
    )
    assert reply["policies"] == ["sys_pii_ssn", "sys_secret_aws_access_key"]
    [row] = records(gw.url)
    # The context is masked with the same numbering as the query (a new value, a new number).
    assert row["request_context"]["note"] == "card [CREDIT_CARD_1]"
    note = {"types": ["ssn", "aws_access_key"], "count": 2}
    assert row["request_context"]["_gateway_redaction"] == note
    assert_nothing_raw(stored_bytes(tmp_path))


# -- block, warn and log mean the same on every path --------------------------------------------
@pytest.mark.parametrize("path", ["chat", "chat-stream", "request", "precheck"])
def test_block_refuses_before_the_provider_is_called(
    path: str, make_proxy: ProxyFactory, standin: ThreadedGateway, tmp_path: Path
) -> None:
    gw = make_proxy()  # the embedded default: critical PII and credentials block
    before = len(httpx.get(standin.url + "/standin/received").json())
    if path == "precheck":
        reply = precheck(gw)
        assert reply["approved"] is False
        assert reply["policies"] == ["sys_pii_ssn", "sys_secret_aws_access_key"]
    elif path == "request":
        with pytest.raises(PolicyViolationError):
            request(gw)
    else:
        with pytest.raises(openai.PermissionDeniedError):
            chat(gw, stream=path == "chat-stream")
    assert len(httpx.get(standin.url + "/standin/received").json()) == before
    assert_nothing_raw(stored_bytes(tmp_path))


@pytest.mark.parametrize("action", ["warn", "log"])
@pytest.mark.parametrize("path", ["chat", "chat-stream", "request"])
def test_warn_and_log_forward_and_report(
    path: str, action: str, make_proxy: ProxyFactory, standin: ThreadedGateway, tmp_path: Path
) -> None:
    gw = make_proxy(pii_action=action, secret_action=action)
    answer = request(gw) if path == "request" else chat(gw, stream=path == "chat-stream")
    assert answer == ECHO
    sent = json.dumps(provider_view(standin))
    assert SSN in sent and AWS_KEY in sent  # forwarded as the switch says
    [row] = records(gw.url)
    assert {"sys_pii_ssn", "sys_secret_aws_access_key"} <= set(row["policies"])
    assert "redaction" not in row["metadata"]
    assert_nothing_raw(stored_bytes(tmp_path))  # the trail stores hashes, never the prompt


def test_secret_action_alone_redacts_only_credentials(
    make_proxy: ProxyFactory, standin: ThreadedGateway
) -> None:
    gw = make_proxy(pii_action="warn", secret_action="redact")
    assert chat(gw, stream=False) == ECHO
    user = provider_view(standin)["messages"][1]["content"]
    assert SSN in user and AWS_KEY not in user and "[AWS_ACCESS_KEY_1]" in user


# -- bad input ----------------------------------------------------------------------------------
def test_a_callers_own_placeholder_is_never_restored_into_a_value(
    make_proxy: ProxyFactory, standin: ThreadedGateway
) -> None:
    gw = make_proxy(pii_action="redact")
    prompt = f"Repeat after me: [SSN_1] is a template, {SSN} is mine, [SSN_7] was never issued."
    reply = sdk(gw).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    sent = provider_view(standin)["messages"][0]["content"]
    assert sent == (
        "Repeat after me: [SSN_1] is a template, [SSN_2] is mine, [SSN_7] was never issued."
    )
    assert reply.choices[0].message.content == (
        f"[SSN_1] is a template, {SSN} is mine, [SSN_7] was never issued."
    )


def test_text_parts_are_redacted_not_forwarded_raw(
    make_proxy: ProxyFactory, standin: ThreadedGateway
) -> None:
    gw = make_proxy(pii_action="redact")
    parts = [{"type": "text", "text": "Repeat after me: SSN "}, {"type": "text", "text": SSN}]
    reply = sdk(gw).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": parts}]
    )
    assert provider_view(standin)["messages"][0]["content"] == "Repeat after me: SSN [SSN_1]"
    assert reply.choices[0].message.content == f"SSN {SSN}"


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
        {"role": "user"},
    ],
)
def test_malformed_messages_are_refused_not_forwarded(
    message: dict[str, Any], make_proxy: ProxyFactory, standin: ThreadedGateway
) -> None:
    gw = make_proxy(pii_action="redact")
    before = len(httpx.get(standin.url + "/standin/received").json())
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": SSN}, message]}
    reply = httpx.post(gw.url + "/v1/chat/completions", json=body)
    assert reply.status_code == 400 and "messages[1]" in reply.json()["error"]["message"]
    assert len(httpx.get(standin.url + "/standin/received").json()) == before
