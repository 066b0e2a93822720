"""Relaying a provider's stream to the caller as OpenAI server-sent events, inspected.

:class:`StreamRelay` is the streamed half of ``/v1/chat/completions`` (:mod:`.openai_compat`):
each provider chunk is re-sent as an SSE event once its text has passed the
:class:`~.replies.ReplyInspector` (inspected, the caller's placeholders restored); what the
inspector holds back goes out before the chunk that ends the answer. A failure or a refusal
mid-stream is one ``error`` event, which the OpenAI SDK raises as ``APIError``. The relay
remembers what the audit needs (usage, chunks, time to first token, outcome).
Introduced in ``11_proxy_mode.ipynb``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from .providers import ProviderError, StreamPiece
from .replies import ReplyInspector

__all__ = ["DELTA_FIELDS", "StreamRelay", "send_error_event", "wait_for_disconnect", "with_text"]


class StreamRelay:
    """Relays provider chunks as SSE and remembers what the audit needs.

    Each chunk's text passes through the :class:`~.replies.ReplyInspector`: what it releases
    (inspected, the caller's placeholders restored) goes out in that chunk; what it holds
    back goes out before the chunk that ends the answer, or when the stream ends. An answer
    the inspector blocks ends with an error event in place of the rest.
    """

    def __init__(
        self, include_usage: bool, model: str, started_ns: int, inspector: ReplyInspector
    ) -> None:
        self.include_usage = include_usage
        self.model = model
        self.started_ns = started_ns
        self.inspector = inspector
        self.outcome = "ok"
        self.error: str | None = None
        self.chunks = 0
        self.usage = (0, 0)
        self.ttft_ms: float | None = None
        self.latency_ms = 0.0
        self.last: dict[str, Any] | None = None  # the last chunk with choices, for its shape

    async def run(self, pieces: AsyncIterator[StreamPiece], send: Any) -> None:
        try:
            async for piece in pieces:
                if not await self._forward(piece, send):
                    break
            else:
                await self._release(send)
        except ProviderError as exc:
            self.outcome, self.error = f"provider_{exc.kind}", exc.message
            await self._release(send)
            await send_error_event(send, exc.message, "provider_error", exc.kind)
        finally:
            self.latency_ms = (time.perf_counter_ns() - self.started_ns) / 1e6
            with contextlib.suppress(Exception):
                await pieces.aclose()  # type: ignore[attr-defined]

    async def _forward(self, piece: StreamPiece, send: Any) -> bool:
        """Relay one piece; False once the answer is blocked (the relay stops)."""
        if piece.usage is not None:
            self.usage = piece.usage
        if piece.text and self.ttft_ms is None:
            self.ttft_ms = round((time.perf_counter_ns() - self.started_ns) / 1e6, 3)
        self.model = piece.chunk.get("model") or self.model
        chunk = piece.chunk
        if chunk.get("choices") and not self.inspector.idle:
            self.last = chunk
            if not piece.text and any(c.get("finish_reason") for c in chunk["choices"]):
                await self._release(send)
            # Every chunk is rebuilt: a delta field the inspection did not read never goes out.
            chunk = with_text(chunk, self.inspector.feed(piece.text) if piece.text else "")
            if self.inspector.blocked:
                await self._refuse(send)
                return False
        if not self.include_usage:
            if piece.usage is not None and not chunk.get("choices"):
                return True  # the usage-only chunk the client did not ask for
            chunk = {k: v for k, v in chunk.items() if k != "usage"}
        await self._send(chunk, send)
        return True

    async def _release(self, send: Any) -> None:
        """Send what the inspector still holds, inspected, in a chunk of its own."""
        if self.last is None or self.inspector.blocked:
            return
        text = self.inspector.finish()
        if self.inspector.blocked:
            await self._refuse(send)
        elif text:
            chunk = with_text(self.last, text)
            chunk["choices"][0]["finish_reason"] = None
            chunk.pop("usage", None)
            await self._send(chunk, send)

    async def _refuse(self, send: Any) -> None:
        self.outcome = "reply_blocked"
        self.error = self.inspector.reason
        await send_error_event(send, self.error or "", "policy_violation", "reply_blocked")

    async def _send(self, chunk: dict[str, Any], send: Any) -> None:
        self.chunks += 1
        body = b"data: " + orjson.dumps(chunk) + b"\n\n"
        await send({"type": "http.response.body", "more_body": True, "body": body})


#: The delta fields relayed; any other field could carry text the inspection never saw.
DELTA_FIELDS = ("role", "content", "refusal", "tool_calls")


def with_text(chunk: dict[str, Any], text: str) -> dict[str, Any]:
    """A copy of a streamed chunk whose first choice's delta says ``text`` (and carries no
    field that was not inspected)."""
    choice = chunk["choices"][0]
    delta = {k: v for k, v in (choice.get("delta") or {}).items() if k in DELTA_FIELDS}
    delta["content"] = text
    return {**chunk, "choices": [{**choice, "delta": delta}, *chunk["choices"][1:]]}


async def send_error_event(send: Any, message: str, kind: str, code: str) -> None:
    """An error in the middle of a stream: one SSE event the OpenAI SDK raises as APIError."""
    event = {"error": {"message": message, "type": kind, "code": code, "param": None}}
    body = b"data: " + orjson.dumps(event) + b"\n\n"
    with contextlib.suppress(OSError):
        await send({"type": "http.response.body", "more_body": True, "body": body})


async def wait_for_disconnect(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
