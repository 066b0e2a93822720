"""The provider fault matrix, over real sockets: each way a provider fails, seen by
``governed_completion`` and by a caller of the governed service.

Every row is one fault (:data:`tests.provider_fakes.FAULT_KINDS`: the stand-ins' own
``x-standin-fail`` injection for 429/500/529, a fault switch in front of them for the
rest). For each: the typed error and the provider's status on it, the status and body the
service's caller sees, the audit row of the failed call, and that the next request, on the
same SDK client and on the same keep-alive connection to the service, is answered.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest

from helpers.client import GatewayClient, governed_completion
from helpers.errors import (
    ProviderBadReply,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
)
from helpers.server import RunningService, start_gateway, start_service

from .provider_fakes import FaultyProvider

ASK = [{"role": "user", "content": "How do we monitor LLM calls in production?"}]
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-20241022"}
#: An engineer in data/users.yaml: a guest's ten requests a minute would run out mid-matrix.
USER = "user-123"
#: Per attempt; the SDK retries once, so a timeout costs about twice this and a back-off.
TIMEOUT_S = 0.5


@dataclass(frozen=True)
class Fault:
    """One row: what the provider does, and what each caller sees."""

    kind: str
    provider: str
    error: type[ProviderError]
    provider_status: int | None  # on the error and in the audit row
    service_status: int | None  # what the service's caller sees; None: the service never streams
    stream: bool = False

    def __str__(self) -> str:
        return f"{self.kind}-{self.provider}{'-stream' if self.stream else ''}"


MATRIX = [
    Fault("refused", "openai", ProviderUnavailable, None, 502),
    Fault("404", "openai", ProviderRejected, 404, 502),
    Fault("429", "openai", ProviderRateLimited, 429, 502),
    Fault("500", "openai", ProviderServerError, 500, 502),
    Fault("529", "anthropic", ProviderServerError, 529, 502),
    Fault("timeout", "openai", ProviderTimeout, None, 504),
    Fault("malformed", "openai", ProviderBadReply, None, 502),
    # A reply in one piece, dropped mid-body: the SDK retries it as a lost connection.
    Fault("cut", "anthropic", ProviderUnavailable, None, 502),
    Fault("cut", "openai", ProviderBadReply, None, None, stream=True),
    Fault("cut", "anthropic", ProviderBadReply, None, None, stream=True),
]


@pytest.fixture(scope="module")
def provider() -> Iterator[FaultyProvider]:
    faulty = FaultyProvider()
    yield faulty
    faulty.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    service = start_gateway(db_path=tmp_path_factory.mktemp("faults") / "gw.db")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def services(
    gateway: RunningService, provider: FaultyProvider
) -> Iterator[dict[str, RunningService]]:
    """The governed service for each provider, in its own process, on the faulty provider."""
    common = ["--gateway", gateway.url, "--llm-url", provider.url]
    started = {
        name: start_service(
            "helpers.service",
            [*common, "--provider", name, "--model", MODELS[name], "--llm-timeout", str(TIMEOUT_S)],
        )
        for name in MODELS
    }
    yield started
    for service in started.values():
        service.stop()


@pytest.fixture
def healed(provider: FaultyProvider) -> Iterator[FaultyProvider]:
    yield provider
    provider.heal()


def sdk(provider: str, url: str) -> Any:
    """An SDK client as an application builds it: one retry, a short timeout."""
    if provider == "openai":
        return openai.AsyncOpenAI(
            base_url=url + "/v1", api_key="k", max_retries=1, timeout=TIMEOUT_S
        )
    return anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=1, timeout=TIMEOUT_S)


def audit_row(gateway_url: str, context_id: str | None, wait_s: float = 5.0) -> dict[str, Any]:
    """The audit of ``context_id``, waiting for one sent from a background queue."""
    deadline = time.monotonic() + wait_s
    while True:
        page = httpx.get(gateway_url + "/api/audit/records", params={"limit": 1000}).json()
        rows = [r for r in page["records"] if r["context_id"] == context_id and r["audit_id"]]
        if rows or time.monotonic() > deadline:
            assert len(rows) == 1, f"{len(rows)} audits for context {context_id}"
            return rows[0]
        time.sleep(0.02)


def assert_failure_audited(row: dict[str, Any], fault: Fault) -> None:
    meta = row["metadata"]
    assert meta["outcome"] == "provider_error"
    assert meta["error_type"] == fault.error.__name__
    assert meta["provider_status"] == fault.provider_status
    assert row["provider"] == fault.provider and row["model"] == MODELS[fault.provider]


@pytest.mark.parametrize("fault", MATRIX, ids=str)
def test_governed_completion_audits_the_failure_and_raises_it_typed(
    gateway: RunningService, healed: FaultyProvider, fault: Fault
) -> None:
    pieces: list[str] = []

    async def run() -> tuple[ProviderError, Any]:
        async with GatewayClient(gateway.url) as gw, sdk(fault.provider, healed.url) as llm:
            model = MODELS[fault.provider]
            kw: dict[str, Any] = {"stream": fault.stream, "user_token": USER}
            await governed_completion(gw, llm, model, ASK, **kw)  # leaves a pooled connection
            healed.fail(fault.kind)
            with pytest.raises(ProviderError) as caught:
                await governed_completion(gw, llm, model, ASK, on_text=pieces.append, **kw)
            healed.heal()
            return caught.value, await governed_completion(gw, llm, model, ASK, **kw)

    error, after = asyncio.run(run())
    assert type(error) is fault.error, error
    assert error.status == fault.provider_status and error.provider == fault.provider
    assert after.outcome == "answered" and after.text  # the same SDK client recovered
    row = audit_row(gateway.url, error.context_id)
    assert_failure_audited(row, fault)
    assert row["latency_ms"] == round(error.latency_ms)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        error.prompt_tokens,
        error.completion_tokens,
    )
    if fault.stream:  # what arrived before the break reached on_text; its usage is audited
        assert pieces and f"after {len(pieces)} streamed pieces" in error.message
        assert (error.prompt_tokens > 0) == (fault.provider == "anthropic")
    else:
        assert pieces == [] and (error.prompt_tokens, error.completion_tokens) == (0, 0)
    if fault.kind == "timeout":
        assert error.latency_ms >= 2 * TIMEOUT_S * 1000  # one attempt and the SDK's retry


def local_port(response: httpx.Response) -> int:
    """The client's side of the connection a response came back on (while it is open)."""
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


