"""helpers.client.provider_errors: every way an SDK call fails becomes one typed error.

The SDKs' own exception objects are built here as the SDKs build them (a request, a
response with a status and a body), so the table is what an application meets.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import anthropic
import httpx2
import openai
import pytest

from helpers.client.provider_errors import failure_types, provider_error
from helpers.errors import (
    HelperError,
    ProviderBadReply,
    ProviderError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
)

URL = {
    "openai": "http://127.0.0.1:5/v1/chat/completions",
    "anthropic": "http://127.0.0.1:5/v1/messages",
}
SDK = {"openai": openai, "anthropic": anthropic}


def _request(provider: str) -> httpx2.Request:
    return httpx2.Request("POST", URL[provider])


#: The SDKs' public classes by status (both SDKs name them alike); the rest: APIStatusError.
STATUS_CLASSES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    408: "RequestTimeoutError",
    429: "RateLimitError",
    500: "InternalServerError",
    529: "OverloadedError",
}


def status_error(provider: str, code: int, message: str) -> BaseException:
    """The SDK's exception for an HTTP ``code`` answered with the provider's error body."""
    response = httpx2.Response(code, request=_request(provider))
    body = {"error": {"message": message, "type": "some_error"}}
    sdk = SDK[provider]
    cls = getattr(sdk, STATUS_CLASSES.get(code, "APIStatusError"), sdk.APIStatusError)
    return cls(f"Error code: {code}", response=response, body=body)


def refused(provider: str) -> Callable[[], BaseException]:
    def make() -> BaseException:
        try:
            try:
                raise httpx2.ConnectError("[Errno 111] Connection refused")
            except httpx2.ConnectError as cause:
                raise SDK[provider].APIConnectionError(request=_request(provider)) from cause
        except SDK[provider].APIConnectionError as exc:
            return exc

    return make


def timed_out(provider: str) -> Callable[[], BaseException]:
    return lambda: SDK[provider].APITimeoutError(request=_request(provider))


def mid_stream_openai() -> BaseException:
    # What the openai SDK raises for an SSE event carrying "error": no status of its own.
    return openai.APIError("The server had an error", _request("openai"), body={"message": "x"})


def mid_stream_anthropic() -> BaseException:
    # The anthropic SDK raises an error event as a status error with the stream's 200.
    response = httpx2.Response(200, request=_request("anthropic"))
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    return anthropic.APIStatusError("Overloaded", response=response, body=body)


def not_json() -> BaseException:
    return json.JSONDecodeError("Expecting value", '{"id": "chatcmpl-1", "choices": [', 33)


def not_validated() -> BaseException:
    response = httpx2.Response(200, request=_request("openai"))
    return openai.APIResponseValidationError(response, {"id": 5}, message="id is not a string")


@pytest.mark.parametrize(
    ("provider", "code", "words", "expected", "fragment"),
    [
        ("anthropic", 408, "Request timed out", ProviderTimeout, "try again later"),
        ("openai", 404, "Invalid URL", ProviderRejected, "check the base URL"),
        ("openai", 401, "Incorrect API key", ProviderRejected, "check the API key"),
        ("anthropic", 403, "No access", ProviderRejected, "may use this model"),
        ("openai", 400, "max_tokens too large", ProviderRejected, "fix the request"),
        ("openai", 429, "Rate limit reached", ProviderRateLimited, "wait and retry"),
        ("anthropic", 429, "Too many requests", ProviderRateLimited, "wait and retry"),
        ("openai", 500, "The server had an error", ProviderServerError, "try again later"),
        ("openai", 503, "Service unavailable", ProviderServerError, "try again later"),
        ("anthropic", 529, "Overloaded", ProviderServerError, "try again later"),
    ],
)
def test_each_status_maps_to_its_type_with_the_providers_words(
    provider: str, code: int, words: str, expected: type[ProviderError], fragment: str
) -> None:
    error = provider_error(status_error(provider, code, words), provider, latency_ms=12.5)
    assert type(error) is expected and error.status == code and error.provider == provider
    assert words in error.message and fragment in error.message, error.message
    assert str(error).startswith(f"{provider} answered {code}: {words}")
    assert error.latency_ms == 12.5 and error.context_id is None


@pytest.mark.parametrize(
    ("provider", "make", "expected", "fragment"),
    [
        ("openai", refused("openai"), ProviderUnavailable, "Connection refused"),
        ("anthropic", refused("anthropic"), ProviderUnavailable, "check the base URL"),
        ("openai", timed_out("openai"), ProviderTimeout, "raise timeout="),
        ("anthropic", timed_out("anthropic"), ProviderTimeout, "raise timeout="),
        ("openai", mid_stream_openai, ProviderServerError, "failed mid-stream"),
        ("anthropic", mid_stream_anthropic, ProviderServerError, "Overloaded"),
        ("openai", not_validated, ProviderBadReply, "could not validate"),
        ("openai", not_json, ProviderBadReply, "not JSON"),
        (
            "openai",
            lambda: AttributeError("'str' has no 'choices'"),
            ProviderBadReply,
            "completion",
        ),
        ("anthropic", lambda: TypeError("'NoneType' is not iterable"), ProviderBadReply, "message"),
    ],
)
def test_each_failure_without_a_status_maps_to_its_type(
    provider: str, make: Callable[[], BaseException], expected: type[ProviderError], fragment: str
) -> None:
    error = provider_error(make(), provider, latency_ms=12.5)
    assert type(error) is expected and error.status is None and error.provider == provider
    assert fragment in error.message, error.message
    assert str(error).startswith(f"{provider}: ")
    assert error.latency_ms == 12.5 and error.context_id is None


def test_the_provider_s_own_words_are_quoted() -> None:
    error = provider_error(status_error("openai", 404, "Invalid URL (POST /v1/v1/chat)"), "openai")
    assert "Invalid URL (POST /v1/v1/chat)" in error.message
    assert URL["openai"] in error.message  # where the request went


@pytest.mark.parametrize(
    ("raised", "expected", "fragment"),
    [
        (httpx2.RemoteProtocolError("incomplete chunked read"), ProviderBadReply, "broke off"),
        (httpx2.ReadTimeout("timed out"), ProviderTimeout, "after 3 streamed pieces"),
        (RuntimeError("Unexpected event order"), ProviderBadReply, "after 3 streamed pieces"),
    ],
)
def test_a_stream_that_breaks_off_says_how_far_it_got(
    raised: BaseException, expected: type[ProviderError], fragment: str
) -> None:
    error = provider_error(raised, "anthropic", streamed=3, prompt_tokens=14, completion_tokens=2)
    assert type(error) is expected and fragment in error.message, error.message
    assert (error.prompt_tokens, error.completion_tokens) == (14, 2)


def test_a_connection_error_before_any_stream_is_unavailable_not_a_bad_reply() -> None:
    error = provider_error(httpx2.RemoteProtocolError("Server disconnected"), "openai")
    assert type(error) is ProviderUnavailable


def test_a_typed_error_passes_through_unchanged() -> None:
    original = ProviderRateLimited("openai", "slow down", status=429)
    assert provider_error(original, "openai") is original


def test_the_tree_is_one_hierarchy() -> None:
    for leaf in (ProviderRejected, ProviderRateLimited, ProviderServerError):
        assert issubclass(leaf, ProviderHTTPError)
    for kind in (ProviderUnavailable, ProviderTimeout, ProviderBadReply, ProviderHTTPError):
        assert issubclass(kind, ProviderError) and issubclass(kind, HelperError)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_failure_types_catch_the_sdk_transport_and_json_but_not_a_callers_bug(
    provider: str,
) -> None:
    caught = failure_types(provider)
    for exc in (refused(provider)(), httpx2.ReadError("reset"), json.JSONDecodeError("x", "", 0)):
        assert isinstance(exc, caught)
    for bug in (TypeError("create() got an unexpected keyword argument"), KeyError("role")):
        assert not isinstance(bug, caught)
