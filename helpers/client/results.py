"""The results of gateway-mode API calls: frozen dataclasses built from the JSON replies.

:class:`PreCheckResult`, :class:`AuditResult` and :class:`HealthResult` each check their reply
in ``from_response``; a reply without a required field becomes a
:class:`~helpers.errors.GatewayHTTPError`. :class:`TokenUsage` is what an audit reports and
:class:`RateLimitInfo` comes with a pre-check. :mod:`helpers.client` returns these and
re-exports them. Introduced in ``01_gateway_mode_openai.ipynb``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from helpers.errors import GatewayHTTPError

__all__ = [
    "AuditResult",
    "Explanation",
    "HealthResult",
    "PreCheckResult",
    "RateLimitInfo",
    "RecordPage",
    "ReplyCheck",
    "TokenUsage",
]


def _malformed(what: str, data: Any, status: int, url: str) -> GatewayHTTPError:
    return GatewayHTTPError(status, f"{what} in reply {repr(data)[:200]}", url)


def _timestamp(value: Any, status: int, url: str) -> datetime:
    """RFC 3339 to an aware datetime; Go's nine fractional digits are cut to six."""
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            try:  # the regex only when needed: it costs more than the parse
                dt = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value))
            except ValueError:
                dt = None
        if dt is not None:
            return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    raise _malformed(f"{value!r} is not an RFC 3339 timestamp", value, status, url)


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _field(usage: Any, name: str) -> Any:
    return usage.get(name) if isinstance(usage, Mapping) else getattr(usage, name, None)


@dataclass(frozen=True)
class TokenUsage:
    """Token counts of one LLM call; ``total_tokens`` defaults to the sum.

    >>> TokenUsage(12, 30)
    TokenUsage(prompt_tokens=12, completion_tokens=30, total_tokens=42)
    """

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int | None = None

    def __post_init__(self) -> None:
        _count("prompt_tokens", self.prompt_tokens)
        _count("completion_tokens", self.completion_tokens)
        if self.total_tokens is None:
            object.__setattr__(self, "total_tokens", self.prompt_tokens + self.completion_tokens)
        else:
            _count("total_tokens", self.total_tokens)

    @classmethod
    def from_openai(cls, usage: Any) -> TokenUsage:
        """From an OpenAI ``usage`` (object or dict); Responses-API names are accepted too."""
        prompt = _field(usage, "prompt_tokens")
        if prompt is None:  # the Responses API says input/output instead of prompt/completion
            return cls(
                _field(usage, "input_tokens"),
                _field(usage, "output_tokens"),
                _field(usage, "total_tokens"),
            )
        return cls(prompt, _field(usage, "completion_tokens"), _field(usage, "total_tokens"))

    @classmethod
    def from_anthropic(cls, usage: Any) -> TokenUsage:
        """From an Anthropic ``usage`` (``input_tokens``, ``output_tokens``)."""
        return cls(_field(usage, "input_tokens"), _field(usage, "output_tokens"))

    @classmethod
    def from_mapping(cls, usage: Mapping[str, Any]) -> TokenUsage:
        """From the contract's shape: prompt_tokens, completion_tokens, total_tokens."""
        return cls(
            usage.get("prompt_tokens"),  # type: ignore[arg-type]
            usage.get("completion_tokens"),  # type: ignore[arg-type]
            usage.get("total_tokens"),
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,  # type: ignore[dict-item]  # set by __post_init__
        }


@dataclass(frozen=True)
class RateLimitInfo:
    """The caller's rate-limit bucket after this pre-check."""

    limit: int
    remaining: int
    reset_at: datetime


@dataclass(frozen=True, repr=False)
class PreCheckResult:
    """The gateway's decision on one query. ``approved=False`` is a block, not an error.

    ``duration_ms`` is measured on the client around the HTTP exchange (incl. JSON decode).
    """

    context_id: str
    approved: bool
    policies: tuple[str, ...]
    block_reason: str | None
    expires_at: datetime
    rate_limit: RateLimitInfo | None = None
    requires_redaction: bool = False
    approved_data: dict[str, Any] | None = None
    duration_ms: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    #: AxonFlow v11 fields; ``None`` from agents that do not send them.
    decision_id: str | None = None
    verdict: str | None = None
    #: This project's extension: the query with PII replaced by ``[SSN_1]``-style placeholders.
    redacted_query: str | None = None

    @classmethod
    def from_response(
        cls, data: Any, duration_ms: float, status: int = 200, url: str = ""
    ) -> PreCheckResult:
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("context_id"), str)
            or not isinstance(data.get("approved"), bool)
        ):
            raise _malformed("no context_id/approved", data, status, url)
        rl = data.get("rate_limit")
        rate = None
        if isinstance(rl, dict):
            rate = RateLimitInfo(
                int(rl.get("limit", 0)),
                int(rl.get("remaining", 0)),
                _timestamp(rl.get("reset_at"), status, url),
            )
        return cls(
            context_id=data["context_id"],
            approved=data["approved"],
            policies=tuple(data.get("policies") or ()),
            block_reason=data.get("block_reason") or None,
            expires_at=_timestamp(data.get("expires_at"), status, url),
            rate_limit=rate,
            requires_redaction=bool(data.get("requires_redaction", False)),
            approved_data=data.get("approved_data") or None,
            duration_ms=duration_ms,
            raw=data,
            decision_id=_optional_str(data.get("decision_id")),
            verdict=_optional_str(data.get("verdict")),
            redacted_query=_optional_str(data.get("redacted_query")),
        )

    def __repr__(self) -> str:
        why = f" block_reason={self.block_reason!r}" if self.block_reason else ""
        if self.requires_redaction and self.approved:
            why += " requires_redaction=True"
        return (
            f"<PreCheckResult approved={self.approved} policies={list(self.policies)}{why} "
            f"context_id={self.context_id!r} {self.duration_ms:.3f} ms>"
        )


