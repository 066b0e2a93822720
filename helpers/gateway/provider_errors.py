"""How proxy mode's provider calls fail: one :class:`ProviderError` for every SDK exception.

The ``kind`` says which way a call failed (``no_key``, ``timeout``, ``unreachable``,
``status``, ``bad_response``, ``unknown``); the message names the provider and what to do.
The HTTP layer turns it into its contract's shape, never a traceback. Introduced in
``11_proxy_mode.ipynb``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

__all__ = ["ErrorMap", "ProviderError"]


class ProviderError(Exception):
    """An LLM call that did not produce an answer; ``kind`` says which way it failed."""

    def __init__(self, provider: str, kind: str, message: str, status: int | None = None):
        super().__init__(message)
        self.provider = provider
        self.kind = kind
        self.message = message
        self.status = status


class ErrorMap:
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
    import httpx2  # the HTTP client under openai and anthropic; raw streams raise its errors
    import openai

    name = "OpenAI" if provider == "openai" else "Anthropic"
    if isinstance(exc, orjson.JSONDecodeError):
        return ProviderError(provider, "bad_response", f"{name} sent a chunk that is not JSON")
    if isinstance(
        exc, openai.APITimeoutError | anthropic.APITimeoutError | httpx2.TimeoutException
    ):
        return ProviderError(
            provider, "timeout", f"{name} did not answer within {timeout_s:g} s (timed out)"
        )
    if isinstance(
        exc, openai.APIConnectionError | anthropic.APIConnectionError | httpx2.TransportError
    ):
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
