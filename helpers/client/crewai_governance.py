"""Gateway-mode governance for CrewAI crews: every model call pre-checked, then audited.

:class:`CrewGovernance` uses two seams that CrewAI 1.15 offers, one per step:

* a ``PRE_MODEL_CALL`` interception hook (:mod:`crewai.hooks`), which CrewAI runs in the
  agent's own thread right before each LLM call, with the task, the agent and the messages
  about to be sent. It pre-checks that prompt (the task's description, its expected output
  and the context handed over from earlier tasks) and, on a block, raises
  :class:`GovernanceBlocked`. That is a ``HookAborted``, the one exception CrewAI lets through
  its retry loop, so ``crew.kickoff()`` ends at once and nothing reaches the provider.
* the event bus's ``LLMCallCompletedEvent`` (and ``LLMCallFailedEvent``), which carries the
  token usage the provider reported for that one call. A handler audits it against the
  pre-check's context id, with provider, model and latency.

A pre-check that cannot reach the gateway raises :class:`GovernanceUnavailable` (fail
closed): CrewAI swallows any other exception a hook raises and would make the call
ungoverned. Needs ``crewai``, which lives in its own environment (``requirements-crewai.txt``,
``make test-crewai``). Introduced in ``crewai_env/13_crewai_crews.ipynb``.

>>> with CrewGovernance(gateway, user_token="user-123") as governance:   # doctest: +SKIP
...     result = crew.kickoff(inputs={"topic": "gateway mode"})
>>> governance.audits[0].usage                                           # doctest: +SKIP
TokenUsage(prompt_tokens=102, completion_tokens=56, total_tokens=158)
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crewai.events import LLMCallCompletedEvent, LLMCallFailedEvent, crewai_event_bus
from crewai.hooks import HookAborted, InterceptionPoint, register_hook, unregister_hook
from crewai.hooks.llm_hooks import LLMCallHookContext

from helpers.errors import GatewayError, HelperError

from .gateway_client import SyncGatewayClient
from .providers import content_text
from .results import PreCheckResult, TokenUsage

__all__ = ["AuditedCall", "CrewGovernance", "GovernanceBlocked", "GovernanceUnavailable"]

FRAMEWORK = "crewai"


class _QuietStops(logging.Filter):
    """CrewAI logs an error for the exception that ends a kickoff before raising it to the
    caller; for a block or an outage this hook raised, the caller gets it anyway, with the
    same text, so that log line is dropped. Any other error is still logged."""

    def __init__(self) -> None:
        super().__init__()
        self.raised: deque[str] = deque(maxlen=32)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.endswith(text) for text in self.raised)


_QUIET = _QuietStops()


class GovernanceBlocked(HookAborted, HelperError):
    """The pre-check refused a task's model call; ``result`` says which policy.

    Raised inside CrewAI and out of ``crew.kickoff()``; ``task`` and ``agent`` name the step.
    """

    def __init__(self, task: str, agent: str, result: PreCheckResult) -> None:
        reason = result.block_reason or "refused by policy"
        super().__init__(f"task {task!r} ({agent}) blocked: {reason}", source="gateway pre-check")
        _QUIET.raised.append(str(self))
        self.task = task
        self.agent = agent
        self.result = result


class GovernanceUnavailable(HookAborted, GatewayError):
    """The gateway could not be asked, so the model call was not made (fail closed)."""

    def __init__(self, task: str, error: GatewayError) -> None:
        super().__init__(
            f"task {task!r} stopped before its model call: the governance gateway could not "
            f"be asked ({type(error).__name__}: {error})",
            source="gateway pre-check",
        )
        _QUIET.raised.append(str(self))
        self.task = task
        self.error = error


@dataclass(frozen=True)
class AuditedCall:
    """One audited model call: which task and agent, the usage CrewAI's event carried."""

    task: str
    agent: str
    provider: str
    model: str
    usage: TokenUsage
    latency_ms: int
    audit_id: str


@dataclass(frozen=True)
class _Pending:
    context_id: str
    task: str
    agent: str
    provider: str
    started: datetime


def _usage(raw: dict[str, Any] | None) -> TokenUsage:
    """CrewAI's per-call usage dict (OpenAI names; Anthropic's input/output accepted too)."""
    raw = raw or {}
    prompt = int(raw.get("prompt_tokens", raw.get("input_tokens", 0)) or 0)
    completion = int(raw.get("completion_tokens", raw.get("output_tokens", 0)) or 0)
    total = raw.get("total_tokens")
    return TokenUsage(prompt, completion, int(total) if total else None)


def _key(task_id: Any, agent_id: Any) -> tuple[str, str]:
    return (str(task_id) if task_id else "", str(agent_id) if agent_id else "")


