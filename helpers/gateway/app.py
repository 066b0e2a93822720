"""The gateway's ASGI app: routes, handlers, and the lifespan that owns the audit store.

Part A of ``GATEWAY-CONTRACT`` on the wire (pre-check, audit, health, error shapes), plus
this project's extensions: ``/prometheus``, ``/api/policies/reload`` and the read endpoints
(``/api/audit/records``, ``/api/audit/verify``, ``/api/audit/export``, in :mod:`.readback`,
which read in another process). Handlers never let an exception escape: client mistakes become the
contract's 4xx JSON, a storage failure becomes a 503 that acknowledges nothing.

Starlette does the routing (404/405) and the lifespan. The endpoints themselves are plain
ASGI callables (:class:`Endpoint`) rather than Starlette request/response functions: on the
pre-check path Starlette's ``Request`` and ``JSONResponse`` objects cost about as much as the
policy decision, and every endpoint, ``/health`` included, goes through the same code, so
the ``/health`` floor and the pre-check are measured on equal terms.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from helpers.settings import Settings

from .engine import DecisionEngine
from .idempotency import AuditIndex, Known, repeat_of
from .metrics import GatewayMetrics
from .openai_compat import ChatCompletions
from .precheck_body import response_body, stored_context
from .pricing import PricingTable
from .proxy import ProxyMode
from .readback import ReadBack, StreamEndpoint
from .store import AuditStore
from .store.chain import is_expired, timestamp
from .validation import AuditRequest, Call, Reject, parse_audit, parse_pre_check

__all__ = ["VERSION", "Endpoint", "GatewayApp", "create_app", "rfc3339"]

VERSION = "0.1.0-embedded"
log = logging.getLogger("helpers.gateway")
_JSON_HEADERS = [(b"content-type", b"application/json")]
Handler = Callable[[Call], Awaitable[tuple[int, Any]]]


def rfc3339(moment: datetime) -> str:
    """UTC timestamp like ``2026-01-31T12:00:00.123456Z`` (the store's own format)."""
    return timestamp(moment)


class Endpoint:
    """A plain ASGI endpoint around ``handler(call) -> (status, payload)``.

    A dict payload is sent as JSON, a str as Prometheus text. :class:`Reject` becomes the
    contract's error body; any other exception is the server's fault: logged, answered 503,
    and nothing is acknowledged.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.__name__ = handler.__name__

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            status, payload = await self.handler(Call(scope, receive))
        except Reject as exc:
            status, payload = exc.status, {"success": False, "error": exc.message}
        except Exception:
            log.exception("gateway handler failed")
            status, payload = (
                503,
                {
                    "success": False,
                    "error": "The gateway could not record this request; "
                    "nothing was stored. Retry.",
                },
            )
        if isinstance(payload, str):
            body = payload.encode()
            headers = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
        else:
            body = orjson.dumps(payload)
            headers = _JSON_HEADERS
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", b"%d" % len(body))]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


class Gateway:
    """State shared by the handlers: engine, store, pricing, metrics, clock."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.ttl_s = settings.context_ttl_s
        self.limit = settings.max_body_bytes
        self.engine = DecisionEngine.from_settings(settings, clock=lambda: clock().timestamp())
        self.pricing = PricingTable.load(settings.pricing_file)
        self.metrics = GatewayMetrics()
        self.store: AuditStore | None = None
        self.reads = ReadBack(self)  # its reader process starts on the first read
        self.audits = AuditIndex(
            rfc3339(clock() + timedelta(seconds=self.ttl_s)), now=lambda: rfc3339(clock())
        )

    # -- authentication (opt-in; community mode accepts everyone) -------------------------
    def authenticate(self, call: Call) -> None:
        secrets = self.settings.client_secrets
        if not secrets:
            return
        scheme, _, encoded = call.header(b"authorization").partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise Reject(401, "Authentication required: send Basic auth with client_id:secret")
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Reject(401, "Malformed Basic credentials") from None
        expected = secrets.get(client_id)
        if expected is None or not hmac.compare_digest(expected.get(), secret):
            raise Reject(401, "Invalid client credentials")

    # -- the contract's endpoints -----------------------------------------------------------
    async def pre_check(self, call: Call) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter_ns()
        self.authenticate(call)
        req = parse_pre_check(await call.json(self.limit))
        self.engine.policies.reload_if_changed()  # an edited file is seen within a second
        decision = self.engine.decide(req.query, req.user_token)
        policies = decision.policies
        ctx = self.store.append_context(
            req.client_id,
            req.user_token,
            req.query,
            approved=decision.approved,
            policies=policies,
            block_reason=decision.block_reason,
            data_sources=req.data_sources,
            user_role=decision.user.role,
            user_department=decision.user.department,
            request_context=stored_context(req.context, decision),
            ttl_s=self.ttl_s,
        )
        await self.store.committed(ctx)  # durable before acknowledged
        body = response_body(ctx.record_id, ctx.expires_at, decision)
        if decision.block_reason:
            body["block_reason"] = decision.block_reason
        if decision.rate_limit is not None:
            body["rate_limit"] = decision.rate_limit.as_dict()
        elapsed_ms = (time.perf_counter_ns() - started) / 1e6
        # Counting is not the client's business: it runs once the reply has gone out.
        asyncio.get_running_loop().call_soon(
            self._count_pre_check, decision.approved, policies, elapsed_ms
        )
        return 200, body

    def _count_pre_check(self, approved: bool, policies: list[str], elapsed_ms: float) -> None:
        m = self.metrics
        m.precheck_requests.inc("success", "true" if approved else "false")
        for policy in policies:
            m.policy_triggers.inc(policy)
        m.precheck_duration.observe(elapsed_ms)

    async def audit(self, call: Call) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter_ns()
        self.authenticate(call)
        req = parse_audit(await call.json(self.limit))
        owner = self.store.context_owner(req.context_id)
        # A context belongs to the client that asked; another tenant cannot audit it.
        if owner is None or owner[0] != req.client_id or is_expired(owner[1], self.clock()):
            raise Reject(400, "Invalid or expired context")
        # A repeat of an accepted audit is that audit (module helpers.gateway.idempotency).
        key = call.header(b"idempotency-key")
        repeat, digest, key = await repeat_of(self.audits, self.store, req, owner[1], key)
        if repeat is not None:
            self.metrics.audit_duplicates.inc("same_body")
            return 200, {"success": True, "audit_id": repeat}
        cost = self.pricing.cost(req.provider, req.model, req.prompt_tokens, req.completion_tokens)
        record = self.store.append_audit(
            req.context_id,
            req.client_id,
            req.provider,
            req.model,
            prompt_tokens=req.prompt_tokens,
            completion_tokens=req.completion_tokens,
            total_tokens=req.total_tokens,
            latency_ms=req.latency_ms,
            cost_usd=cost,
            metadata=req.metadata,
        )
        self.audits.add(req.context_id, owner[1], digest, Known(record.record_id, record), key)
        try:
            await self.store.committed(record)  # durable before acknowledged
        except BaseException:
            self.audits.forget(req.context_id, digest)
            raise
        elapsed_ms = (time.perf_counter_ns() - started) / 1e6
        asyncio.get_running_loop().call_soon(self._count_audit, req, cost, elapsed_ms)
        return 200, {"success": True, "audit_id": record.record_id}

    def _count_audit(self, req: AuditRequest, cost: float, elapsed_ms: float) -> None:
        m = self.metrics
        m.audit_requests.inc("success", req.provider)
        m.llm_tokens.inc("prompt", amount=req.prompt_tokens)
        m.llm_tokens.inc("completion", amount=req.completion_tokens)
        m.llm_cost.inc(req.provider, req.model, amount=cost)
        m.audit_duration.observe(elapsed_ms)

    async def health(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {
            "status": "healthy",
            "service": "axonflow-agent",
            "timestamp": rfc3339(self.clock()),
            "version": VERSION,
        }

    # -- this project's extensions ----------------------------------------------------------
    async def prometheus(self, call: Call) -> tuple[int, str]:
        return 200, self.metrics.render()

    async def reload(self, call: Call) -> tuple[int, dict[str, Any]]:
        self.authenticate(call)
        watcher = self.engine.policies
        watcher.reload_if_changed(force=True)
        if watcher.last_error is not None:
            raise Reject(
                400, f"Policies not reloaded; the previous rules stay active: {watcher.last_error}"
            )
        return 200, {"success": True, "rules": len(watcher.current)}


class GatewayApp:
    """The ASGI entry point: the gateway's own endpoints are dispatched by an exact
    (method, path) lookup; everything else (404, 405, the lifespan) goes through Starlette.

    Skipping Starlette's middleware and router for the hot paths saves a few tens of
    microseconds per request, which is about what the policy decision itself costs.
    """

    def __init__(self, starlette: Starlette, endpoints: dict[tuple[str, str], Endpoint]):
        self.starlette = starlette
        self.endpoints = endpoints
        self.state = starlette.state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            endpoint = self.endpoints.get((scope["method"], scope["path"]))
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.starlette(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    db_path: str = ":memory:",
    clock: Callable[[], datetime] | None = None,
) -> GatewayApp:
    """Build the gateway. The lifespan opens the audit store at ``db_path`` and closes it."""
    settings = settings or Settings.load()
    clock = clock or (lambda: datetime.now(UTC))
    gw = Gateway(settings, clock)
    proxy = ProxyMode(gw)  # proxy mode: the gateway calls the provider itself

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        secret = settings.hmac_secret.get().encode() if settings.hmac_secret else None
        # Exclusive: the gateway is the only writer; its reader process opens the file read-only.
        gw.store = AuditStore.open(
            db_path, secret=secret, fsync=settings.fsync, clock=clock, exclusive=True
        )
        gw.engine.warm_up()  # before serving, so no request pays for building the matchers
        proxy.warm_up()
        try:
            yield
        finally:
            try:
                await proxy.aclose()
                gw.reads.close()
            finally:
                gw.store.close()

    routes = [
        Route("/api/policy/pre-check", Endpoint(gw.pre_check), methods=["POST"]),
        Route("/api/audit/llm-call", Endpoint(gw.audit), methods=["POST"]),
        Route("/health", Endpoint(gw.health), methods=["GET"]),
        Route("/prometheus", Endpoint(gw.prometheus), methods=["GET"]),
        Route("/api/audit/verify", Endpoint(gw.reads.verify), methods=["GET"]),
        Route("/api/audit/records", Endpoint(gw.reads.records), methods=["GET"]),
        Route("/api/audit/export", StreamEndpoint(gw.reads.export), methods=["GET"]),
        Route("/api/policies/reload", Endpoint(gw.reload), methods=["POST"]),
        Route("/api/request", Endpoint(proxy.request), methods=["POST"]),
        Route("/v1/chat/completions", ChatCompletions(proxy), methods=["POST"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        messages = {
            404: f"Not found: {request.url.path}",
            405: f"Method {request.method} not allowed",
        }
        message = messages.get(exc.status_code, str(exc.detail))
        response = JSONResponse({"success": False, "error": message}, status_code=exc.status_code)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.gateway = gw
    fast = {
        (method, route.path): route.endpoint for route in routes for method in route.methods or ()
    }
    return GatewayApp(app, fast)
