"""Tool calls in the stand-ins, parsed by the real openai and anthropic SDKs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from helpers.standins import create_standin_app
from helpers.standins.tools import Tool, ToolSpecError, plan_tool_call

from .conftest import ThreadedGateway

ORDER_TOOL = {
    "name": "lookup_order",
    "description": "Find a customer order by its id",
    "parameters": {
        "type": "object",
        "properties": {
            "order_id": {"type": "string"},
            "limit": {"type": "integer"},
            "status": {"type": "string", "enum": ["open", "closed"]},
        },
        "required": ["order_id"],
    },
}
SQL_TOOL = {
    "name": "run_sql",
    "description": "Run a read-only SQL query on the reporting database",
    "parameters": {"type": "object", "properties": {"sql": {"type": "string"}}},
}
ASK = "Run a SQL query: SELECT * FROM orders; DROP TABLE users"


def oai_tools(*tools: dict[str, object]) -> list[dict[str, object]]:
    return [{"type": "function", "function": t} for t in tools]


def claude_tools(*tools: dict[str, object]) -> list[dict[str, object]]:
    return [
        {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]}
        for t in tools
    ]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with ThreadedGateway(create_standin_app(time_scale=0, seed=0)) as server:
        yield server.url


@pytest.fixture(scope="module")
def oai(url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=url + "/v1", api_key="any", max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def claude(url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=url, api_key="any", max_retries=0) as client:
        yield client


def test_openai_tool_call_parsed_by_sdk(oai: openai.OpenAI) -> None:
    resp = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": ASK}],
        tools=oai_tools(ORDER_TOOL, SQL_TOOL),
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "run_sql"
    assert json.loads(call.function.arguments) == {"sql": ASK}
    assert call.id.startswith("call_")
    assert resp.usage.completion_tokens > 0


def test_openai_tool_result_gets_a_text_answer(oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Where is order 42?"}],
        tools=oai_tools(ORDER_TOOL, SQL_TOOL),
    )
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "lookup_order"
    args = json.loads(call.function.arguments)
    assert args == {"order_id": "Where is order 42?", "limit": 1, "status": "open"}
    second = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "Where is order 42?"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"status": "shipped"}'},
        ],
        tools=oai_tools(ORDER_TOOL),
    )
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content


def test_openai_tool_choice_none_and_forced(oai: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": ASK}]
    none = oai.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=oai_tools(SQL_TOOL), tool_choice="none"
    )
    assert none.choices[0].message.tool_calls is None
    forced = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        tools=oai_tools(ORDER_TOOL, SQL_TOOL),
        tool_choice={"type": "function", "function": {"name": "lookup_order"}},
    )
    assert forced.choices[0].message.tool_calls[0].function.name == "lookup_order"


def test_openai_streamed_tool_call(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": ASK}],
        tools=oai_tools(SQL_TOOL),
        stream=True,
        stream_options={"include_usage": True},
    )
    name, arguments, finish, usage = "", "", None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or ():
                name += delta.function.name or ""
                arguments += delta.function.arguments or ""
    assert (name, json.loads(arguments), finish) == ("run_sql", {"sql": ASK}, "tool_calls")
    assert usage is not None and usage.completion_tokens > 0


def test_anthropic_tool_use_parsed_by_sdk(claude: anthropic.Anthropic) -> None:
    msg = claude.messages.create(
        model="claude-3-5-haiku-20241022",
        max_tokens=200,
        messages=[{"role": "user", "content": ASK}],
        tools=claude_tools(ORDER_TOOL, SQL_TOOL),
    )
    assert msg.stop_reason == "tool_use"
    (block,) = msg.content
    assert block.type == "tool_use" and block.name == "run_sql" and block.input == {"sql": ASK}
    reply = claude.messages.create(
        model="claude-3-5-haiku-20241022",
        max_tokens=200,
        messages=[
            {"role": "user", "content": ASK},
            {"role": "assistant", "content": [block.model_dump()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "3 rows"}],
            },
        ],  # fmt: skip
        tools=claude_tools(SQL_TOOL),
    )
    assert reply.stop_reason == "end_turn" and reply.content[0].type == "text"


def test_anthropic_streamed_tool_use(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="claude-3-5-haiku-20241022",
        max_tokens=200,
        messages=[{"role": "user", "content": "Where is order 42?"}],
        tools=claude_tools(ORDER_TOOL, SQL_TOOL),
        tool_choice={"type": "tool", "name": "lookup_order"},
    ) as stream:
        final = stream.get_final_message()
    (block,) = final.content
    assert block.type == "tool_use" and block.name == "lookup_order"
    assert block.input["order_id"] == "Where is order 42?"
    assert final.stop_reason == "tool_use" and final.usage.output_tokens > 0


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/v1/chat/completions", {"tools": "run_sql"}, "tools"),
        ("/v1/chat/completions", {"tools": [{"type": "function", "function": {"name": "a b"}}]},
         "name"),
        ("/v1/chat/completions", {"tools": oai_tools(SQL_TOOL), "tool_choice": "sometimes"},
         "tool_choice"),
        ("/v1/chat/completions", {"tools": oai_tools(SQL_TOOL),
         "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "nope"),
        ("/v1/messages", {"tools": [{"name": "run_sql"}]}, "input_schema"),
        ("/v1/messages", {"tools": claude_tools(SQL_TOOL), "tool_choice": {"type": "maybe"}},
         "tool_choice"),
    ],
)  # fmt: skip
def test_bad_tools_are_a_clear_400(
    url: str, path: str, body: dict[str, object], fragment: str
) -> None:
    base = {
        "model": "gpt-4o-mini",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}],
    }
    r = httpx.post(url + path, json={**base, **body})
    assert r.status_code == 400
    assert fragment in r.json()["error"]["message"]


def test_plan_picks_tool_by_words_first_on_tie() -> None:
    tools = (Tool("alpha", "", {"x": "string"}), Tool("beta", "", {"y": "boolean"}))
    assert plan_tool_call(tools, None, "nothing in common").name == "alpha"
    assert plan_tool_call(tools, None, "use beta please").arguments == {"y": True}
    assert plan_tool_call(tools, "none", "use beta") is None
    with pytest.raises(ToolSpecError, match="gamma"):
        plan_tool_call(tools, "gamma", "x")
