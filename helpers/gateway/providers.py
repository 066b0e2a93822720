"""Proxy mode's LLM calls: the gateway calls OpenAI or Anthropic itself, over its own pool.

In gateway mode the application holds the provider keys and calls the model; in proxy mode
(``/api/request`` and ``/v1/chat/completions``, see :mod:`.proxy` and :mod:`.openai_compat`)
the gateway does. It reads the providers' own environment variables, the same ones their
SDKs read: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``ANTHROPIC_API_KEY``,
``ANTHROPIC_BASE_URL``. Offline the base URLs point at the local stand-ins; live they are
unset and the real APIs are called. Two more knobs: ``GATEWAY_PROVIDER_TIMEOUT_S``
(seconds for connecting and for each wait for more bytes, default 30, so also the longest
wait between two streamed chunks) and ``GATEWAY_PROVIDER_RETRIES`` (default 1).

The calls go through the gateway's own keep-alive client (:mod:`.upstream`), not the
provider SDKs: the request is written as JSON bytes and only what governance needs is read
back (the text, the usage, the model, the finish reason); a stream's chunks are relayed as
the provider sent them. Retries follow the SDKs' rules (:func:`should_retry`,
:func:`retry_delay`). Applications keep the official SDKs (``helpers.client``).

Every failure becomes a :class:`ProviderError` with a ``kind`` (``no_key``, ``timeout``,
``unreachable``, ``status``, ``bad_response``) and a message naming the provider and what
to do, so the HTTP layer can answer in its contract's shape instead of a traceback.
Introduced in ``11_proxy_mode.ipynb``.

>>> ProviderConfig.from_env({"OPENAI_API_KEY": "k"}).has_key("openai")
True
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import os
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from helpers.errors import ConfigError

from .llm_shapes import (
    STOP_REASONS,
    Completion,
    StreamPiece,
    anthropic_options,
    anthropic_piece,
    openai_messages_to_anthropic,
)
from .provider_errors import ErrorMap, ProviderError
from .upstream import Upstream, UpstreamError, UpstreamStream, check_base_url

__all__ = [
    "PROVIDERS",
    "Completion",
    "ProviderConfig",
    "ProviderError",
    "Providers",
    "StreamPiece",
    "provider_for_model",
    "retry_delay",
    "should_retry",
]

PROVIDERS = ("openai", "anthropic")
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}
#: Where each API takes a chat call, below its base URL.
PATHS = {"openai": "/chat/completions", "anthropic": "/v1/messages"}
ANTHROPIC_VERSION = "2023-06-01"
BASE_HEADERS = {
    "content-type": "application/json",
    "accept": "application/json",
    "accept-encoding": "identity",
    "user-agent": "gateway-mode-notebooks/0.1 (proxy mode)",
}
#: The longest ``retry-after`` honoured; a provider asking for more is not retried.
MAX_RETRY_AFTER_S = 60.0


def provider_for_model(model: str) -> str:
    """Which provider serves ``model``: Claude models go to Anthropic, the rest to OpenAI."""
    return "anthropic" if model.lower().startswith("claude") else "openai"


@dataclass(frozen=True)
class ProviderConfig:
    """Keys, base URLs, timeout and retries for the providers (keys never in a repr)."""

    keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    base_urls: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 30.0
    max_retries: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProviderConfig:
        """Read the providers' standard variables (``os.environ`` when ``env`` is None)."""
        env = os.environ if env is None else env
        keys = {
            p: env[f"{p.upper()}_API_KEY"] for p in PROVIDERS if env.get(f"{p.upper()}_API_KEY")
        }
        urls = {
            p: env[f"{p.upper()}_BASE_URL"] for p in PROVIDERS if env.get(f"{p.upper()}_BASE_URL")
        }
        for provider, url in urls.items():
            try:
                check_base_url(url)
            except ValueError as exc:
                raise ConfigError(f"{provider.upper()}_BASE_URL: {exc}") from None
        timeout = _number(env, "GATEWAY_PROVIDER_TIMEOUT_S", 30.0, minimum=0.01)
        retries = int(_number(env, "GATEWAY_PROVIDER_RETRIES", 1, minimum=0))
        return cls(keys, urls, timeout, retries)

    def has_key(self, provider: str) -> bool:
        return bool(self.keys.get(provider))


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


