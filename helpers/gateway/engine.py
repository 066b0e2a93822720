"""The decision engine: every policy family evaluated on one query, in process.

This is the gateway's pre-check without HTTP: the gateway calls it, tests call it, and the
benchmark times it to show the floor under every network number. Every family runs and every
finding is reported (contract Part B.1), in the stable order SQL injection, admin access,
PII, custom policies, rate limit; the block reason names the most severe blocking finding.
Introduced in ``05_policies.ipynb``.

>>> engine = DecisionEngine.from_settings(Settings.load(env={}, dotenv_path=None))
>>> engine.decide("What are best practices for AI model deployment?", "user-123").approved
True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from helpers.settings import Settings

from .policies.custom_policies import PolicyWatcher
from .policies.findings import SEVERITIES, Finding
from .policies.obfuscation import scan_views
from .policies.pii import scan_pii
from .policies.ratelimit import RateLimiter, RateLimitStatus
from .policies.rbac import ADMIN_PATTERNS, User, UserDirectory, scan_admin_access
from .policies.redaction import Redaction, redact_parts
from .policies.sqli import payload_question, scan_sqli
from .policies.views import warm_up_views

__all__ = ["Decision", "DecisionEngine", "deciding_finding"]

_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
_DANGEROUS = "sqli_dangerous_query"
_ABOUT = " (in a question about it: reported, not blocking)."


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one pre-check: approved or not, and every finding that explains why."""

    approved: bool
    findings: tuple[Finding, ...]
    block_reason: str | None
    user: User
    rate_limit: RateLimitStatus | None = None
    redaction: Redaction | None = None

    @property
    def requires_redaction(self) -> bool:
        """True when the app must redact before calling the LLM (``PII_ACTION=redact``)."""
        return self.redaction is not None

    @property
    def verdict(self) -> str:
        """AxonFlow v11's verdict: ``allow``, ``deny``, or ``needs_approval`` when every
        finding that stops the request is a custom rule's ``require_approval``."""
        if self.approved:
            return "allow"
        if all(f.action == "require_approval" for f in self.blocking):
            return "needs_approval"
        return "deny"

    @property
    def policies(self) -> list[str]:
        """Ids of every triggered policy, blocking or not, in reporting order (the trail's
        list: ``log`` findings included)."""
        return [f.policy_id for f in self.findings]

    @property
    def reported_policies(self) -> list[str]:
        """What the caller is told: :attr:`policies` without the ``log`` findings."""
        return [f.policy_id for f in self.findings if f.reported]

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.blocks)

    def __repr__(self) -> str:
        verdict = "approved" if self.approved else "blocked"
        if self.redaction is not None:
            verdict += ", redaction required"
        return f"<Decision {verdict} policies={self.policies} user={self.user.token!r}>"


def deciding_finding(blocking: Sequence[Finding]) -> Finding:
    """The blocking finding that names the reason: a hard block before a request for approval,
    then the most severe (min() keeps the first of equals: the reporting order breaks ties)."""
    hard = [f for f in blocking if f.action == "block"] or blocking
    return min(hard, key=lambda f: _SEVERITY_RANK[f.severity])


def _with_action(found: list[Finding], action: str) -> list[Finding]:
    """Findings of a family under its switch: ``block`` keeps each detector's own action
    (critical types block, the rest warn); ``redact``, ``warn`` and ``log`` apply to all."""
    if action == "block" or not found:
        return found
    return [replace(f, action=action) for f in found]  # type: ignore[arg-type]


