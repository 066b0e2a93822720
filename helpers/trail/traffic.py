"""A realistic, reproducible day of governed LLM traffic, sent through the real stack.

:func:`plan_day` draws a day from a fixed seed: six people in six departments asking their
usual questions at office hours, each with favourite models at OpenAI and Anthropic, a few
risky prompts (PII, SQL injection, admin tables, custom-policy names) taken from the labelled
corpus, a contractor's script that hammers the gateway past its guest rate limit, and a few
provider failures. :func:`run_day` sends every planned call through the three gateway-mode
steps, in order: pre-check at the gateway, the LLM call with the real ``openai`` or
``anthropic`` SDK (the stand-ins offline), and the audit, also of refusals and failed calls
(zero tokens, ``outcome`` in the metadata). ``audit_failures=False`` is a faulty client that
skips failed calls, as an app that crashes there would: those are the trail's gaps.

The day's clock is **simulated**: each call carries its planned time as ``simulated_at`` in
the pre-check ``context`` and the audit ``metadata`` (the gateway records both, trusts
neither). Offline, the audited latency is the stand-in's **simulated** latency (its
``x-standin-simulated-total-ms`` header) so it is the same on every run; against a real
provider it is measured. Introduced in ``08_audit_trail.ipynb``.

>>> plan = plan_day(seed=7, calls=40)
>>> plan == plan_day(seed=7, calls=40), len(plan) > 40
(True, True)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import pandas as pd

from helpers.client import SyncGatewayClient, TokenUsage, call_llm_sync
from helpers.corpus import load_corpus
from helpers.errors import ConfigError, ProviderError

__all__ = [
    "APP_NAME",
    "GUEST_TOKEN",
    "PERSONAS",
    "CallOutcome",
    "DayPlan",
    "DayResult",
    "Persona",
    "PlannedCall",
    "plan_day",
    "run_day",
]

APP_NAME = "assistant-day"
GUEST_TOKEN = "contractor-901"  # role guest in data/users.yaml: 10 requests per 60 s


@dataclass(frozen=True, slots=True)
class Persona:
    """A person in ``data/users.yaml``: how often they ask, which models, which questions."""

    token: str
    department: str
    weight: float
    models: tuple[tuple[str, str, float], ...]  # (provider, model, weight)
    prompts: tuple[str, ...]

    def __repr__(self) -> str:
        return f"<Persona {self.token} {self.department} weight={self.weight}>"


# Questions each department really asks; none may trigger a policy for its asker (tested).
PERSONAS: tuple[Persona, ...] = (
    Persona(
        "user-123",
        "platform",
        0.22,
        (
            ("openai", "gpt-4o-mini", 0.5),
            ("anthropic", "claude-3-5-haiku-20241022", 0.3),
            ("openai", "gpt-4.1-mini", 0.2),
        ),
        (
            "How should we roll out a new model version with a canary?",
            "What metrics should we monitor for LLM latency and error rates?",
            "Explain how to cache embeddings for a retrieval pipeline.",
            "Suggest retry and timeout settings for calls to a hosted model.",
            "How do we keep prompts versioned alongside application code?",
            "Review this deployment checklist and point out what is missing.",
        ),
    ),
    Persona(
        "user-456",
        "payments",
        0.14,
        (("openai", "gpt-4o-2024-08-06", 0.5), ("openai", "gpt-4o-mini", 0.5)),
        (
            "How do we make payment webhooks idempotent?",
            "Explain PCI scope reduction with tokenisation in plain words.",
            "What should a refund service log for later reconciliation?",
            "Draft a runbook for a failed settlement batch.",
            "How can we estimate the monthly cost of our model calls?",
        ),
    ),
    Persona(
        "user-234",
        "finance",
        0.14,
        (("anthropic", "claude-3-5-sonnet-latest", 0.6), ("openai", "gpt-4o", 0.4)),
        (
            "Explain the difference between accrual and cash accounting.",
            "How should we forecast cloud spend for next year?",
            "Summarise the main drivers of software gross margin.",
            "What is a sensible budget variance threshold for a department?",
            "Compare the cost per request of a small and a large model.",
        ),
    ),
    Persona(
        "user-567",
        "marketing",
        0.12,
        (("openai", "gpt-4o-mini", 0.6), ("anthropic", "claude-3-5-haiku-20241022", 0.4)),
        (
            "Write three subject lines for a product newsletter about faster search.",
            "Suggest a structure for a customer case study.",
            "How do we measure whether a landing page change worked?",
            "Draft a short post announcing our new status page.",
        ),
    ),
    Persona(
        "user-345",
        "support",
        0.28,
        (("anthropic", "claude-3-5-haiku-20241022", 0.7), ("openai", "gpt-4o-mini", 0.3)),
        (
            "Draft a polite reply to a customer whose export job is slow.",
            "Summarise this ticket thread and suggest the next step.",
            "How do I explain a password reset to a non-technical customer?",
            "Rewrite this answer so it is shorter and friendlier.",
            "What should a good escalation note to engineering contain?",
            "Suggest a macro for customers asking about data retention.",
        ),
    ),
    Persona(
        "user-789",
        "security",
        0.10,
        (("anthropic", "claude-3-5-sonnet-latest", 0.5), ("openai", "gpt-4.1-mini", 0.5)),
        (
            "What are the main risks of prompt injection in a support bot?",
            "How should we rotate service credentials without downtime?",
            "Summarise the OWASP guidance for large language model applications.",
            "Draft a policy for which data may be sent to external models.",
        ),
    ),
)
_GUEST_PROMPTS = (
    "Summarise the attached page for the weekly report.",
    "Translate this paragraph into German.",
    "Extract the action items from these meeting notes.",
)
# Plain words for the documents some prompts carry: no digits, no SQL words, no names.
_WORDS = tuple(
    "the a of to and in we our team service request latency model answer customer report "
    "week quality review change plan risk budget cost page note issue fix release test "
    "metric goal result summary update process owner draft feedback support project data "
    "queue cache region traffic incident timeline impact follow up action item next step "
    "agreed open closed pending priority high low medium because while after before during".split()
)
# fmt: off
# A table: the day's shape (hour: relative weight) reads at a glance on two lines.
_HOUR_WEIGHTS = {7: 1, 8: 3, 9: 6, 10: 8, 11: 7, 12: 4, 13: 5, 14: 7, 15: 7, 16: 6, 17: 4,
                 18: 2, 19: 1}
# fmt: on


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One request of the day: who, when (simulated), which model, what, and whether the
    provider will fail it (``fail``)."""

    index: int
    at: datetime
    user_token: str
    department: str
    provider: str
    model: str
    query: str
    kind: str  # routine, risky or burst
    fail: bool

    def __repr__(self) -> str:
        flag = " provider-fails" if self.fail else ""
        return (
            f"<PlannedCall #{self.index} {self.at:%H:%M:%S} {self.user_token} "
            f"{self.provider}/{self.model} {self.kind}{flag}>"
        )


