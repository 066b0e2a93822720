"""Providers that misbehave, and a proxy-mode gateway in front of the stand-ins, for tests.

:class:`BadProvider` is a raw TCP server on loopback that reads one HTTP request and then
either never answers (``hang``) or answers a stream's headers and one chunk and then stalls
(``stall``). It records when the gateway closes the connection, so a test can check that an
abandoned upstream call is really abandoned.

:class:`FaultyProvider` is the stand-ins behind a :class:`FaultSwitch`, on a port that stays
the same: ``fail(kind)`` makes every provider call fail that way until ``heal()``, so a test
can see a failure and then the next request on the same connection. The stand-ins' own
fault injection answers ``429``, ``500`` and ``529``; the switch adds what they do not do.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helpers.standins import create_standin_app
from tests.conftest import ThreadedGateway, hermetic_settings

CHUNK = {
    "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello"},
                 "finish_reason": None}],
}  # fmt: skip


class BadProvider:
    """``mode``: ``hang`` (no answer at all) or ``stall`` (headers, one chunk, silence)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests = 0
        self.closed_by_peer = threading.Event()
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            self.requests += 1
            if self.mode == "stall":
                body = f"data: {json.dumps(CHUNK)}\n\n".encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"connection: close\r\n\r\n" + body
                )
            conn.settimeout(0.05)
            while not self._stop.is_set():
                try:
                    if conn.recv(65536) == b"":
                        self.closed_by_peer.set()
                        return
                except TimeoutError:
                    continue
        except OSError:
            self.closed_by_peer.set()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for conn in self._conns:
            conn.close()


@contextmanager
def bad_provider(mode: str) -> Iterator[BadProvider]:
    provider = BadProvider(mode)
    try:
        yield provider
    finally:
        provider.close()


#: What :class:`FaultSwitch` can do to a provider call, and how.
FAULT_KINDS = {
    "refused": "the server is stopped: its port refuses connections (FaultyProvider only)",
    "404": "the path gets one /v1 too many; the stand-ins' router answers 404",
    "429": "the stand-ins' own injection: x-standin-fail: 429",
    "500": "the stand-ins' own injection: x-standin-fail: 500",
    "529": "the stand-ins' own injection: x-standin-fail: 529 (503 on the OpenAI route)",
    "timeout": "the request is read and never answered",
    "malformed": "200 with a JSON body cut off in the middle",
    "html": "200 with a web page, as a base URL pointing at a website answers",
    "cut": "the reply starts, then the connection is dropped (after the first streamed text)",
    "short": "a stream that ends cleanly after the first text, before the model finished",
}
_STANDIN_KINDS = ("429", "500", "529")
#: A streamed body message that carries model text (OpenAI chunk or Anthropic event).
_TEXT = re.compile(rb'"text_delta"|"content":"[^"]')


class _Cut(Exception):
    """Raised inside the app after the reply began: uvicorn drops the connection."""


async def _read_body(receive: Receive) -> None:
    message: Message = {"more_body": True}
    while message.get("more_body"):
        message = await receive()


