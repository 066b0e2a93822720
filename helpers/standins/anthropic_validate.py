"""Request validation for the Anthropic stand-in route, in the real API's words.

Bad input gets a 400 with Anthropic's body
``{"type": "error", "error": {"type": "invalid_request_error", "message": ...}}``, never a
500. Messages name the field the way the real API does (``messages.0.role: ...``).
Introduced in ``01_gateway_mode_openai.ipynb``.

>>> req = parse_messages_request(
...     {"model": "m", "max_tokens": 50, "system": "Be brief.",
...      "messages": [{"role": "user", "content": "hi"}]})
>>> req.turns
(Turn('system', 'Be brief.'), Turn('user', 'hi'))
>>> try:
...     parse_messages_request({"model": "m", "messages": []})
... except AnthropicRequestError as exc:
...     print(exc)
max_tokens: Field required
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from .tokens import Turn

__all__ = [
    "ANTHROPIC_ROLES",
    "AnthropicRequestError",
    "MessagesRequest",
    "anthropic_error",
    "parse_messages_request",
]

ANTHROPIC_ROLES = ("user", "assistant")


def anthropic_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error response in Anthropic's shape."""
    body: dict[str, Any] = {"type": "error", "error": {"type": type, "message": message}}
    # Every reply has an id, errors included. The real API sends it in the body and in a
    # header; the SDK reads the header into ``APIStatusError.request_id``.
    request_id = request_id or "req_" + os.urandom(12).hex()
    body["request_id"] = request_id
    headers = {**(headers or {}), "request-id": request_id}
    return JSONResponse(body, status_code=status, headers=headers)


class AnthropicRequestError(Exception):
    """A request that Anthropic would refuse with 400."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def response(self, request_id: str | None = None) -> JSONResponse:
        return anthropic_error(400, self.message, request_id=request_id)


@dataclass(frozen=True)
class MessagesRequest:
    """The parts of a Messages API request the stand-in uses (system first in ``turns``)."""

    model: str
    turns: tuple[Turn, ...]
    max_tokens: int | None
    stream: bool = False
    stop_sequences: tuple[str, ...] = ()


def _blocks_text(value: object, where: str, *, system: bool = False) -> str:
    """Text of a string or a list of content blocks; non-text blocks add no text."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise AnthropicRequestError(f"{where}: Input should be a valid string or a list of blocks")
    texts = []
    for i, block in enumerate(value):
        if not isinstance(block, dict):
            raise AnthropicRequestError(f"{where}.{i}: Input should be a valid dictionary")
        kind = block.get("type")
        if not isinstance(kind, str):
            raise AnthropicRequestError(f"{where}.{i}.type: Field required")
        if system and kind != "text":
            raise AnthropicRequestError(f"{where}.{i}.type: Input should be 'text'")
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise AnthropicRequestError(f"{where}.{i}.text: Field required")
            texts.append(block["text"])
    return "\n".join(texts)


def _int_field(body: dict[str, Any], name: str, *, required: bool) -> int | None:
    if body.get(name) is None:
        if required:
            raise AnthropicRequestError(f"{name}: Field required")
        return None
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnthropicRequestError(f"{name}: Input should be a valid integer")
    if value < 1:
        raise AnthropicRequestError(f"{name}: Input should be greater than or equal to 1")
    return value


def parse_messages_request(body: dict[str, Any], *, count_only: bool = False) -> MessagesRequest:
    """Validate a ``/v1/messages`` body (``count_only``: ``/v1/messages/count_tokens``,
    which needs no ``max_tokens``); raises :class:`AnthropicRequestError`."""
    if body.get("model") is None:
        raise AnthropicRequestError("model: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise AnthropicRequestError("model: Input should be a valid, non-empty string")
    max_tokens = _int_field(body, "max_tokens", required=not count_only)
    messages = body.get("messages")
    if messages is None:
        raise AnthropicRequestError("messages: Field required")
    if not isinstance(messages, list):
        raise AnthropicRequestError("messages: Input should be a valid list")
    if not messages:
        raise AnthropicRequestError("messages: at least one message is required")
    turns = []
    if body.get("system") is not None:
        turns.append(Turn("system", _blocks_text(body["system"], "system", system=True)))
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise AnthropicRequestError(f"messages.{i}: Input should be a valid dictionary")
        role = message.get("role")
        if role is None:
            raise AnthropicRequestError(f"messages.{i}.role: Field required")
        if role == "system":
            raise AnthropicRequestError(
                'messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.'
            )
        if role not in ANTHROPIC_ROLES:
            raise AnthropicRequestError(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise AnthropicRequestError(f"messages.{i}.content: Field required")
        content = message["content"]
        if content in ("", []) and not (role == "assistant" and i == len(messages) - 1):
            raise AnthropicRequestError(
                "messages: all messages must have non-empty content except for the optional "
                "final assistant message"
            )
        turns.append(Turn(role, _blocks_text(content, f"messages.{i}.content")))
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise AnthropicRequestError("stream: Input should be a valid boolean")
    stop = body.get("stop_sequences")
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise AnthropicRequestError("stop_sequences: Input should be a valid list of strings")
    temperature = body.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            raise AnthropicRequestError("temperature: Input should be a valid number")
        if not 0.0 <= temperature <= 1.0:
            raise AnthropicRequestError("temperature: Input should be between 0 and 1")
    return MessagesRequest(
        model=body["model"],
        turns=tuple(turns),
        max_tokens=max_tokens,
        stream=bool(stream),
        stop_sequences=tuple(stop or ()),
    )
