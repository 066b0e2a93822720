"""The governed chat service: routes, the lifespan that owns the clients, error mapping.

``POST /chat`` takes ``{"user": str, "message": str, "history": [{"role", "content"}]?}``
and answers ``{"outcome", "answer", "context_id", "pre_check_ms", "total_ms"}``:

=====================  ======  ==========================================================
outcome                status  meaning
=====================  ======  ==========================================================
``answered``           200     approved, the model answered, the audit is queued
``answered_unchecked`` 200     gateway down and fail-open configured; audited later
``blocked``            403     a policy refused the message; ``answer`` says why
``unavailable``        503     gateway down, fail closed: nothing reached the model
``provider_error``     502     the model's provider failed (refused, 4xx, 5xx, bad reply)
``provider_error``     504     the model's provider did not answer in time
=====================  ======  ==========================================================

A provider failure answers ``{"outcome": "provider_error", "error", "error_type",
"provider_status", "context_id"}`` after the SDK's own retries: ``error`` says what failed
and what to do, ``error_type`` names the :class:`~helpers.errors.ProviderError` subclass,
and the failed call is audited under ``context_id`` (``outcome: provider_error``). Bad input
is a 400 with ``{"error": ...}``. Neither is ever a 500, and the connection stays open for
the client's next request. ``POST /chat/direct`` (only with ``ChatConfig.baseline``) calls
the model without governance: the baseline that measures the service's governance overhead.
:func:`probe_llm` is what ``python -m helpers.service`` asks the provider before it starts.
Introduced in ``10_real_application.ipynb``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from helpers.client import (
    AuditQueue,
    CircuitBreaker,
    GatewayClient,
    GatewayGuard,
    call_llm,
    governed_completion,
    list_models,
)
from helpers.errors import ProviderError, ProviderTimeout

__all__ = ["ChatConfig", "create_chat_app", "probe_llm"]

log = logging.getLogger("helpers.service")

_STATUS = {"answered": 200, "answered_unchecked": 200, "blocked": 403, "unavailable": 503}
_MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class ChatConfig:
    """Where the service finds its gateway and model, and how it fails."""

    gateway_url: str
    llm_url: str | None = None  # None: the provider's real API (key from the environment)
    provider: str = "openai"
    model: str = "gpt-4o-mini"
    api_key: str = "offline-stand-in"
    llm_timeout_s: float = 60.0  # per attempt; the SDK retries once
    fail_open: bool = False
    pre_check_timeout_s: float = 1.0
    breaker_failures: int = 3
    breaker_reset_s: float = 10.0
    baseline: bool = False
    #: The gateway's credentials: an object with client_id, client_secret and license_key
    #: (the service's ``Settings``); ``None`` is the anonymous "community" client.
    gateway_settings: Any = field(default=None, repr=False)


class BadInput(Exception):
    """The request body is not what ``/chat`` takes; the message says why."""


def _parse(raw: bytes) -> tuple[str, list[dict[str, str]]]:
    if len(raw) > _MAX_BODY:
        raise BadInput(f"body too large: {len(raw)} bytes, limit {_MAX_BODY}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadInput("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadInput("body must be a JSON object")
    user, message, history = body.get("user", ""), body.get("message"), body.get("history", [])
    if not isinstance(message, str) or not message.strip():
        raise BadInput("'message' must be a non-empty string")
    if not isinstance(user, str):
        raise BadInput("'user' must be a string")
    if not isinstance(history, list) or not all(
        isinstance(t, dict)
        and t.get("role") in ("user", "assistant")
        and isinstance(t.get("content"), str)
        for t in history
    ):
        raise BadInput("'history' must be a list of {role: user|assistant, content: str}")
    turns = [{"role": t["role"], "content": t["content"]} for t in history]
    return user, [*turns, {"role": "user", "content": message}]


def _llm_client(config: ChatConfig) -> Any:
    if config.provider == "openai":
        import openai

        base = None if config.llm_url is None else config.llm_url.rstrip("/") + "/v1"
        return openai.AsyncOpenAI(
            api_key=config.api_key, base_url=base, timeout=config.llm_timeout_s, max_retries=1
        )
    if config.provider == "anthropic":
        import anthropic

        return anthropic.AsyncAnthropic(
            api_key=config.api_key,
            base_url=config.llm_url,
            timeout=config.llm_timeout_s,
            max_retries=1,
        )
    raise ValueError(f"provider={config.provider!r}; use 'openai' or 'anthropic'")


async def probe_llm(config: ChatConfig) -> None:
    """Ask the provider for its model list with the service's own client (no tokens spent),
    so a wrong ``--llm-url`` or key shows at start-up, not on a user's first request.
    Raises the :class:`~helpers.errors.ProviderError` the first chat would have met."""
    llm = _llm_client(config)
    try:
        await list_models(llm)
    finally:
        await llm.close()


def _provider_failed(exc: ProviderError) -> Response:
    """502 (504 for a timeout) in the contract's shape; the failure is audited already."""
    log.warning("provider failure (context %s): %s", exc.context_id, exc)
    body = {
        "outcome": "provider_error",
        "error": str(exc),
        "error_type": type(exc).__name__,
        "provider_status": exc.status,
        "context_id": exc.context_id,
    }
    return JSONResponse(body, status_code=504 if isinstance(exc, ProviderTimeout) else 502)


