"""``GovernanceCallback``: LangChain model and tool calls pre-checked and audited.

A real ``ChatOpenAI`` talks to the OpenAI stand-in; a real gateway records the decisions.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from helpers.client import SyncGatewayClient
from helpers.client.langchain_governance import GovernanceBlocked, GovernanceCallback
from tests.conftest import ThreadedGateway


@pytest.fixture
def governed(
    gateway: ThreadedGateway, standin: ThreadedGateway
) -> tuple[GovernanceCallback, ChatOpenAI, str]:
    client = SyncGatewayClient(url=gateway.url, client_id="community")
    handler = GovernanceCallback(client, user_token="user-123")
    llm = ChatOpenAI(model="gpt-4o-mini", base_url=standin.url + "/v1", api_key="offline",
                     stream_usage=True, callbacks=[handler], max_retries=0)  # fmt: skip
    yield handler, llm, gateway.url
    client.close()


def _records(url: str) -> list[dict]:
    return httpx.get(url + "/api/audit/records", timeout=10).json()["records"]


def test_a_call_is_pre_checked_and_audited_with_its_usage(governed) -> None:
    handler, llm, url = governed
    reply = llm.invoke("What are best practices for AI model deployment?")
    [row] = _records(url)
    assert row["approved"] is True and row["audit_id"] == handler.audits[0]
    assert row["prompt_tokens"] == reply.usage_metadata["input_tokens"] > 0
    assert row["completion_tokens"] == reply.usage_metadata["output_tokens"] > 0
    assert (row["provider"], row["model"]) == ("openai", "gpt-4o-mini")


def test_a_stream_is_audited_once_after_the_last_chunk(governed) -> None:
    handler, llm, url = governed
    chunks = list(llm.stream("Explain how tokenizers split text."))
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    [row] = _records(url)
    assert len(handler.audits) == 1
    assert row["completion_tokens"] == total.usage_metadata["output_tokens"] > 0


def test_the_async_path_is_governed_too(governed) -> None:
    handler, llm, url = governed
    asyncio.run(llm.ainvoke("What are best practices for AI model deployment?"))
    assert len(handler.audits) == 1 and _records(url)[0]["audit_id"] == handler.audits[0]


@pytest.mark.parametrize(
    "messages",
    [
        [HumanMessage("My SSN is 123-45-6789, can you check my refund?")],
        [HumanMessage("Look up 5'/**/UNION/**/ALL/**/SELECT/**/NULL,NULL")],
        # retrieved context in the system turn is checked with the question
        [SystemMessage("Context: card 4111 1111 1111 1111 charged twice"), HumanMessage("Why?")],
    ],
)
def test_a_refused_prompt_never_reaches_the_model(governed, messages) -> None:
    handler, llm, url = governed
    with pytest.raises(GovernanceBlocked) as caught:
        llm.invoke(messages)
    assert caught.value.what == "model call" and caught.value.result.policies
    [row] = _records(url)
    assert row["approved"] is False and row["audit_id"] is None and handler.audits == []


@tool
def lookup(order_id: str) -> str:
    """Status of one order."""
    return f"order {order_id}: shipped"


def test_tool_arguments_are_pre_checked(governed) -> None:
    handler, _, url = governed
    config = {"callbacks": [handler]}
    assert lookup.invoke({"order_id": "Please drop me a line"}, config=config).endswith("shipped")
    with pytest.raises(GovernanceBlocked) as caught:
        lookup.invoke({"order_id": "1' UnIoN SeLeCt card FROM payments"}, config=config)
    assert caught.value.what == "tool call lookup"
    assert [r["approved"] for r in sorted(_records(url), key=lambda r: r["seq"])] == [True, False]
