"""Why a decision came out as it did: ``GET /api/v1/decisions/{decision_id}/explain``.

Every pre-check's ``decision_id`` (the same value as its ``context_id``, as in AxonFlow v11)
keys an explanation: the posture in force (profile and the action of each family), every
policy family and whether it ran for this user, each finding (policy id, family, severity,
the action it asked for and what set that action, the span's offsets and the view it was
found in, never the matched text), and the steps from the findings to the verdict.

The pre-check pays only for keeping a reference: :class:`DecisionLog` holds the
:class:`~.engine.Decision` object, the custom rules in force and the time, in a bounded
dict with an age limit. The explanation is built when it is asked for, from those objects
and the engine's switches. Introduced in ``14_change_a_policy.ipynb``.

>>> log = DecisionLog(capacity=2, max_age_s=60)
>>> log.lookup("nope") is None
True
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .engine import deciding_finding
from .policies.findings import FAMILIES, Finding
from .store.chain import is_expired
from .validation import Call, Reject

if TYPE_CHECKING:
    from .auth import Authenticator
    from .engine import Decision, DecisionEngine
    from .policies.custom_policies import CustomPolicySet
    from .store.audit_store import AuditStore

__all__ = [
    "DEFAULT_CAPACITY",
    "EXPLAIN_PATH",
    "DecisionLog",
    "Explainer",
    "Kept",
    "explain",
    "span_of",
    "view_of",
]

#: Decisions kept for explanation at most (the oldest goes first).
DEFAULT_CAPACITY = 10_000
#: The route; ``decision_id`` is the pre-check's ``decision_id`` (its ``context_id``).
EXPLAIN_PATH = "/api/v1/decisions/{decision_id}/explain"


class Kept(NamedTuple):
    """What the pre-check keeps for a later explanation: references, nothing computed."""

    decision: Decision
    rules: CustomPolicySet
    client_id: str
    expires_at: str  # the context's expiry (RFC 3339): the explanation answers until then
    at: float  # when it was kept, on the log's clock


class DecisionLog:
    """A bounded, age-limited map from ``decision_id`` to :class:`Kept`.

    :meth:`keep` is on the pre-check path: one tuple, one dict insert, and at most one
    eviction of the oldest entry (past ``capacity``, or older than ``max_age_s`` on
    ``clock``). :meth:`lookup` answers while ``expired(expires_at)`` is false (the gateway
    passes its context expiry check, so an explanation lives as long as its context);
    without it, while the entry is younger than ``max_age_s``.
    """

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        max_age_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.max_age_s = max_age_s
        self.clock = clock
        # Ordered by insertion with O(1) access to the oldest (a plain dict slows down as
        # entries are deleted from its front: iteration skips the holes they leave).
        # Plain tuples (Kept's fields): cheaper to build on the pre-check path than a Kept.
        self._kept: OrderedDict[str, tuple[Any, Any, str, str, float]] = OrderedDict()

    def keep(
        self,
        decision_id: str,
        decision: Decision,
        rules: CustomPolicySet,
        client_id: str,
        expires_at: str = "",
    ) -> None:
        kept = self._kept
        now = self.clock()
        kept[decision_id] = (decision, rules, client_id, expires_at, now)
        if len(kept) > self.capacity:
            kept.popitem(last=False)
        else:  # the oldest entry leaves once it is too old to answer
            oldest = next(iter(kept))
            if now - kept[oldest][4] > self.max_age_s:
                del kept[oldest]

    def lookup(self, decision_id: str, expired: Callable[[str], bool] | None = None) -> Kept | None:
        """The kept decision while it is alive, else None (expired ones are dropped)."""
        kept = self._kept.get(decision_id)
        if kept is None:
            return None
        gone = expired(kept[3]) if expired is not None else None
        if gone is None:
            gone = self.clock() - kept[4] > self.max_age_s
        if gone:
            del self._kept[decision_id]
            return None
        return Kept(*kept)

    def __len__(self) -> int:
        return len(self._kept)

    def __repr__(self) -> str:
        return f"<DecisionLog {len(self)}/{self.capacity} kept, max age {self.max_age_s:g} s>"


# -- building the explanation ---------------------------------------------------------------


def posture(engine: DecisionEngine, profile: str) -> dict[str, Any]:
    """The switches that set each family's action, as the engine holds them."""
    return {
        "profile": profile or "(unset)",
        "sqli_scanner": "on" if engine.sqli_scanner else "off",
        "sqli_action": "block" if engine.sqli_block else "warn",
        "dangerous_statements": "block" if engine.dangerous_block else "warn",
        "pii_action": engine.pii_action,
        "secret_action": engine.secret_action,
        "admin_access": "block (non-admin roles)",
        "custom_rules": "each rule's own action",
        "rate_limit": "on" if engine.limiter is not None else "off",
    }


def _families(engine: DecisionEngine, kept: Kept) -> list[dict[str, Any]]:
    decision = kept.decision
    user = decision.user
    counts = {family: 0 for family in FAMILIES}
    for f in decision.findings:
        counts[f.family] = counts.get(f.family, 0) + 1
    in_scope = sum(1 for rule in kept.rules.rules if rule.applies_to(user))
    ran = {
        "sqli": (engine.sqli_scanner, "SQLI_SCANNER_MODE=off skips the scanner"),
        "admin": (not user.is_admin, f"role {user.role!r} is an admin role: not checked"),
        "pii": (True, ""),
        "secret": (True, ""),
        "custom": (True, ""),
        "rate_limit": (engine.limiter is not None, "rate limits are off"),
    }
    out = []
    for family in FAMILIES:
        evaluated, skipped = ran.get(family, (True, ""))
        entry: dict[str, Any] = {
            "family": family,
            "evaluated": evaluated,
            "findings": counts.get(family, 0),
        }
        if not evaluated:
            entry["note"] = skipped
        elif family == "custom":
            entry["note"] = f"{in_scope} of {len(kept.rules.rules)} rules apply to this user"
        out.append(entry)
    return out


def _action_source(f: Finding, engine: DecisionEngine) -> str:
    """Which setting gave the finding its action."""
    if f.family == "custom":
        return "the rule's own action"
    if f.family == "rate_limit":
        return "the role's rate limit"
    if f.family == "admin":
        return "admin access is blocked for non-admin roles"
    if f.family == "pii":
        if engine.pii_action == "block":
            return "PII_ACTION=block: critical types block, the rest warn"
        return f"PII_ACTION={engine.pii_action}"
    if f.family == "secret":
        return f"SECRET_ACTION={engine.secret_action}"
    if f.family == "sqli":
        if f.policy_id == "sqli_dangerous_query":
            return "dangerous statements: " + ("block" if engine.dangerous_block else "warn")
        return "SQLI_BLOCK_MODE=" + ("block" if engine.sqli_block else "warn")
    return "the detector's default"


def span_of(f: Finding) -> list[int] | None:
    """The finding's offsets as ``[start, end]``: a pair, or an object with ``start`` and
    ``end``; None when the detector reports none."""
    span = getattr(f, "span", None)
    if isinstance(span, tuple | list) and len(span) == 2:
        start, end = span
    else:
        start, end = getattr(span, "start", None), getattr(span, "end", None)
    if isinstance(start, int) and isinstance(end, int):
        return [start, end]
    return None


def view_of(f: Finding) -> str | None:
    """The name of the view (the text as sent, or a folded form) the finding was found in,
    when the detector reports one; None otherwise."""
    view = getattr(f, "view", None)
    if view is None:
        return None
    return view if isinstance(view, str) else str(getattr(view, "name", view))


def _finding(f: Finding, engine: DecisionEngine) -> dict[str, Any]:
    return {
        "policy_id": f.policy_id,
        "family": f.family,
        "severity": f.severity,
        "action": f.action,
        "action_set_by": _action_source(f, engine),
        "stops_request": f.blocks,
        "reported_to_caller": f.reported,
        "reason": f.reason,
        "span": span_of(f),
        "view": view_of(f),
    }


