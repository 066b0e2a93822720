"""Provider keys never leave the gateway (helpers.gateway.provider_errors.mask_keys).

A provider that refuses the gateway's key and quotes it back, as OpenAI does ("Incorrect
API key provided: sk-..."), is put behind a proxy-mode gateway; the key must be in no reply
(``/api/request``, ``/v1/chat/completions``, streamed or not), no audit row, no metric and
no log line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from helpers.gateway.provider_errors import KEY_MASK, mask_keys
from tests.conftest import ThreadedGateway
from tests.provider_fakes import ProxyFactory, records

ASK = "What are best practices for AI model deployment?"


def echoing_provider() -> Starlette:
    """Answers every chat call 401 with the key it was sent, in OpenAI's error shape."""

    async def chat(request: Request) -> JSONResponse:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        error = {
            "message": f"Incorrect API key provided: {key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
        return JSONResponse({"error": error}, status_code=401)

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture
def echo() -> Iterator[ThreadedGateway]:
    with ThreadedGateway(echoing_provider()) as server:
        yield server


@pytest.mark.parametrize(
    "key",
    ["sk-proj-Zq81bQ2vLmN4xR7tY0uWcE5sDfGhJkLp", "an-offline-key-of-another-shape-12345"],
)
def test_a_key_the_provider_echoes_reaches_no_reply_row_metric_or_log(
    make_proxy: ProxyFactory, echo: ThreadedGateway, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": echo.url + "/v1"}
    gw = make_proxy(env={**env, "GATEWAY_PROVIDER_RETRIES": "0"})
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": ASK}]}
    with httpx.Client(base_url=gw.url, timeout=10) as http:
        proxied = http.post("/api/request", json={"query": ASK})
        assert proxied.status_code == 200 and proxied.json()["success"] is False
        assert "Incorrect API key provided: " + KEY_MASK in proxied.json()["error"]
        replies = [proxied.text]
        for stream in (False, True):
            replies.append(http.post("/v1/chat/completions", json={**chat, "stream": stream}).text)
        rows = records(gw.url, expected=3)
        assert len(rows) == 3
        metrics = http.get("/prometheus").text
    seen = "\n".join([*replies, str(rows), metrics, caplog.text])
    assert key not in seen and key[-8:] not in seen
    assert all(KEY_MASK in str(row["metadata"]) for row in rows)


@pytest.mark.parametrize(
    ("text", "keys", "masked"),
    [
        (
            "Incorrect API key provided: sk-proj-abc123*****wxyz.",
            (),
            f"Incorrect API key provided: {KEY_MASK}.",
        ),
        ("bad key sk-ant-api03-AbCdEf_123-xyz", (), f"bad key {KEY_MASK}"),
        ("key offline-key-123 refused", ("offline-key-123",), f"key {KEY_MASK} refused"),
        ("a short key k is not searched for", ("k",), "a short key k is not searched for"),
        ("skeptical sk-ok words stay", (), "skeptical sk-ok words stay"),
        (
            "OpenAI answered HTTP 500: Internal error",
            ("sk-whatever-1234",),
            "OpenAI answered HTTP 500: Internal error",
        ),
    ],
)
def test_mask_keys(text: str, keys: tuple[str, ...], masked: str) -> None:
    assert mask_keys(text, keys) == masked