class DecisionEngine:
    """Runs every policy family on a query for a user and decides.

    ``policies`` is a :class:`PolicyWatcher`: an edited policies file is picked up by
    ``engine.policies.reload_if_changed()``, which the gateway calls on every pre-check.

    The environment switches AxonFlow honours are applied here, after detection, so the
    findings stay the same and only their action changes: ``SQLI_SCANNER_MODE=off`` skips the
    scanner, ``SQLI_BLOCK_MODE=warn`` reports SQL injection without blocking (dangerous
    statements too, unless ``dangerous_block``), and ``pii_action`` is ``PII_ACTION``:
    ``block`` critical PII, ``redact`` (approved, every PII value replaced in
    ``Decision.redaction``), ``warn`` or ``log`` (approved, reported). ``secret_action`` is
    ``SECRET_ACTION`` and does the same for credentials; its default is ``block`` whatever
    the profile, since a leaked key is a leaked key. ``ssn_layout`` is
    ``PII_SSN_RULES=layout``: an unlabelled number in an SSN's layout is an SSN whatever its
    area (by default it must pass the SSA's rules).
    """

    def __init__(
        self,
        users: UserDirectory,
        policies: PolicyWatcher,
        limiter: RateLimiter | None,
        *,
        sqli_scanner: bool = True,
        sqli_block: bool = True,
        pii_block_critical: bool = True,
        pii_action: str | None = None,
        dangerous_block: bool | None = None,
        secret_action: str = "block",
        ssn_layout: bool = False,
    ) -> None:
        self.users = users
        self.policies = policies
        self.limiter = limiter
        self.sqli_scanner = sqli_scanner
        self.sqli_block = sqli_block
        self.dangerous_block = sqli_block if dangerous_block is None else dangerous_block
        if pii_action is None or (pii_action == "block" and not pii_block_critical):
            pii_action = "block" if pii_block_critical else "warn"
        self.pii_action = pii_action
        self.secret_action = secret_action
        self.ssn_layout = ssn_layout

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Callable[[], float] = time.time, rate_limits: bool = True
    ) -> DecisionEngine:
        """Load the user directory and custom policies named in ``settings``."""
        users = UserDirectory.load(settings.users_file)
        policies = PolicyWatcher(settings.policies_file, known_roles=users.roles)
        limiter = None
        if rate_limits:
            limits = {role: users.role_limit(role) for role in users.roles}
            limiter = RateLimiter(limits, clock=clock)
        return cls(
            users,
            policies,
            limiter,
            sqli_scanner=settings.sqli_scanner_mode != "off",
            sqli_block=settings.sqli_block_mode == "block",
            pii_block_critical=settings.pii_block_critical,
            pii_action=settings.pii_action,
            dangerous_block=settings.dangerous_block,
            secret_action=settings.secret_action,
            ssn_layout=settings.ssn_rules == "layout",
        )

    def warm_up(self, texts: list[str] | None = None) -> int:
        """Run every detector once over sample texts, consuming no rate-limit tokens.

        RE2 builds its automata lazily, so the very first scan costs tens of milliseconds;
        the gateway calls this at startup so no client request pays for it. Returns the
        number of texts scanned.
        """
        if texts is None:
            from helpers.corpus import load_corpus

            texts = [row.query for row in load_corpus()]
        warm_up_views()
        user = self.users.lookup("")
        joint = self.policies.current.gate_with(ADMIN_PATTERNS)  # compiled here, once
        for text in texts:
            scan_views(text)  # the one set pass (.onepass) and the views, as decide runs them
            scan_sqli(text)
            scan_admin_access(text, user)
            scan_pii(text)
            self.policies.evaluate(text, user)
            joint.search(text.encode("utf-8", "surrogatepass"))
        return len(texts)

    def decide(
        self, query: str, user_token: str = "", parts: Sequence[str] | None = None
    ) -> Decision:
        """Decide one query. Consumes one rate-limit token for the user when limits are on.

        ``parts`` are the texts the query joins with newlines (the messages of a proxied
        chat); a redaction then redacts each part, numbered across all of them.
        """
        user = self.users.lookup(user_token)
        findings: list[Finding] = []
        # Encoded once: every re2 search below runs on these bytes (cheaper than on str).
        data = query.encode("utf-8", "surrogatepass")
        # Under a redacting action the same scan keeps every value's span for redaction.
        collect = self.pii_action == "redact" or self.secret_action == "redact"
        seen = scan_views(
            query, sqli=self.sqli_scanner, data=data, layout=self.ssn_layout, collect=collect
        )
        found = seen.sqli
        if found and payload_question(query):
            # A question about the payload it quotes, handed to nothing that runs it: the
            # findings are reported, not blocking (docs/gateway.md, "Questions about a payload").
            found = [replace(f, action="warn", reason=f.reason.rstrip(".") + _ABOUT) for f in found]
        if not self.sqli_block:
            found = [
                f
                if f.policy_id == _DANGEROUS and self.dangerous_block
                else replace(f, action="warn")
                for f in found
            ]
        findings += found
        # The admin-access families and the custom rules read the query as sent. For an ASCII
        # query the views' set pass (over that same text) already answered for the families;
        # for any other, one joint gate over the bytes answers for both checks at once.
        current = self.policies.current
        admin, custom = seen.admin, True
        if admin is None and current.gate_with(ADMIN_PATTERNS).search(data) is None:
            admin = custom = False
        findings += scan_admin_access(query, user, data=data, gate=admin)
        findings += _with_action(seen.pii, self.pii_action)
        findings += _with_action(seen.secrets, self.secret_action)
        if custom:
            findings += current.evaluate(query, user, data=data)
        status = None
        if self.limiter is not None:
            status = self.limiter.check(user.token, user.role)
            if not status.allowed:
                findings.append(self.limiter.finding(status))
        redaction = None
        redact_pii = self.pii_action == "redact" and bool(seen.pii)
        redact_secrets = self.secret_action == "redact" and bool(seen.secrets)
        if redact_pii or redact_secrets:
            joined = parts is None or "\n".join(parts) == query
            redaction = redact_parts(
                parts or (query,),
                pii=redact_pii,
                secrets=redact_secrets,
                layout=self.ssn_layout,
                found=seen.sensitive if joined else None,
            )
        return self._verdict(tuple(findings), user, status, redaction)

    @staticmethod
    def _verdict(
        findings: tuple[Finding, ...],
        user: User,
        status: RateLimitStatus | None,
        redaction: Redaction | None = None,
    ) -> Decision:
        blocking = [f for f in findings if f.blocks]
        if not blocking:
            return Decision(True, findings, None, user, status, redaction)
        worst = deciding_finding(blocking)
        verb = "Blocked by" if worst.action == "block" else "Approval required by"
        reason = f"{verb} policy {worst.policy_id}: {worst.reason}"
        if not reason.endswith("."):
            reason += "."
        return Decision(False, findings, reason, user, status)
