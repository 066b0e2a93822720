"""OpenAI wire protocol of the provider stand-in (a local stand-in, not OpenAI's service).

Serves ``POST /v1/chat/completions`` (plain JSON, or server-sent events with
``data: {...}`` chunks ending in ``data: [DONE]``; ``stream_options.include_usage`` adds a
last chunk with usage and no choices) and ``GET /v1/models``, shaped so the unmodified
``openai`` SDK works against ``base_url="http://127.0.0.1:PORT/v1"``. Any API key is
accepted. Errors use OpenAI's body ``{"error": {"message", "type", "param", "code"}}``.
Introduced in ``01_gateway_mode_openai.ipynb``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .faults import retry_after_headers
from .latency import LatencyProfiles
from .openai_validate import OpenAIRequestError, openai_error, parse_chat_request
from .pacing import StandinState, pace, paced_response
from .simulator import PlannedReply, last_user_text
from .tools import (
    ToolCall,
    ToolSpecError,
    last_turn_is_tool_result,
    openai_tools,
    plan_tool_call,
    tool_reply,
)
from .wire import BadJSON, dumps, parse_json_object

__all__ = [
    "chat_completions",
    "completion_body",
    "completion_chunks",
    "fault_response",
    "openai_model",
    "openai_model_list",
]

_MODEL_CREATED = 1_700_000_000  # fixed, so listings are stable from run to run
_FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length"}


def _fingerprint(model: str) -> str:
    """Stable per model, like the real ``system_fingerprint`` between deployments."""
    return "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10]


def _usage(reply: PlannedReply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _tool_call(call: ToolCall, completion_id: str, arguments: str) -> dict[str, Any]:
    """A ``tool_calls`` entry; its id follows the completion's."""
    function = {"name": call.name, "arguments": arguments}
    return {"id": "call_" + completion_id[-24:], "type": "function", "function": function}


def completion_body(
    reply: PlannedReply, completion_id: str, created: int, call: ToolCall | None = None
) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object for ``reply`` (or for a tool ``call``)."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text,
        "refusal": None,
        "annotations": [],
    }
    if call is not None:
        tool_calls = [_tool_call(call, completion_id, dumps(call.arguments))]
        message.update(content=None, tool_calls=tool_calls)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": reply.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if call else _FINISH[reply.finish],
            }
        ],
        "usage": _usage(reply),
        "service_tier": "default",
        "system_fingerprint": _fingerprint(reply.model),
    }


async def completion_chunks(
    reply: PlannedReply,
    completion_id: str,
    created: int,
    include_usage: bool,
    call: ToolCall | None = None,
) -> AsyncIterator[str]:
    """The SSE stream: role chunk, one chunk per token, finish chunk, usage, ``[DONE]``."""
    base: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": reply.model,
        "service_tier": "default",
        "system_fingerprint": _fingerprint(reply.model),
    }
    if include_usage:
        base["usage"] = None  # the real API sends an explicit null on every other chunk

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return "data: " + dumps({**base, "choices": [choice]}) + "\n\n"

    if call is not None:
        head = {"index": 0, **_tool_call(call, completion_id, "")}
        yield chunk({"role": "assistant", "content": None, "tool_calls": [head]})
        arguments = {"index": 0, "function": {"arguments": dumps(call.arguments)}}
        yield chunk({"tool_calls": [arguments]})
        yield chunk({}, "tool_calls")
    else:
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        async for batch in pace(reply.tokens, reply.latency.wall_per_token_s):
            yield "".join(chunk({"content": token}) for token in batch)
        yield chunk({}, _FINISH[reply.finish])
    if include_usage:
        yield "data: " + dumps({**base, "choices": [], "usage": _usage(reply)}) + "\n\n"
    yield "data: [DONE]\n\n"


def fault_response(kind: str, model: str, time_scale: float) -> JSONResponse:
    """429 / 500 / 503 the way OpenAI words them, with retry hints where it sends them."""
    if kind == "429":
        message = (
            f"Rate limit reached for {model} on requests per min (RPM): Limit 500, Used 500, "
            "Requested 1. (Injected by the provider stand-in.)"
        )
        headers = retry_after_headers(time_scale)
        return openai_error(
            429, message, type="requests", code="rate_limit_exceeded", headers=headers
        )
    if kind == "529":
        return openai_error(
            503,
            "The engine is currently overloaded, please try again later. (Injected by the "
            "provider stand-in.)",
            type="server_error",
            headers=retry_after_headers(time_scale),
        )
    return openai_error(
        500,
        "The server had an error while processing your request. Sorry about that! "
        "(Injected by the provider stand-in.)",
        type="server_error",
    )


async def chat_completions(request: Request) -> Response:
    """``POST /v1/chat/completions``."""
    state: StandinState = request.app.state.standin
    raw = await request.body()
    try:
        body = parse_json_object(raw)
        chat = parse_chat_request(body)
        tools, choice = openai_tools(body)
    except BadJSON as exc:
        return openai_error(
            400,
            f"We could not parse the JSON body of your request: {exc}. "
            "The API expects a JSON object as the request body.",
        )
    except OpenAIRequestError as exc:
        return exc.response()
    except ToolSpecError as exc:
        return openai_error(400, str(exc), param="tools", code="invalid_value")
    ctx = state.begin("openai", raw)
    try:
        fault = state.fault_for(request.headers, ctx.rng)
    except ValueError as exc:
        return openai_error(400, str(exc), param="x-standin-fail", code="invalid_value")
    if fault is not None and fault != "slow":
        return fault_response(fault, chat.model, state.time_scale)
    reply = state.simulator.plan(
        chat.model,
        chat.turns,
        max_tokens=chat.max_tokens,
        stop=chat.stop,
        request_seed=chat.seed,
        rng=ctx.rng,
        slow=fault == "slow",
    )
    call = None
    if not last_turn_is_tool_result(body.get("messages")):
        try:
            call = plan_tool_call(tools, choice, last_user_text(chat.turns))
        except ToolSpecError as exc:
            return openai_error(400, str(exc), param="tool_choice", code="invalid_value")
        reply = tool_reply(reply, call) if call else reply
    headers = {
        "x-request-id": "req_" + ctx.digest.hex()[:32],
        "openai-processing-ms": str(round(reply.latency.wall_total_s * 1000)),
    }
    completion_id, created = ctx.make_id("chatcmpl-", 29), int(time.time())
    content = (
        completion_chunks(reply, completion_id, created, chat.include_usage, call)
        if chat.stream
        else completion_body(reply, completion_id, created, call)
    )
    return await paced_response(reply.latency, headers, content)


def openai_model(model_id: str) -> dict[str, Any]:
    """One OpenAI model object, as listed and as ``GET /v1/models/{id}`` answers it."""
    return {"id": model_id, "object": "model", "created": _MODEL_CREATED, "owned_by": "system"}


def openai_model_list(profiles: LatencyProfiles) -> dict[str, Any]:
    """``GET /v1/models`` body: the OpenAI models that have a latency profile."""
    return {"object": "list", "data": [openai_model(n) for n in profiles.names("openai")]}
