"""Anthropic wire protocol of the provider stand-in (a local stand-in, not Anthropic's API).

Serves ``POST /v1/messages`` (plain JSON, or the real event sequence: ``message_start``,
``content_block_start``, ``ping``, ``content_block_delta`` (``text_delta``) per token,
``content_block_stop``, ``message_delta`` with ``stop_reason`` and cumulative
``usage.output_tokens``, ``message_stop``; each sent as ``event: X\\ndata: {...}\\n\\n``),
``POST /v1/messages/count_tokens`` and the Anthropic-shaped ``GET /v1/models``, so the
unmodified ``anthropic`` SDK works against ``base_url="http://127.0.0.1:PORT"``. Any API
key is accepted. Introduced in ``01_gateway_mode_openai.ipynb``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .anthropic_validate import AnthropicRequestError, anthropic_error, parse_messages_request
from .faults import retry_after_headers
from .latency import LatencyProfiles
from .pacing import StandinState, pace, paced_response
from .simulator import PlannedReply, last_user_text
from .tokens import count_prompt_tokens
from .tools import (
    ToolCall,
    ToolSpecError,
    anthropic_tools,
    last_turn_is_tool_result,
    plan_tool_call,
    tool_reply,
)
from .wire import BadJSON, dumps, parse_json_object, sse

__all__ = [
    "anthropic_model",
    "anthropic_model_list",
    "count_tokens",
    "fault_response",
    "message_body",
    "message_events",
    "messages",
]

_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence"}
_MODEL_CREATED_AT = "2024-10-22T00:00:00Z"  # fixed, so listings are stable from run to run


def _usage(reply: PlannedReply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _stop(reply: PlannedReply, call: ToolCall | None) -> dict[str, Any]:
    """Why the message ended: a tool call, or the reply's finish in Anthropic's words."""
    if call is not None:
        return {"stop_reason": "tool_use", "stop_sequence": None}
    return {"stop_reason": _STOP_REASON[reply.finish], "stop_sequence": reply.stop_sequence}


def _tool_use(call: ToolCall, message_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A ``tool_use`` block; its id follows the message's."""
    call_id = "toolu_01" + message_id[-22:]
    return {"type": "tool_use", "id": call_id, "name": call.name, "input": arguments}


def _message(
    reply: PlannedReply, message_id: str, *, started: bool, call: ToolCall | None = None
) -> dict[str, Any]:
    """The message object, its content the text or the tool ``call``; ``started`` gives the
    empty shell sent in ``message_start``."""
    if started:
        content, stop = [], {"stop_reason": None, "stop_sequence": None}
    elif call is not None:
        content, stop = [_tool_use(call, message_id, call.arguments)], _stop(reply, call)
    else:
        content, stop = [{"type": "text", "text": reply.text}], _stop(reply, None)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        **stop,
        # message_start carries a small first count; message_delta carries the final total.
        "usage": _usage(
            reply, min(1, reply.completion_tokens) if started else reply.completion_tokens
        ),
    }


def message_body(
    reply: PlannedReply, message_id: str, call: ToolCall | None = None
) -> dict[str, Any]:
    """The non-streaming Messages API response for ``reply`` (or for a tool ``call``)."""
    return _message(reply, message_id, started=False, call=call)


async def message_events(
    reply: PlannedReply, message_id: str, call: ToolCall | None = None
) -> AsyncIterator[str]:
    """The Messages API event stream for ``reply``, one ``text_delta`` per token; for a tool
    ``call``, its ``tool_use`` block with the input in one ``input_json_delta``."""
    yield sse({"type": "message_start", "message": _message(reply, message_id, started=True)})
    block = _tool_use(call, message_id, {}) if call else {"type": "text", "text": ""}
    yield sse({"type": "content_block_start", "index": 0, "content_block": block})
    if call is None:
        yield sse({"type": "ping"})
        async for batch in pace(reply.tokens, reply.latency.wall_per_token_s):
            yield "".join(
                sse(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": token},
                    }
                )
                for token in batch
            )
    else:
        delta = {"type": "input_json_delta", "partial_json": dumps(call.arguments)}
        yield sse({"type": "content_block_delta", "index": 0, "delta": delta})
    yield sse({"type": "content_block_stop", "index": 0})
    usage = {"output_tokens": reply.completion_tokens}
    yield sse({"type": "message_delta", "delta": _stop(reply, call), "usage": usage})
    yield sse({"type": "message_stop"})