@dataclass(frozen=True)
class DayPlan:
    """A day of calls in simulated-time order; equal seeds give equal plans."""

    seed: int
    day: date
    calls: tuple[PlannedCall, ...]

    def __len__(self) -> int:
        return len(self.calls)

    @property
    def providers(self) -> frozenset[str]:
        return frozenset(c.provider for c in self.calls)

    def frame(self) -> pd.DataFrame:
        """One row per call (the query's length, not its text)."""
        rows = [
            {
                "at": c.at,
                "user_token": c.user_token,
                "department": c.department,
                "provider": c.provider,
                "model": c.model,
                "kind": c.kind,
                "fail": c.fail,
                "query_chars": len(c.query),
            }
            for c in self.calls
        ]
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        users = len({c.user_token for c in self.calls})
        models = len({c.model for c in self.calls})
        return (
            f"<DayPlan {self.day} seed={self.seed}: {len(self)} calls, {users} users, "
            f"{models} models>"
        )


def _risky_prompts(token: str) -> tuple[str, ...]:
    # Corpus rows that trigger a policy, written for this user or for the generic engineer.
    return tuple(
        r.query
        for r in load_corpus()
        if r.expected_policies and r.source != "benign" and r.user_token in (token, "user-123")
    )


def _office_time(rng: random.Random, day: date) -> datetime:
    hour = rng.choices(list(_HOUR_WEIGHTS), weights=list(_HOUR_WEIGHTS.values()))[0]
    start = datetime.combine(day, clock_time(hour), tzinfo=UTC)
    return start + timedelta(seconds=rng.randrange(3600))


def _document(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=int(rng.lognormvariate(5.0, 0.8)) + 20)
    return "\n\n" + " ".join(words) + "."


def plan_day(
    seed: int = 20250603,
    day: date = date(2025, 6, 3),
    calls: int = 360,
    *,
    risky_share: float = 0.08,
    failure_share: float = 0.03,
    document_share: float = 0.35,
    guest_burst: int = 14,
    burst_at: clock_time = clock_time(14, 5),
) -> DayPlan:
    """Draw a day: ``calls`` office-hour requests plus a ``guest_burst`` from the contractor.

    The burst arrives four simulated seconds apart and, in real time, back to back, so a
    burst longer than the guest limit (10 per 60 s) is refused from the eleventh request on.
    """
    rng = random.Random(seed)
    weights = [p.weight for p in PERSONAS]
    risky = {p.token: _risky_prompts(p.token) for p in PERSONAS}
    drafts: list[tuple[datetime, str, str, str, str, str, str, bool]] = []
    for _ in range(calls):
        persona = rng.choices(PERSONAS, weights=weights)[0]
        at = _office_time(rng, day)
        provider, model, _w = rng.choices(persona.models, weights=[m[2] for m in persona.models])[0]
        if rng.random() < risky_share:
            query, kind = rng.choice(risky[persona.token]), "risky"
        else:
            query, kind = rng.choice(persona.prompts), "routine"
            if rng.random() < document_share:
                query += _document(rng)
        fail = rng.random() < failure_share
        drafts.append((at, persona.token, persona.department, provider, model, query, kind, fail))
    start = datetime.combine(day, burst_at, tzinfo=UTC)
    for k in range(guest_burst):
        drafts.append(
            (
                start + timedelta(seconds=4 * k),
                GUEST_TOKEN,
                "external",
                "openai",
                "gpt-4o-mini",
                rng.choice(_GUEST_PROMPTS) + _document(rng),
                "burst",
                False,
            )
        )
    drafts.sort(key=lambda d: d[0])  # stable: equal times keep their drawing order
    planned = tuple(PlannedCall(i, *d) for i, d in enumerate(drafts))
    return DayPlan(seed, day, planned)


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What happened to one planned call."""

    call: PlannedCall
    context_id: str
    approved: bool
    policies: tuple[str, ...]
    audit_id: str | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int | None = None

    @property
    def rate_limited(self) -> bool:
        return "rate_limit" in self.policies

    @property
    def gap(self) -> bool:
        """Approved but never audited (the provider call failed and the app gave up)."""
        return self.approved and self.audit_id is None


@dataclass(frozen=True)
class DayResult:
    """Every call's outcome, in the order sent."""

    outcomes: tuple[CallOutcome, ...]

    def count(self, what: str) -> int:
        """``calls``, ``approved``, ``blocked``, ``rate_limited``, ``audited`` or ``gaps``."""
        o = self.outcomes
        tests = {
            "calls": lambda x: True,
            "approved": lambda x: x.approved,
            "blocked": lambda x: not x.approved,
            "rate_limited": lambda x: x.rate_limited,
            "audited": lambda x: x.audit_id is not None,
            "gaps": lambda x: x.gap,
        }
        if what not in tests:
            raise ValueError(f"count({what!r}): choose one of {', '.join(tests)}")
        return sum(1 for x in o if tests[what](x))

    def frame(self) -> pd.DataFrame:
        rows = [
            {
                "at": x.call.at,
                "user_token": x.call.user_token,
                "provider": x.call.provider,
                "model": x.call.model,
                "kind": x.call.kind,
                "approved": x.approved,
                "policies": list(x.policies),
                "audited": x.audit_id is not None,
                "error": x.error,
                "prompt_tokens": x.prompt_tokens,
                "completion_tokens": x.completion_tokens,
                "latency_ms": x.latency_ms,
            }
            for x in self.outcomes
        ]
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        kinds = ("calls", "approved", "blocked", "rate_limited", "audited", "gaps")
        parts = ", ".join(f"{k}={self.count(k)}" for k in kinds)
        return f"<DayResult {parts}>"