@dataclass(frozen=True, repr=False)
class AuditResult:
    """The gateway's receipt for one audited LLM call."""

    audit_id: str
    success: bool
    duration_ms: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_response(
        cls, data: Any, duration_ms: float, status: int = 200, url: str = ""
    ) -> AuditResult:
        if not isinstance(data, dict) or not isinstance(data.get("audit_id"), str):
            raise _malformed("no audit_id", data, status, url)
        return cls(data["audit_id"], bool(data.get("success", True)), duration_ms, data)

    def __repr__(self) -> str:
        return (
            f"<AuditResult success={self.success} audit_id={self.audit_id!r} "
            f"{self.duration_ms:.3f} ms>"
        )


@dataclass(frozen=True, repr=False)
class ReplyCheck:
    """The gateway's inspection of an answer (``POST /api/reply/check``, an extension).

    ``text`` is what the app may show now: the answer with leaked values redacted (or "" when
    ``approved`` is false); ``held`` counts the characters at the end of what was sent that
    the gateway could not decide yet (a stream's tail): send them again with the next chunk.

    >>> ReplyCheck(True, "card [CREDIT_CARD_1]", 0, ("sys_pii_credit_card",))
    <ReplyCheck approved policies=['sys_pii_credit_card'] held=0>
    """

    approved: bool
    text: str
    held: int
    policies: tuple[str, ...]
    block_reason: str | None = None
    redacted: Mapping[str, Any] | None = None
    duration_ms: float = 0.0

    @classmethod
    def from_response(
        cls, data: Any, duration_ms: float, status: int = 200, url: str = ""
    ) -> ReplyCheck:
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise _malformed("no text", data, status, url)
        return cls(
            bool(data.get("approved")),
            data["text"],
            int(data.get("held") or 0),
            tuple(data.get("policies") or ()),
            data.get("block_reason"),
            data.get("redacted"),
            duration_ms,
        )

    def __repr__(self) -> str:
        state = "approved" if self.approved else "blocked"
        return f"<ReplyCheck {state} policies={list(self.policies)} held={self.held}>"


@dataclass(frozen=True, repr=False)
class HealthResult:
    """``GET /health``; ``ok`` follows the SDKs: up means ``status == "healthy"``."""

    status: str
    service: str
    version: str
    timestamp: datetime | None
    duration_ms: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "healthy"

    @classmethod
    def from_response(
        cls, data: Any, duration_ms: float, status: int = 200, url: str = ""
    ) -> HealthResult:
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise _malformed("no status", data, status, url)
        ts = data.get("timestamp")
        return cls(
            data["status"],
            str(data.get("service", "")),
            str(data.get("version", "")),
            _timestamp(ts, status, url) if ts else None,
            duration_ms,
            data,
        )

    def __repr__(self) -> str:
        return (
            f"<HealthResult {self.status} service={self.service!r} version={self.version!r} "
            f"{self.duration_ms:.3f} ms>"
        )


class RecordPage(list):  # type: ignore[type-arg]
    """One page of ``/api/audit/records``: a plain list of record dicts, plus ``next``, the
    gateway's cursor for the page after it (``None`` on the last page). Pass it back as
    ``after=`` to continue: each page is one indexed read, however deep it lies."""

    def __init__(self, records: list[dict[str, Any]], next: str | None = None) -> None:
        super().__init__(records)
        self.next = next

    @classmethod
    def from_response(cls, data: Any, url: str) -> RecordPage:
        records = data.get("records") if isinstance(data, dict) else data
        if not isinstance(records, list):
            raise GatewayHTTPError(200, f"expected a list of records, got {repr(data)[:200]}", url)
        cursor = data.get("next") if isinstance(data, dict) else None
        return cls(records, cursor if isinstance(cursor, str) else None)


@dataclass(frozen=True, slots=True)
class Explanation:
    """One decision, explained. ``findings`` and ``families`` are the gateway's own rows
    (dicts); :meth:`summary` prints them as a short text."""

    decision_id: str
    verdict: str
    approved: bool
    block_reason: str | None
    findings: tuple[Mapping[str, Any], ...]
    families: tuple[Mapping[str, Any], ...]
    posture: Mapping[str, Any]
    steps: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_response(cls, data: Mapping[str, Any]) -> Explanation:
        return cls(
            decision_id=str(data.get("decision_id", "")),
            verdict=str(data.get("verdict", "")),
            approved=bool(data.get("approved")),
            block_reason=data.get("block_reason"),
            findings=tuple(data.get("findings") or ()),
            families=tuple(data.get("families") or ()),
            posture=dict(data.get("posture") or {}),
            steps=tuple(data.get("steps") or ()),
            raw=dict(data),
        )

    @property
    def policies(self) -> list[str]:
        return [str(f.get("policy_id")) for f in self.findings]

    def summary(self) -> str:
        """A few lines: the verdict, each finding (action, what set it, where), the steps."""
        lines = [f"decision {self.decision_id}: {self.verdict}"]
        for f in self.findings:
            where = f" at {f['span'][0]}-{f['span'][1]}" if f.get("span") else ""
            view = f" ({f['view']} view)" if f.get("view") else ""
            lines.append(
                f"  {f.get('policy_id')}: {f.get('action')} [{f.get('action_set_by')}]{where}{view}"
            )
        lines += [f"  - {step}" for step in self.steps]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Explanation {self.decision_id} {self.verdict} policies={self.policies}>"