def _steps(decision: Decision) -> list[str]:
    findings = decision.findings
    if not findings:
        return ["No policy triggered.", "Nothing stops the request: verdict allow."]
    steps = [f"{len(findings)} finding(s): {', '.join(f.policy_id for f in findings)}."]
    blocking = [f for f in findings if f.blocks]
    quiet = [f.policy_id for f in findings if not f.reported]
    if quiet:
        steps.append(f"Kept in the trail only (action log): {', '.join(quiet)}.")
    if not blocking:
        steps.append("None of them stops the request (warn, redact or log): verdict allow.")
        if decision.redaction is not None:
            note = decision.redaction.note
            steps.append(
                f"Redaction required: {note['count']} value(s) of type(s) "
                f"{', '.join(note['types'])} are replaced by placeholders before the LLM call."
            )
        return steps
    steps.append(f"Stopping the request: {', '.join(f.policy_id for f in blocking)}.")
    worst = deciding_finding(blocking)
    if worst.action == "block":
        steps.append(
            f"The most severe hard block is {worst.policy_id} ({worst.severity}); it names the "
            "block reason: verdict deny."
        )
    else:
        steps.append(
            f"Every stopping finding asks for approval; the most severe is {worst.policy_id} "
            f"({worst.severity}): verdict needs_approval."
        )
    return steps


def explain(decision_id: str, kept: Kept, engine: DecisionEngine, profile: str) -> dict[str, Any]:
    """The explanation body for one kept decision (JSON-ready; no query text, no values)."""
    decision = kept.decision
    user = decision.user
    body: dict[str, Any] = {
        "success": True,
        "decision_id": decision_id,
        "approved": decision.approved,
        "verdict": decision.verdict,
        "block_reason": decision.block_reason,
        "expires_at": kept.expires_at or None,
        "user": {"role": user.role, "department": user.department, "known": user.known},
        "posture": posture(engine, profile),
        "custom_rules": {
            "file": kept.rules.path.name if kept.rules.path else None,
            "rules": [rule.id for rule in kept.rules.rules if rule.enabled],
        },
        "families": _families(engine, kept),
        "findings": [_finding(f, engine) for f in decision.findings],
        "steps": _steps(decision),
    }
    if decision.rate_limit is not None:
        body["rate_limit"] = decision.rate_limit.as_dict()
    if decision.redaction is not None:
        body["redaction"] = decision.redaction.note
    return body


class DecisionSource(Protocol):
    """What the endpoint reads from the governance core (:class:`.governance.Governance`)."""

    decisions: DecisionLog
    engine: DecisionEngine
    store: AuditStore | None
    clock: Callable[[], datetime]


class Explainer:
    """The endpoint: client credentials as for a pre-check (none in community mode); a
    decision made for another client answers as unknown."""

    def __init__(self, governance: DecisionSource, auth: Authenticator, profile: str) -> None:
        self.governance = governance
        self.auth = auth
        self.profile = profile

    async def explain(self, call: Call) -> tuple[int, dict[str, Any]]:
        client = self.auth.check(call)
        decision_id = str(call.scope.get("path_params", {}).get("decision_id", ""))
        log = self.governance.decisions
        now = self.governance.clock()
        kept = log.lookup(decision_id, lambda expires_at: is_expired(expires_at, now))
        if kept is not None and (client is None or kept.client_id == client):
            return 200, explain(decision_id, kept, self.governance.engine, self.profile)
        shown = decision_id if len(decision_id) <= 64 else decision_id[:64] + "..."
        store = self.governance.store
        owner = store.context_owner(decision_id) if store is not None else None
        if owner is not None and (client is None or owner[0] == client):
            raise Reject(
                404,
                f"Decision {shown!r} has expired: explanations are kept for "
                f"{log.max_age_s:g} s (at most {log.capacity} decisions); pre-check again "
                "and ask for the new decision_id",
            )
        raise Reject(
            404,
            f"Unknown decision {shown!r}: this gateway made no decision with that id "
            "(use the decision_id of a pre-check reply)",
        )
