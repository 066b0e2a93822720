"""governed_completion end to end: real SDKs, the stand-ins, a gateway that works, is
killed, or hangs; fail closed, fail open, the breaker, deferred audits, tool-call checks."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from helpers.client import (
    UNAVAILABLE_MESSAGE,
    CircuitBreaker,
    GatewayClient,
    GatewayDown,
    GatewayGuard,
    ReplyStream,
    SyncGatewayClient,
    ToolCall,
    governed_completion,
    governed_completion_sync,
    pre_check_tool_call,
)
from helpers.client.governed import NO_REDACTED_TEXT, redact_messages
from helpers.errors import (
    BadRequest,
    GatewayUnavailable,
    ProviderRateLimited,
    ProviderServerError,
)
from helpers.server import start_gateway
from helpers.standins import create_standin_app

from .conftest import ThreadedGateway

ASK = [{"role": "system", "content": "Be brief."},
       {"role": "user", "content": "How do we monitor LLM calls in production?"}]  # fmt: skip
SSN = [{"role": "user", "content": "My SSN is 123-45-6789, what is my credit score?"}]
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-20241022"}
FAIL_500 = {"x-standin-fail": "500"}  # the stand-ins' own fault injection, every attempt


@pytest.fixture(scope="module")
def standins() -> Iterator[str]:
    with ThreadedGateway(create_standin_app(time_scale=0, seed=0)) as server:
        yield server.url


@pytest.fixture
def gw_url(make_gateway: Callable[..., ThreadedGateway]) -> str:
    return make_gateway().url


def llm(provider: str, url: str) -> Any:
    if provider == "openai":
        return openai.AsyncOpenAI(base_url=url + "/v1", api_key="any", max_retries=0)
    return anthropic.AsyncAnthropic(base_url=url, api_key="any", max_retries=0)


class NoLLM:
    """An 'OpenAI client' that fails the test if anything reaches it."""

    class chat:  # the SDK's attribute name
        class completions:
            @staticmethod
            async def create(**kw: Any) -> None:
                raise AssertionError("the LLM was called")


class NoSyncLLM:
    """A blocking 'Anthropic client' that fails the test if anything reaches it."""

    class messages:
        @staticmethod
        def create(**kw: Any) -> None:
            raise AssertionError("the LLM was called")


class Hung:
    """Accepts connections, reads nothing, answers nothing: a gateway stuck mid-request."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def records(url: str) -> list[dict[str, Any]]:
    return httpx.get(url + "/api/audit/records", params={"limit": 1000}).json()["records"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
def test_answered_and_audited(gw_url: str, standins: str, provider: str, stream: bool) -> None:
    pieces: list[str] = []

    async def run() -> Any:
        async with GatewayClient(gw_url) as gw, llm(provider, standins) as model:
            return await governed_completion(gw, model, MODELS[provider], ASK, user_token="u1",
                                             stream=stream, on_text=pieces.append)  # fmt: skip

    result = asyncio.run(run())
    assert result.outcome == "answered" and result.text and result.audit_id
    assert ("".join(pieces) == result.text) if stream else pieces == []
    (row,) = [r for r in records(gw_url) if r["audit_id"]]
    assert row["audit_id"] == result.audit_id and row["provider"] == provider
    assert row["completion_tokens"] == result.reply.usage.completion_tokens > 0
    assert row["prompt_tokens"] == result.reply.usage.prompt_tokens > 0


def test_blocked_never_reaches_the_llm(gw_url: str) -> None:
    async def run() -> Any:
        async with GatewayClient(gw_url) as gw:
            return await governed_completion(gw, NoLLM(), "gpt-4o-mini", SSN)

    result = asyncio.run(run())
    assert result.outcome == "blocked" and "ssn" in result.message.lower()
    assert result.decision is not None and not result.decision.approved
    assert [r["audit_id"] for r in records(gw_url)] == [None]


def test_fail_closed_with_killed_gateway_and_breaker(tmp_path: Any) -> None:
    service = start_gateway(db_path=tmp_path / "gw.db")
    guard = GatewayGuard(timeout_s=2, breaker=CircuitBreaker(failure_threshold=2))

    async def run() -> list[Any]:
        async with GatewayClient(service.url) as gw:
            up = await governed_completion(gw, NoLLM(), "m", SSN, guard=guard)
            service.kill()  # SIGKILL mid-run
            down = [await governed_completion(gw, NoLLM(), "m", ASK, guard=guard)
                    for _ in range(5)]  # fmt: skip
            return [up, *down]

    try:
        results = asyncio.run(run())
    finally:
        service.stop()
    assert [r.outcome for r in results] == ["blocked"] + ["unavailable"] * 5
    assert {r.text for r in results[1:]} == {UNAVAILABLE_MESSAGE}
    assert guard.breaker.state == "open" and guard.breaker.rejected == 3
    assert guard.deferred == []


def test_hung_gateway_costs_one_timeout_then_the_breaker_answers(standins: str) -> None:
    hung = Hung()
    guard = GatewayGuard(timeout_s=0.3, breaker=CircuitBreaker(failure_threshold=1))

    async def run() -> list[Any]:
        # The client's own read timeout fires first and closes its socket cleanly; the
        # guard's timeout is the backstop (tested on its own below).
        async with GatewayClient(hung.url, timeout=0.25) as gw:
            return [await governed_completion(gw, NoLLM(), "m", ASK, guard=guard)
                    for _ in range(4)]  # fmt: skip

    try:
        results = asyncio.run(run())
    finally:
        hung.close()
    assert [r.outcome for r in results] == ["unavailable"] * 4
    assert len(hung.accepted) == 1  # only the first request reached the socket
    assert guard.breaker.rejected == 3
    assert results[0].pre_check_ms >= 250  # it waited for the timeout, once


class Stuck:
    """A gateway client whose pre-check never returns."""

    async def pre_check(self, *args: Any, **kw: Any) -> None:
        await asyncio.sleep(3600)


def test_guard_timeout_bounds_any_pre_check() -> None:
    guard = GatewayGuard(timeout_s=0.05, breaker=CircuitBreaker(failure_threshold=2))

    async def run() -> list[Any]:
        return [await guard.pre_check(Stuck(), "q", "u") for _ in range(3)]  # type: ignore[arg-type]

    down = asyncio.run(run())
    assert [d.asked for d in down] == [True, True, False]
    assert "GatewayTimeout" in down[0].reason and "circuit open" in down[2].reason


def test_fail_open_answers_then_governs_when_the_gateway_is_back(
    gw_url: str, standins: str
) -> None:
    guard = GatewayGuard(fail_open=True, timeout_s=0.5)

    async def run() -> tuple[list[Any], Any]:
        async with GatewayClient(dead_url()) as down, llm("openai", standins) as model:
            results = [
                await governed_completion(
                    down, model, "gpt-4o-mini", msgs, user_token="u2", guard=guard
                )
                for msgs in (ASK, SSN)
            ]
        async with GatewayClient(gw_url) as back:
            return results, await guard.flush(back)

    results, report = asyncio.run(run())
    assert [r.outcome for r in results] == ["answered_unchecked"] * 2
    assert all(r.reply is not None and r.reply.text for r in results)
    assert (report.sent, report.pending, report.late_blocked) == (2, 0, 1)
    rows = [r for r in records(gw_url) if r["audit_id"]]
    assert sorted(r["audit_id"] for r in rows) == sorted(report.audit_ids)
    assert all(r["metadata"]["governance"] == "fail_open" for r in rows)
    assert sorted(r["approved"] for r in rows) == [False, True]


def test_fail_open_flush_keeps_what_cannot_be_sent(standins: str) -> None:
    guard = GatewayGuard(fail_open=True, timeout_s=0.5)

    async def run() -> Any:
        async with GatewayClient(dead_url()) as down, llm("anthropic", standins) as model:
            await governed_completion(down, model, MODELS["anthropic"], ASK, guard=guard)
            return await guard.flush(down)

    report = asyncio.run(run())
    assert (report.sent, report.pending) == (0, 1) and len(guard.deferred) == 1


def test_a_400_is_an_answer_not_an_outage(gw_url: str) -> None:
    guard = GatewayGuard(fail_open=True, breaker=CircuitBreaker(failure_threshold=1))

    async def run() -> Any:
        async with GatewayClient(gw_url) as gw:
            return await governed_completion(gw, NoLLM(), "m", ASK, query="", guard=guard)

    with pytest.raises(BadRequest, match="query field is required"):
        asyncio.run(run())
    assert guard.breaker.state == "closed" and guard.deferred == []


def test_sync_form(gw_url: str, standins: str) -> None:
    client = anthropic.Anthropic(base_url=standins, api_key="any", max_retries=0)
    with client, SyncGatewayClient(gw_url, timeout=1) as gw:
        ok = governed_completion_sync(gw, client, MODELS["anthropic"], ASK, stream=True)
        blocked = governed_completion_sync(gw, client, MODELS["anthropic"], SSN)
    with SyncGatewayClient(dead_url(), timeout=1) as gw:
        down = governed_completion_sync(gw, NoSyncLLM(), MODELS["anthropic"], ASK)
    assert (ok.outcome, blocked.outcome, down.outcome) == ("answered", "blocked", "unavailable")
    assert ok.audit_id in {r["audit_id"] for r in records(gw_url)}


def failure_row(gw_url: str, context_id: str | None) -> dict[str, Any]:
    (row,) = [r for r in records(gw_url) if r["context_id"] == context_id and r["audit_id"]]
    return row


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_provider_failure_is_audited_then_raised_with_its_context(
    gw_url: str, standins: str, provider: str
) -> None:
    async def run() -> Any:
        async with GatewayClient(gw_url) as gw, llm(provider, standins) as model:
            return await governed_completion(
                gw, model, MODELS[provider], ASK, user_token="u1", extra_headers=FAIL_500
            )

    with pytest.raises(ProviderServerError) as caught:
        asyncio.run(run())
    error = caught.value
    row = failure_row(gw_url, error.context_id)
    assert error.context_id is not None and error.status == 500 and error.provider == provider
    assert row["metadata"]["outcome"] == "provider_error"
    assert row["metadata"]["error_type"] == "ProviderServerError"
    assert row["metadata"]["provider_status"] == 500
    assert (row["prompt_tokens"], row["completion_tokens"]) == (0, 0)
    assert row["latency_ms"] == round(error.latency_ms) and row["provider"] == provider


def test_sync_form_audits_a_provider_failure(gw_url: str, standins: str) -> None:
    client = anthropic.Anthropic(base_url=standins, api_key="any", max_retries=0)
    with (
        client,
        SyncGatewayClient(gw_url, timeout=1) as gw,
        pytest.raises(ProviderRateLimited, match="wait and retry") as caught,
    ):
        fail = {"x-standin-fail": "429"}
        governed_completion_sync(gw, client, MODELS["anthropic"], ASK, extra_headers=fail)
    row = failure_row(gw_url, caught.value.context_id)
    assert row["metadata"]["error_type"] == "ProviderRateLimited"
    assert row["metadata"]["provider_status"] == 429


def test_fail_open_keeps_a_provider_failure_to_audit_when_the_gateway_is_back(
    gw_url: str, standins: str
) -> None:
    guard = GatewayGuard(fail_open=True, timeout_s=0.5)

    async def run() -> Any:
        async with GatewayClient(dead_url()) as down, llm("openai", standins) as model:
            with pytest.raises(ProviderServerError) as caught:
                await governed_completion(
                    down, model, MODELS["openai"], ASK, guard=guard, extra_headers=FAIL_500
                )
        assert caught.value.context_id is None  # never pre-checked
        assert guard.deferred[0].metadata["outcome"] == "provider_error"
        async with GatewayClient(gw_url) as back:
            return await guard.flush(back)

    report = asyncio.run(run())
    (row,) = [r for r in records(gw_url) if r["audit_id"] in report.audit_ids]
    assert row["metadata"]["outcome"] == "provider_error"
    assert row["metadata"]["governance"] == "fail_open"


class AuditDown:
    """A gateway that answers pre-checks and then cannot take the audit."""

    def __init__(self, gw: GatewayClient) -> None:
        self.gw = gw

    # Only the two calls governed_completion makes; anything else is an AttributeError.
    async def pre_check(self, *args: Any, **kw: Any) -> Any:
        return await self.gw.pre_check(*args, **kw)

    async def audit(self, *args: Any, **kw: Any) -> None:
        raise GatewayUnavailable("connection refused")


def test_a_failure_whose_audit_cannot_be_sent_waits_with_its_context(
    gw_url: str, standins: str
) -> None:
    guard = GatewayGuard()

    async def run() -> Any:
        async with GatewayClient(gw_url) as gw, llm("openai", standins) as model:
            with pytest.raises(ProviderServerError) as caught:
                down = AuditDown(gw)
                await governed_completion(
                    down, model, MODELS["openai"], ASK, guard=guard, extra_headers=FAIL_500
                )
            (waiting,) = guard.deferred
            assert waiting.context_id == caught.value.context_id
            return await guard.flush(gw), caught.value

    report, error = asyncio.run(run())
    row = failure_row(gw_url, error.context_id)
    assert row["audit_id"] in report.audit_ids
    assert (row["metadata"]["outcome"], row["metadata"]["governance"]) == (
        "provider_error",
        "audit_retry",
    )


@pytest.mark.parametrize(
    ("arguments", "approved"),
    [
        ({"sql": "SELECT * FROM orders WHERE id = 42"}, True),
        ({"sql": "SELECT name FROM products; DROP TABLE users"}, False),
        ({"sql": "SELECT * FROM orders WHERE id = '1' OR '1'='1'"}, False),
        ({"customer": "Ada", "note": "please select the best option"}, True),
        ({"customer": "Ada", "card": "4111 1111 1111 1111"}, False),
    ],
)
def test_tool_call_arguments_are_pre_checked(
    gw_url: str, arguments: dict[str, str], approved: bool
) -> None:
    async def run() -> Any:
        async with GatewayClient(gw_url) as gw:
            return await pre_check_tool_call(gw, ToolCall("c1", "run_sql", arguments))

    decision = asyncio.run(run())
    assert not isinstance(decision, GatewayDown)
    assert decision.approved is approved, decision.policies


def test_tool_call_from_the_sdk_is_checked_before_it_runs(gw_url: str, standins: str) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "run_sql",
            "description": "Run SQL",
            "parameters": {"type": "object", "properties": {"sql": {"type": "string"}}},
        },
    }
    # fmt: skip
    messages = [{"role": "user", "content": "List orders; DROP TABLE users"}]

    async def run() -> Any:
        async with GatewayClient(gw_url) as gw, llm("openai", standins) as model:
            reply = await governed_completion(
                gw,
                model,
                "gpt-4o-mini",
                messages,
                query="List the orders",
                tools=[tool],
            )
            (call,) = reply.reply.tool_calls
            return call, await pre_check_tool_call(gw, call)

    call, decision = asyncio.run(run())
    assert call.name == "run_sql" and "DROP TABLE" in call.arguments["sql"]
    assert decision.approved is False and "sqli_dangerous_query" in decision.policies