def create_chat_app(config: ChatConfig) -> Starlette:
    """Build the service; the lifespan opens the clients and flushes audits on shutdown."""
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_s)
        state["guard"] = GatewayGuard(
            fail_open=config.fail_open, breaker=breaker, timeout_s=config.pre_check_timeout_s
        )
        state["gw"] = GatewayClient(
            config.gateway_url,
            timeout=config.pre_check_timeout_s * 5,
            settings=config.gateway_settings,
        )
        state["llm"] = _llm_client(config)
        state["audits"] = AuditQueue(state["gw"])
        try:
            yield
        finally:
            await state["audits"].aclose()  # queued audits are sent before we exit
            with contextlib.suppress(Exception):
                await state["guard"].flush(state["gw"])  # fail-open calls, if it is back
            await state["llm"].close()
            await state["gw"].aclose()

    async def chat(request: Request) -> Response:
        try:
            user, messages = _parse(await request.body())
        except BadInput as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            result = await governed_completion(
                state["gw"],
                state["llm"],
                config.model,
                messages,
                user_token=user,
                guard=state["guard"],
                audits=state["audits"],
            )
        except ProviderError as exc:
            return _provider_failed(exc)
        body = {
            "outcome": result.outcome,
            "answer": result.text,
            "context_id": result.decision.context_id if result.decision else None,
            "pre_check_ms": round(result.pre_check_ms, 3),
            "total_ms": round(result.total_ms, 3),
        }
        return JSONResponse(body, status_code=_STATUS[result.outcome])

    async def direct(request: Request) -> Response:
        try:
            _, messages = _parse(await request.body())
        except BadInput as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        t0 = perf_counter()
        try:
            reply = await call_llm(state["llm"], config.model, messages)
        except ProviderError as exc:
            return _provider_failed(exc)
        total = round((perf_counter() - t0) * 1000, 3)
        return JSONResponse({"outcome": "ungoverned", "answer": reply.text, "total_ms": total})

    async def health(request: Request) -> Response:
        guard: GatewayGuard = state["guard"]
        stats = state["audits"].stats
        return JSONResponse(
            {
                "status": "healthy",
                "gateway_circuit": guard.breaker.state,
                "audits_sent": stats.sent,
                "audits_lost": stats.lost,
                "deferred": len(guard.deferred),
            }
        )

    routes = [
        Route("/chat", chat, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
    if config.baseline:
        routes.append(Route("/chat/direct", direct, methods=["POST"]))
    return Starlette(routes=routes, lifespan=lifespan)
