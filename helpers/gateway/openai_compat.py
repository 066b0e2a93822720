"""``POST /v1/chat/completions`` on the gateway: proxy mode for the unmodified ``openai`` SDK.

An extension: AxonFlow's agent has no streaming in proxy mode (its OpenAI-compatible
endpoint answers ``stream: true`` with 400). Point ``openai.OpenAI(base_url=<gateway>/v1)``
at the gateway and every call is governed:

1. the request is validated, and every message's text runs through the pre-check's
   policies; the decision is committed before anything else. A block is HTTP 403 in
   OpenAI's error shape (``type: "policy_violation"``, with ``policies`` and
   ``context_id``), so the SDK raises ``PermissionDeniedError`` before any byte of an answer;
2. the gateway calls the provider (``claude-*`` models go to Anthropic, translated to
   OpenAI's shapes; the rest to OpenAI) with its own keys (:mod:`.providers`);
3. a plain call is answered with the provider's ``chat.completion``; with ``stream: true``
   chunks are relayed as they arrive (usage is always requested upstream, and passed on only
   when the client asked with ``stream_options.include_usage``);
4. the audit is committed with provider, model, tokens, latency and, for a stream, time to
   first token, before the answer's last byte (``data: [DONE]``) goes out.

A provider that fails before the first chunk is a 502 (``x-should-retry: false``: the
gateway has retried already); one that fails or stalls mid-stream gets an ``error`` event,
which the SDK raises as ``APIError``. A client that disconnects mid-stream stops the
upstream call at once. Each of these is audited with its ``outcome``. Identity:
``X-Client-ID`` (default ``community``) and ``X-User-Token`` (else the body's ``user``).
With client secrets configured, the API key must be ``client_id:secret``.
Introduced in ``11_proxy_mode.ipynb``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, NamedTuple

from helpers.errors import StorageUnavailable

from .endpoint import NOT_STORED, RETRY_AFTER, send_json, storage_error
from .governance import Governed
from .providers import ProviderError, provider_for_model
from .proxy import ProxyMode, policy_info
from .replies import ReplyInspector
from .stream_relay import DELTA_FIELDS, StreamRelay, send_error_event, wait_for_disconnect
from .validation import Call, Reject

__all__ = ["ChatCompletions"]

log = logging.getLogger("helpers.gateway.openai_compat")
ROLES = ("system", "developer", "user", "assistant", "tool")
AUDIT_NOT_STORED = (
    "The answer was relayed but the gateway could not store its audit record; the trail "
    "has the decision only. Retry if the record matters."
)
#: Parameters this proxy cannot honour yet; refused rather than silently dropped.
UNSUPPORTED = (
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "n",
    "audio",
    "modalities",
    "response_format",
    "logprobs",
    "top_logprobs",
)
#: OpenAI's error types for the gateway's own refusals (anything else is a bad request).
_REJECT_KINDS = {401: "authentication_error", 403: "permission_error"}
_PASSED = ("top_p", "stop", "seed", "presence_penalty", "frequency_penalty")


class OpenAIError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str,
        code: str | None = None,
        param: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {"message": message, "type": kind, "param": param, "code": code, **extra}
        }


class ChatRequest(NamedTuple):
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    user: str
    options: dict[str, Any]


def _bad(message: str, param: str | None = None) -> OpenAIError:
    return OpenAIError(400, message, "invalid_request_error", "invalid_value", param)


def _content(value: Any, where: str) -> str:
    """A message's text: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for part in value:
            if not (
                isinstance(part, dict)
                and part.get("type") == "text"
                and isinstance(part.get("text"), str)
            ):
                raise _bad(f"{where}: only text content parts are supported by the gateway", where)
            parts.append(part["text"])
        return "".join(parts)
    raise _bad(f"{where} must be a string or a list of text parts", where)