# Fault kind: (status, message, error type), the way Anthropic words them.
_FAULTS = {
    "429": (429, "Number of requests has exceeded your per-minute rate limit.", "rate_limit_error"),
    "529": (529, "Overloaded", "overloaded_error"),
    "500": (500, "Internal server error", "api_error"),
}


def fault_response(kind: str, time_scale: float, request_id: str) -> JSONResponse:
    """429 / 500 / 529 the way Anthropic words them, with ``retry-after`` where it sends it."""
    status, message, error_type = _FAULTS[kind]
    return anthropic_error(
        status,
        message + " (Injected by the provider stand-in.)",
        type=error_type,
        request_id=request_id,
        headers=None if status == 500 else retry_after_headers(time_scale),
    )


async def messages(request: Request) -> Response:
    """``POST /v1/messages``."""
    state: StandinState = request.app.state.standin
    raw = await request.body()
    try:
        body = parse_json_object(raw)
        req = parse_messages_request(body)
        tools, choice = anthropic_tools(body)
        last_tool = last_turn_is_tool_result(body.get("messages"))
        call = None if last_tool else plan_tool_call(tools, choice, last_user_text(req.turns))
    except BadJSON as exc:
        return anthropic_error(400, f"The request body is {exc}; send a JSON object.")
    except (AnthropicRequestError, ToolSpecError) as exc:
        return anthropic_error(400, str(exc))
    ctx = state.begin("anthropic", raw)
    request_id = ctx.make_id("req_", 24)
    try:
        fault = state.fault_for(request.headers, ctx.rng)
    except ValueError as exc:
        return anthropic_error(400, str(exc), request_id=request_id)
    if fault is not None and fault != "slow":
        return fault_response(fault, state.time_scale, request_id)
    reply = state.simulator.plan(
        req.model,
        req.turns,
        max_tokens=req.max_tokens,
        stop=req.stop_sequences,
        rng=ctx.rng,
        slow=fault == "slow",
    )
    reply = tool_reply(reply, call) if call else reply
    message_id = ctx.make_id("msg_01", 22)
    content = (
        message_events(reply, message_id, call)
        if req.stream
        else message_body(reply, message_id, call)
    )
    return await paced_response(reply.latency, {"request-id": request_id}, content)


async def count_tokens(request: Request) -> Response:
    """``POST /v1/messages/count_tokens``: the prompt count the stand-in would report."""
    try:
        req = parse_messages_request(parse_json_object(await request.body()), count_only=True)
    except BadJSON as exc:
        return anthropic_error(400, f"The request body is {exc}; send a JSON object.")
    except AnthropicRequestError as exc:
        return exc.response()
    return JSONResponse({"input_tokens": count_prompt_tokens(req.turns)})


def anthropic_model(model_id: str, display_name: str) -> dict[str, Any]:
    """One Anthropic model object, as listed and as ``GET /v1/models/{id}`` answers it."""
    return {
        "type": "model",
        "id": model_id,
        "display_name": display_name,
        "created_at": _MODEL_CREATED_AT,
    }


def anthropic_model_list(profiles: LatencyProfiles) -> dict[str, Any]:
    """Anthropic-shaped ``GET /v1/models`` body: the Claude models with a profile."""
    names = profiles.names("anthropic")
    return {
        "data": [anthropic_model(n, n) for n in names],
        "has_more": False,
        "first_id": names[0] if names else None,
        "last_id": names[-1] if names else None,
    }
