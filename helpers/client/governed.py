"""One governed LLM call: pre-check, the provider call through its real SDK, the audit.

The function a team copies into production. :func:`governed_completion` (async) and
:func:`governed_completion_sync` do the three gateway-mode steps for OpenAI or Anthropic,
streaming included, with a :class:`~helpers.client.guard.GatewayGuard` deciding what happens
when the gateway is down (fail closed by default). What is pre-checked is the *new* user
message (``query`` overrides it: a tool call's arguments, retrieved RAG text), not the whole
history again. When the gateway answers ``requires_redaction`` with a ``redacted_query``
(``PII_ACTION=redact``), the LLM gets the redacted text in place of the query and the answer
comes back with the placeholders restored in this process (``restore=False`` keeps them;
``on_text`` always sees the model's own stream); without a ``redacted_query`` nothing is sent.
Audits go out at once, or through an
:class:`~helpers.client.audit_queue.AuditQueue` when one is given. Introduced in
``10_real_application.ipynb``.

>>> last_user_text([{"role": "system", "content": "Be brief."},
...                 {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
...                 {"role": "user", "content": "What is gateway mode?"}])
'What is gateway mode?'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from time import perf_counter
from typing import Any, Literal

from helpers.errors import GatewayError

from .audit_queue import AuditQueue
from .gateway_client import GatewayClient, SyncGatewayClient
from .guard import UNAVAILABLE_MESSAGE, DeferredAudit, GatewayDown, GatewayGuard
from .providers import LLMReply, ToolCall, call_llm, call_llm_sync, provider_of
from .redaction import placeholder_map, restore_placeholders
from .results import PreCheckResult

__all__ = [
    "Governed",
    "governed_completion",
    "governed_completion_sync",
    "last_user_text",
    "pre_check_tool_call",
    "redact_messages",
    "tool_call_query",
]

Outcome = Literal["answered", "blocked", "unavailable", "answered_unchecked"]

NO_REDACTED_TEXT = "the gateway asks for redaction but sent no redacted text; nothing was sent"


@dataclass(frozen=True)
class Governed:
    """The result of one governed call. ``outcome`` says which path it took:

    ``answered`` (approved, called, audited; when the gateway redacted the query, the LLM got
    the redacted text and ``reply.text`` has the placeholders restored), ``blocked`` (a
    policy said no, or a redaction could not be applied: ``message`` is the reason),
    ``unavailable`` (gateway down, fail closed: nothing reached the LLM),
    ``answered_unchecked`` (gateway down, fail open: called, audit deferred).
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
            return Governed("unavailable", UNAVAILABLE_MESSAGE, None, None, None, self.pre_ms,
                            self.ms())  # fmt: skip
        if not decision.approved:
            reason = decision.block_reason or "blocked by policy"
            return Governed("blocked", reason, None, decision, None, self.pre_ms, self.ms())
        if decision.requires_redaction:  # fail closed whenever the redaction cannot be applied
            if decision.redacted_query is None:  # current AxonFlow: redact, but not told what
                return Governed("blocked", NO_REDACTED_TEXT, None, decision, None, self.pre_ms,
                                self.ms())  # fmt: skip
            try:
                self.sent = redact_messages(self.messages, self.query, decision.redacted_query)
                self.mapping = placeholder_map(self.query, decision.redacted_query)
            except ValueError as exc:
                return Governed("blocked", f"cannot redact: {exc}", None, decision, None,
                                self.pre_ms, self.ms())  # fmt: skip
        return None

    def unchecked(self, decision: PreCheckResult | GatewayDown, reply: LLMReply) -> Governed | None:
        """Fail open: answered, marked, and governed when the gateway is back."""
        if not isinstance(decision, GatewayDown):
            return None
        self.guard.defer(self.deferred(reply, "fail_open"))
        return Governed("answered_unchecked", decision.reason, reply, None, None, self.pre_ms,
                        self.ms())  # fmt: skip

    def deferred(
        self, reply: LLMReply, reason: str, context_id: str | None = None
    ) -> DeferredAudit:
        return DeferredAudit(
            self.query, self.user_token, reply.provider, reply.model, reply.usage,
            reply.latency_ms, GatewayGuard.now(), reason, tuple(self.data_sources or ()),
            context_id,
        )  # fmt: skip

    def answered(self, decision: PreCheckResult, reply: LLMReply, audit_id: str | None) -> Governed:
        if self.mapping and self.restore:
            reply = replace(reply, text=restore_placeholders(reply.text, self.mapping))
        return Governed("answered", "", reply, decision, audit_id, self.pre_ms, self.ms())


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
    **llm_kwargs: Any,
) -> Governed:
    """Pre-check, call ``llm`` (an ``AsyncOpenAI`` or ``AsyncAnthropic``), audit."""
    turn = _Turn(guard, messages, query, user_token, data_sources, restore)
    decision = await turn.guard.pre_check(gw, turn.query, user_token, data_sources=data_sources)
    if (early := turn.decided(decision)) is not None:
        return early
    reply = await call_llm(llm, model, turn.sent, stream=stream, on_text=on_text, **llm_kwargs)
    if (unchecked := turn.unchecked(decision, reply)) is not None:
        return unchecked
    assert isinstance(decision, PreCheckResult)
    provider, audit_id = provider_of(llm), None
    if audits is not None:
        audits.submit(decision.context_id, provider, model, reply.usage, reply.latency_ms)
    else:
        try:
            result = await gw.audit(decision.context_id, provider, model, reply.usage,
                                    reply.latency_ms)  # fmt: skip
            audit_id = result.audit_id
        except GatewayError:  # the user has the answer; the audit waits for the gateway
            turn.guard.defer(turn.deferred(reply, "audit_retry", decision.context_id))
    return turn.answered(decision, reply, audit_id)


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
    **llm_kwargs: Any,
) -> Governed:
    """Blocking :func:`governed_completion` (``OpenAI`` or ``Anthropic`` clients)."""
    turn = _Turn(guard, messages, query, user_token, data_sources, restore)
    decision = turn.guard.pre_check_sync(gw, turn.query, user_token, data_sources=data_sources)
    if (early := turn.decided(decision)) is not None:
        return early
    reply = call_llm_sync(llm, model, turn.sent, stream=stream, on_text=on_text, **llm_kwargs)
    if (unchecked := turn.unchecked(decision, reply)) is not None:
        return unchecked
    assert isinstance(decision, PreCheckResult)
    provider, audit_id = provider_of(llm), None
    try:
        audit_id = gw.audit(decision.context_id, provider, model, reply.usage,
                            reply.latency_ms).audit_id  # fmt: skip
    except GatewayError:
        turn.guard.defer(turn.deferred(reply, "audit_retry", decision.context_id))
    return turn.answered(decision, reply, audit_id)


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
