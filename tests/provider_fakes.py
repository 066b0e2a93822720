"""Providers that misbehave, and a proxy-mode gateway in front of the stand-ins, for tests.

:class:`BadProvider` is a raw TCP server on loopback that reads one HTTP request and then
either never answers (``hang``) or answers a stream's headers and one chunk and then stalls
(``stall``). It records when the gateway closes the connection, so a test can check that an
abandoned upstream call is really abandoned.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

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