class Providers:
    """The gateway's connections to the providers (an :class:`~.upstream.Upstream` pool per
    provider, built on first use) and the calls proxy mode makes through them."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._pools: dict[str, Upstream] = {}
        self._headers: dict[str, dict[str, str]] = {}

    def client(self, provider: str) -> Upstream:
        """The connection pool for ``provider`` (a clear :class:`ProviderError` without a key)."""
        if provider not in PROVIDERS:
            raise ProviderError(
                provider, "unknown", f"Unknown provider {provider!r}; use openai or anthropic"
            )
        if not self.config.has_key(provider):
            raise ProviderError(
                provider,
                "no_key",
                f"No API key for {provider}: set {provider.upper()}_API_KEY in the gateway's "
                "environment (proxy mode keeps provider keys on the gateway)",
            )
        pool = self._pools.get(provider)
        if pool is None:
            base = self.config.base_urls.get(provider) or DEFAULT_BASE_URLS[provider]
            pool = Upstream(base, self.config.timeout_s)  # the URL was checked by from_env
            key = self.config.keys[provider]
            auth = (
                {"authorization": f"Bearer {key}"}
                if provider == "openai"
                else {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
            )
            self._headers[provider] = {**BASE_HEADERS, **auth}
            self._pools[provider] = pool
        return pool

    async def aclose(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            await pool.aclose()

    # -- one answer ------------------------------------------------------------------------
    async def complete(
        self, provider: str, model: str, messages: list[dict[str, Any]], **options: Any
    ) -> Completion:
        """One non-streamed call. ``options``: ``max_tokens``, ``temperature`` (None = unset)."""
        self.client(provider)
        with self._errors(provider):
            body = _request_body(provider, model, messages, options, stream=False)
            _, raw = await self._send(provider, body, stream=False)
            data = orjson.loads(raw)
            return _openai_completion(data) if provider == "openai" else _anthropic_completion(data)

    # -- a stream ----------------------------------------------------------------------------
    async def stream(
        self, provider: str, model: str, messages: list[dict[str, Any]], **options: Any
    ) -> AsyncIterator[StreamPiece]:
        """Open a stream (errors before the first chunk raise here), then relay its chunks.

        Returns an async iterator; iterating it may raise :class:`ProviderError` mid-stream.
        Usage is always requested from the provider, so the audit can record it.
        """
        self.client(provider)
        with self._errors(provider):
            body = _request_body(provider, model, messages, options, stream=True)
            upstream, _ = await self._send(provider, body, stream=True)
        relay = self._relay_openai if provider == "openai" else self._relay_anthropic
        return relay(upstream)

    async def _relay_openai(self, upstream: UpstreamStream) -> AsyncIterator[StreamPiece]:
        try:
            with self._errors("openai"):
                async for line in upstream.lines():
                    if not line.startswith(b"data:"):
                        continue  # blank separators, comments, event names
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        continue  # read on to the end of the body: the connection is reused
                    data = orjson.loads(payload)
                    if data.get("error"):
                        message = str(data["error"].get("message", data["error"]))
                        raise ProviderError(
                            "openai", "status", f"OpenAI failed mid-stream: {message}"
                        )
                    text = "".join(
                        (c.get("delta") or {}).get("content") or "" for c in data.get("choices", ())
                    )
                    usage = data.get("usage")
                    counts = (usage["prompt_tokens"], usage["completion_tokens"]) if usage else None
                    yield StreamPiece(data, text, counts)
        finally:
            await upstream.aclose()

    async def _relay_anthropic(self, upstream: UpstreamStream) -> AsyncIterator[StreamPiece]:
        """Anthropic's events translated into OpenAI chunks, so one client reads both."""
        state = {"id": "", "model": "", "prompt": 0, "completion": 0}
        try:
            with self._errors("anthropic"):
                async for line in upstream.lines():
                    if not line.startswith(b"data:"):
                        continue  # the event name is repeated in the data's "type"
                    event = orjson.loads(line[5:])
                    if event.get("type") == "error":
                        error = event.get("error") or {}
                        raise ProviderError(
                            "anthropic",
                            "status",
                            f"Anthropic failed mid-stream: {error.get('message', error)}",
                        )
                    piece = anthropic_piece(event, state)
                    if piece is not None:
                        yield piece
        finally:
            await upstream.aclose()

    # -- sending, with the retries -----------------------------------------------------------
    async def _send(
        self, provider: str, body: bytes, *, stream: bool
    ) -> tuple[UpstreamStream, bytes]:
        """POST ``body``; retry as the provider SDKs do (a lost connection, a timeout, 408,
        409, 429 and 5xx, at most ``max_retries`` times, after the provider's ``retry-after``
        or an exponential back-off). Returns the 2xx answer and, unless ``stream``, its whole
        body (read inside the attempt, so a body cut off midway is retried too)."""
        pool = self._pools[provider]
        headers = self._headers[provider]
        path = PATHS[provider]
        retries = self.config.max_retries
        attempt = 0
        while True:
            try:
                answer = await pool.open(path, body, headers)
                ok = 200 <= answer.status < 300
                data = b"" if ok and stream else await answer.read()
            except UpstreamError:
                if attempt >= retries:
                    raise
                await asyncio.sleep(retry_delay(attempt, {}))
                attempt += 1
                continue
            if ok:
                return answer, data
            if attempt < retries and should_retry(answer.status, answer.headers):
                await asyncio.sleep(retry_delay(attempt, answer.headers))
                attempt += 1
                continue
            name = "OpenAI" if provider == "openai" else "Anthropic"
            raise ProviderError(
                provider,
                "status",
                f"{name} answered HTTP {answer.status}: {_short(error_message(data))}",
                status=answer.status,
            )

    # -- errors ------------------------------------------------------------------------------
    def _errors(self, provider: str) -> ErrorMap:
        return ErrorMap(provider, self.config.timeout_s, self.config.keys.values())