def _call_llm(
    call: PlannedCall, llm: Any, headers: dict[str, str] | None
) -> tuple[str, TokenUsage, int, str]:
    turn = [{"role": "user", "content": call.query}]
    reply = call_llm_sync(llm, call.model, turn, max_tokens=300, extra_headers=headers)
    # Offline the stand-in says what latency it simulated; that, not our loopback time, is
    # the figure a real provider call would have taken (and it is the same on every run).
    simulated = reply.headers.get("x-standin-simulated-total-ms")
    if simulated is not None:
        return reply.text, reply.usage, round(float(simulated)), "simulated"
    return reply.text, reply.usage, round(reply.latency_ms), "measured"


def _audit_no_tokens(
    gw: SyncGatewayClient, context_id: str, call: PlannedCall, metadata: dict[str, str]
) -> str:
    """Audit a call that spent no tokens (refused, or failed at the provider); its audit id."""
    usage = TokenUsage(0, 0)
    return gw.audit(context_id, call.provider, call.model, usage, metadata=metadata).audit_id


def run_day(
    plan: DayPlan,
    stack: Any,
    *,
    gateway: SyncGatewayClient | None = None,
    allow_live: bool = False,
    audit_failures: bool = True,
) -> DayResult:
    """Send every planned call through pre-check, LLM call and audit, one after another.

    ``stack`` is a :class:`helpers.stack.Stack` (its SDK clients are used); ``gateway``
    defaults to the stack's gateway. A plan would spend real money against a live provider,
    so that needs ``allow_live=True``; planned provider failures are only injected offline.
    Refusals and failed calls are audited with zero tokens and their ``outcome``;
    ``audit_failures=False`` leaves failed calls un-audited (a faulty client: the gaps).
    """
    backends = {"openai": stack.openai, "anthropic": stack.anthropic}
    live = sorted(p for p in plan.providers if backends[p].live)
    if live and not allow_live:
        raise ConfigError(
            f"run_day would send {len(plan)} calls to the real {', '.join(live)} API "
            "(keys are set); pass allow_live=True to spend that money, or unset the keys"
        )
    own_gateway = gateway is None
    gw = gateway if gateway is not None else stack.sync_gateway_client()
    # Only the providers the plan uses; retries off, so a planned failure fails at once.
    factories = {"openai": stack.openai_client, "anthropic": stack.anthropic_client}
    llms = {name: factories[name](max_retries=0) for name in sorted(plan.providers)}
    outcomes = []
    try:
        for call in plan.calls:
            stamp = call.at.strftime("%Y-%m-%dT%H:%M:%SZ")
            meta = {"simulated_at": stamp, "app": APP_NAME}  # the context and the metadata
            pre = gw.pre_check(call.query, user_token=call.user_token, context=meta)
            if not pre.approved:  # the refusal is on record too: nothing reached the LLM
                refusal_id = _audit_no_tokens(
                    gw, pre.context_id, call, {**meta, "outcome": "refused"}
                )
                outcomes.append(CallOutcome(call, pre.context_id, False, pre.policies, refusal_id))
                continue
            inject = call.fail and not backends[call.provider].live
            headers = {"x-standin-fail": "500"} if inject else None
            try:
                text, usage, latency_ms, source = _call_llm(call, llms[call.provider], headers)
            except ProviderError as exc:
                error = type(exc.__cause__ or exc).__name__  # the SDK's name for it
                failure_id = None
                if audit_failures:  # else the faulty client: the decision stays un-audited
                    failed = {**meta, "outcome": "provider_error", "error": error}
                    failure_id = _audit_no_tokens(gw, pre.context_id, call, failed)
                outcomes.append(
                    CallOutcome(call, pre.context_id, True, pre.policies, failure_id, error)
                )
                continue
            audit = gw.audit(
                pre.context_id,
                call.provider,
                call.model,
                usage,
                latency_ms=latency_ms,
                response_summary=text[:120],
                metadata={**meta, "latency": source, "outcome": "answered"},
            )
            outcomes.append(
                CallOutcome(
                    call,
                    pre.context_id,
                    True,
                    pre.policies,
                    audit.audit_id,
                    None,
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    latency_ms,
                )
            )
    finally:
        for llm in llms.values():
            llm.close()
        if own_gateway:
            gw.close()
    return DayResult(tuple(outcomes))