# -------------------------------------------------------------- PII_ACTION=redact
REPEAT_SSN = "Repeat after me: my SSN is 123-45-6789, file it."


def wire_capture(sent: list[dict[str, Any]]) -> dict[str, Any]:
    """An ``http_client`` keyword for an SDK: every request body it sends lands in ``sent``."""

    def hook(request: Any) -> None:
        sent.append(json.loads(request.content))

    async def ahook(request: Any) -> None:
        hook(request)

    return {"sync": {"request": [hook]}, "async": {"request": [ahook]}}


@pytest.mark.parametrize("stream", [False, True])
def test_redact_sends_the_redacted_text_and_restores_the_answer(
    make_gateway: Callable[..., ThreadedGateway], standins: str, stream: bool
) -> None:
    gw_url, sent = make_gateway(pii_action="redact").url, []
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": REPEAT_SSN}]

    async def run(restore: bool) -> Any:
        http = httpx.AsyncClient(event_hooks=wire_capture(sent)["async"])
        model = openai.AsyncOpenAI(base_url=standins + "/v1", api_key="any", http_client=http)
        async with GatewayClient(gw_url) as gw, model:
            return await governed_completion(
                gw, model, MODELS["openai"], messages, stream=stream, restore=restore
            )

    restored, kept = asyncio.run(run(True)), asyncio.run(run(False))
    assert restored.outcome == kept.outcome == "answered"
    assert restored.decision is not None and restored.decision.requires_redaction
    assert [m["content"] for body in sent for m in body["messages"]] == [
        "Be brief.", "Repeat after me: my SSN is [SSN_1], file it."
    ] * 2  # fmt: skip
    assert restored.text == "my SSN is 123-45-6789, file it."
    assert kept.text == "my SSN is [SSN_1], file it."
    trail = json.dumps(records(gw_url))
    assert "123-45-6789" not in trail
    # The last four digits alone, but not inside a hash, an id, a timestamp or a latency.
    assert not re.search(r"(?<![\w.])6789(?![\w.])", trail)


