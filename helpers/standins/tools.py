"""Tool (function) calls in the provider stand-ins, for OpenAI and Anthropic.

A request that offers ``tools`` gets a tool call back when the conversation ends with a user
message; once the tool's result is in the conversation, the model answers in text as usual.
Which tool: the one ``tool_choice`` names, else the one whose name and description share
the most words with the user's message (the first on a tie). The arguments are what a
model would copy from the user: every string parameter gets the user's message, other
types a plain default (the first enum value, ``1``, ``true``, ``[]``, ``{}``). That is
deterministic, and it is why a tool call's arguments must be pre-checked: they carry
whatever the user typed. :mod:`.openai_api` and :mod:`.anthropic_api` render the call in
their API's bodies and stream events, so the real SDKs parse them (``message.tool_calls``,
``tool_use`` blocks). Introduced in
``10_real_application.ipynb``.

>>> tools = (Tool("lookup_order", "Find an order by id", {"order_id": "string"}),)
>>> plan_tool_call(tools, None, "Where is order 42?").arguments
{'order_id': 'Where is order 42?'}
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .simulator import PlannedReply
from .tokens import split_tokens
from .wire import dumps

__all__ = [
    "Tool",
    "ToolCall",
    "ToolSpecError",
    "anthropic_tools",
    "openai_tools",
    "plan_tool_call",
    "tool_reply",
]

_DEFAULTS = {"integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}


class ToolSpecError(ValueError):
    """``tools`` or ``tool_choice`` is malformed; the message names the field."""


@dataclass(frozen=True)
class Tool:
    """One offered tool: name, description, and each parameter's JSON type (or enum)."""

    name: str
    description: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """The call the stand-in's model makes."""

    name: str
    arguments: dict[str, Any]


def _params(schema: object, where: str) -> dict[str, Any]:
    if schema is None:
        return {}
    if not isinstance(schema, dict):
        raise ToolSpecError(f"{where}: expected a JSON schema object")
    props = schema.get("properties") or {}
    if not isinstance(props, dict):
        raise ToolSpecError(f"{where}.properties: expected an object")
    out: dict[str, Any] = {}
    for name, prop in props.items():
        prop = prop if isinstance(prop, dict) else {}
        enum = prop.get("enum")
        out[name] = ("enum", enum[0]) if isinstance(enum, list) and enum else prop.get("type")
    return out


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        raise ToolSpecError(f"{where}: a tool name is 1-64 letters, digits, '_' or '-'")
    return value


def openai_tools(body: Mapping[str, Any]) -> tuple[tuple[Tool, ...], str | None]:
    """``tools`` and ``tool_choice`` of a chat request: the tools, and the forced choice
    (a tool name, ``"none"``, or ``None`` for the model's own choice)."""
    raw = body.get("tools")
    if raw is None:
        return (), None
    if not isinstance(raw, list):
        raise ToolSpecError("tools: expected an array")
    tools = []
    for i, item in enumerate(raw):
        fn = item.get("function") if isinstance(item, dict) else None
        if not isinstance(item, dict) or item.get("type") != "function" or not isinstance(fn, dict):
            raise ToolSpecError(f"tools[{i}]: expected {{'type': 'function', 'function': {{...}}}}")
        name = _name(fn.get("name"), f"tools[{i}].function.name")
        params = _params(fn.get("parameters"), f"tools[{i}].function.parameters")
        tools.append(Tool(name, str(fn.get("description") or ""), params))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        fn = choice.get("function")
        return tuple(tools), _name(
            fn.get("name") if isinstance(fn, dict) else None, "tool_choice.function.name"
        )
    if choice not in (None, "auto", "required", "none"):
        raise ToolSpecError("tool_choice: expected 'none', 'auto', 'required' or a function")
    return tuple(tools), "none" if choice == "none" else None


def anthropic_tools(body: Mapping[str, Any]) -> tuple[tuple[Tool, ...], str | None]:
    """``tools`` and ``tool_choice`` of a Messages request, like :func:`openai_tools`."""
    raw = body.get("tools")
    if raw is None:
        return (), None
    if not isinstance(raw, list):
        raise ToolSpecError("tools: Input should be a valid list")
    tools = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ToolSpecError(f"tools.{i}: Input should be a valid dictionary")
        if "input_schema" not in item:
            raise ToolSpecError(f"tools.{i}.input_schema: Field required")
        tools.append(
            Tool(
                _name(item.get("name"), f"tools.{i}.name"),
                str(item.get("description") or ""),
                _params(item["input_schema"], f"tools.{i}.input_schema"),
            )
        )
    choice = body.get("tool_choice")
    if choice is None:
        return tuple(tools), None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "tool":
        return tuple(tools), _name(choice.get("name"), "tool_choice.name")
    if kind not in ("auto", "any", "none"):
        raise ToolSpecError("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    return tuple(tools), "none" if kind == "none" else None


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower().replace("_", " ")))


def plan_tool_call(tools: tuple[Tool, ...], choice: str | None, user_text: str) -> ToolCall | None:
    """The call to make, or ``None`` to answer in text (no tools, or ``"none"``)."""
    if not tools or choice == "none":
        return None
    if choice is not None:
        by_name = {t.name: t for t in tools}
        if choice not in by_name:
            raise ToolSpecError(f"tool_choice names {choice!r}, which is not in tools")
        tool = by_name[choice]
    else:
        said = _words(user_text)
        tool = max(tools, key=lambda t: len(said & _words(f"{t.name} {t.description}")))
    args = {}
    for name, kind in tool.params.items():
        if isinstance(kind, tuple):
            args[name] = kind[1]
        else:
            args[name] = user_text if kind in (None, "string") else _DEFAULTS.get(kind, user_text)
    return ToolCall(tool.name, args)


def tool_reply(reply: PlannedReply, call: ToolCall) -> PlannedReply:
    """``reply`` with the tool call's arguments as its completion (token counts follow)."""
    text = dumps(call.arguments)
    return dataclasses.replace(reply, text=text, tokens=tuple(split_tokens(text)), finish="stop")


def last_turn_is_tool_result(messages: object) -> bool:
    """Did the conversation end with a tool's result (so the model now answers in text)?"""
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return False
    last = messages[-1]
    if last.get("role") == "tool":
        return True
    content = last.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )
