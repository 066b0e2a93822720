"""Every error this package raises, in one small hierarchy.

    HelperError
    ├── ConfigError            a settings value or data file is wrong (names the file and the fix)
    │   ├── PolicyFileError    a custom-policy or user-directory file failed validation
    │   └── PaidCallsNotAllowed  a run would send many billed LLM calls; ALLOW_PAID_RUNS is off
    ├── StorageUnavailable     the gateway's audit store cannot record or read now (disk full,
    │                          read-only, locked, failing or stalled); retry, it recovers itself
    ├── GatewayError           talking to a governance gateway failed
    │   ├── GatewayUnavailable nothing answered at the URL (says how to start the embedded one)
    │   ├── GatewayTimeout     the gateway did not answer in time
    │   └── GatewayHTTPError   the gateway answered 4xx/5xx; carries its status and message
    │       ├── BadRequest     400: the request was rejected; the message says why
    │       └── Unauthorized   401: client id or secret was refused
    └── ProviderError          an LLM call failed, after the SDK's own retries
        ├── ProviderUnavailable  nothing answered at the provider's base URL
        ├── ProviderTimeout      no answer, or no next chunk, within the SDK's timeout
        ├── ProviderBadReply     an answer that is not the provider's protocol: not JSON,
        │                        not a completion, or a stream that broke off
        └── ProviderHTTPError    the provider answered 4xx/5xx; carries its status and message
            ├── ProviderRejected     4xx: the request, key, model or base URL is wrong
            ├── ProviderRateLimited  429: too many requests or tokens for now
            └── ProviderServerError  5xx (529: Anthropic overloaded), or an error mid-stream

A blocked pre-check is *not* an error: it is an ordinary result with ``approved=False``.
A :class:`ProviderError` raised by :func:`helpers.client.governed_completion` has been
audited already (``outcome: provider_error``); its ``context_id`` names the pre-check.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "ConfigError",
    "GatewayError",
    "GatewayHTTPError",
    "GatewayTimeout",
    "GatewayUnavailable",
    "HelperError",
    "PaidCallsNotAllowed",
    "PolicyFileError",
    "ProviderBadReply",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderRateLimited",
    "ProviderRejected",
    "ProviderServerError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "StorageUnavailable",
    "Unauthorized",
]


class HelperError(Exception):
    """Base class for every error raised by :mod:`helpers`."""


class ConfigError(HelperError):
    """A setting or data file is invalid. The message names the file/value and the fix."""


class PaidCallsNotAllowed(ConfigError):
    """A run would send more than a handful of billed LLM calls and nobody opted in.

    The message gives the number of calls and a rough cost, and says how to opt in.
    """


class PolicyFileError(ConfigError):
    """A YAML policy or user file failed validation.

    ``path``, ``rule`` and ``problem`` are kept separately so callers can show them.
    """

    def __init__(self, path: str, problem: str, rule: str | None = None) -> None:
        self.path = str(path)
        self.rule = rule
        self.problem = problem
        where = f"{self.path}, rule {rule!r}" if rule else self.path
        super().__init__(f"{where}: {problem}")


class StorageUnavailable(HelperError):
    """The audit store cannot record (or read) right now; nothing was acknowledged.

    ``reason`` says which part failed and how (``"acknowledgement log: disk full ([Errno 28]
    No space left on device)"``); ``retry_after_s`` is when to try again. Raised by the
    gateway's store (:mod:`helpers.gateway.store.health`), answered as a 503 with
    ``Retry-After``; the store recovers by itself once the fault clears.
    """

    def __init__(self, reason: str, retry_after_s: int = 1) -> None:
        self.reason = reason
        self.retry_after_s = retry_after_s
        super().__init__(f"storage unavailable: {reason}")


class GatewayError(HelperError):
    """Talking to a governance gateway failed."""


class GatewayUnavailable(GatewayError):
    """Nothing answered at the gateway URL."""


class GatewayTimeout(GatewayError):
    """The gateway did not answer within the client's timeout."""


class GatewayHTTPError(GatewayError):
    """The gateway answered with an error status; ``message`` is the server's own text."""

    def __init__(self, status_code: int, message: str, url: str = "") -> None:
        self.status_code = status_code
        self.message = message
        self.url = url
        super().__init__(f"{status_code} from {url or 'gateway'}: {message}")


class BadRequest(GatewayHTTPError):
    """400: the gateway rejected the request body."""


class Unauthorized(GatewayHTTPError):
    """401: the gateway refused the client id or secret."""


class ProviderError(HelperError):
    """An LLM provider call failed after the SDK's own retries.

    ``provider`` is ``"openai"`` or ``"anthropic"``; ``status`` the provider's HTTP status
    (``None`` when it never answered with one); ``message`` what failed and what to do.
    What the failed call cost, for its audit: ``latency_ms`` (until the failure, retries
    included) and the tokens the provider reported before it failed (zero unless a stream
    broke off after its usage began). ``context_id`` is the pre-check the call ran under,
    set by :func:`helpers.client.governed_completion` (``None`` outside it).

    >>> ProviderRateLimited("openai", "Rate limit reached; wait and retry", status=429)
    ProviderRateLimited('openai answered 429: Rate limit reached; wait and retry')
    """

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        latency_ms: float = 0.0,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        self.provider = provider
        self.message = message
        self.status = status
        self.latency_ms = latency_ms
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.context_id: str | None = None
        where = f"{provider} answered {status}" if status is not None else provider
        super().__init__(f"{where}: {message}")


class ProviderUnavailable(ProviderError):
    """Nothing answered at the provider's base URL (refused, reset, unknown host)."""


class ProviderTimeout(ProviderError):
    """The provider did not answer, or stopped streaming, within the SDK's timeout."""


class ProviderBadReply(ProviderError):
    """The provider answered, but not with a usable reply: not JSON, not a completion, or a
    stream that ended before the model finished."""


class ProviderHTTPError(ProviderError):
    """The provider answered with an error status; ``message`` quotes its own text."""


class ProviderRejected(ProviderHTTPError):
    """4xx other than 429: the request, the key, the model or the base URL is wrong; sending
    it again will not help."""


class ProviderRateLimited(ProviderHTTPError):
    """429: too many requests or tokens for now; the SDK's retries were not enough."""


class ProviderServerError(ProviderHTTPError):
    """5xx (Anthropic's 529 "overloaded" included), or an error event in the middle of a
    stream: the provider's own failure, worth retrying later."""
