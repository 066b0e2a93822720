"""The gateway's ASGI app: routes, handlers, and the lifespan that owns the audit store.

Part A of ``GATEWAY-CONTRACT`` on the wire (pre-check, audit, health, error shapes), plus
this project's extensions: ``/prometheus``, ``/api/audit/verify``, ``/api/audit/records`` and
``/api/policies/reload``. Handlers never let an exception escape: client mistakes become the
contract's 4xx JSON, a storage failure becomes a 503 that acknowledges nothing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..engine import DecisionEngine
from ..metrics import GatewayMetrics
from ..pricing import PricingTable
from ..settings import Settings
from ..chain import timestamp
from ..store import AuditStore
from .validation import Reject, parse_audit, parse_pre_check, read_json

__all__ = ["VERSION", "create_app", "rfc3339"]

VERSION = "0.1.0-embedded"
log = logging.getLogger("helpers.gateway")


def rfc3339(moment: datetime) -> str:
    """UTC timestamp like ``2026-01-31T12:00:00.123456Z`` (the store's own format)."""
    return timestamp(moment)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"success": False, "error": message}, status_code=status)


class Gateway:
    """State shared by the handlers: engine, store, pricing, metrics, clock."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.ttl_s = settings.context_ttl_s
        self.limit = settings.max_body_bytes
        self.engine = DecisionEngine.from_settings(
            settings, clock=lambda: clock().timestamp()
        )
        self.pricing = PricingTable.load(settings.pricing_file)
        self.metrics = GatewayMetrics()
        self.store: AuditStore | None = None

    # -- authentication (opt-in; community mode accepts everyone) -------------------------
    def authenticate(self, request: Request) -> None:
        secrets = self.settings.client_secrets
        if not secrets:
            return
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise Reject(401, "Authentication required: send Basic auth with client_id:secret")
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Reject(401, "Malformed Basic credentials") from None
        expected = secrets.get(client_id)
        if expected is None or not hmac.compare_digest(expected.get(), secret):
            raise Reject(401, "Invalid client credentials")

    # -- handlers --------------------------------------------------------------------------
    async def pre_check(self, request: Request) -> Response:
        started = time.perf_counter_ns()
        self.authenticate(request)
        req = parse_pre_check(await read_json(request, self.limit))
        self.engine.policies.reload_if_changed()  # an edited file is seen within a second
        decision = self.engine.decide(req.query, req.user_token)
        ctx = self.store.add_context(
            req.client_id,
            req.user_token,
            req.query,
            approved=decision.approved,
            policies=decision.policies,
            block_reason=decision.block_reason,
            data_sources=req.data_sources,
            user_role=decision.user.role,
            user_department=decision.user.department,
            request_context=req.context,
            ttl_s=self.ttl_s,
        )
        await self.store.committed(ctx)
        body: dict[str, Any] = {
            "context_id": ctx.context_id,
            "approved": decision.approved,
            "policies": decision.policies,
            "expires_at": ctx.expires_at,
            "requires_redaction": False,
        }
        if decision.block_reason:
            body["block_reason"] = decision.block_reason
        if decision.rate_limit is not None:
            body["rate_limit"] = decision.rate_limit.as_dict()
        m = self.metrics
        m.precheck_requests.inc("success", "true" if decision.approved else "false")
        for policy in decision.policies:
            m.policy_triggers.inc(policy)
        m.precheck_duration.observe((time.perf_counter_ns() - started) / 1e6)
        return JSONResponse(body)

    async def audit(self, request: Request) -> Response:
        started = time.perf_counter_ns()
        self.authenticate(request)
        req = parse_audit(await read_json(request, self.limit))
        context = self.store.get_context(req.context_id)
        # A context belongs to the client that asked; another tenant cannot audit it.
        if context is None or context.client_id != req.client_id or context.is_expired(self.clock()):
            raise Reject(400, "Invalid or expired context")
        cost = self.pricing.cost(req.provider, req.model, req.prompt_tokens, req.completion_tokens)
        record = self.store.add_audit(
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
        await self.store.committed(record)
        m = self.metrics
        m.audit_requests.inc("success", req.provider)
        m.llm_tokens.inc("prompt", amount=req.prompt_tokens)
        m.llm_tokens.inc("completion", amount=req.completion_tokens)
        m.llm_cost.inc(req.provider, req.model, amount=cost)
        m.audit_duration.observe((time.perf_counter_ns() - started) / 1e6)
        return JSONResponse({"success": True, "audit_id": record.audit_id})

    async def health(self, request: Request) -> Response:
        return JSONResponse(
            {
                "status": "healthy",
                "service": "axonflow-agent",
                "timestamp": rfc3339(self.clock()),
                "version": VERSION,
            }
        )

    async def prometheus(self, request: Request) -> Response:
        return PlainTextResponse(
            self.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def verify(self, request: Request) -> Response:
        self.authenticate(request)
        report = self.store.verify_chain()
        broken = report.first_broken
        return JSONResponse({
            "success": True,
            "ok": report.ok,
            "checked": report.checked,
            "first_broken": None if broken is None else
            {"table": broken[0], "id": broken[1], "seq": broken[2]},
            "problem": report.problem,
        })

    async def records(self, request: Request) -> Response:
        self.authenticate(request)
        filters = _record_filters(request, self.store)
        rows = self.store.list_records(**filters)
        return JSONResponse({"success": True, "count": len(rows), "records": rows})

    async def reload(self, request: Request) -> Response:
        self.authenticate(request)
        watcher = self.engine.policies
        watcher.reload_if_changed(force=True)
        if watcher.last_error is not None:
            raise Reject(
                400, f"Policies not reloaded; the previous rules stay active: {watcher.last_error}"
            )
        return JSONResponse({"success": True, "rules": len(watcher.current)})


def _record_filters(request: Request, store: AuditStore) -> dict[str, Any]:
    """Query parameters of ``/api/audit/records``, validated with messages naming the value."""
    q = request.query_params
    allowed = {"since", "until", "client_id", "user_hash", "user_token", "provider", "model",
               "approved", "limit", "offset"}  # fmt: skip
    unknown = sorted(set(q) - allowed)
    if unknown:
        raise Reject(400, f"Unknown filter(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    out: dict[str, Any] = {}
    for key in ("client_id", "user_hash", "provider", "model"):
        if q.get(key):
            out[key] = q[key]
    if q.get("user_token"):
        out["user_hash"] = store.hash(q["user_token"])
    for key in ("since", "until"):
        if q.get(key):
            try:
                out[key] = datetime.fromisoformat(q[key].replace("Z", "+00:00"))
            except ValueError:
                raise Reject(400, f"{key}={q[key]!r} is not an RFC 3339 timestamp") from None
    if q.get("approved"):
        flag = q["approved"].lower()
        if flag not in ("true", "false"):
            raise Reject(400, f"approved={q['approved']!r} must be true or false")
        out["approved"] = flag == "true"
    for key, default, top in (("limit", 1000, 100_000), ("offset", 0, None)):
        raw = q.get(key)
        if raw is None:
            continue
        if not raw.isdigit() or (top is not None and int(raw) > top):
            raise Reject(400, f"{key}={raw!r} must be an integer from 0 to {top or 'any'}")
        out[key] = int(raw)
    return out


def create_app(
    settings: Settings | None = None,
    *,
    db_path: str = ":memory:",
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """Build the gateway. The lifespan opens the audit store at ``db_path`` and closes it."""
    settings = settings or Settings.load()
    clock = clock or (lambda: datetime.now(UTC))
    gw = Gateway(settings, clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        secret = settings.hmac_secret.get().encode() if settings.hmac_secret else None
        gw.store = AuditStore.open(db_path, secret=secret, fsync=settings.fsync, clock=clock)
        gw.engine.warm_up()  # before serving, so no request pays for building the matchers
        try:
            yield
        finally:
            gw.store.close()

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except Reject as exc:
                return _error(exc.status, exc.message)
            except Exception:  # a server fault, never the client's: log it, acknowledge nothing
                log.exception("gateway handler failed")
                return _error(503, "The gateway could not record this request; nothing was stored. Retry.")

        endpoint.__name__ = handler.__name__
        return endpoint

    routes = [
        Route("/api/policy/pre-check", guarded(gw.pre_check), methods=["POST"]),
        Route("/api/audit/llm-call", guarded(gw.audit), methods=["POST"]),
        Route("/health", guarded(gw.health), methods=["GET"]),
        Route("/prometheus", guarded(gw.prometheus), methods=["GET"]),
        Route("/api/audit/verify", guarded(gw.verify), methods=["GET"]),
        Route("/api/audit/records", guarded(gw.records), methods=["GET"]),
        Route("/api/policies/reload", guarded(gw.reload), methods=["POST"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        messages = {404: f"Not found: {request.url.path}", 405: f"Method {request.method} not allowed"}
        response = _error(exc.status_code, messages.get(exc.status_code, str(exc.detail)))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.gateway = gw
    return app
