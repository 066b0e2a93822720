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
Introduced in ``10_proxy_mode.ipynb``.

>>> ProviderConfig.from_env({"OPENAI_API_KEY": "k"}).has_key("openai")
True
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from helpers.errors import ConfigError

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
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-20241022"}
DEFAULT_MAX_TOKENS = 1024  # Anthropic requires max_tokens; OpenAI gets it only when asked


def provider_for_model(model: str) -> str:
    """Which provider serves ``model``: Claude models go to Anthropic, the rest to OpenAI."""
    return "anthropic" if model.lower().startswith("claude") else "openai"


class ProviderError(Exception):
    """An LLM call that did not produce an answer; ``kind`` says which way it failed."""

    def __init__(self, provider: str, kind: str, message: str, status: int | None = None):
        super().__init__(message)
        self.provider = provider
        self.kind = kind
        self.message = message
        self.status = status


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


def _openai_messages_to_anthropic(
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


def _anthropic_options(opts: dict[str, Any], system: str | None) -> dict[str, Any]:
    """OpenAI-style options for ``messages.create``. The Anthropic SDK no longer takes
    ``temperature`` or ``top_p`` as arguments, so they travel in the body as the API reads
    them; ``stop`` becomes ``stop_sequences``; OpenAI-only knobs are left out."""
    out: dict[str, Any] = {"max_tokens": opts.get("max_tokens") or DEFAULT_MAX_TOKENS}
    if system is not None:
        out["system"] = system
    extra = {k: opts[k] for k in ("temperature", "top_p") if k in opts}
    if extra:
        out["extra_body"] = extra
    stop = opts.get("stop")
    if stop is not None:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    return out


_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


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
            system, turns = _openai_messages_to_anthropic(messages)
            opts = _anthropic_options(opts, system)
            message = await client.messages.create(model=model, messages=turns, **opts)
            text = "".join(getattr(b, "text", "") for b in message.content)
            finish = _STOP.get(message.stop_reason or "", "stop")
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
                upstream = await client.chat.completions.create(
                    model=model,
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                    **opts,
                )
                return self._relay_openai(upstream)
            system, turns = _openai_messages_to_anthropic(messages)
            opts = _anthropic_options(opts, system)
            upstream = await client.messages.create(
                model=model, messages=turns, stream=True, **opts
            )
            return self._relay_anthropic(upstream)

    async def _relay_openai(self, upstream: Any) -> AsyncIterator[StreamPiece]:
        try:
            with self._errors("openai"):
                async for chunk in upstream:
                    data = chunk.model_dump(mode="json", exclude_unset=True)
                    text = "".join((c.delta.content or "") for c in chunk.choices if c.delta)
                    usage = chunk.usage
                    counts = (usage.prompt_tokens, usage.completion_tokens) if usage else None
                    yield StreamPiece(data, text, counts)
        finally:
            await upstream.close()

    async def _relay_anthropic(self, upstream: Any) -> AsyncIterator[StreamPiece]:
        """Anthropic's events translated into OpenAI chunks, so one client reads both."""
        state = {"id": "", "model": "", "prompt": 0, "completion": 0}
        try:
            with self._errors("anthropic"):
                async for event in upstream:
                    piece = _anthropic_piece(event, state)
                    if piece is not None:
                        yield piece
        finally:
            await upstream.close()

    # -- errors ------------------------------------------------------------------------------
    def _errors(self, provider: str) -> _ErrorMap:
        return _ErrorMap(provider, self.config.timeout_s)


def _anthropic_piece(event: Any, state: dict[str, Any]) -> StreamPiece | None:
    """One Anthropic stream event as an OpenAI chunk (``state`` carries id, model, usage)."""
    delta: dict[str, Any] | None = None
    finish, text, usage = None, "", None
    if event.type == "message_start":
        state.update(id=event.message.id, model=event.message.model)
        state["prompt"] = event.message.usage.input_tokens
        delta = {"role": "assistant", "content": ""}
    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
        text = event.delta.text
        delta = {"content": text}
    elif event.type == "message_delta":
        state["completion"] = event.usage.output_tokens
        delta, finish = {}, _STOP.get(event.delta.stop_reason or "", "stop")
    elif event.type == "message_stop":
        usage = (state["prompt"], state["completion"])
    else:
        return None
    chunk: dict[str, Any] = {"id": state["id"], "object": "chat.completion.chunk", "created": 0,
                             "model": state["model"]}  # fmt: skip
    if usage is None:
        chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    else:
        chunk["choices"] = []
        chunk["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                          "total_tokens": sum(usage)}  # fmt: skip
    return StreamPiece(chunk, text, usage)


class _ErrorMap:
    """Turns the SDKs' exceptions into :class:`ProviderError` (a context manager)."""

    def __init__(self, provider: str, timeout_s: float) -> None:
        self.provider = provider
        self.timeout_s = timeout_s

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool:
        if exc is None or isinstance(exc, ProviderError | GeneratorExit):
            return False
        if not isinstance(exc, Exception):
            return False  # cancellation and interrupts pass through
        raise _translate(self.provider, exc, self.timeout_s) from exc


def _translate(provider: str, exc: Exception, timeout_s: float) -> ProviderError:
    import anthropic
    import openai

    name = "OpenAI" if provider == "openai" else "Anthropic"
    if isinstance(exc, openai.APITimeoutError | anthropic.APITimeoutError):
        return ProviderError(
            provider, "timeout", f"{name} did not answer within {timeout_s:g} s (timed out)"
        )
    if isinstance(exc, openai.APIConnectionError | anthropic.APIConnectionError):
        return ProviderError(
            provider,
            "unreachable",
            f"{name} is unreachable ({type(exc.__cause__ or exc).__name__}); "
            f"check {provider.upper()}_BASE_URL and the network",
        )
    if isinstance(exc, openai.APIStatusError | anthropic.APIStatusError):
        return ProviderError(
            provider,
            "status",
            f"{name} answered HTTP {exc.status_code}: {_short(exc.message)}",
            status=exc.status_code,
        )
    if isinstance(exc, openai.APIError | anthropic.APIError):
        return ProviderError(provider, "status", f"{name} failed: {_short(str(exc))}")
    logging.getLogger("helpers.gateway.providers").warning(
        "unexpected failure calling %s", provider, exc_info=exc
    )
    return ProviderError(
        provider, "bad_response", f"{name} answered something unexpected ({type(exc).__name__})"
    )


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