class CrewGovernance:
    """Pre-check and audit for every LLM call CrewAI makes while attached (see the module doc).

    Attach with ``with governance:`` (or :meth:`attach` / :meth:`detach`): the hook and the
    event handlers are process-wide in CrewAI, so they govern every crew kicked off inside.
    ``decisions`` holds every pre-check result, ``audits`` every audited call, and
    ``audit_errors`` any audit the gateway did not take (the LLM answer was already used).
    """

    def __init__(
        self, gateway: SyncGatewayClient, user_token: str, *, provider: str | None = None
    ) -> None:
        self.gateway = gateway
        self.user_token = user_token
        self.provider = provider
        self.decisions: list[PreCheckResult] = []
        self.audits: list[AuditedCall] = []
        self.audit_errors: list[str] = []
        self._pending: dict[tuple[str, str], deque[_Pending]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._attached = False

    def __repr__(self) -> str:
        state = "attached" if self._attached else "detached"
        return (
            f"<CrewGovernance {state} gateway={self.gateway.url} "
            f"decisions={len(self.decisions)} audits={len(self.audits)}>"
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def attach(self) -> CrewGovernance:
        """Register the pre-check hook and the audit handlers (idempotent)."""
        if not self._attached:
            register_hook(InterceptionPoint.PRE_MODEL_CALL, self._pre_model_call)
            flow_log = logging.getLogger("crewai.flow.runtime")
            if _QUIET not in flow_log.filters:
                flow_log.addFilter(_QUIET)
            crewai_event_bus.on(LLMCallCompletedEvent)(self._completed)
            crewai_event_bus.on(LLMCallFailedEvent)(self._failed)
            self._attached = True
        return self

    def detach(self) -> None:
        """Wait for pending audits, then remove the hook and handlers (idempotent)."""
        if not self._attached:
            return
        self.flush()
        unregister_hook(InterceptionPoint.PRE_MODEL_CALL, self._pre_model_call)
        crewai_event_bus.off(LLMCallCompletedEvent, self._completed)
        crewai_event_bus.off(LLMCallFailedEvent, self._failed)
        self._attached = False

    def flush(self, timeout: float = 30.0) -> None:
        """Block until the event handlers (the audits) have run: they run on CrewAI's pool."""
        crewai_event_bus.flush(timeout=timeout)

    def __enter__(self) -> CrewGovernance:
        return self.attach()

    def __exit__(self, *exc_info: object) -> None:
        self.detach()

    # -- step 1: pre-check, in the agent's thread, before the call ---------------------------
    def _pre_model_call(self, ctx: LLMCallHookContext) -> None:
        task = ctx.task
        task_name = (task.name or task.description) if task is not None else "(no task)"
        agent = getattr(ctx.agent, "role", None) or "(no agent)"
        prompt = "\n".join(content_text(m.get("content")) for m in ctx.messages)
        context = {"framework": FRAMEWORK, "task": task_name, "agent": agent}
        try:
            result = self.gateway.pre_check(prompt, self.user_token, context=context)
        except GatewayError as exc:
            raise GovernanceUnavailable(task_name, exc) from exc
        with self._lock:
            self.decisions.append(result)
        if not result.approved:
            raise GovernanceBlocked(task_name, agent, result)
        provider = self.provider or str(getattr(ctx.llm, "provider", None) or "unknown")
        key = _key(getattr(task, "id", None), getattr(ctx.agent, "id", None))
        pending = _Pending(result.context_id, task_name, agent, provider, datetime.now(UTC))
        with self._lock:
            self._pending[key].append(pending)

    def _take(self, event: LLMCallCompletedEvent | LLMCallFailedEvent) -> _Pending | None:
        # Calls of one task run one after another, so first in is first out.
        with self._lock:
            queue = self._pending.get(_key(event.task_id, event.agent_id))
            return queue.popleft() if queue else None

    # -- step 3: audit, on the event bus, with the usage the provider reported ---------------
    def _completed(self, source: Any, event: LLMCallCompletedEvent) -> None:
        pending = self._take(event)
        if pending is None:  # a call made before attach, or one no hook saw
            return
        usage = _usage(event.usage)
        self._audit(pending, event, usage, {})

    def _failed(self, source: Any, event: LLMCallFailedEvent) -> None:
        pending = self._take(event)
        if pending is not None:
            self._audit(pending, event, TokenUsage(0, 0), {"error": event.error[:200]})

    def _audit(
        self,
        pending: _Pending,
        event: LLMCallCompletedEvent | LLMCallFailedEvent,
        usage: TokenUsage,
        extra: dict[str, str],
    ) -> None:
        latency = max(0, round((event.timestamp - pending.started).total_seconds() * 1000))
        model = event.model or "unknown"
        meta = {"framework": FRAMEWORK, "task": pending.task, "agent": pending.agent, **extra}
        try:
            audit = self.gateway.audit(
                pending.context_id,
                pending.provider,
                model,
                usage,
                latency_ms=latency,
                metadata=meta,
            )
        except GatewayError as exc:
            with self._lock:
                self.audit_errors.append(f"{pending.task}: {type(exc).__name__}: {exc}")
            return
        call = AuditedCall(
            pending.task, pending.agent, pending.provider, model, usage, latency, audit.audit_id
        )
        with self._lock:
            self.audits.append(call)
