"""How a failed LLM call becomes one typed error: the SDKs' exceptions, mapped once.

The ``openai`` and ``anthropic`` SDKs raise their own exception families, and below them
their HTTP client's (a stream that breaks off, a read that times out) and ``json``'s (a
body that is not JSON). :func:`provider_error` turns any of them into one
:class:`~helpers.errors.ProviderError` subclass whose message says what failed, with the
provider's status and own words, and what to do:

======================================  ==================================================
what happened                           error
======================================  ==================================================
connection refused, reset, no host      :class:`~helpers.errors.ProviderUnavailable`
no answer (or next chunk) in time, 408  :class:`~helpers.errors.ProviderTimeout`
429                                     :class:`~helpers.errors.ProviderRateLimited`
other 4xx (400, 401, 403, 404, ...)     :class:`~helpers.errors.ProviderRejected`
5xx, 529, an error event mid-stream     :class:`~helpers.errors.ProviderServerError`
not JSON, not a completion, a stream
that broke off after it began           :class:`~helpers.errors.ProviderBadReply`
======================================  ==================================================

The SDK has done its own retries by then (``max_retries``); nothing here retries again.
:func:`helpers.client.call_llm` raises these, and ``governed_completion`` audits them before
passing them on. Introduced in ``10_real_application.ipynb``.

>>> provider_error(json.JSONDecodeError("Expecting value", "{", 1), "openai").message
"sent a body that is not JSON (Expecting value: line 1 column 2 (char 1)); is the base URL \
the provider's API?"
"""

from __future__ import annotations

import functools
import importlib
import json
from dataclasses import dataclass
from typing import Any

from helpers.errors import (
    ProviderBadReply,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
)

__all__ = ["failure_types", "provider_error"]

#: What each provider's SDK returns for one chat.
_ANSWER = {"openai": "chat completion", "anthropic": "message"}
#: What to do about a refused request, by status; other 4xx get the generic advice.
_REJECTED_ADVICE = {
    401: "check the API key",
    403: "check that the key may use this model",
    404: "check the base URL (the API root ending in /v1 once, for OpenAI) and the model name",
}


@dataclass(frozen=True)
class _Families:
    """One SDK's exception classes, and its HTTP client's, sorted by what they mean."""

    failure: tuple[type[BaseException], ...]  # anything that means the call failed
    timeout: tuple[type[BaseException], ...]
    connection: tuple[type[BaseException], ...]
    status: type[BaseException]  # an HTTP error status (4xx/5xx; 200 for a mid-stream event)
    api: type[BaseException]  # the SDK's errors that came with a response
    validation: type[BaseException]  # a 2xx body the SDK could not validate


@functools.cache
def _families(provider: str) -> _Families:
    sdk = importlib.import_module(provider)
    base = sdk.OpenAIError if provider == "openai" else sdk.AnthropicError
    # The SDKs read streams through httpx2 (older releases: httpx), whose errors a broken
    # stream raises as they are.
    http = []
    for name in ("httpx2", "httpx"):
        try:
            http.append(importlib.import_module(name))
        except ImportError:
            continue
    timeouts = tuple(m.TimeoutException for m in http)
    transport = tuple(m.TransportError for m in http)
    return _Families(
        failure=(base, *transport, json.JSONDecodeError),
        timeout=(sdk.APITimeoutError, *timeouts),
        connection=(sdk.APIConnectionError, *transport),
        status=sdk.APIStatusError,
        api=sdk.APIError,
        validation=sdk.APIResponseValidationError,
    )


def failure_types(provider: str) -> tuple[type[BaseException], ...]:
    """The exceptions that mean the provider call failed (not a bug in the caller's code):
    the SDK's own family, its HTTP client's transport errors, and a body that is not JSON."""
    return _families(provider).failure


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _root(exc: BaseException) -> str:
    """The lowest cause, named: ``ConnectError: [Errno 111] Connection refused``."""
    last = _chain(exc)[-1]
    text = str(last).strip()
    return f"{type(last).__name__}: {text}" if text else type(last).__name__


def _provider_words(exc: Any) -> str:
    """The provider's own message from an error body (OpenAI and Anthropic both nest it in
    ``error.message``), else the SDK's text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
    return str(getattr(exc, "message", None) or exc)


def _url(exc: Any) -> str:
    try:
        request = getattr(exc, "request", None)
    except RuntimeError:  # an httpx error raised before it was tied to a request
        return ""
    return f"{request.method} {request.url}" if request is not None else ""


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def provider_error(
    exc: BaseException,
    provider: str,
    *,
    latency_ms: float = 0.0,
    streamed: int | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> ProviderError:
    """The typed error for ``exc``, raised by ``provider``'s SDK or while reading its reply.

    What the call had produced goes on the error, for its audit: ``latency_ms`` until the
    failure, ``streamed`` (``None`` unless a stream had begun: then the pieces received) and
    the tokens reported so far. A :class:`ProviderError` is returned as it is.
    """
    if isinstance(exc, ProviderError):
        return exc
    error_type, status, message = _classify(exc, provider, streamed)
    return error_type(
        provider,
        message,
        status=status,
        latency_ms=latency_ms,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


def _classify(
    exc: BaseException, provider: str, streamed: int | None
) -> tuple[type[ProviderError], int | None, str]:
    sdk = _families(provider)
    words = _short(_provider_words(exc))
    if isinstance(exc, sdk.validation):
        return ProviderBadReply, None, f"sent a reply the SDK could not validate ({words})"
    if isinstance(exc, json.JSONDecodeError):
        message = f"sent a body that is not JSON ({exc}); is the base URL the provider's API?"
        return ProviderBadReply, None, message
    if isinstance(exc, sdk.timeout):
        where = f" after {_pieces(streamed)}" if streamed is not None else ""
        message = f"no answer within the SDK's timeout{where}; raise timeout= or try later"
        return ProviderTimeout, None, message
    status = getattr(exc, "status_code", None)
    if isinstance(exc, sdk.status) and isinstance(status, int) and status >= 400:
        return _status_error(status, words, _url(exc))
    if isinstance(exc, sdk.api) and not isinstance(exc, sdk.connection):
        # An error event in the middle of a stream: its HTTP status was 200 long ago.
        return ProviderServerError, None, f"failed mid-stream: {words}; try again later"
    if streamed is not None:  # the provider had answered: a break is a bad reply
        message = f"the stream broke off after {_pieces(streamed)} ({_root(exc)})"
        return ProviderBadReply, None, message
    if isinstance(exc, sdk.connection):
        where = _url(exc) or "the base URL"
        message = (
            f"no answer from {where} ({_root(exc)}); check the base URL and that the provider is up"
        )
        return ProviderUnavailable, None, message
    message = (
        f"sent a reply that is not a {_ANSWER[provider]} ({type(exc).__name__}: {words}); "
        "is the base URL the provider's API?"
    )
    return ProviderBadReply, None, message


def _pieces(n: int) -> str:
    return f"{n} streamed piece" if n == 1 else f"{n} streamed pieces"


def _status_error(status: int, words: str, url: str) -> tuple[type[ProviderError], int, str]:
    at = f" (at {url})" if url else ""
    if status == 408:
        return ProviderTimeout, status, f"{words}{at}; try again later"
    if status == 429:
        return ProviderRateLimited, status, f"{words}; wait and retry, or raise the rate limit"
    if status >= 500:
        return ProviderServerError, status, f"{words}; the provider failed, try again later"
    advice = _REJECTED_ADVICE.get(status, "fix the request; sending it again will not help")
    return ProviderRejected, status, f"{words}{at}; {advice}"
