"""One governed LLM call: pre-check, the provider call through its real SDK, the audit.

The function a team copies into production. :func:`governed_completion` (async) and
:func:`governed_completion_sync` do the three gateway-mode steps for OpenAI or Anthropic,
streaming included, with a :class:`~helpers.client.guard.GatewayGuard` deciding what happens
when the gateway is down (fail closed by default). What is pre-checked is the *new* user
message (``query`` overrides it: a tool call's arguments, retrieved RAG text), not the whole
history again. When the gateway answers ``requires_redaction`` with a ``redacted_query``
(``PII_ACTION=redact``), the LLM gets the redacted text in place of the query and the answer
comes back with the placeholders restored in this process (``restore=False`` keeps them;
``on_text`` sees the model's own stream, or with ``check_reply=True`` the gateway-inspected
one); without a ``redacted_query`` nothing is sent.
Audits go out at once, or through an
:class:`~helpers.client.audit_queue.AuditQueue` when one is given.

When the LLM call fails (after the SDK's own retries), the failure is audited first, under
the pre-check's context, with ``outcome: provider_error``, the error type, the provider's
status, the time until the failure and the tokens reported so far (zero, or what a broken
stream had used), and then raised as a :class:`~helpers.errors.ProviderError` whose
``context_id`` names that pre-check: the trail has no silent gap, and the caller can say
which request failed. Introduced in ``10_real_application.ipynb``.

>>> last_user_text([{"role": "system", "content": "Be brief."},
...                 {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
...                 {"role": "user", "content": "What is gateway mode?"}])
'What is gateway mode?'
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from time import perf_counter
from typing import Any, Literal

from helpers.errors import GatewayError, ProviderError

from .audit_queue import AuditJob, AuditQueue
from .gateway_client import GatewayClient, SyncGatewayClient
from .guard import UNAVAILABLE_MESSAGE, DeferredAudit, GatewayDown, GatewayGuard
from .providers import LLMReply, ToolCall, call_llm, call_llm_sync
from .redaction import placeholder_map, restore_placeholders
from .reply_stream import ReplyStream
from .results import PreCheckResult, ReplyCheck, TokenUsage

__all__ = [
    "Governed",
    "failure_metadata",
    "governed_completion",
    "governed_completion_sync",
    "last_user_text",
    "pre_check_tool_call",
    "redact_messages",
    "tool_call_query",
]

Outcome = Literal["answered", "blocked", "unavailable", "answered_unchecked", "reply_blocked"]

NO_REDACTED_TEXT = "the gateway asks for redaction but sent no redacted text; nothing was sent"


@dataclass(frozen=True)
class Governed:
    """The result of one governed call. ``outcome`` says which path it took:

    ``answered`` (approved, called, audited; when the gateway redacted the query, the LLM got
    the redacted text and ``reply.text`` has the placeholders restored), ``blocked`` (a
    policy said no, or a redaction could not be applied: ``message`` is the reason),
    ``unavailable`` (gateway down, fail closed: nothing reached the LLM),
    ``answered_unchecked`` (gateway down, fail open: called, audit deferred),
    ``reply_blocked`` (``check_reply=True`` and the gateway refused the answer: called and
    audited, nothing shown; ``message`` is the reason).
    """

    outcome: Outcome
    message: str
    reply: LLMReply | None = None
    decision: PreCheckResult | None = None
    audit_id: str | None = None
    pre_check_ms: float = 0.0
    total_ms: float = 0.0

    @property
    def text(self) -> str:
        """What to show the user: the model's answer, or why there is none."""
        return self.reply.text if self.reply is not None else self.message


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The newest user message: what a chat turn adds, so what a turn pre-checks."""
    for message in reversed(messages):
        if message["role"] == "user" and isinstance(message.get("content"), str):
            return message["content"]
    raise ValueError("no user message with text content to pre-check; pass query=")


class _Turn:
    """What one governed call carries from step to step; the async and blocking forms differ
    only in how they wait for the gateway and the LLM."""

    def __init__(
        self,
        guard: GatewayGuard | None,
        messages: Sequence[Mapping[str, Any]],
        query: str | None,
        user_token: str,
        data_sources: list[str] | None,
        restore: bool,
    ) -> None:
        self.guard, self.t0 = guard or GatewayGuard(), perf_counter()
        self.messages = messages
        self.query = query if query is not None else last_user_text(messages)
        self.user_token, self.data_sources, self.restore = user_token, data_sources, restore
        self.pre_ms = 0.0
        self.sent: Sequence[Mapping[str, Any]] = messages
        self.mapping: dict[str, str] = {}

    def ms(self) -> float:
        return (perf_counter() - self.t0) * 1000

    def decided(self, decision: PreCheckResult | GatewayDown) -> Governed | None:
        """After the pre-check: the early answer (blocked, unavailable), or None to go on."""
        self.pre_ms = self.ms()
        if isinstance(decision, GatewayDown):
            if self.guard.fail_open:
                return None
            return self.early("unavailable", UNAVAILABLE_MESSAGE, None)
        if not decision.approved:
            return self.early("blocked", decision.block_reason or "blocked by policy", decision)
        if decision.requires_redaction:  # fail closed whenever the redaction cannot be applied
            if decision.redacted_query is None:  # current AxonFlow: redact, but not told what
                return self.early("blocked", NO_REDACTED_TEXT, decision)
            try:
                self.sent = redact_messages(self.messages, self.query, decision.redacted_query)
                self.mapping = placeholder_map(self.query, decision.redacted_query)
            except ValueError as exc:
                return self.early("blocked", f"cannot redact: {exc}", decision)
        return None

    def early(self, outcome: Outcome, message: str, decision: PreCheckResult | None) -> Governed:
        return Governed(outcome, message, None, decision, None, self.pre_ms, self.ms())

    def unchecked(self, decision: PreCheckResult | GatewayDown, reply: LLMReply) -> Governed | None:
        """Fail open: answered, marked, and governed when the gateway is back."""
        if not isinstance(decision, GatewayDown):
            return None
        self.later(
            "fail_open", AuditJob("", reply.provider, reply.model, reply.usage, reply.latency_ms)
        )
        reason = decision.reason
        return Governed("answered_unchecked", reason, reply, None, None, self.pre_ms, self.ms())

    def failed(
        self, decision: PreCheckResult | GatewayDown, exc: ProviderError, model: str
    ) -> AuditJob | None:
        """After a failed LLM call: the audit of the failure, or None when it has to wait
        for the gateway (fail open: kept for later, like an answered call)."""
        usage = TokenUsage(exc.prompt_tokens, exc.completion_tokens)
        meta = failure_metadata(exc)
        if isinstance(decision, GatewayDown):
            self.later(
                "fail_open", AuditJob("", exc.provider, model, usage, exc.latency_ms, metadata=meta)
            )
            return None
        exc.context_id = decision.context_id  # so the caller can name the failed request
        return AuditJob(
            decision.context_id, exc.provider, model, usage, exc.latency_ms, metadata=meta
        )

    def later(self, reason: str, job: AuditJob) -> None:
        """Keep ``job`` for :meth:`GatewayGuard.flush`; no ``context_id``: never pre-checked."""
        assert isinstance(job.token_usage, TokenUsage)
        self.guard.defer(
            DeferredAudit(
                self.query,
                self.user_token,
                job.provider,
                job.model,
                job.token_usage,
                job.latency_ms,
                GatewayGuard.now(),
                reason,
                tuple(self.data_sources or ()),
                job.context_id or None,
                job.metadata,
            )
        )

    def inspected(self, reply: LLMReply, check: ReplyCheck | GatewayError) -> LLMReply | None:
        """The answer as the gateway's reply check left it: redacted, or None when it was
        refused, or when the check could not be made and the guard fails closed."""
        if isinstance(check, GatewayError):
            return reply if self.guard.fail_open else None
        return replace(reply, text=check.text) if check.approved else None

    def answered(
        self,
        decision: PreCheckResult,
        reply: LLMReply | None,
        audit_id: str | None,
        check: ReplyCheck | GatewayError | None = None,
    ) -> Governed:
        if reply is None:
            if isinstance(check, ReplyCheck):
                reason = check.block_reason or "the answer was refused"
                outcome: Outcome = "reply_blocked"
            else:
                outcome, reason = "unavailable", UNAVAILABLE_MESSAGE
            return Governed(outcome, reason, None, decision, audit_id, self.pre_ms, self.ms())
        if self.mapping and self.restore:
            reply = replace(reply, text=restore_placeholders(reply.text, self.mapping))
        return Governed("answered", "", reply, decision, audit_id, self.pre_ms, self.ms())


class _CheckedStream:
    """Pieces of a stream passed through a :class:`ReplyStream` on their way to ``on_text``:
    the SDK's callback only queues them, a task checks them with the gateway in order."""

    def __init__(self, stream: ReplyStream, on_text: Any) -> None:
        self.stream, self.on_text = stream, on_text
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())

    def put(self, piece: str) -> None:
        self.queue.put_nowait(piece)

    async def _run(self) -> None:
        while (piece := await self.queue.get()) is not None:
            if shown := await self.stream.feed(piece):
                self.on_text(shown)

    async def close(self, *, finish: bool) -> ReplyCheck:
        """Wait for the queued pieces; with ``finish``, check the rest: the whole answer's
        verdict, as one :class:`ReplyCheck` (refused, or the text that was shown)."""
        self.queue.put_nowait(None)
        await self.task
        if finish and (rest := await self.stream.finish()):
            self.on_text(rest)
        if self.stream.refused is not None:
            return self.stream.refused
        policies = tuple(dict.fromkeys(p for c in self.stream.checks for p in c.policies))
        return ReplyCheck(True, self.stream.shown, 0, policies)