# -- the wire, both ways ------------------------------------------------------------------------
def _request_body(
    provider: str,
    model: str,
    messages: list[dict[str, Any]],
    options: dict[str, Any],
    *,
    stream: bool,
) -> bytes:
    opts = {k: v for k, v in options.items() if v is not None}
    if provider == "openai":
        body: dict[str, Any] = {"model": model, "messages": messages, **opts}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
    else:
        system, turns = openai_messages_to_anthropic(messages)
        body = {"model": model, "messages": turns, **anthropic_options(opts, system)}
        if stream:
            body["stream"] = True
    return orjson.dumps(body)


def _openai_completion(data: dict[str, Any]) -> Completion:
    choice = data["choices"][0]
    usage = data.get("usage") or {}
    return Completion(
        choice["message"].get("content") or "",
        data["model"],
        usage.get("prompt_tokens", 0),
        usage.get("completion_tokens", 0),
        choice.get("finish_reason") or "stop",
        data,
    )


def _anthropic_completion(data: dict[str, Any]) -> Completion:
    text = "".join(b.get("text", "") for b in data["content"] if b.get("type") == "text")
    finish = STOP_REASONS.get(data.get("stop_reason") or "", "stop")
    usage_in, usage_out = data["usage"]["input_tokens"], data["usage"]["output_tokens"]
    raw = {
        "id": data["id"],
        "object": "chat.completion",
        "created": 0,
        "model": data["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": usage_in,
            "completion_tokens": usage_out,
            "total_tokens": usage_in + usage_out,
        },
    }
    return Completion(text, data["model"], usage_in, usage_out, finish, raw)


def error_message(body: bytes) -> str:
    """The provider's own words from an error body (both APIs say ``{"error": {"message"}}``)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip() or "(no body)"
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if isinstance(message, str):
        return message
    return body.decode("utf-8", "replace").strip()


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """Whether an error answer is worth another attempt, as the provider SDKs decide."""
    delay = _retry_after(headers)
    if delay is not None and delay > MAX_RETRY_AFTER_S:
        return False
    hint = headers.get("x-should-retry")
    if hint in ("true", "false"):
        return hint == "true"
    return status in (408, 409, 429) or status >= 500


def retry_delay(attempt: int, headers: Mapping[str, str]) -> float:
    """Seconds before retry ``attempt + 1``: the provider's ``retry-after`` when it gives a
    sane one, else 0.5 s doubling up to 8 s, less up to a quarter at random."""
    delay = _retry_after(headers)
    if delay is not None and 0 < delay <= MAX_RETRY_AFTER_S:
        return delay
    return min(0.5 * 2.0**attempt, 8.0) * (1 - 0.25 * random.random())


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            delay = float(value) / scale
        except ValueError:
            continue
        return delay if math.isfinite(delay) else MAX_RETRY_AFTER_S + 1
    when = headers.get("retry-after")
    if when:
        try:
            return email.utils.parsedate_to_datetime(when).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return None


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
