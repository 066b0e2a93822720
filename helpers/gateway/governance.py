"""One governance core for every path: *decide* a request, *record* what happened.

The pre-check and audit endpoints (gateway mode), ``POST /api/request`` and
``POST /v1/chat/completions`` (proxy mode) all call this module and nothing else to govern:

* :meth:`Governance.decide` reloads an edited policy file, runs the engine (identity and
  role, every policy family, the rate limit, the redaction plan, the verdict), commits the
  decision row with its masked request context and redaction note, and counts it;
* :meth:`Governance.audit` (an app's audit, with the owner check and idempotency) and
  :meth:`Governance.record` (a proxied call the gateway made itself) commit the audit row
  with its cost and masked metadata, and count it.

So a switch such as ``PII_ACTION=redact`` or ``SECRET_ACTION=block`` means the same on every
path, and nothing raw reaches the trail: request context and audit metadata are stored with
typed placeholders in place of every PII value and credential, and the redaction note holds
types and counts only. Introduced in ``11_proxy_mode.ipynb``.

>>> governed = await governance.decide("community", "user-123", ["My SSN is 123-45-6789"])
... # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from helpers.settings import Settings

from .engine import Decision, DecisionEngine
from .explain import DecisionLog
from .idempotency import AuditIndex, Known, repeat_of
from .metrics import GatewayMetrics
from .policies.redaction import Placeholders, Redaction, mask
from .pricing import PricingTable
from .replies import ReplyInspector
from .store import AuditStore
from .store.chain import is_expired, timestamp
from .traffic_sample import TrafficSample
from .validation import AuditRequest, Reject, ReplyCheckRequest

__all__ = ["REDACTION_KEY", "Governance", "Governed"]

#: The key under which a context record's stored request context notes a redaction.
REDACTION_KEY = "_gateway_redaction"


@dataclass(frozen=True, slots=True)
class Governed:
    """A committed decision: the context row is durable before anything else happens."""

    decision: Decision
    context_id: str
    expires_at: str
    client_id: str
    started_ns: int

    @property
    def redaction(self) -> Redaction | None:
        return self.decision.redaction

    def __repr__(self) -> str:
        return f"<Governed {self.context_id} {self.decision!r}>"


class Governance:
    """The engine, the trail and the counters behind every governed endpoint.

    ``store`` is opened by the app's lifespan and set here before the first request.
    """

    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.ttl_s = settings.context_ttl_s
        self.engine = DecisionEngine.from_settings(settings, clock=lambda: clock().timestamp())
        self.pricing = PricingTable.load(settings.pricing_file)
        self.metrics = GatewayMetrics()
        self.store: AuditStore | None = None
        # What GET /api/v1/decisions/{id}/explain reads: references only (.explain).
        self.decisions = DecisionLog(max_age_s=self.ttl_s)
        self.sample: TrafficSample | None = None  # opt-in (GATEWAY_TRAFFIC_SAMPLE), masked
        if settings.traffic_sample > 0:
            self.sample = TrafficSample(
                settings.traffic_sample,
                settings.traffic_sample_max_age_s,
                clock=lambda: clock().timestamp(),
            )
        self.audits = AuditIndex(
            timestamp(clock() + timedelta(seconds=self.ttl_s)), now=lambda: timestamp(clock())
        )
        # Compatibility mode stores every copy of a retried audit, as AxonFlow does.
        self.idempotent = not settings.compat

    # -- decide ------------------------------------------------------------------------------
    async def decide(
        self,
        client_id: str,
        user_token: str,
        parts: Sequence[str],
        *,
        data_sources: Iterable[str] = (),
        context: Mapping[str, Any] | None = None,
    ) -> Governed:
        """Decide the texts a request sends (joined by newlines, as one query) and commit.

        ``parts`` is ``[query]`` for a pre-check and the message texts for a proxied chat;
        under redaction each part gets its placeholders.
        """
        started = time.perf_counter_ns()
        query = parts[0] if len(parts) == 1 else "\n".join(parts)
        self.engine.policies.reload_if_changed()  # an edited file is seen within a second
        decision = self.engine.decide(query, user_token, parts)
        ctx = self.store.append_context(  # type: ignore[union-attr]
            client_id,
            user_token,
            query,
            approved=decision.approved,
            policies=decision.policies,
            block_reason=decision.block_reason,
            data_sources=data_sources,
            user_role=decision.user.role,
            user_department=decision.user.department,
            request_context=_stored_context(context, decision.redaction),
            ttl_s=self.ttl_s,
        )
        await self.store.committed(ctx)  # type: ignore[union-attr]  # durable, then answered
        self.decisions.keep(
            ctx.record_id, decision, self.engine.policies.current, client_id, ctx.expires_at
        )
        elapsed_ms = (time.perf_counter_ns() - started) / 1e6
        # Counting is not the client's business: it runs once the reply has gone out.
        asyncio.get_running_loop().call_soon(
            self._count_decision, decision.approved, decision.policies, elapsed_ms
        )
        if self.sample is not None:  # masked after the reply, like the counting
            asyncio.get_running_loop().call_soon(self._sample, query, decision)
        return Governed(decision, ctx.record_id, ctx.expires_at, client_id, started)

    def _sample(self, query: str, decision: Decision) -> None:
        self.sample.add(query, decision.user.role, decision.user.department)  # type: ignore[union-attr]

    def _count_decision(self, approved: bool, policies: list[str], elapsed_ms: float) -> None:
        m = self.metrics
        m.precheck_requests.inc("success", "true" if approved else "false")
        for policy in policies:
            m.policy_triggers.inc(policy)
        m.precheck_duration.observe(elapsed_ms)

    # -- replies (gateway mode) -------------------------------------------------------------
    def check_reply(self, req: ReplyCheckRequest) -> tuple[ReplyInspector, str]:
        """Inspect an answer the app received under a context it pre-checked, with the
        switches in force: the inspector (its verdict, what it keeps back) and the text the
        app may show. Stateless: the app holds the stream and sends back what is kept."""
        self._owned(req.context_id, req.client_id)
        engine = self.engine
        actions = {"pii": engine.pii_action, "secret": engine.secret_action}
        # The app numbers its own placeholders; a leak's is marked apart so it is never
        # "restored" into one of the app's values.
        inspector = ReplyInspector(actions, ssn_layout=engine.ssn_layout, prefix="REDACTED_")
        return inspector, inspector.window(req.text, req.context, final=req.final)

    def _owned(self, context_id: str, client_id: str) -> str:
        """The context's expiry, when it exists, belongs to ``client_id`` and is alive; else
        the contract's 400 (another tenant cannot use a context)."""
        owner = self.store.context_owner(context_id)  # type: ignore[union-attr]
        if owner is None or owner[0] != client_id or is_expired(owner[1], self.clock()):
            raise Reject(400, "Invalid or expired context")
        return owner[1]

    # -- record --------------------------------------------------------------------------------
    async def audit(self, req: AuditRequest, idempotency_key: str) -> str:
        """An app's audit of a context it pre-checked: the ``audit_id``, a repeat's included."""
        store = self.store
        assert store is not None, "the gateway's store is not open"
        expires_at = self._owned(req.context_id, req.client_id)
        # Stored masked, so compared masked: a retry after a restart finds the stored row.
        if req.metadata:
            req = req._replace(metadata=mask(req.metadata))
        # A repeat of an accepted audit is that audit (module helpers.gateway.idempotency).
        if self.idempotent:
            repeat, digest, key = await repeat_of(
                self.audits, store, req, expires_at, idempotency_key
            )
            if repeat is not None:
                self.metrics.audit_duplicates.inc("same_body")
                return repeat
        started = time.perf_counter_ns()
        record, cost = self._append_audit(
            req.context_id,
            req.client_id,
            req.provider,
            req.model,
            prompt_tokens=req.prompt_tokens,
            completion_tokens=req.completion_tokens,
            total_tokens=req.total_tokens,
            latency_ms=req.latency_ms,
            metadata=req.metadata,
        )
        if self.idempotent:
            known = Known(record.record_id, record)
            self.audits.add(req.context_id, expires_at, digest, known, key)
        try:
            await store.committed(record)  # durable before acknowledged
        except BaseException:
            if self.idempotent:
                self.audits.forget(req.context_id, digest)
            raise
        self._count_audit_soon(
            req.provider, req.model, req.prompt_tokens, req.completion_tokens, cost, started
        )
        return record.record_id

    async def record(
        self,
        governed: Governed,
        provider: str,
        model: str,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        latency_ms: float = 0.0,
        metadata: dict[str, Any],
    ) -> str:
        """Commit the audit of a call the gateway made itself (proxy mode): its ``audit_id``.

        A provider's error message may quote the prompt, so ``metadata["error"]`` is masked.
        """
        started = time.perf_counter_ns()
        if "error" in metadata:
            metadata = {**metadata, "error": mask(metadata["error"])}
        record, cost = self._append_audit(
            governed.context_id,
            governed.client_id,
            provider,
            model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=None,
            latency_ms=round(latency_ms),
            metadata=metadata,
        )
        await self.store.committed(record)  # type: ignore[union-attr]
        self._count_audit_soon(provider, model, prompt_tokens, completion_tokens, cost, started)
        return record.record_id

    def _append_audit(
        self, context_id: str, client_id: str, provider: str, model: str, **fields: Any
    ) -> tuple[Any, float]:
        """Append an audit priced by the table; ``fields`` are :meth:`AuditStore.append_audit`'s
        keyword arguments, ``prompt_tokens`` and ``completion_tokens`` always among them."""
        prompt, completion = fields["prompt_tokens"], fields["completion_tokens"]
        cost = self.pricing.cost(provider, model, prompt, completion)
        record = self.store.append_audit(  # type: ignore[union-attr]
            context_id, client_id, provider, model, cost_usd=cost, **fields
        )
        return record, cost

    def _count_audit_soon(
        self, provider: str, model: str, prompt: int, completion: int, cost: float, started: int
    ) -> None:
        elapsed_ms = (time.perf_counter_ns() - started) / 1e6
        asyncio.get_running_loop().call_soon(
            self._count_audit, provider, model, prompt, completion, cost, elapsed_ms
        )

    def _count_audit(
        self, provider: str, model: str, prompt: int, completion: int, cost: float, ms: float
    ) -> None:
        m = self.metrics
        m.audit_requests.inc("success", provider)
        m.llm_tokens.inc("prompt", amount=prompt)
        m.llm_tokens.inc("completion", amount=completion)
        m.llm_cost.inc(provider, model, amount=cost)
        m.audit_duration.observe(ms)


def _stored_context(
    context: Mapping[str, Any] | None, redaction: Redaction | None
) -> Mapping[str, Any] | None:
    """The request context as the trail keeps it: every value masked with typed placeholders
    and, when redaction was required, a note of the types and the count (never a value, never
    the placeholder mapping)."""
    if not context and redaction is None:
        return context  # the common pre-check: nothing to mask, nothing to note
    names = Placeholders.following(redaction.values if redaction else {})
    stored = mask(dict(context), names) if context else context
    if redaction is None:
        return stored
    return {**(stored or {}), REDACTION_KEY: redaction.note}