def test_redact_sync_form_with_anthropic(
    make_gateway: Callable[..., ThreadedGateway], standins: str
) -> None:
    gw_url, sent = make_gateway(pii_action="redact").url, []
    http = httpx2.Client(event_hooks=wire_capture(sent)["sync"])  # anthropic's own httpx fork
    client = anthropic.Anthropic(base_url=standins, api_key="any", http_client=http)
    with client, SyncGatewayClient(gw_url) as gw:
        done = governed_completion_sync(
            gw, client, MODELS["anthropic"], [{"role": "user", "content": REPEAT_SSN}]
        )
    assert done.outcome == "answered" and done.text == "my SSN is 123-45-6789, file it."
    assert sent[0]["messages"] == [
        {"role": "user", "content": "Repeat after me: my SSN is [SSN_1], file it."}
    ]


def test_redact_with_a_query_not_in_the_messages_sends_nothing(
    make_gateway: Callable[..., ThreadedGateway],
) -> None:
    gw_url = make_gateway(pii_action="redact").url

    async def run() -> Any:
        async with GatewayClient(gw_url) as gw:
            return await governed_completion(
                gw, NoLLM(), "m", ASK, query="tool lookup\nssn: 123-45-6789"
            )

    done = asyncio.run(run())
    assert done.outcome == "blocked" and done.message.startswith("cannot redact")
    assert done.reply is None and done.audit_id is None


