"""helpers.gateway.upstream and the retries of helpers.gateway.providers, over real sockets.

The proxy tests (``test_proxy.py``, ``test_openai_compat.py``) drive the whole path; here:
what the gateway's own client promises on its own (connections reused, a connection the
server closed while idle replaced, a body delimited by the close read whole) and the
retry rules it shares with the provider SDKs.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from helpers.errors import ConfigError
from helpers.gateway.providers import (
    ProviderConfig,
    ProviderError,
    Providers,
    retry_delay,
    should_retry,
)
from helpers.gateway.upstream import Upstream, UpstreamUnreachable
from tests.conftest import ThreadedGateway
from tests.provider_fakes import FaultyProvider

ASK = [{"role": "user", "content": "What is RAG?"}]
ANSWER = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Retrieval."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}  # fmt: skip


class Flaky:
    """An OpenAI-shaped endpoint that fails its first ``failures`` calls with ``status``."""

    def __init__(self, failures: int, status: int, headers: dict[str, str] | None = None):
        self.failures, self.status, self.headers = failures, status, headers or {}
        self.calls = 0
        self.peers: set[int] = set()

    async def chat(self, request: Request) -> JSONResponse:
        self.calls += 1
        self.peers.add(request.client.port if request.client else 0)
        await request.body()
        if self.calls <= self.failures:
            body = {"error": {"message": f"failure {self.calls}", "type": "server_error"}}
            return JSONResponse(body, status_code=self.status, headers=self.headers)
        return JSONResponse(ANSWER)


def serve(flaky: Flaky) -> ThreadedGateway:
    app = Starlette(routes=[Route("/v1/chat/completions", flaky.chat, methods=["POST"])])
    return ThreadedGateway(app)


def complete(url: str, retries: int) -> tuple[str, int]:
    config = ProviderConfig({"openai": "k"}, {"openai": url + "/v1"}, 5.0, retries)

    async def go() -> tuple[str, int]:
        providers = Providers(config)
        try:
            answer = await providers.complete("openai", "gpt-4o-mini", ASK)
            await providers.complete("openai", "gpt-4o-mini", ASK)
            return answer.text, answer.prompt_tokens
        finally:
            await providers.aclose()

    return asyncio.run(go())


def test_a_500_is_retried_and_the_connection_kept() -> None:
    flaky = Flaky(1, 500, {"retry-after-ms": "10"})
    with serve(flaky) as server:
        assert complete(server.url, retries=1) == ("Retrieval.", 5)
    assert flaky.calls == 3 and len(flaky.peers) == 1  # one retry, one keep-alive connection


@pytest.mark.parametrize(
    ("status", "headers", "fragment"),
    [
        (400, {}, "HTTP 400: failure 1"),  # not worth retrying
        (500, {"x-should-retry": "false"}, "HTTP 500: failure 1"),  # the server says no
    ],
)
def test_an_answer_not_worth_retrying_fails_at_once(
    status: int, headers: dict[str, str], fragment: str
) -> None:
    flaky = Flaky(1, status, headers)
    with serve(flaky) as server, pytest.raises(ProviderError) as caught:
        complete(server.url, retries=2)
    assert caught.value.kind == "status" and caught.value.status == status
    assert fragment in caught.value.message and flaky.calls == 1


@pytest.mark.parametrize(
    ("status", "headers", "retried"),
    [
        (429, {}, True),
        (408, {}, True),
        (503, {}, True),
        (404, {}, False),
        (400, {"x-should-retry": "true"}, True),
        (429, {"retry-after": "600"}, False),  # longer than anyone should wait
    ],
)
def test_should_retry_follows_the_sdks(status: int, headers: dict[str, str], retried: bool) -> None:
    assert should_retry(status, headers) is retried


def test_retry_delay_honours_the_provider_then_backs_off() -> None:
    assert retry_delay(0, {"retry-after-ms": "250"}) == 0.25
    assert retry_delay(0, {"retry-after": "2"}) == 2.0
    assert 0.375 <= retry_delay(0, {}) <= 0.5
    assert 6.0 <= retry_delay(10, {}) <= 8.0


class OneShot:
    """A raw server answering each connection's first request, then closing it (or, with
    ``close_delimited``, answering without a length and closing to end the body)."""

    def __init__(self, close_delimited: bool = False) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.close_delimited = close_delimited
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                body = b'{"ok": true}'
                framing = b"" if self.close_delimited else b"content-length: 12\r\n"
                conn.sendall(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n" + body)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def one_shot() -> Iterator[OneShot]:
    server = OneShot()
    yield server
    server.close()


async def _post(upstream: Upstream, path: str) -> tuple[int, bytes]:
    """A whole answer through the pool: its status and body."""
    answer = await upstream.open(path, b"{}")
    return answer.status, await answer.read()


def test_a_connection_the_server_closed_while_idle_is_replaced(one_shot: OneShot) -> None:
    async def go() -> list[int]:
        upstream = Upstream(one_shot.url, timeout_s=5)
        statuses = []
        for _ in range(3):
            statuses.append((await _post(upstream, "/x"))[0])
            await asyncio.sleep(0.05)  # the server's close arrives while the connection idles
        await upstream.aclose()
        return statuses

    assert asyncio.run(go()) == [200, 200, 200] and one_shot.connections == 3


def test_a_body_ended_by_the_close_is_read_whole() -> None:
    server = OneShot(close_delimited=True)
    try:
        status, body = asyncio.run(_post(Upstream(server.url, timeout_s=5), "/x"))
    finally:
        server.close()
    assert status == 200 and body == b'{"ok": true}'


def test_a_refused_connection_is_unreachable() -> None:
    with pytest.raises(UpstreamUnreachable, match="Connect"):
        asyncio.run(_post(Upstream("http://127.0.0.1:9", timeout_s=5), "/x"))


@pytest.mark.parametrize("url", ["ftp://example.com", "127.0.0.1:8000", "http://"])
def test_a_base_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="base URL"):
        Upstream(url, timeout_s=1)


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultyProvider]:
    provider = FaultyProvider()
    yield provider
    provider.close()


@pytest.mark.parametrize(
    ("fault", "kind", "attempts"),
    [
        ("cut", "unreachable", 2),  # the body dropped midway: retried, like a lost connection
        ("429", "status", 2),
        ("malformed", "bad_response", 1),  # a 200 that is not JSON is not retried
        ("404", "status", 1),
    ],
)
def test_each_fault_fails_as_its_kind_after_the_retries_it_deserves(
    faulty: FaultyProvider, fault: str, kind: str, attempts: int
) -> None:
    faulty.fail(fault)
    try:
        with pytest.raises(ProviderError) as caught:
            complete(faulty.url, retries=1)
    finally:
        calls = faulty.switch.failed
        faulty.heal()
    assert caught.value.kind == kind and calls == attempts, caught.value.message
    assert complete(faulty.url, retries=1)[0]  # and the next call is answered


@pytest.mark.parametrize("url", ["localhost:8000/v1", "http://127.0.0.1:port/v1"])
def test_a_provider_base_url_that_is_not_one_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL: base URL"):
        ProviderConfig.from_env({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": url})