def failure_metadata(exc: ProviderError) -> dict[str, Any]:
    """What the audit of a failed LLM call records besides its tokens and latency."""
    return {
        "outcome": "provider_error",
        "error_type": type(exc).__name__,
        "provider_status": exc.status,
        "error": exc.message,
    }


def _answered_audit(
    decision: PreCheckResult, reply: LLMReply, check: ReplyCheck | GatewayError | None = None
) -> AuditJob:
    meta: dict[str, Any] | None = None
    if isinstance(check, ReplyCheck) and (check.policies or not check.approved):
        note: dict[str, Any] = {"policies": list(check.policies)}
        if check.redacted:
            note["redacted"] = dict(check.redacted)
        meta = {"reply": note, "outcome": "ok" if check.approved else "reply_blocked"}
    elif isinstance(check, GatewayError):
        meta = {"reply": {"unchecked": type(check).__name__}}
    job = AuditJob(decision.context_id, reply.provider, reply.model, reply.usage, reply.latency_ms)
    return replace(job, metadata=meta) if meta else job


async def _audit(
    gw: GatewayClient, audits: AuditQueue | None, turn: _Turn, job: AuditJob
) -> str | None:
    """Step 3: queued, or sent now (its ``audit_id``); kept for ``flush()`` when the gateway
    cannot take it, since the user has the answer (or the error) already."""
    if audits is not None:
        audits.submit(**job.as_kwargs())
        return None
    try:
        result = await gw.audit(**job.as_kwargs())
    except GatewayError:
        turn.later("audit_retry", job)
        return None
    return result.audit_id


