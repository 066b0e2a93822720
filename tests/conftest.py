"""Shared fixtures: hermetic settings, and real gateways on loopback.

No test needs a key or the network. Provider keys and a real agent URL are cleared from the
environment for every test, so nothing can reach a paid API by accident.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from helpers.gateway.store import AuditStore, ContextRecord
from helpers.gateway.store.chain import CONTEXT_COLUMNS
from helpers.gateway.store.query import RecordFilter, list_records
from helpers.settings import Settings

_CLEARED = (
    "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AXONFLOW_AGENT_URL", "AXONFLOW_CLIENT_SECRET",
    "AXONFLOW_LICENSE_KEY", "PII_BLOCK_CRITICAL", "SQLI_BLOCK_MODE", "SQLI_SCANNER_MODE",
    "GATEWAY_CLIENT_SECRETS", "GATEWAY_HMAC_SECRET", "STANDIN_TIME_SCALE",
    "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GATEWAY_COMPAT",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    # The official AxonFlow SDK pings its vendor unless told not to; tests never leave loopback.
    monkeypatch.setenv("AXONFLOW_TELEMETRY", "off")


class FakeClock:
    """A settable UTC clock for expiry and rate-limit tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ThreadedGateway:
    """The gateway app under uvicorn in a background thread: real HTTP, injectable clock.

    ``port`` 0 picks a free one; a given port (one a stopped server used) starts a server
    again where its clients expect it."""

    def __init__(self, app: object, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def __enter__(self) -> ThreadedGateway:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("threaded gateway did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def stored_contexts(store: AuditStore) -> list[ContextRecord]:
    """Every context a store holds, in chain order: what a test checks a store or a replay
    kept (the gateway itself reads contexts one at a time, by id)."""
    store.commit()
    columns = ", ".join((*CONTEXT_COLUMNS, "prev_hash", "row_hash"))
    rows = store.connection.execute(f"SELECT {columns} FROM contexts ORDER BY seq")
    return [ContextRecord.from_row(row) for row in rows]


def stored_records(
    store: AuditStore, where: RecordFilter | None = None, **options: Any
) -> list[dict[str, Any]]:
    """A page of the joined trail a store holds (:func:`query.list_records` on its
    connection): ``options`` are ``limit``, ``offset`` and ``after``, or a filter's fields."""
    paging = {k: options.pop(k) for k in ("limit", "offset", "after") if k in options}
    store.commit()
    return list_records(store.connection, where or RecordFilter(**options), **paging)


def hermetic_settings(**overrides: object) -> Settings:
    return Settings.load(env={}, dotenv_path=None, **overrides)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Callable[..., ThreadedGateway]]:
    """Start a gateway with given settings overrides and clock; stopped after the test."""
    from helpers.gateway import create_app  # imported here so unit suites load without it

    started: list[ThreadedGateway] = []

    def make(clock: Callable[[], datetime] | None = None, db: Path | None = None,
             **overrides: object) -> ThreadedGateway:  # fmt: skip
        app = create_app(hermetic_settings(**overrides), db_path=str(db or tmp_path / "gw.db"),
                         clock=clock)  # fmt: skip
        gw = ThreadedGateway(app).__enter__()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.__exit__(None, None, None)


@pytest.fixture
def gateway(make_gateway: Callable[..., ThreadedGateway], clock: FakeClock) -> ThreadedGateway:
    return make_gateway(clock=clock)


@pytest.fixture
def http(gateway: ThreadedGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        yield client


# Proxy mode's fixtures (``standin``, ``make_proxy``), kept beside their fake providers.
from tests.provider_fakes import make_proxy, standin  # noqa: E402, F401