def test_redaction_asked_without_redacted_text_fails_closed() -> None:
    """Current AxonFlow answers ``requires_redaction`` without saying what to redact: a real
    HTTP server that answers each pre-check that way, as the agent does under redact."""

    async def agent_like(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"context_id": "c1", "approved": True, "requires_redaction": True,
                             "expires_at": "2030-01-01T00:05:00Z",
                             "policies": ["pii_ssn_detection"]})  # fmt: skip

    app = Starlette(routes=[Route("/api/policy/pre-check", agent_like, methods=["POST"])])
    with ThreadedGateway(app) as agent, SyncGatewayClient(agent.url) as gw:
        done = governed_completion_sync(gw, NoSyncLLM(), "m", SSN)
    assert (done.outcome, done.message) == ("blocked", NO_REDACTED_TEXT)
    assert done.decision is not None and done.decision.approved


def test_redact_messages_replaces_every_copy_of_the_query() -> None:
    history = [{"role": "user", "content": "a 1"}, {"role": "assistant", "content": "ok"},
               {"role": "user", "content": "again: a 1"}]  # fmt: skip
    assert [m["content"] for m in redact_messages(history, "a 1", "a [N_1]")] == [
        "a [N_1]", "ok", "again: a [N_1]"
    ]  # fmt: skip
    assert history[0]["content"] == "a 1"  # the caller's list is untouched
    with pytest.raises(ValueError, match="not in the messages"):
        redact_messages(history, "b 2", "b [N_1]")