def _audit_sync(gw: SyncGatewayClient, turn: _Turn, job: AuditJob) -> str | None:
    """Blocking :func:`_audit`, always sent at once."""
    try:
        result = gw.audit(**job.as_kwargs())
    except GatewayError:
        turn.later("audit_retry", job)
        return None
    return result.audit_id


def redact_messages(
    messages: Sequence[Mapping[str, Any]], query: str, redacted: str
) -> list[dict[str, Any]]:
    """``messages`` with every occurrence of the pre-checked ``query`` replaced by the
    gateway's ``redacted`` text. Raises ``ValueError`` when no message carries ``query``
    (then the app cannot know what to send, and sends nothing)."""
    out, found = [], False
    for message in messages:
        content = message.get("content")
        if isinstance(content, str) and query in content:
            message, found = {**message, "content": content.replace(query, redacted)}, True
        out.append(dict(message))
    if not found:
        raise ValueError("the pre-checked query is not in the messages; cannot redact them")
    return out


async def governed_completion(
    gw: GatewayClient,
    llm: Any,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    user_token: str = "",
    query: str | None = None,
    data_sources: list[str] | None = None,
    guard: GatewayGuard | None = None,
    audits: AuditQueue | None = None,
    stream: bool = False,
    on_text: Any = None,
    restore: bool = True,
    check_reply: bool = False,
    **llm_kwargs: Any,
) -> Governed:
    """Pre-check, call ``llm`` (an ``AsyncOpenAI`` or ``AsyncAnthropic``), audit.

    A failed call is audited, then raised as a :class:`~helpers.errors.ProviderError`.
    ``check_reply=True`` has the gateway inspect the answer before it is returned
    (:meth:`GatewayClient.check_reply`, an extension of the embedded gateway): a leaked value
    is redacted, or the answer is refused (``reply_blocked``). With ``stream=True`` and an
    ``on_text``, the stream is checked as it arrives (:class:`~.reply_stream.ReplyStream`):
    ``on_text`` gets the inspected text, a 64-character window behind the model, and never
    a part of a value.
    """
    turn = _Turn(guard, messages, query, user_token, data_sources, restore)
    decision = await turn.guard.pre_check(gw, turn.query, user_token, data_sources=data_sources)
    if (early := turn.decided(decision)) is not None:
        return early
    checked = None
    if check_reply and stream and on_text is not None and isinstance(decision, PreCheckResult):
        checked = _CheckedStream(ReplyStream(gw, decision.context_id), on_text)
    try:
        shown = checked.put if checked is not None else on_text
        reply = await call_llm(llm, model, turn.sent, stream=stream, on_text=shown, **llm_kwargs)
    except ProviderError as exc:  # on the record before the caller sees it: no silent gap
        if checked is not None:
            await checked.close(finish=False)
        if (failure := turn.failed(decision, exc, model)) is not None:
            await _audit(gw, audits, turn, failure)
        raise
    if (unchecked := turn.unchecked(decision, reply)) is not None:
        return unchecked
    assert isinstance(decision, PreCheckResult)
    check: ReplyCheck | GatewayError | None = None
    if check_reply:
        try:
            if checked is not None:
                check = await checked.close(finish=True)
            else:
                check = await gw.check_reply(decision.context_id, reply.text)
        except GatewayError as exc:
            check = exc
    audit_id = await _audit(gw, audits, turn, _answered_audit(decision, reply, check))
    shown = turn.inspected(reply, check) if check is not None else reply
    return turn.answered(decision, shown, audit_id, check)