@pytest.mark.parametrize("fault", [f for f in MATRIX if f.service_status], ids=str)
def test_the_service_answers_502_or_504_and_keeps_the_connection(
    gateway: RunningService,
    services: dict[str, RunningService],
    healed: FaultyProvider,
    fault: Fault,
) -> None:
    ask = {"user": USER, "message": ASK[0]["content"]}
    with httpx.Client(base_url=services[fault.provider].url, timeout=10) as web:
        before = web.post("/chat", json=ask)
        healed.fail(fault.kind)
        failed = web.post("/chat", json=ask)
        healed.heal()
        after = web.post("/chat", json=ask)
        ports = {local_port(r) for r in (before, failed, after)}
    assert before.status_code == 200, before.text
    assert failed.status_code == fault.service_status, failed.text
    body = failed.json()
    assert body["outcome"] == "provider_error" and body["error_type"] == fault.error.__name__
    assert body["provider_status"] == fault.provider_status
    assert body["error"].startswith(fault.provider) and body["context_id"]
    assert after.status_code == 200 and after.json()["outcome"] == "answered"
    assert len(ports) == 1  # one keep-alive connection throughout
    assert_failure_audited(audit_row(gateway.url, body["context_id"]), fault)


def test_the_service_starts_without_its_provider_and_says_so(gateway: RunningService) -> None:
    """The issue's report: ``--llm-url http://127.0.0.1:9``. A warning at start-up, then a
    502 for each chat (the ungoverned baseline route too), on a connection that stays usable."""
    args = ["--gateway", gateway.url, "--llm-url", "http://127.0.0.1:9", "--baseline"]
    service = start_service("helpers.service", args)
    try:
        with httpx.Client(base_url=service.url, timeout=10) as web:
            ask = {"user": USER, "message": "What is RAG?"}
            replies = [web.post(path, json=ask) for path in ("/chat", "/chat", "/chat/direct")]
            health = web.get("/health")
            ports = {local_port(r) for r in [*replies, health]}
    finally:
        service.stop()
    assert [r.status_code for r in replies] == [502, 502, 502]
    assert {r.json()["error_type"] for r in replies} == {"ProviderUnavailable"}
    assert "Connection refused" in replies[0].json()["error"]
    assert replies[0].json()["context_id"] and replies[2].json()["context_id"] is None
    assert health.status_code == 200
    assert len(ports) == 1
    warning = service.stderr_tail(5)
    assert "failed a probe, starting anyway" in warning and "127.0.0.1:9" in warning


@pytest.mark.parametrize(
    ("provider_name", "llm_url"),
    [
        ("openai", "{provider}/v1"),  # one /v1 too many: the service adds it for OpenAI
        ("anthropic", "{provider}/v1"),  # the Anthropic SDK adds /v1 itself
        ("openai", "{gateway}"),  # the gateway's URL where the provider's belongs
    ],
)
def test_a_base_url_the_provider_refuses_stops_the_service_with_one_line(
    gateway: RunningService, provider: FaultyProvider, provider_name: str, llm_url: str
) -> None:
    url = llm_url.format(provider=provider.url, gateway=gateway.url)
    service = [sys.executable, "-m", "helpers.service", "--gateway", gateway.url]
    command = [*service, "--llm-url", url, "--provider", provider_name]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=os.environ)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"service: {url} cannot serve chats ({provider_name} answered 4")
    assert "fix --llm-url" in line
