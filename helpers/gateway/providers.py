"""Proxy mode's LLM calls: the gateway calls OpenAI or Anthropic itself, through their SDKs.

In gateway mode the application holds the provider keys and calls the model; in proxy mode
(``/api/request`` and ``/v1/chat/completions``, see :mod:`.proxy` and :mod:`.openai_compat`)
the gateway does. It reads the providers' own environment variables, the same ones their
SDKs read: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``ANTHROPIC_API_KEY``,
``ANTHROPIC_BASE_URL``. Offline the base URLs point at the local stand-ins; live they are
unset and the SDKs use the real APIs. Two more knobs: ``GATEWAY_PROVIDER_TIMEOUT_S``
(seconds per attempt, default 30, also the longest wait between two streamed chunks) and
``GATEWAY_PROVIDER_RETRIES`` (the SDKs' own retries, default 1).

Every failure becomes a :class:`ProviderError` with a ``kind`` (``no_key``, ``timeout``,
``unreachable``, ``status``, ``bad_response``) and a message naming the provider and what
to do, so the HTTP layer can answer in its contract's shape instead of a traceback.
Introduced in ``11_proxy_mode.ipynb``.

>>> ProviderConfig.from_env({"OPENAI_API_KEY": "k"}).has_key("openai")
True
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from helpers.errors import ConfigError
from helpers.settings import DEFAULT_MODELS

from .llm_shapes import (
    STOP_REASONS,
    Completion,
    StreamPiece,
    anthropic_options,
    anthropic_piece,
    openai_messages_to_anthropic,
)
from .provider_errors import ErrorMap, ProviderError

__all__ = [
    "DEFAULT_MODELS",
    "PROVIDERS",
    "Completion",
    "ProviderConfig",
    "ProviderError",
    "Providers",
    "StreamPiece",
    "provider_for_model",
]

PROVIDERS = ("openai", "anthropic")


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
    """The gateway's provider clients, built on first use and closed by :meth:`aclose`."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._clients: dict[str, Any] = {}

    def client(self, provider: str) -> Any:
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
        if provider not in self._clients:
            kwargs: dict[str, Any] = {
                "api_key": self.config.keys[provider],
                "timeout": self.config.timeout_s,
                "max_retries": self.config.max_retries,
            }
            if provider in self.config.base_urls:
                kwargs["base_url"] = self.config.base_urls[provider]
            if provider == "openai":
                import openai

                self._clients[provider] = openai.AsyncOpenAI(**kwargs)
            else:
                import anthropic

                self._clients[provider] = anthropic.AsyncAnthropic(**kwargs)
        return self._clients[provider]

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()

    # -- one answer ------------------------------------------------------------------------
    async def complete(
        self, provider: str, model: str, messages: list[dict[str, Any]], **options: Any
    ) -> Completion:
        """One non-streamed call. ``options``: ``max_tokens``, ``temperature`` (None = unset)."""
        client = self.client(provider)
        opts = {k: v for k, v in options.items() if v is not None}
        with self._errors(provider):
            if provider == "openai":
                response = await client.chat.completions.create(
                    model=model, messages=messages, **opts
                )
                raw = response.model_dump(mode="json", exclude_unset=True)
                choice = response.choices[0]
                usage = response.usage
                return Completion(
                    choice.message.content or "",
                    response.model,
                    usage.prompt_tokens if usage else 0,
                    usage.completion_tokens if usage else 0,
                    choice.finish_reason or "stop",
                    raw,
                )
            system, turns = openai_messages_to_anthropic(messages)
            opts = anthropic_options(opts, system)
            message = await client.messages.create(model=model, messages=turns, **opts)
            text = "".join(getattr(b, "text", "") for b in message.content)
            finish = STOP_REASONS.get(message.stop_reason or "", "stop")
            usage_in, usage_out = message.usage.input_tokens, message.usage.output_tokens
            raw = {
                "id": message.id,
                "object": "chat.completion",
                "created": 0,
                "model": message.model,
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
            return Completion(text, message.model, usage_in, usage_out, finish, raw)

    # -- a stream ----------------------------------------------------------------------------
    async def stream(
        self, provider: str, model: str, messages: list[dict[str, Any]], **options: Any
    ) -> AsyncIterator[StreamPiece]:
        """Open a stream (errors before the first chunk raise here), then relay its chunks.

        Returns an async iterator; iterating it may raise :class:`ProviderError` mid-stream.
        Usage is always requested from the provider, so the audit can record it.
        """
        client = self.client(provider)
        opts = {k: v for k, v in options.items() if v is not None}
        with self._errors(provider):
            if provider == "openai":
                # The raw response, not the SDK's parsed chunks: relaying parses each chunk
                # with orjson only, which costs far less per chunk than building models.
                opened = client.chat.completions.with_streaming_response.create(
                    model=model,
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                    **opts,
                )
                upstream = await opened.__aenter__()
                return self._relay_openai(upstream)
            system, turns = openai_messages_to_anthropic(messages)
            opts = anthropic_options(opts, system)
            upstream = await client.messages.create(
                model=model, messages=turns, stream=True, **opts
            )
            return self._relay_anthropic(upstream)

    async def _relay_openai(self, upstream: Any) -> AsyncIterator[StreamPiece]:
        try:
            with self._errors("openai"):
                async for line in upstream.iter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, comments, event names
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
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
            await upstream.close()

    async def _relay_anthropic(self, upstream: Any) -> AsyncIterator[StreamPiece]:
        """Anthropic's events translated into OpenAI chunks, so one client reads both."""
        state = {"id": "", "model": "", "prompt": 0, "completion": 0}
        try:
            with self._errors("anthropic"):
                async for event in upstream:
                    piece = anthropic_piece(event, state)
                    if piece is not None:
                        yield piece
        finally:
            await upstream.close()

    # -- errors ------------------------------------------------------------------------------
    def _errors(self, provider: str) -> ErrorMap:
        return ErrorMap(provider, self.config.timeout_s, self.config.keys.values())