# -- the answer checked by the gateway (check_reply, an extension) ------------------------------
RECORD = [{"role": "user", "content": "Summarise the customer record for account 42."}]


@pytest.mark.parametrize("stream", [False, True])
def test_check_reply_redacts_what_the_model_leaked(
    make_gateway: Callable[..., ThreadedGateway], standins: str, stream: bool
) -> None:
    # The stand-in answers this question with a card and an SSN the caller never sent.
    gw_url = make_gateway(pii_action="redact").url

    async def run(check: bool) -> Any:
        async with GatewayClient(gw_url) as gw, llm("openai", standins) as model:
            return await governed_completion(
                gw, model, MODELS["openai"], RECORD, stream=stream, check_reply=check
            )

    unchecked, checked = asyncio.run(run(False)), asyncio.run(run(True))
    assert "4111 1111 1111 1111" in unchecked.text
    assert checked.outcome == "answered"
    assert "4111" not in checked.text and "219-09" not in checked.text
    assert "[REDACTED_CREDIT_CARD_1]" in checked.text and "[REDACTED_SSN_1]" in checked.text
    [row] = [r for r in records(gw_url) if (r["metadata"] or {}).get("reply")]  # the checked
    assert row["metadata"]["reply"]["policies"] == ["sys_pii_credit_card", "sys_pii_ssn"]


