"""Request parsing and validation for the gateway, mapped to the contract's 400 messages.

Kept apart from the handlers so every rule about "what a client may send" reads in one place.
Each failure raises :class:`Reject`, which the app turns into
``{"success": false, "error": "<message>"}`` with the right status. Nothing a client sends
may reach a handler unvalidated, so nothing a client sends can cause a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import orjson

__all__ = [
    "AuditRequest",
    "Call",
    "PreCheckRequest",
    "Reject",
    "ReplyCheckRequest",
    "parse_audit",
    "parse_pre_check",
    "parse_reply_check",
    "text_field",
]

INVALID_BODY = "Invalid request body"


class Reject(Exception):
    """A client error: HTTP ``status`` with the contract's error ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Call:
    """One HTTP request as the endpoints see it: the ASGI scope and its body channel."""

    __slots__ = ("receive", "scope")

    def __init__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]]):
        self.scope = scope
        self.receive = receive

    def header(self, name: bytes) -> str:
        """A request header by lower-case name, or "" when absent."""
        for key, value in self.scope["headers"]:
            if key == name:
                return value.decode("latin-1")
        return ""

    async def body(self, limit: int) -> bytes:
        """The whole body, refusing more than ``limit`` bytes (declared or actually sent)."""
        declared = self.header(b"content-length")
        if declared.isdigit() and int(declared) > limit:
            raise Reject(413, f"Request body too large: {declared} bytes, limit {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise Reject(400, "Client disconnected before the body was complete")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Reject(413, f"Request body too large: over {limit} bytes")
            if not message.get("more_body", False):
                return b"".join((*chunks, chunk)) if chunks else chunk
            chunks.append(chunk)

    async def json(self, limit: int) -> dict[str, Any]:
        """The body parsed as a JSON object, or :class:`Reject` with the contract's message."""
        try:
            # Strict RFC 8259: bad UTF-8, NaN, lone surrogates and absurd nesting all fail.
            data = orjson.loads(await self.body(limit))
        except orjson.JSONDecodeError:
            raise Reject(400, INVALID_BODY) from None
        if not isinstance(data, dict):
            raise Reject(400, INVALID_BODY)
        return data


def text_field(data: dict[str, Any], key: str) -> str:
    """A string field: missing or null is "", any other type is an invalid body."""
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Reject(400, INVALID_BODY)
    # No lone surrogates can be here: orjson refuses them, so every string is valid UTF-8.
    return value


def _object(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    if value is not None and not isinstance(value, dict):
        raise Reject(400, INVALID_BODY)
    return value


class PreCheckRequest(NamedTuple):
    """A validated pre-check body (a named tuple: one is built per request, cheaply)."""

    user_token: str
    client_id: str
    query: str
    data_sources: tuple[str, ...]
    context: dict[str, Any] | None


def parse_pre_check(data: dict[str, Any]) -> PreCheckRequest:
    """Types first (a wrong type is an invalid body), then ``query``, then ``client_id``."""
    user_token = text_field(data, "user_token")
    client_id = text_field(data, "client_id")
    query = text_field(data, "query")
    sources = data.get("data_sources")
    if sources is None:
        sources = []
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise Reject(400, INVALID_BODY)
    context = _object(data, "context")
    if not query:
        raise Reject(400, "query field is required")
    if not client_id:
        raise Reject(400, "client_id field is required")
    return PreCheckRequest(user_token, client_id, query, tuple(sources), context)


class AuditRequest(NamedTuple):
    """A validated audit body."""

    context_id: str
    client_id: str
    provider: str
    model: str
    response_summary: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    latency_ms: int
    metadata: dict[str, Any] | None


def _count(value: Any, name: str) -> int:
    # bool is an int subclass in Python; a JSON true is not a token count.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        shown = orjson.dumps(value).decode()
        raise Reject(400, f"{name} must be a non-negative integer, got {shown}")
    return value


def parse_audit(data: dict[str, Any]) -> AuditRequest:
    """Types first, then the required fields in the contract's order, then the counts."""
    fields = {k: text_field(data, k) for k in ("context_id", "client_id", "provider", "model")}
    summary = text_field(data, "response_summary")
    usage = _object(data, "token_usage") or {}
    metadata = _object(data, "metadata")
    for key, value in fields.items():
        if not value:
            raise Reject(400, f"{key} field is required")
    prompt = _count(usage.get("prompt_tokens", 0), "token_usage.prompt_tokens")
    completion = _count(usage.get("completion_tokens", 0), "token_usage.completion_tokens")
    total = usage.get("total_tokens")
    total = prompt + completion if total is None else _count(total, "token_usage.total_tokens")
    latency = data.get("latency_ms", 0)
    latency = 0 if latency is None else _count(latency, "latency_ms")
    return AuditRequest(
        fields["context_id"],
        fields["client_id"],
        fields["provider"],
        fields["model"],
        summary,
        prompt,
        completion,
        total,
        latency,
        metadata,
    )


class ReplyCheckRequest(NamedTuple):
    """A validated ``POST /api/reply/check`` body: an answer (or the held-back part of a
    stream) to inspect under a pre-checked context."""

    context_id: str
    client_id: str
    text: str
    context: str
    final: bool


def parse_reply_check(data: dict[str, Any]) -> ReplyCheckRequest:
    """``context_id``, ``client_id`` and ``text`` are required (text may be empty only at the
    end of a stream); ``context`` (what was shown already) is optional, ``final`` true."""
    fields = {k: text_field(data, k) for k in ("context_id", "client_id", "text", "context")}
    final = data.get("final", True)
    if not isinstance(final, bool):
        raise Reject(400, "final must be true or false")
    for key in ("context_id", "client_id"):
        if not fields[key]:
            raise Reject(400, f"{key} field is required")
    if "text" not in data:
        raise Reject(400, "text field is required")
    return ReplyCheckRequest(
        fields["context_id"], fields["client_id"], fields["text"], fields["context"], final
    )