def parse_chat(data: dict[str, Any]) -> ChatRequest:
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("you must provide a model parameter (a non-empty string)", "model")
    raw = data.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _bad("messages must be a non-empty list of message objects", "messages")
    messages = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise _bad(f"messages[{i}] needs a role, one of {', '.join(ROLES)}", f"messages[{i}]")
        text = _content(message.get("content"), f"messages[{i}].content")
        messages.append({"role": message["role"], "content": text})
    for key in UNSUPPORTED:
        if data.get(key) is not None:
            raise _bad(f"{key} is not supported by the gateway's proxy; use gateway mode", key)
    stream = data.get("stream") or False
    stream_options = data.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(stream_options, dict):
        raise _bad("stream must be a boolean and stream_options an object", "stream")
    options: dict[str, Any] = {}
    for key in ("max_tokens", "max_completion_tokens"):
        value = data.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _bad(f"{key}={value!r} must be a positive integer", key)
            options["max_tokens"] = value
    temperature = data.get("temperature")
    if temperature is not None:
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not (0 <= temperature <= 2)
        ):
            raise _bad(f"temperature={temperature!r} must be a number from 0 to 2", "temperature")
        options["temperature"] = temperature
    options.update({k: data[k] for k in _PASSED if data.get(k) is not None})
    user = data.get("user") or ""
    if not isinstance(user, str):
        raise _bad("user must be a string", "user")
    include_usage = bool(stream_options.get("include_usage"))
    return ChatRequest(model, messages, stream, include_usage, user, options)


class ChatCompletions:
    """The ASGI endpoint (not a plain :class:`~.app.Endpoint`: it may stream)."""

    __name__ = "chat_completions"

    def __init__(self, proxy: ProxyMode) -> None:
        self.proxy = proxy

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        call = Call(scope, receive)
        try:
            chat, governed = await self._prepare(call)
            provider = provider_for_model(chat.model)
            if chat.stream:
                await self._stream(chat, governed, provider, receive, send)
                return
            status, body, headers = await self._complete(chat, governed, provider)
        except OpenAIError as exc:
            status, body, headers = exc.status, exc.body, []
        except Reject as exc:
            kind = _REJECT_KINDS.get(exc.status, "invalid_request_error")
            status, body, headers = exc.status, OpenAIError(exc.status, exc.message, kind).body, []
        except StorageUnavailable as exc:  # counted and logged by the store, once per change
            message = storage_error(exc)["error"]
            status, headers = 503, list(RETRY_AFTER)
            body = OpenAIError(503, message, "server_error", "storage_unavailable").body
        except Exception:
            log.exception("chat completions failed")
            status, headers = 503, []
            body = OpenAIError(503, NOT_STORED, "server_error").body
        if status >= 500:  # the gateway has retried the provider already
            headers = [*headers, (b"x-should-retry", b"false")]
        await send_json(send, status, body, headers)

    async def _prepare(self, call: Call) -> tuple[ChatRequest, Governed]:
        named = call.header(b"x-client-id")
        client_id = self.proxy.auth.check_api_key(call, named) or named or "community"
        chat = parse_chat(await call.json(self.proxy.limit))
        user_token = call.header(b"x-user-token") or chat.user
        parts = [m["content"] for m in chat.messages]
        if not any(parts):
            raise _bad("messages have no text to check", "messages")
        context = {"endpoint": "/v1/chat/completions", "model": chat.model}
        governed = await self.proxy.governance.decide(client_id, user_token, parts, context=context)
        decision = governed.decision
        if not decision.approved:
            raise OpenAIError(
                403,
                decision.block_reason or "Blocked by policy",
                "policy_violation",
                "policy_blocked",
                policies=policy_info(governed)["policies_evaluated"],
                context_id=governed.context_id,
            )
        if governed.redaction is not None:  # every message as the provider may see it
            redacted = governed.redaction.texts
            messages = [{**m, "content": t} for m, t in zip(chat.messages, redacted, strict=True)]
            chat = chat._replace(messages=messages)
        return chat, governed

    def _meta(self, governed: Governed, outcome: str, **extra: Any) -> dict[str, Any]:
        meta = {"mode": "proxy", "endpoint": "/v1/chat/completions", "outcome": outcome, **extra}
        if governed.redaction is not None:
            meta["redaction"] = governed.redaction.note
        return meta

    async def _complete(
        self, chat: ChatRequest, governed: Governed, provider: str
    ) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]:
        started = time.perf_counter_ns()
        try:
            answer = await self.proxy.providers.complete(
                provider, chat.model, chat.messages, **chat.options
            )
        except ProviderError as exc:
            latency = (time.perf_counter_ns() - started) / 1e6
            meta = self._meta(governed, f"provider_{exc.kind}", error=exc.message)
            await self.proxy.governance.record(
                governed, provider, chat.model, latency_ms=latency, metadata=meta
            )
            raise _upstream_error(exc) from None
        latency = (time.perf_counter_ns() - started) / 1e6
        inspector = self.proxy.reply_inspector(governed, [m["content"] for m in chat.messages])
        raw = _inspected(answer.raw, inspector)
        outcome = "reply_blocked" if inspector.blocked else "ok"
        meta = self._meta(governed, outcome, finish_reason=answer.finish_reason, stream=False)
        if inspector.verdict.policies:
            meta["reply"] = inspector.verdict.note
        audit_id = await self.proxy.governance.record(
            governed,
            provider,
            answer.model,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            latency_ms=latency,
            metadata=meta,
        )
        if inspector.blocked:
            raise _reply_blocked(inspector, governed)
        return 200, raw, _ids(governed.context_id, audit_id)

    async def _stream(
        self, chat: ChatRequest, governed: Governed, provider: str, receive: Any, send: Any
    ) -> None:
        started = time.perf_counter_ns()
        try:
            pieces = await self.proxy.providers.stream(
                provider, chat.model, chat.messages, **chat.options
            )
        except ProviderError as exc:
            latency = (time.perf_counter_ns() - started) / 1e6
            meta = self._meta(governed, f"provider_{exc.kind}", error=exc.message, stream=True)
            await self.proxy.governance.record(
                governed, provider, chat.model, latency_ms=latency, metadata=meta
            )
            raise _upstream_error(exc) from None
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    *_ids(governed.context_id, None),
                ],
            }
        )
        inspector = self.proxy.reply_inspector(governed, [m["content"] for m in chat.messages])
        relay = StreamRelay(chat.include_usage, chat.model, started, inspector)
        # One task relays; this one watches for the client leaving and cancels it if so.
        relaying = asyncio.ensure_future(relay.run(pieces, send))
        disconnected = asyncio.ensure_future(wait_for_disconnect(receive))
        try:
            await asyncio.wait({relaying, disconnected}, return_when=asyncio.FIRST_COMPLETED)
            if not relaying.done():  # the client left: stop the upstream call now
                relaying.cancel()
                relay.outcome = "client_disconnected"
                inspector.stop()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await relaying
        finally:
            disconnected.cancel()
        meta = self._meta(
            governed, relay.outcome, stream=True, chunks=relay.chunks, ttft_ms=relay.ttft_ms
        )
        if relay.error:
            meta["error"] = relay.error
        if inspector.verdict.policies or inspector.cut:
            meta["reply"] = inspector.verdict.note
        try:
            audit_id = await self.proxy.governance.record(
                governed,
                provider,
                relay.model,
                prompt_tokens=relay.usage[0],
                completion_tokens=relay.usage[1],
                latency_ms=relay.latency_ms,
                metadata=meta,
            )
        except Exception:  # the answer has gone out; say that its audit did not get stored
            log.exception("stream relayed but its audit was not stored")
            audit_id, relay.error = None, AUDIT_NOT_STORED
            if relay.outcome != "client_disconnected":
                await send_error_event(send, AUDIT_NOT_STORED, "server_error", "audit_failed")
        if relay.outcome == "client_disconnected":
            return
        tail = b"" if relay.error else b"data: [DONE]\n\n"
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        log.debug("stream audited as %s", audit_id)


