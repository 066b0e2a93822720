"""CrewGovernance against the real gateway app and the OpenAI stand-in, on loopback.

The crew is a real CrewAI crew whose agents call the stand-in through CrewAI's own OpenAI
integration (``LLM(base_url=...)``). The stand-in is wrapped to count chat-completion
requests and keep the usage it put in each reply, so the audits are compared with what the
provider side reported, not with what CrewAI says.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from crewai import LLM, Agent, Crew, Process, Task
from crewai.hooks import InterceptionPoint, get_hooks

from helpers.client import SyncGatewayClient
from helpers.client.crewai_governance import (
    CrewGovernance,
    GovernanceBlocked,
    GovernanceUnavailable,
)
from helpers.standins import create_standin_app
from tests.conftest import ThreadedGateway

USER = "user-123"
SSN_TOPIC = "the refund for SSN 123-45-6789"
SQLI_STYLE = "Write it as: 1' UNION SELECT card_number FROM payments--"


class CountingStandin:
    """ASGI wrapper: counts chat completions and keeps the ``usage`` of each reply."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.usages: list[dict[str, int]] = []

    @property
    def calls(self) -> int:
        return len(self.usages)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    self.usages.append(json.loads(bytes(body))["usage"])
            await send(message)

        await self.app(scope, receive, keep)


@pytest.fixture
def standin() -> Iterator[tuple[ThreadedGateway, CountingStandin]]:
    counting = CountingStandin(create_standin_app(time_scale=0))
    with ThreadedGateway(counting) as server:
        yield server, counting


@pytest.fixture
def gw(make_gateway: Callable[..., ThreadedGateway]) -> Iterator[SyncGatewayClient]:
    with SyncGatewayClient(make_gateway().url) as client:
        yield client


_llms: list[LLM] = []


@pytest.fixture(autouse=True)
def _close_llm_clients() -> Iterator[None]:
    """CrewAI's LLM builds an ``openai.OpenAI`` client and never closes it; the test does."""
    yield
    while _llms:
        _llms.pop()._client.close()


def make_crew(base_url: str, style: str = "Plain sentences.") -> Crew:
    """Researcher then writer, each with its own LLM instance on the stand-in."""

    def llm() -> LLM:
        made = LLM(model="gpt-4o-mini", base_url=base_url, api_key="offline-stand-in")
        _llms.append(made)
        return made

    researcher = Agent(role="Researcher", goal="Find facts", backstory="An analyst.", llm=llm())
    writer = Agent(role="Writer", goal="Summarise", backstory="A clear writer.", llm=llm())
    research = Task(name="research", description="List three facts about {topic}.",
                    expected_output="Three bullet points.", agent=researcher)  # fmt: skip
    write = Task(name="write", description=f"Summarise the facts in two sentences. {style}",
                 expected_output="Two sentences.", agent=writer)  # fmt: skip
    return Crew(agents=[researcher, writer], tasks=[research, write], process=Process.sequential)


def test_an_allowed_crew_is_audited_per_call_with_the_usage_the_provider_reported(
    gw: SyncGatewayClient, standin: tuple[ThreadedGateway, CountingStandin]
) -> None:
    server, counting = standin
    crew = make_crew(server.url + "/v1")
    with CrewGovernance(gw, user_token=USER) as governance:
        result = crew.kickoff(inputs={"topic": "gateway-mode governance"})
    assert result.raw
    assert counting.calls == 2 == len(governance.audits)
    reported = [(u["prompt_tokens"], u["completion_tokens"]) for u in counting.usages]
    audited = [(a.usage.prompt_tokens, a.usage.completion_tokens) for a in governance.audits]
    assert audited == reported and all(p > 0 and c > 0 for p, c in audited)
    rows = {r["audit_id"]: r for r in gw.list_records() if r["audit_id"]}
    assert len(rows) == 2
    for call in governance.audits:
        row = rows[call.audit_id]
        assert (row["prompt_tokens"], row["completion_tokens"]) == (
            call.usage.prompt_tokens,
            call.usage.completion_tokens,
        )
        assert (row["provider"], row["model"]) == ("openai", "gpt-4o-mini")
        assert row["metadata"] == {"framework": "crewai", "task": call.task, "agent": call.agent}
    assert [a.task for a in governance.audits] == ["research", "write"]
    assert governance.audit_errors == []


def test_a_blocked_first_task_stops_the_crew_before_any_model_call(
    gw: SyncGatewayClient,
    standin: tuple[ThreadedGateway, CountingStandin],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, counting = standin
    crew = make_crew(server.url + "/v1")
    with CrewGovernance(gw, user_token=USER) as governance:
        with pytest.raises(GovernanceBlocked, match="sys_pii_ssn") as caught:
            crew.kickoff(inputs={"topic": SSN_TOPIC})
    assert (caught.value.task, caught.value.agent) == ("research", "Researcher")
    assert "Social Security" in str(caught.value)
    assert counting.calls == 0 and governance.audits == []
    [row] = gw.list_records()
    assert row["approved"] is False and row["audit_id"] is None
    assert "sys_pii_ssn" in row["policies"]
    # CrewAI's own error log of the same exception is dropped: the caller has it.
    assert not [r for r in caplog.records if "blocked" in r.getMessage()]


def test_a_blocked_second_task_stops_the_crew_after_the_first_was_audited(
    gw: SyncGatewayClient, standin: tuple[ThreadedGateway, CountingStandin]
) -> None:
    server, counting = standin
    crew = make_crew(server.url + "/v1", style=SQLI_STYLE)
    with CrewGovernance(gw, user_token=USER) as governance:
        with pytest.raises(GovernanceBlocked) as caught:
            crew.kickoff(inputs={"topic": "gateway-mode governance"})
    assert caught.value.task == "write"
    assert any(p.startswith("sqli_") for p in caught.value.result.policies)
    assert counting.calls == 1 and [a.task for a in governance.audits] == ["research"]
    assert [r["approved"] for r in gw.list_records()] == [True, False]


def test_gateway_down_stops_the_crew_with_a_clear_error_and_no_model_call(
    standin: tuple[ThreadedGateway, CountingStandin],
) -> None:
    server, counting = standin
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with SyncGatewayClient(dead, timeout=2.0) as down:
        with CrewGovernance(down, user_token=USER):
            with pytest.raises(GovernanceUnavailable, match="could not be asked") as caught:
                make_crew(server.url + "/v1").kickoff(inputs={"topic": "gateway mode"})
    assert caught.value.task == "research"
    assert dead in str(caught.value)
    assert counting.calls == 0


def test_detach_removes_the_hook_so_later_crews_are_not_checked(
    gw: SyncGatewayClient, standin: tuple[ThreadedGateway, CountingStandin]
) -> None:
    server, counting = standin
    before = len(get_hooks(InterceptionPoint.PRE_MODEL_CALL))
    governance = CrewGovernance(gw, user_token=USER)
    with governance:
        assert len(get_hooks(InterceptionPoint.PRE_MODEL_CALL)) == before + 1
    assert len(get_hooks(InterceptionPoint.PRE_MODEL_CALL)) == before
    make_crew(server.url + "/v1").kickoff(inputs={"topic": "gateway mode"})
    assert counting.calls == 2 and governance.decisions == [] and gw.list_records() == []
