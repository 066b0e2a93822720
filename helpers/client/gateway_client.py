"""A client for the gateway-mode API: pre-check, audit, health, and a few extensions.

It speaks the same wire format as AxonFlow's agent in gateway mode, so the same code works
against the embedded gateway (``python -m helpers.gateway``) or a real AxonFlow deployment:
only the URL changes.
Headers follow the official Python SDK 9.5 (Basic auth, ``X-Client-ID``, ``X-Tenant-ID``).
Introduced in ``01_gateway_mode_openai.ipynb``.

>>> async with GatewayClient("http://127.0.0.1:8080") as gw:        # doctest: +SKIP
...     ctx = await gw.pre_check("Summarise this ticket", user_token="user-123")
...     if ctx.approved:
...         ...  # call the LLM yourself, then:
...         await gw.audit(ctx.context_id, "openai", "gpt-4o-mini", TokenUsage(12, 40))
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from datetime import datetime
from time import perf_counter_ns
from typing import Any

import httpx

from helpers.errors import BadRequest, GatewayHTTPError, Unauthorized
from helpers.settings import Settings

from .explain import Explanation, explain_path
from .results import (
    AuditResult,
    HealthResult,
    PreCheckResult,
    RateLimitInfo,
    RecordPage,
    ReplyCheck,
    TokenUsage,
)
from .transports import AiohttpTransport, AsyncTransport, HttpxTransport, SyncHttpxTransport
from .verify import verify_chain, verify_chain_sync

__all__ = [
    "DEFAULT_URL",
    "AuditResult",
    "GatewayClient",
    "HealthResult",
    "PreCheckResult",
    "RateLimitInfo",
    "SyncGatewayClient",
    "TokenUsage",
]

#: AxonFlow's default agent address, used when neither an argument nor AXONFLOW_AGENT_URL is set.
DEFAULT_URL = "http://localhost:8080"

PRE_CHECK_PATH = "/api/policy/pre-check"
AUDIT_PATH = "/api/audit/llm-call"
REPLY_CHECK_PATH = "/api/reply/check"
HEALTH_PATH = "/health"


@functools.cache
def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"gateway-mode-notebooks/{version('gateway-mode-notebooks')}"
    except PackageNotFoundError:
        return "gateway-mode-notebooks/0+unknown"


def _check(status: int, data: Any, url: str) -> Any:
    """Return the body of a 2xx reply; turn anything else into the matching error."""
    if 200 <= status < 300:
        return data
    message = data.get("error") if isinstance(data, dict) else None
    if not isinstance(message, str) or not message:
        message = repr(data)[:200]
    cls = {400: BadRequest, 401: Unauthorized}.get(status, GatewayHTTPError)
    raise cls(status, message, url)


# ---------------------------------------------------------------- clients


def _query_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class _Base:
    """Configuration, headers and request bodies shared by the async and blocking clients."""

    def __init__(
        self,
        url: str | None,
        client_id: str | None,
        client_secret: str | None,
        license_key: str | None,
        tenant_id: str | None,
        timeout: float,
        settings: Settings | None,
    ) -> None:
        s = settings if settings is not None else Settings.load()
        self.url = (url or s.agent_url or DEFAULT_URL).rstrip("/")
        self.client_id = client_id or s.client_id or "community"
        secret = client_secret if client_secret is not None else s.client_secret.get()
        license_key = license_key if license_key is not None else s.license_key.get()
        self.tenant_id = tenant_id or self.client_id
        self.timeout = timeout
        # Like SDK 9.5: always Basic auth, "community:" when no secret is configured.
        basic = base64.b64encode(f"{self.client_id}:{secret}".encode()).decode()
        self._headers = {
            "Authorization": f"Basic {basic}",
            "X-Client-ID": self.client_id,
            "X-Tenant-ID": self.tenant_id,
            "User-Agent": _user_agent(),
            "Content-Type": "application/json",
        }
        if license_key:
            self._headers["X-License-Key"] = license_key

    def _pre_check_body(
        self,
        query: str,
        user_token: str,
        data_sources: list[str] | None,
        context: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "user_token": user_token,
            "client_id": self.client_id,
            "query": query,
        }
        if data_sources is not None:
            body["data_sources"] = list(data_sources)
        if context is not None:
            body["context"] = dict(context)
        return body

    def _audit_body(
        self,
        context_id: str,
        provider: str,
        model: str,
        token_usage: TokenUsage | Mapping[str, int] | None,
        latency_ms: float,
        response_summary: str,
        metadata: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "context_id": context_id,
            "client_id": self.client_id,
            "provider": provider,
            "model": model,
            "response_summary": response_summary,
            # The contract types latency_ms as an integer; fractions would be a 400 there.
            "latency_ms": round(latency_ms),
        }
        if token_usage is not None:
            if not isinstance(token_usage, TokenUsage):
                token_usage = TokenUsage.from_mapping(token_usage)
            body["token_usage"] = token_usage.as_dict()
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return body

    def _reply_body(self, context_id: str, text: str, context: str, final: bool) -> dict[str, Any]:
        return {
            "context_id": context_id,
            "client_id": self.client_id,
            "text": text,
            "context": context,
            "final": final,
        }

    @staticmethod
    def _record_params(filters: Mapping[str, object]) -> dict[str, str]:
        # The gateway validates the names and values (a 400 names the bad one), so the list
        # of filters lives in one place.
        return {k: _query_value(v) for k, v in filters.items() if v is not None}


class GatewayClient(_Base):
    """Async client for a gateway-mode API; one keep-alive connection pool per client.

    Arguments left as ``None`` come from :meth:`Settings.load` (``AXONFLOW_AGENT_URL``,
    ``AXONFLOW_CLIENT_ID``, ``AXONFLOW_CLIENT_SECRET``, ``AXONFLOW_LICENSE_KEY``).
    ``transport`` is ``"httpx"`` (default), ``"aiohttp"``, or any object with the
    :class:`helpers.client.transports.AsyncTransport` methods. ``http_client`` injects an
    ``httpx.AsyncClient`` (the caller closes it). Use one client per event loop.

    >>> gw = GatewayClient("http://127.0.0.1:8080", settings=Settings())
    >>> gw
    <GatewayClient http://127.0.0.1:8080 client_id='community' transport=httpx>
    """

    def __init__(
        self,
        url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        license_key: str | None = None,
        tenant_id: str | None = None,
        timeout: float = 10.0,
        transport: str | AsyncTransport = "httpx",
        settings: Settings | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(url, client_id, client_secret, license_key, tenant_id, timeout, settings)
        if not isinstance(transport, str):
            self._transport: AsyncTransport = transport
        elif transport == "httpx":
            self._transport = HttpxTransport(self.url, self._headers, timeout, http_client)
        elif transport == "aiohttp":
            if http_client is not None:
                raise ValueError("http_client is an httpx.AsyncClient; it needs transport='httpx'")
            self._transport = AiohttpTransport(self.url, self._headers, timeout)
        else:
            raise ValueError(f"transport={transport!r}; use 'httpx' or 'aiohttp'")

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.url} client_id={self.client_id!r} "
            f"transport={self._transport.name}>"
        )

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._transport.aclose()

    async def _call(
        self,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any, float]:
        # The clock brackets exactly the HTTP exchange: encode, send, receive, JSON decode.
        t0 = perf_counter_ns()
        if body is None:
            status, data = await self._transport.get_json(path, params)
        else:
            status, data = await self._transport.post_json(path, body)
        ms = (perf_counter_ns() - t0) / 1e6
        return status, _check(status, data, self.url + path), ms

    async def pre_check(
        self,
        query: str,
        user_token: str = "",
        data_sources: list[str] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> PreCheckResult:
        """Step 1: ask whether ``query`` may go to the LLM. A block is a result, not an error."""
        body = self._pre_check_body(query, user_token, data_sources, context)
        status, data, ms = await self._call(PRE_CHECK_PATH, body)
        return PreCheckResult.from_response(data, ms, status=status, url=self.url + PRE_CHECK_PATH)

    async def audit(
        self,
        context_id: str,
        provider: str,
        model: str,
        token_usage: TokenUsage | Mapping[str, int] | None = None,
        latency_ms: float = 0,
        response_summary: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> AuditResult:
        """Step 3: record the LLM call made under ``context_id``."""
        body = self._audit_body(
            context_id, provider, model, token_usage, latency_ms, response_summary, metadata
        )
        status, data, ms = await self._call(AUDIT_PATH, body)
        return AuditResult.from_response(data, ms, status=status, url=self.url + AUDIT_PATH)

    async def check_reply(
        self, context_id: str, text: str, *, context: str = "", final: bool = True
    ) -> ReplyCheck:
        """Inspect the model's answer before showing it (``POST /api/reply/check``, an
        extension of the embedded gateway). For a stream, send what has not been shown yet
        with ``final=False`` and the shown text as ``context``; keep the last ``held``
        characters and send them again with the next chunk."""
        body = self._reply_body(context_id, text, context, final)
        status, data, ms = await self._call(REPLY_CHECK_PATH, body)
        return ReplyCheck.from_response(data, ms, status=status, url=self.url + REPLY_CHECK_PATH)

    async def health(self) -> HealthResult:
        """``GET /health``; ``.ok`` is true when the status is ``"healthy"``."""
        status, data, ms = await self._call(HEALTH_PATH)
        return HealthResult.from_response(data, ms, status=status, url=self.url + HEALTH_PATH)

    async def verify_audit_chain(self) -> dict[str, Any]:
        """``GET /api/audit/verify``: check the hash chain of stored records.

        An extension of the embedded gateway (a real AxonFlow agent has no such endpoint).
        """
        return await verify_chain(self._call)

    async def list_records(self, **filters: object) -> RecordPage:
        """``GET /api/audit/records``: pre-checks joined with their audits, newest first.

        Filters: since, until (aware datetime or RFC 3339 text), client_id, user_hash,
        user_token (hashed by the gateway), provider, model, approved (bool), limit, after
        (the previous page's ``next``), offset; an unknown filter is a :class:`BadRequest`.
        Returns a :class:`RecordPage`. An extension of the embedded gateway.
        """
        path = "/api/audit/records"
        data = (await self._call(path, params=self._record_params(filters)))[1]
        return RecordPage.from_response(data, self.url + path)

    async def reload_policies(self) -> dict[str, Any]:
        """``POST /api/policies/reload``: re-read the custom policy and user files.

        An extension of the embedded gateway.
        """
        return (await self._call("/api/policies/reload", {}))[1]

    async def explain(self, decision_id: str) -> Explanation:
        """Why a decision came out as it did (:mod:`helpers.client.explain`)."""
        return Explanation.from_response((await self._call(explain_path(decision_id)))[1])


class SyncGatewayClient(_Base):
    """The same API as :class:`GatewayClient`, blocking, on ``httpx.Client`` (for scripts).

    >>> with SyncGatewayClient("http://127.0.0.1:8080") as gw:         # doctest: +SKIP
    ...     print(gw.health().ok)
    """

    def __init__(
        self,
        url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        license_key: str | None = None,
        tenant_id: str | None = None,
        timeout: float = 10.0,
        settings: Settings | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(url, client_id, client_secret, license_key, tenant_id, timeout, settings)
        self._transport = SyncHttpxTransport(self.url, self._headers, timeout, http_client)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} client_id={self.client_id!r} transport=httpx>"

    def __enter__(self) -> SyncGatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._transport.close()

    def _call(
        self,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any, float]:
        t0 = perf_counter_ns()
        if body is None:
            status, data = self._transport.get_json(path, params)
        else:
            status, data = self._transport.post_json(path, body)
        ms = (perf_counter_ns() - t0) / 1e6
        return status, _check(status, data, self.url + path), ms

    def pre_check(
        self,
        query: str,
        user_token: str = "",
        data_sources: list[str] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> PreCheckResult:
        """Blocking :meth:`GatewayClient.pre_check`."""
        body = self._pre_check_body(query, user_token, data_sources, context)
        status, data, ms = self._call(PRE_CHECK_PATH, body)
        return PreCheckResult.from_response(data, ms, status=status, url=self.url + PRE_CHECK_PATH)

    def audit(
        self,
        context_id: str,
        provider: str,
        model: str,
        token_usage: TokenUsage | Mapping[str, int] | None = None,
        latency_ms: float = 0,
        response_summary: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> AuditResult:
        """Blocking :meth:`GatewayClient.audit`."""
        body = self._audit_body(
            context_id, provider, model, token_usage, latency_ms, response_summary, metadata
        )
        status, data, ms = self._call(AUDIT_PATH, body)
        return AuditResult.from_response(data, ms, status=status, url=self.url + AUDIT_PATH)

    def check_reply(
        self, context_id: str, text: str, *, context: str = "", final: bool = True
    ) -> ReplyCheck:
        """Blocking :meth:`GatewayClient.check_reply` (embedded-gateway extension)."""
        body = self._reply_body(context_id, text, context, final)
        status, data, ms = self._call(REPLY_CHECK_PATH, body)
        return ReplyCheck.from_response(data, ms, status=status, url=self.url + REPLY_CHECK_PATH)

    def health(self) -> HealthResult:
        """Blocking :meth:`GatewayClient.health`."""
        status, data, ms = self._call(HEALTH_PATH)
        return HealthResult.from_response(data, ms, status=status, url=self.url + HEALTH_PATH)

    def verify_audit_chain(self) -> dict[str, Any]:
        """Blocking :meth:`GatewayClient.verify_audit_chain` (embedded-gateway extension)."""
        return verify_chain_sync(self._call)

    def list_records(self, **filters: object) -> RecordPage:
        """Blocking :meth:`GatewayClient.list_records` (embedded-gateway extension)."""
        path = "/api/audit/records"
        data = self._call(path, params=self._record_params(filters))[1]
        return RecordPage.from_response(data, self.url + path)

    def reload_policies(self) -> dict[str, Any]:
        """Blocking :meth:`GatewayClient.reload_policies` (embedded-gateway extension)."""
        return self._call("/api/policies/reload", {})[1]

    def explain(self, decision_id: str) -> Explanation:
        """Blocking :meth:`GatewayClient.explain` (embedded gateway, AxonFlow v11)."""
        return Explanation.from_response(self._call(explain_path(decision_id))[1])