def test_check_reply_refuses_a_leaking_answer_under_block(
    make_gateway: Callable[..., ThreadedGateway], standins: str
) -> None:
    gw_url = make_gateway().url  # the default: critical PII blocks
    with SyncGatewayClient(gw_url) as gw:
        model = openai.OpenAI(base_url=standins + "/v1", api_key="any", max_retries=0)
        with model:
            result = governed_completion_sync(gw, model, MODELS["openai"], RECORD, check_reply=True)
    assert result.outcome == "reply_blocked" and result.reply is None
    assert "sys_pii_credit_card" in result.message and "4111" not in result.text
    [row] = [r for r in records(gw_url) if r["audit_id"]]
    assert row["metadata"]["outcome"] == "reply_blocked" and row["completion_tokens"] > 0


def test_a_leak_never_takes_the_number_of_the_apps_own_placeholder(
    make_gateway: Callable[..., ThreadedGateway],
) -> None:
    gw_url = make_gateway(pii_action="redact").url
    with SyncGatewayClient(gw_url) as gw:
        pre = gw.pre_check("My SSN is 123-45-6789", "user-123")
        check = gw.check_reply(pre.context_id, "Noted [SSN_1]; the other one is 219-09-9998.")
        held = gw.check_reply(pre.context_id, "and card 4111 1111", final=False)
        with pytest.raises(BadRequest, match="Invalid or expired context"):
            gw.check_reply("not-a-context", "hello")
    assert check.approved and check.text == "Noted [SSN_1]; the other one is [REDACTED_SSN_1]."
    assert held.text + "and card 4111 1111"[len(held.text) :] == "and card 4111 1111"
    assert held.held == len("and card 4111 1111") - len(held.text) > 0


def test_reply_stream_shows_a_leaking_stream_redacted_and_never_in_part(
    make_gateway: Callable[..., ThreadedGateway],
) -> None:
    gw_url = make_gateway(pii_action="redact").url
    answer = (
        "Here is the summary you asked for. The customer record on file lists card "
        "4111 1111 1111 1111 and SSN 219-09-9998, opened in March, two open tickets."
    )

    async def run(cut: int) -> tuple[list[str], ReplyStream]:
        async with GatewayClient(gw_url) as gw:
            pre = await gw.pre_check("Summarise the customer record", "user-123")
            check = ReplyStream(gw, pre.context_id)
            shown = [await check.feed(p) for p in (answer[:cut], answer[cut:])]
            return [*shown, await check.finish()], check

    for cut in (1, 60, 75, 80, 90, 100, len(answer) - 1):
        shown, check = asyncio.run(run(cut))
        assert "".join(shown) == answer.replace(
            "4111 1111 1111 1111", "[REDACTED_CREDIT_CARD_1]"
        ).replace("219-09-9998", "[REDACTED_SSN_1]"), cut
        assert not any(frag in piece for piece in shown for frag in ("4111", "219-0")), cut
        assert check.refused is None and len(check.checks) >= 1


def test_check_reply_on_a_stream_shows_only_inspected_text_as_it_arrives(
    make_gateway: Callable[..., ThreadedGateway], standins: str
) -> None:
    gw_url, pieces = make_gateway(pii_action="redact").url, []

    async def run() -> Any:
        async with GatewayClient(gw_url) as gw, llm("openai", standins) as model:
            return await governed_completion(
                gw,
                model,
                MODELS["openai"],
                RECORD,
                stream=True,
                check_reply=True,
                on_text=pieces.append,
            )

    result = asyncio.run(run())
    assert result.outcome == "answered" and len(pieces) >= 2
    assert "".join(pieces) == result.text
    assert "[REDACTED_CREDIT_CARD_1]" in result.text
    assert not any(frag in piece for piece in pieces for frag in ("4111", "219-0"))
