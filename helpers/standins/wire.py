"""Small wire-format helpers shared by the OpenAI and Anthropic stand-in routes.

Introduced in ``01_gateway_mode_openai.ipynb``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["BadJSON", "dumps", "json_type", "parse_json_object", "sse"]


class BadJSON(ValueError):
    """The request body is not a JSON object; ``str()`` says what it was instead."""


def dumps(obj: Any) -> str:
    """Compact JSON, the way the providers send it (no spaces, UTF-8 kept)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def json_type(value: object) -> str:
    """The JSON type of ``value`` with an article, for messages like "got an integer"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "an unknown type"


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object; raises :class:`BadJSON`."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadJSON(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise BadJSON("not valid JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        raise BadJSON(f"expected an object, but got {json_type(value)} instead")
    return value


def sse(data: dict[str, Any]) -> str:
    """One server-sent event the way Anthropic sends them: ``event:`` names the data's
    ``type``, ``data:`` is the JSON."""
    return f"event: {data['type']}\ndata: {dumps(data)}\n\n"
