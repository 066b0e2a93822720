"""Request validation for the OpenAI stand-in route, in the real API's order and words.

Bad input gets a 400 with OpenAI's body ``{"error": {"message", "type", "param", "code"}}``,
never a 500. Introduced in ``01_gateway_mode_openai.ipynb``.

>>> parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).turns
(Turn('user', 'hi'),)
>>> try:
...     parse_chat_request({"model": "m", "messages": "hi"})
... except OpenAIRequestError as exc:
...     print(exc.param, exc.code)
messages invalid_type
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from .tokens import Turn
from .wire import dumps, json_type

__all__ = [
    "OPENAI_ROLES",
    "ChatRequest",
    "OpenAIRequestError",
    "openai_error",
    "parse_chat_request",
]

OPENAI_ROLES = ("system", "assistant", "user", "function", "tool", "developer")


def openai_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error response in OpenAI's shape."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


class OpenAIRequestError(Exception):
    """A request that OpenAI would refuse with 400; :meth:`response` renders it."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code

    def response(self) -> JSONResponse:
        return openai_error(400, self.message, param=self.param, code=self.code)


def _wrong_type(param: str, expected: str, value: object) -> OpenAIRequestError:
    return OpenAIRequestError(
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
        param,
        "invalid_type",
    )


def _missing(param: str) -> OpenAIRequestError:
    return OpenAIRequestError(
        f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
    )


@dataclass(frozen=True)
class ChatRequest:
    """The parts of a chat-completions request the stand-in uses."""

    model: str
    turns: tuple[Turn, ...]
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False
    stop: tuple[str, ...] = ()
    seed: int | None = None


def _optional_int(body: dict[str, Any], name: str, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(name, "an integer", value)
    if value < minimum:
        raise OpenAIRequestError(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {minimum}, "
            f"but got {value} instead.",
            name,
            "integer_below_min_value",
        )
    return value


def _content_text(content: object, where: str) -> str:
    """Text of a message's content: a string, or the text parts of an array of parts.

    Non-text parts (images, audio, files) are accepted and contribute no text or tokens.
    """
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise _wrong_type(where, "one of a string or array of objects", content)
    texts = []
    for i, part in enumerate(content):
        if not isinstance(part, dict):
            raise _wrong_type(f"{where}[{i}]", "an object", part)
        if not isinstance(part.get("type"), str):
            raise _missing(f"{where}[{i}].type")
        if part["type"] in ("text", "refusal"):
            text = part.get(part["type"])
            if not isinstance(text, str):
                raise _wrong_type(f"{where}[{i}].{part['type']}", "a string", text)
            texts.append(text)
    return "\n".join(texts)


def parse_chat_request(body: dict[str, Any]) -> ChatRequest:
    """Validate like the real endpoint, in its order; raises :class:`OpenAIRequestError`."""
    if "model" not in body or body["model"] in (None, ""):
        raise OpenAIRequestError("you must provide a model parameter")
    if not isinstance(body["model"], str):
        raise _wrong_type("model", "a string", body["model"])
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array", messages)
    if not messages:
        raise OpenAIRequestError(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            "messages",
            "empty_array",
        )
    turns = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _wrong_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise _missing(f"{where}.role")
        if role not in OPENAI_ROLES:
            supported = ", ".join(f"'{r}'" for r in OPENAI_ROLES[:-1])
            raise OpenAIRequestError(
                f"Invalid value: {dumps(role)}. Supported values are: {supported}, "
                f"and '{OPENAI_ROLES[-1]}'.",
                f"{where}.role",
                "invalid_value",
            )
        if "content" not in message and role != "assistant":
            raise _missing(f"{where}.content")
        turns.append(Turn(role, _content_text(message.get("content"), f"{where}.content")))

    max_tokens = _optional_int(body, "max_tokens", 1)
    max_completion = _optional_int(body, "max_completion_tokens", 1)
    n = _optional_int(body, "n", 1)
    if n is not None and n > 1:
        raise OpenAIRequestError(
            "The provider stand-in supports only n=1.", "n", "unsupported_value"
        )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean", stream)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise _wrong_type("stream_options", "an object", options)
    if options is not None and not stream:
        raise OpenAIRequestError(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    include_usage = (options or {}).get("include_usage", False)
    if include_usage is not None and not isinstance(include_usage, bool):
        raise _wrong_type("stream_options.include_usage", "a boolean", include_usage)
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise _wrong_type("stop", "one of a string or array of strings", body.get("stop"))
    if stop is not None and len(stop) > 4:
        raise OpenAIRequestError(
            f"Invalid 'stop': array too long. Expected an array with maximum length 4, "
            f"but got an array with length {len(stop)} instead.",
            "stop",
            "array_above_max_length",
        )
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _wrong_type("seed", "an integer", seed)
    return ChatRequest(
        model=body["model"],
        turns=tuple(turns),
        # max_completion_tokens is the newer name; when both are sent it wins.
        max_tokens=max_completion if max_completion is not None else max_tokens,
        stream=bool(stream),
        include_usage=bool(include_usage),
        stop=tuple(stop or ()),
        seed=seed,
    )