def governed_completion_sync(
    gw: SyncGatewayClient,
    llm: Any,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    user_token: str = "",
    query: str | None = None,
    data_sources: list[str] | None = None,
    guard: GatewayGuard | None = None,
    stream: bool = False,
    on_text: Any = None,
    restore: bool = True,
    check_reply: bool = False,
    **llm_kwargs: Any,
) -> Governed:
    """Blocking :func:`governed_completion` (``OpenAI`` or ``Anthropic`` clients)."""
    turn = _Turn(guard, messages, query, user_token, data_sources, restore)
    decision = turn.guard.pre_check_sync(gw, turn.query, user_token, data_sources=data_sources)
    if (early := turn.decided(decision)) is not None:
        return early
    try:
        reply = call_llm_sync(llm, model, turn.sent, stream=stream, on_text=on_text, **llm_kwargs)
    except ProviderError as exc:
        if (failure := turn.failed(decision, exc, model)) is not None:
            _audit_sync(gw, turn, failure)
        raise
    if (unchecked := turn.unchecked(decision, reply)) is not None:
        return unchecked
    assert isinstance(decision, PreCheckResult)
    check: ReplyCheck | GatewayError | None = None
    if check_reply:
        try:
            check = gw.check_reply(decision.context_id, reply.text)
        except GatewayError as exc:
            check = exc
    audit_id = _audit_sync(gw, turn, _answered_audit(decision, reply, check))
    shown = turn.inspected(reply, check) if check is not None else reply
    return turn.answered(decision, shown, audit_id, check)


def tool_call_query(call: ToolCall) -> str:
    """What to pre-check for a tool call: its name and each argument as plain text (not
    JSON, whose escaping would hide quotes from the detectors)."""
    lines = [f"{key}: {value}" for key, value in sorted(call.arguments.items())]
    return "\n".join([f"tool {call.name}", *lines])


async def pre_check_tool_call(
    gw: GatewayClient, call: ToolCall, *, user_token: str = "", guard: GatewayGuard | None = None
) -> PreCheckResult | GatewayDown:
    """Step 1 again, for arguments the *model* wrote, before the tool touches a database."""
    return await (guard or GatewayGuard()).pre_check(
        gw, tool_call_query(call), user_token, data_sources=[f"tool:{call.name}"]
    )
