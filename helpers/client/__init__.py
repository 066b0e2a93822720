"""The client an application copies: pre-check and audit against any gateway-mode API.

This room holds what runs inside *your* application: :class:`GatewayClient` (async, httpx or
aiohttp) and :class:`SyncGatewayClient` with the transports they send through, all in
``gateway_client.py``, and the frozen result types they return (``results.py``);
:class:`AuditQueue` for audits sent off the request path; and :func:`governed_completion`:
the three steps around a real ``openai``/``anthropic`` SDK call, with a
:class:`GatewayGuard` (timeout, :class:`CircuitBreaker`, fail closed or fail open). It speaks
AxonFlow's wire format, so the same code works against the embedded gateway or a real
AxonFlow deployment.

May import: :mod:`helpers.errors` (and :mod:`helpers.settings`, which the client itself does
not: ``gateway_client.py`` and ``results.py`` need only ``helpers/errors.py``, and read no
``.env``). Never the gateway, the stand-ins, the lab or the trail: an application that copies
this folder gets no server code.
The rule is an import-linter contract in ``pyproject.toml``, checked by ``make lint`` and
``tests/test_architecture.py``.

>>> from helpers.client import SyncGatewayClient, TokenUsage
>>> TokenUsage(12, 40).total_tokens
52
"""

from __future__ import annotations

from .audit_queue import AuditJob, AuditQueue, AuditQueueStats
from .breaker import CircuitBreaker
from .gateway_client import (
    DEFAULT_URL,
    AiohttpTransport,
    AsyncTransport,
    GatewayClient,
    HttpxTransport,
    SyncGatewayClient,
    SyncHttpxTransport,
)
from .governed import (
    Governed,
    governed_completion,
    governed_completion_sync,
    last_user_text,
    pre_check_tool_call,
    tool_call_query,
)
from .guard import UNAVAILABLE_MESSAGE, DeferredAudit, FlushReport, GatewayDown, GatewayGuard
from .official import official_sdk
from .providers import LLMReply, ToolCall, call_llm, call_llm_sync, list_models
from .redaction import placeholder_map, restore_placeholders
from .reply_stream import ReplyStream
from .results import (
    AuditResult,
    Explanation,
    HealthResult,
    PreCheckResult,
    RateLimitInfo,
    ReplyCheck,
    TokenUsage,
)

__all__ = [
    "DEFAULT_URL",
    "UNAVAILABLE_MESSAGE",
    "AiohttpTransport",
    "AsyncTransport",
    "AuditJob",
    "AuditQueue",
    "AuditQueueStats",
    "AuditResult",
    "CircuitBreaker",
    "DeferredAudit",
    "Explanation",
    "FlushReport",
    "GatewayClient",
    "GatewayDown",
    "GatewayGuard",
    "Governed",
    "HealthResult",
    "HttpxTransport",
    "LLMReply",
    "PreCheckResult",
    "ReplyCheck",
    "ReplyStream",
    "RateLimitInfo",
    "SyncGatewayClient",
    "SyncHttpxTransport",
    "TokenUsage",
    "placeholder_map",
    "restore_placeholders",
    "ToolCall",
    "call_llm",
    "call_llm_sync",
    "governed_completion",
    "governed_completion_sync",
    "last_user_text",
    "list_models",
    "official_sdk",
    "pre_check_tool_call",
    "tool_call_query",
]
