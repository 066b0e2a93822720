"""How proxy mode's provider calls fail: one :class:`ProviderError` for every failure.

The ``kind`` says which way a call failed (``no_key``, ``timeout``, ``unreachable``,
``status``, ``bad_response``, ``unknown``); the message names the provider and what to do.
The HTTP layer turns it into its contract's shape, never a traceback.

Provider keys never leave the gateway: a provider's message that echoes one (OpenAI's
"Incorrect API key provided: sk-...") is masked by :func:`mask_keys` before it becomes a
:class:`ProviderError`, so it reaches no reply, log line or audit row. Introduced in
``11_proxy_mode.ipynb``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import orjson

from .upstream import UpstreamProtocolError, UpstreamTimeout, UpstreamUnreachable

__all__ = ["KEY_MASK", "ErrorMap", "ProviderError", "mask_keys"]

#: What stands in a message where a provider key was.
KEY_MASK = "[provider key]"
# Key-shaped text, whoever's key it is: OpenAI's sk-, sk-proj-, sk-svcacct-, Anthropic's
# sk-ant-..., including the partly starred echo OpenAI sends back.
_KEY_SHAPED = re.compile(r"\bsk-[A-Za-z0-9_\-*]{6,}")
# Shorter configured keys are not searched for verbatim: they would mask ordinary words.
_MIN_EXACT = 8


def mask_keys(text: str, keys: Iterable[str] = ()) -> str:
    """``text`` with every configured key in ``keys`` and anything key-shaped masked.

    >>> mask_keys("Incorrect API key provided: sk-proj-abc123*****wxyz.")
    'Incorrect API key provided: [provider key].'
    """
    for key in keys:
        if len(key) >= _MIN_EXACT:
            text = text.replace(key, KEY_MASK)
    return _KEY_SHAPED.sub(KEY_MASK, text)


class ProviderError(Exception):
    """An LLM call that did not produce an answer; ``kind`` says which way it failed."""

    def __init__(self, provider: str, kind: str, message: str, status: int | None = None):
        message = mask_keys(message)
        super().__init__(message)
        self.provider = provider
        self.kind = kind
        self.message = message
        self.status = status


class ErrorMap:
    """Turns the failures of a provider call (the transport's :class:`~.upstream.UpstreamError`,
    a body that is not JSON or not the expected shape) into :class:`ProviderError` (a context
    manager), with the gateway's provider ``keys`` masked in every message."""

    def __init__(self, provider: str, timeout_s: float, keys: Iterable[str] = ()) -> None:
        self.provider = provider
        self.timeout_s = timeout_s
        self.keys = tuple(keys)

    def __repr__(self) -> str:
        return f"<ErrorMap {self.provider} keys={len(self.keys)}>"

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool:
        if exc is None or isinstance(exc, GeneratorExit):
            return False
        if isinstance(exc, ProviderError):  # raised by the relay: mask the keys it may quote
            exc.message = mask_keys(exc.message, self.keys)
            exc.args = (exc.message,)
            return False
        if not isinstance(exc, Exception):
            return False  # cancellation and interrupts pass through
        error = _translate(self.provider, exc, self.timeout_s, self.keys)
        error.message = mask_keys(error.message, self.keys)
        error.args = (error.message,)
        raise error from None  # the original exception would carry the unmasked text


def _translate(
    provider: str, exc: Exception, timeout_s: float, keys: tuple[str, ...]
) -> ProviderError:
    name = "OpenAI" if provider == "openai" else "Anthropic"
    if isinstance(exc, orjson.JSONDecodeError):
        return ProviderError(provider, "bad_response", f"{name} sent an answer that is not JSON")
    if isinstance(exc, UpstreamTimeout):
        return ProviderError(
            provider, "timeout", f"{name} did not answer within {timeout_s:g} s (timed out)"
        )
    if isinstance(exc, UpstreamUnreachable):
        return ProviderError(
            provider,
            "unreachable",
            f"{name} is unreachable ({exc}); check {provider.upper()}_BASE_URL and the network",
        )
    if isinstance(exc, UpstreamProtocolError):
        return ProviderError(
            provider,
            "bad_response",
            f"{name} answered something that is not HTTP; check {provider.upper()}_BASE_URL",
        )
    if isinstance(exc, KeyError | IndexError | TypeError | AttributeError):
        return ProviderError(
            provider, "bad_response", f"{name} answered JSON that is not a chat answer"
        )
    # No traceback: its text is the exception's, which may quote a key.
    logging.getLogger("helpers.gateway.providers").warning(
        "unexpected failure calling %s: %s: %s",
        provider,
        type(exc).__name__,
        mask_keys(str(exc), keys),
    )
    return ProviderError(
        provider, "bad_response", f"{name} answered something unexpected ({type(exc).__name__})"
    )
