"""What an application does when the gateway is down or slow: fail closed or fail open.

:class:`GatewayGuard` wraps the pre-check with three things a production client needs:

* **A timeout** (``timeout_s``) on the pre-check, so a hung gateway costs at most that.
* **A circuit breaker** (:class:`~helpers.client.breaker.CircuitBreaker`): after a few
  failures in a row the gateway is not asked at all for a while, so a dead gateway costs one
  timeout, not one per request.
* **An explicit policy.** ``fail_open=False`` (the default) refuses the request: nothing
  reaches the LLM, the user gets :data:`UNAVAILABLE_MESSAGE`. ``fail_open=True`` (only when
  you configure it) lets the call through *unchecked*, marks it, and keeps what is needed to
  govern it later: :meth:`GatewayGuard.flush` pre-checks the query after the fact (the
  context says ``fail_open``) and audits the call under that context once the gateway is back.

A failure is an unreachable or hung gateway or a 5xx. A policy block, a 400 or a 401 is an
answer, not an outage: it never trips the breaker and never fails open. Introduced in
``10_real_application.ipynb``.

>>> guard = GatewayGuard(timeout_s=0.2)
>>> guard
<GatewayGuard fail-closed timeout=0.2s breaker=closed deferred=0>
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from helpers.errors import BadRequest, GatewayError, GatewayHTTPError, GatewayTimeout

from .breaker import CircuitBreaker
from .gateway_client import GatewayClient, SyncGatewayClient
from .results import PreCheckResult, TokenUsage

__all__ = ["UNAVAILABLE_MESSAGE", "DeferredAudit", "FlushReport", "GatewayDown", "GatewayGuard"]

UNAVAILABLE_MESSAGE = (
    "This request was not sent: the governance service is unavailable, and requests are not "
    "processed without it. Please try again in a minute."
)


@dataclass(frozen=True)
class GatewayDown:
    """The pre-check could not be answered: why, and whether the gateway was even asked."""

    reason: str
    asked: bool


@dataclass(frozen=True)
class DeferredAudit:
    """A fail-open call waiting to be governed: pre-checked late, then audited."""

    query: str
    user_token: str
    provider: str
    model: str
    usage: TokenUsage
    latency_ms: float
    occurred_at: str
    reason: str
    data_sources: tuple[str, ...] = ()
    context_id: str | None = None  # set when the pre-check worked and only the audit failed
    metadata: Mapping[str, Any] | None = None  # a failed LLM call's outcome and error


@dataclass(frozen=True)
class FlushReport:
    """What :meth:`GatewayGuard.flush` did: audits sent, still pending, and how many of the
    late pre-checks would have blocked the call."""

    sent: int
    pending: int
    late_blocked: int
    audit_ids: tuple[str, ...] = field(default=(), repr=False)


class GatewayGuard:
    """Timeout, circuit breaker and fail-closed/fail-open policy around the pre-check."""

    def __init__(
        self,
        *,
        fail_open: bool = False,
        timeout_s: float = 1.0,
        breaker: CircuitBreaker | None = None,
        max_deferred: int = 10_000,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.fail_open = fail_open
        self.timeout_s = timeout_s
        self.breaker = breaker or CircuitBreaker()
        self.max_deferred = max_deferred
        self.deferred: list[DeferredAudit] = []
        self.dropped = 0

    def __repr__(self) -> str:
        mode = "fail-open" if self.fail_open else "fail-closed"
        return (
            f"<GatewayGuard {mode} timeout={self.timeout_s}s breaker={self.breaker.state} "
            f"deferred={len(self.deferred)}>"
        )

    # -- the pre-check ------------------------------------------------------------------
    async def pre_check(
        self, gw: GatewayClient, query: str, user_token: str, **kw: Any
    ) -> PreCheckResult | GatewayDown:
        """The gateway's decision, or :class:`GatewayDown` when it could not be had."""
        if not self.breaker.allow():
            return GatewayDown("circuit open: the gateway failed recently", asked=False)
        try:
            ctx = await asyncio.wait_for(gw.pre_check(query, user_token, **kw), self.timeout_s)
        except TimeoutError:
            return self._failed(GatewayTimeout(f"no pre-check answer in {self.timeout_s} s"))
        except GatewayError as exc:
            return self._failed(exc)
        self.breaker.record_success()
        return ctx

    def pre_check_sync(
        self, gw: SyncGatewayClient, query: str, user_token: str, **kw: Any
    ) -> PreCheckResult | GatewayDown:
        """Blocking :meth:`pre_check`; the timeout is the client's own (build it with
        ``SyncGatewayClient(timeout=guard.timeout_s)``)."""
        if not self.breaker.allow():
            return GatewayDown("circuit open: the gateway failed recently", asked=False)
        try:
            ctx = gw.pre_check(query, user_token, **kw)
        except GatewayError as exc:
            return self._failed(exc)
        self.breaker.record_success()
        return ctx

    def _failed(self, exc: GatewayError) -> GatewayDown:
        """An outage (no answer, or a 5xx) trips the breaker; a 4xx is an answer: raised again."""
        if isinstance(exc, GatewayHTTPError) and exc.status_code < 500:
            raise exc
        self.breaker.record_failure()
        return GatewayDown(f"{type(exc).__name__}: {exc}", asked=True)

    # -- fail open: govern later ----------------------------------------------------------
    def defer(self, item: DeferredAudit) -> bool:
        """Keep a call to govern later; ``False`` (counted in ``dropped``) when full."""
        if len(self.deferred) >= self.max_deferred:
            self.dropped += 1
            return False
        self.deferred.append(item)
        return True

    @staticmethod
    def now() -> str:
        return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    async def flush(self, gw: GatewayClient) -> FlushReport:
        """Pre-check late and audit every deferred call; what fails stays for next time."""
        waiting, self.deferred = self.deferred, []
        ids, blocked = [], 0
        for n, item in enumerate(waiting):
            try:
                audit_id, was_blocked = await self._send(gw, item)
            except GatewayError:
                self.deferred.extend(waiting[n:])
                break
            ids.append(audit_id)
            blocked += was_blocked
        return FlushReport(len(ids), len(self.deferred), blocked, tuple(ids))

    async def _send(self, gw: GatewayClient, item: DeferredAudit) -> tuple[str, bool]:
        meta: dict[str, Any] = {
            **(item.metadata or {}),
            "governance": item.reason,
            "occurred_at": item.occurred_at,
        }
        if item.context_id is not None:
            try:
                audit = await gw.audit(
                    item.context_id,
                    item.provider,
                    item.model,
                    item.usage,
                    item.latency_ms,
                    metadata=meta,
                )
                return audit.audit_id, False
            except BadRequest:
                pass  # the context expired meanwhile: pre-check late like a fail-open call
        ctx = await gw.pre_check(
            item.query,
            item.user_token,
            data_sources=list(item.data_sources) or None,
            context={"fail_open": True, "occurred_at": item.occurred_at},
        )
        meta["late_pre_check_approved"] = ctx.approved
        audit = await gw.audit(
            ctx.context_id, item.provider, item.model, item.usage, item.latency_ms, metadata=meta
        )
        return audit.audit_id, not ctx.approved
