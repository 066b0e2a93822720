"""The gateway's ASGI app: routes, handlers, and the lifespan that owns the audit store.

Part A of ``GATEWAY-CONTRACT`` on the wire (pre-check, audit, health, error shapes), plus
this project's extensions: ``/prometheus``, ``/api/policies/reload``, the read endpoints
(``/api/audit/records``, ``/api/audit/verify``, ``/api/audit/export``, in :mod:`.readback`,
which read in another process) and proxy mode (:mod:`.proxy`, :mod:`.openai_compat`).
Every governed endpoint decides and records through :mod:`.governance`, and reads
credentials through :mod:`.auth`. Handlers never let an exception escape: client mistakes
become the contract's 4xx JSON, a storage failure becomes a 503 that acknowledges nothing.
While the storage is failing ``/health`` answers 503 ``"status": "degraded"`` with the
reason, at once (it never touches the disk), and answers ``healthy`` again by itself once
the store has recovered.

``/health`` lists the extensions under ``"extensions"``, so a client can ask what this
gateway supports (a stock agent sends no such field). Compatibility mode
(``GATEWAY_COMPAT=axonflow``, ``--compat axonflow``) turns every extension off and answers
as a stock AxonFlow agent does: docs/compat.md lists exactly what changes.

Starlette does the routing (404/405) and the lifespan; the endpoints are plain ASGI
callables (:class:`~.endpoint.Endpoint`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from helpers.errors import StorageUnavailable
from helpers.settings import Settings

from .auth import Authenticator
from .endpoint import RETRY_AFTER, Endpoint, send_json, storage_error
from .explain import EXPLAIN_PATH, Explainer
from .governance import Governance
from .metrics import AXONFLOW_METRICS
from .openai_compat import ChatCompletions
from .proxy import ProxyMode
from .readback import ReadBack, StreamEndpoint
from .store import AuditStore
from .store.chain import timestamp
from .traffic_sample import SAMPLE_PATH, TrafficSampleEndpoint
from .validation import Call, Reject, parse_audit, parse_pre_check, parse_reply_check

__all__ = [
    "EXTENSIONS",
    "EXTENSION_ROUTES",
    "VERSION",
    "Endpoint",
    "GatewayApp",
    "axonflow_settings",
    "create_app",
]

VERSION = "0.1.0-embedded"
#: This gateway's endpoints that a stock AxonFlow agent does not have, by capability name.
EXTENSION_ROUTES = {
    "audit_records": "/api/audit/records",
    "audit_verify": "/api/audit/verify",
    "audit_export": "/api/audit/export",
    "policy_reload": "/api/policies/reload",
    "reply_check": "/api/reply/check",
    "chat_completions": "/v1/chat/completions",
}
#: Every extension ``/health`` lists: the endpoints above and what changes on AxonFlow's own
#: endpoints (a repeated audit answered with its first ``audit_id``, ``redacted_query`` in a
#: pre-check reply, metrics beyond AxonFlow's names, the project's posture switches).
EXTENSIONS = (
    *EXTENSION_ROUTES,
    "idempotent_audits",
    "redacted_query",
    "extended_metrics",
    "project_switches",
)
#: What a stock agent (Go's router) answers for a path it does not serve.
AGENT_NOT_FOUND = "404 page not found\n"
log = logging.getLogger("helpers.gateway")


class Gateway:
    """The gateway-mode endpoints: thin HTTP around the governance core."""

    def __init__(self, settings: Settings, governance: Governance, auth: Authenticator) -> None:
        self.settings = settings
        self.governance = governance
        self.auth = auth
        self.limit = settings.max_body_bytes
        self.compat = bool(settings.compat)

    @property
    def auth_mode(self) -> str:
        """What ``/health`` and the start-up line say about credentials: ``community`` (none
        needed) or ``client_credentials`` (Basic ``client_id:secret`` required)."""
        return "community" if self.auth.community else "client_credentials"

    @property
    def store(self) -> AuditStore | None:
        return self.governance.store

    # -- the contract's endpoints -----------------------------------------------------------
    async def pre_check(self, call: Call) -> tuple[int, dict[str, Any]]:
        """The pre-check's reply. Part A of the contract fixes ``context_id``, ``approved``,
        ``policies``, ``expires_at`` and the optional ``block_reason``, ``rate_limit`` and
        ``requires_redaction``. Current AxonFlow agents (v11) add ``decision_id`` (the same
        value as ``context_id``) and ``verdict`` (``allow`` | ``deny`` | ``needs_approval``);
        this gateway sends both on every reply (``needs_approval`` when only
        ``require_approval`` rules stop the request). ``log`` findings are stored in the
        trail but not listed in ``policies``. When ``PII_ACTION=redact`` it also sends
        ``redacted_query``, a documented extension: the query with each PII value replaced
        by a typed placeholder (``[SSN_1]``), so the app does not have to find the values
        itself (``07_obfuscation_and_redaction.ipynb``)."""
        client = self.auth.check(call)
        req = parse_pre_check(await call.json(self.limit))
        self.auth.same_tenant(client, req.client_id)
        governed = await self.governance.decide(
            req.client_id,
            req.user_token,
            (req.query,),
            data_sources=req.data_sources,
            context=req.context,
        )
        decision = governed.decision
        body: dict[str, Any] = {
            "context_id": governed.context_id,
            "decision_id": governed.context_id,
            "approved": decision.approved,
            "verdict": decision.verdict,
            "policies": decision.reported_policies,
            "expires_at": governed.expires_at,
            "requires_redaction": decision.requires_redaction,
        }
        if decision.redaction is not None and not self.compat:  # the agent does not say it
            body["redacted_query"] = decision.redaction.text
        if decision.block_reason:
            body["block_reason"] = decision.block_reason
        if decision.rate_limit is not None:
            body["rate_limit"] = decision.rate_limit.as_dict()
        return 200, body

    async def audit(self, call: Call) -> tuple[int, dict[str, Any]]:
        client = self.auth.check(call)
        req = parse_audit(await call.json(self.limit))
        self.auth.same_tenant(client, req.client_id)
        audit_id = await self.governance.audit(req, call.header(b"idempotency-key"))
        return 200, {"success": True, "audit_id": audit_id}

    async def reply_check(self, call: Call) -> tuple[int, dict[str, Any]]:
        """``POST /api/reply/check``, an extension: the answer an app received, inspected
        before it shows it (AxonFlow has no such endpoint; :mod:`.replies`)."""
        client = self.auth.check(call)
        req = parse_reply_check(await call.json(self.limit))
        self.auth.same_tenant(client, req.client_id)
        inspector, text = self.governance.check_reply(req)
        verdict = inspector.verdict
        body: dict[str, Any] = {
            "success": True,
            "approved": not inspector.blocked,
            "text": text,
            "held": len(inspector.pending),
            "policies": list(verdict.policies),
            "redacted": verdict.note.get("redacted"),
        }
        if inspector.blocked:
            body["block_reason"] = inspector.reason
        return 200, body

    async def health(self, call: Call) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {
            "status": "healthy",
            "service": "axonflow-agent",
            "timestamp": timestamp(self.governance.clock()),  # the store's own format
            "version": VERSION,
        }
        if not self.compat:
            body.update(auth=self.auth_mode, extensions=list(EXTENSIONS))
        store = self.store
        if store is None or not store.degraded:
            return 200, body
        state = store.storage_health()  # in memory: a failing disk cannot hold this up
        if state.healthy:  # it recovered just now
            return 200, body
        body.update(status="degraded", reason=state.reason, since=state.since)
        return 503, body

    # -- this project's extensions ----------------------------------------------------------
    async def prometheus(self, call: Call) -> tuple[int, str]:
        if self.auth.operator_token:  # without it, scrapers read the metrics as before
            self.auth.check_operator(call)
        metrics = self.governance.metrics
        if self.store is not None:
            metrics.observe_storage(self.store.storage_health())
        return 200, metrics.render()

    async def reload(self, call: Call) -> tuple[int, dict[str, Any]]:
        self.auth.check_operator(call)
        watcher = self.governance.engine.policies
        watcher.reload_if_changed(force=True)
        if watcher.last_error is not None:
            raise Reject(
                400, f"Policies not reloaded; the previous rules stay active: {watcher.last_error}"
            )
        return 200, {"success": True, "rules": len(watcher.current)}


def axonflow_settings(settings: Settings) -> Settings:
    """``settings`` as a stock agent would read them: only AxonFlow's posture switches count.

    This project's own switches go back to their defaults (``SECRET_ACTION``,
    ``PII_SSN_RULES``), and proxy mode does not inspect replies (the agent does not in
    community mode).
    """
    defaults = Settings()
    return dataclasses.replace(
        settings,
        secret_action=defaults.secret_action,
        ssn_rules=defaults.ssn_rules,
        inspect_replies=False,
    )


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
                try:
                    await endpoint(scope, receive, send)
                except StorageUnavailable as exc:  # from a streaming endpoint, before it starts
                    await send_json(send, 503, storage_error(exc), RETRY_AFTER)
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
    compat = bool(settings.compat)
    if compat:
        settings = axonflow_settings(settings)
    clock = clock or (lambda: datetime.now(UTC))
    governance = Governance(settings, clock)
    if compat:
        governance.metrics.only = AXONFLOW_METRICS
    auth = Authenticator(settings.client_secrets, admin_token=settings.admin_token)
    gw = Gateway(settings, governance, auth)
    reads = ReadBack(governance, auth)  # its reader process starts on the first read
    explainer = Explainer(governance, auth, settings.profile)
    sample = TrafficSampleEndpoint(governance, auth)
    # Proxy mode: the gateway calls the provider itself.
    proxy = ProxyMode(
        governance, auth, limit=settings.max_body_bytes, inspect_replies=settings.inspect_replies
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        secret = settings.hmac_secret.get().encode() if settings.hmac_secret else None
        # Exclusive: the gateway is the only writer; its reader process opens the file read-only.
        store = AuditStore.open(db_path, secret=secret, fsync=settings.fsync, clock=clock)
        governance.store = store
        governance.engine.warm_up()  # before serving, so no request pays for the matchers
        proxy.warm_up()
        try:
            yield
        finally:
            try:
                await proxy.aclose()
                reads.close()
            finally:
                try:
                    store.close()
                except StorageUnavailable as exc:  # nothing acknowledged is lost: it is logged
                    log.error(
                        "audit store closed with a storage fault (%s); acknowledged rows "
                        "not yet in SQLite stay in %s.acklog and are replayed at the next "
                        "start",
                        exc.reason,
                        db_path,
                    )

    routes = [
        Route("/api/policy/pre-check", Endpoint(gw.pre_check), methods=["POST"]),
        Route("/api/audit/llm-call", Endpoint(gw.audit), methods=["POST"]),
        Route("/health", Endpoint(gw.health), methods=["GET"]),
        Route("/prometheus", Endpoint(gw.prometheus), methods=["GET"]),
        Route("/api/audit/verify", Endpoint(reads.verify), methods=["GET"]),
        Route("/api/audit/records", Endpoint(reads.records), methods=["GET"]),
        Route("/api/audit/export", StreamEndpoint(reads.export), methods=["GET"]),
        Route("/api/policies/reload", Endpoint(gw.reload), methods=["POST"]),
        Route("/api/reply/check", Endpoint(gw.reply_check), methods=["POST"]),
        Route(EXPLAIN_PATH, Endpoint(explainer.explain), methods=["GET"]),
        Route(SAMPLE_PATH, Endpoint(sample.export), methods=["GET"]),
        Route("/api/request", Endpoint(proxy.request), methods=["POST"]),
        Route("/v1/chat/completions", ChatCompletions(proxy), methods=["POST"]),
    ]
    if compat:  # a stock agent serves none of them: they answer its 404
        routes = [r for r in routes if r.path not in EXTENSION_ROUTES.values()]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if compat and exc.status_code == 404:
            return PlainTextResponse(
                AGENT_NOT_FOUND, 404, headers={"x-content-type-options": "nosniff"}
            )
        if compat and exc.status_code == 405:  # the agent's router sends no body
            return Response(status_code=405)
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