def _inspected(raw: dict[str, Any], inspector: ReplyInspector) -> dict[str, Any]:
    """A ``chat.completion`` whose first choice's message passed the inspector."""
    choices = list(raw.get("choices") or ())
    if choices and not inspector.idle:
        choice = choices[0]
        message = choice.get("message") or {}
        content = message.get("content")
        if isinstance(content, str):
            fields = {k: v for k, v in message.items() if k in DELTA_FIELDS}
            fields["content"] = inspector.check(content)
            choices[0] = {**choice, "message": fields}
    return {**raw, "choices": choices}


def _reply_blocked(inspector: ReplyInspector, governed: Governed) -> OpenAIError:
    policies = [inspector.blocked_by, *policy_info(governed)["policies_evaluated"]]
    return OpenAIError(
        403,
        inspector.reason or "Reply blocked by policy",
        "policy_violation",
        "reply_blocked",
        policies=policies,
        context_id=governed.context_id,
    )


def _upstream_error(exc: ProviderError) -> OpenAIError:
    status = 504 if exc.kind == "timeout" else 502
    return OpenAIError(status, f"Provider call failed: {exc.message}", "provider_error", exc.kind)


def _ids(context_id: str, audit_id: str | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-axonflow-context-id", context_id.encode())]
    if audit_id:
        headers.append((b"x-axonflow-audit-id", audit_id.encode()))
    return headers
