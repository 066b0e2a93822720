"""The shapes proxy mode speaks: one answer, one streamed chunk, and Anthropic in OpenAI's terms.

``/v1/chat/completions`` answers in OpenAI's shapes whichever provider served the call, so
Anthropic's messages, options, stop reasons and stream events are translated here, as pure
functions. Introduced in ``11_proxy_mode.ipynb``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "Completion",
    "StreamPiece",
    "anthropic_options",
    "anthropic_piece",
    "openai_messages_to_anthropic",
]

DEFAULT_MAX_TOKENS = 1024  # Anthropic requires max_tokens; OpenAI gets it only when asked


class Completion(NamedTuple):
    """One finished LLM call, whichever provider answered."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    raw: dict[str, Any]  # the answer as an OpenAI ``chat.completion`` object


class StreamPiece(NamedTuple):
    """One streamed chunk as an OpenAI ``chat.completion.chunk`` dict, plus what it carries."""

    chunk: dict[str, Any]
    text: str
    usage: tuple[int, int] | None  # (prompt, completion) on the chunk that reports usage


def openai_messages_to_anthropic(
    messages: list[dict[str, Any]],
) -> tuple[str | None, list[dict[str, Any]]]:
    """System turns become Anthropic's ``system``; the other turns keep their order."""
    system = [m["content"] for m in messages if m["role"] in ("system", "developer")]
    turns = [
        {"role": "assistant" if m["role"] == "assistant" else "user", "content": m["content"]}
        for m in messages
        if m["role"] not in ("system", "developer")
    ]
    return ("\n\n".join(system) if system else None), turns


def anthropic_options(opts: dict[str, Any], system: str | None) -> dict[str, Any]:
    """OpenAI-style options as the Messages API's body fields: ``max_tokens`` is required
    there, ``stop`` becomes ``stop_sequences``, OpenAI-only knobs are left out."""
    out: dict[str, Any] = {"max_tokens": opts.get("max_tokens") or DEFAULT_MAX_TOKENS}
    if system is not None:
        out["system"] = system
    out.update({k: opts[k] for k in ("temperature", "top_p") if k in opts})
    stop = opts.get("stop")
    if stop is not None:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    return out


STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


def anthropic_piece(event: dict[str, Any], state: dict[str, Any]) -> StreamPiece | None:
    """One Anthropic stream event (its ``data`` JSON) as an OpenAI chunk (``state`` carries
    id, model and usage from one event to the next)."""
    delta: dict[str, Any] | None = None
    finish, text, usage = None, "", None
    kind = event.get("type")
    if kind == "message_start":
        message = event["message"]
        state.update(id=message["id"], model=message["model"])
        state["prompt"] = message["usage"]["input_tokens"]
        delta = {"role": "assistant", "content": ""}
    elif kind == "content_block_delta" and event["delta"].get("type") == "text_delta":
        text = event["delta"]["text"]
        delta = {"content": text}
    elif kind == "message_delta":
        state["completion"] = event["usage"]["output_tokens"]
        delta, finish = {}, STOP_REASONS.get(event["delta"].get("stop_reason") or "", "stop")
    elif kind == "message_stop":
        usage = (state["prompt"], state["completion"])
    else:
        return None
    chunk: dict[str, Any] = {
        "id": state["id"],
        "object": "chat.completion.chunk",
        "created": 0,
        "model": state["model"],
    }
    if usage is None:
        chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    else:
        chunk["choices"] = []
        chunk["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        }
    return StreamPiece(chunk, text, usage)