class FaultSwitch:
    """ASGI middleware in front of the stand-ins: while ``fault`` is set, every POST to the
    provider API fails that way (GETs, such as a start-up probe, pass). ``failed`` counts the
    calls it failed, the SDK's retries included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.fault: str | None = None
        self.failed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = self.fault
        if kind is None or scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        self.failed += 1
        if kind in _STANDIN_KINDS:
            headers = [*scope["headers"], (b"x-standin-fail", kind.encode())]
            await self.app({**scope, "headers": headers}, receive, send)
        elif kind == "404":
            path = "/v1" + scope["path"]
            await self.app({**scope, "path": path, "raw_path": path.encode()}, receive, send)
        elif kind in ("malformed", "html"):
            await _read_body(receive)
            body, ctype = (
                (b'{"id": "chatcmpl-1", "choices": [{"index": 0, "mess', b"application/json")
                if kind == "malformed"
                else (b"<html><body>Welcome</body></html>", b"text/html")
            )
            headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif kind == "timeout":
            await _read_body(receive)
            while (await receive())["type"] != "http.disconnect":
                pass  # answer nothing until the client gives up
        elif kind in ("cut", "short"):
            await self._interrupted(kind, scope, receive, send)
        else:
            raise ValueError(f"unknown fault {kind!r}; use one of {sorted(FAULT_KINDS)}")

    async def _interrupted(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        """The stand-ins' reply, stopped after its first text: dropped (``cut``), or ended
        cleanly (``short``). A reply in one piece is cut in the middle of its body."""

        async def relay(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
                return
            body, streamed = message.get("body", b""), message.get("more_body", False)
            if not streamed:  # one JSON body: send half of it, then drop the connection
                await send({**message, "body": body[: len(body) // 2], "more_body": True})
                raise _Cut
            await send(message)
            if _TEXT.search(body):
                if kind == "short":
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                raise _Cut

        try:
            await self.app(scope, receive, relay)
        except _Cut:
            if kind == "cut":
                raise


class FaultyProvider:
    """The stand-ins (no simulated delay) behind a :class:`FaultSwitch` on a fixed port.

    ``fail(kind)`` (one of :data:`FAULT_KINDS`) lasts until ``heal()``; ``refused`` stops
    the server, and ``heal()`` starts it again on the same port.
    """

    def __init__(self) -> None:
        self.switch = FaultSwitch(create_standin_app(time_scale=0))
        self.server: ThreadedGateway | None = ThreadedGateway(self.switch).__enter__()
        self.url = self.server.url
        self.port = int(self.url.rsplit(":", 1)[1])

    def fail(self, kind: str) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; use one of {sorted(FAULT_KINDS)}")
        self.switch.failed = 0
        if kind == "refused":
            self._stop()
        else:
            self.switch.fault = kind

    def heal(self) -> None:
        self.switch.fault = None
        if self.server is None:
            self.server = ThreadedGateway(self.switch, port=self.port).__enter__()

    def _stop(self) -> None:
        if self.server is not None:
            self.server.__exit__(None, None, None)
            self.server = None

    def close(self) -> None:
        self.switch.fault = None
        self._stop()


@pytest.fixture(scope="module")
def standin() -> Iterator[ThreadedGateway]:
    """The OpenAI/Anthropic stand-ins in process, with no simulated delay."""
    with ThreadedGateway(create_standin_app(time_scale=0)) as server:
        yield server


ProxyFactory = Callable[..., ThreadedGateway]


@pytest.fixture
def make_proxy(
    standin: ThreadedGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProxyFactory]:
    """A gateway whose provider environment is ``env`` (default: both stand-ins, keys set)."""
    from helpers.gateway import create_app

    started: list[ThreadedGateway] = []

    def make(env: dict[str, str] | None = None, **overrides: object) -> ThreadedGateway:
        provider_env = {
            "OPENAI_API_KEY": "offline-stand-in", "OPENAI_BASE_URL": standin.url + "/v1",
            "ANTHROPIC_API_KEY": "offline-stand-in", "ANTHROPIC_BASE_URL": standin.url,
        } if env is None else env  # fmt: skip
        for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GATEWAY_PROVIDER_TIMEOUT_S",
                     "GATEWAY_PROVIDER_RETRIES"):  # fmt: skip
            monkeypatch.delenv(name, raising=False)
        for name, value in provider_env.items():
            monkeypatch.setenv(name, value)
        db = tmp_path / f"gw{len(started)}.db"
        gw = ThreadedGateway(create_app(hermetic_settings(**overrides), db_path=str(db)))
        started.append(gw.__enter__())
        for name in provider_env:  # the app has read them; the test process needs none
            monkeypatch.delenv(name, raising=False)
        return gw

    yield make
    for gw in started:
        gw.__exit__(None, None, None)


def openai_at(url: str, timeout_s: str = "0.3") -> dict[str, str]:
    """A provider environment whose OpenAI is ``url`` (a bad provider), one attempt only."""
    return {
        "OPENAI_API_KEY": "k",
        "OPENAI_BASE_URL": url + "/v1",
        "GATEWAY_PROVIDER_TIMEOUT_S": timeout_s,
        "GATEWAY_PROVIDER_RETRIES": "0",
    }


def records(url: str, expected: int = 1, timeout: float = 5.0) -> list[dict]:
    """The gateway's audit records, waiting until at least ``expected`` are there."""
    deadline = time.monotonic() + timeout
    while True:
        rows = httpx.get(url + "/api/audit/records", timeout=5).json()["records"]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)
