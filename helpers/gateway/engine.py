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
from collections.abc import Callable
from dataclasses import dataclass, replace

from helpers.settings import Settings

from .policies.custom_policies import PolicyWatcher
from .policies.findings import SEVERITIES, Finding
from .policies.pii import CRITICAL_PII, scan_pii
from .policies.ratelimit import RateLimiter, RateLimitStatus
from .policies.rbac import User, UserDirectory, scan_admin_access
from .policies.sqli import scan_sqli

__all__ = ["Decision", "DecisionEngine"]

_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
_CRITICAL_PII_IDS = frozenset(f"sys_pii_{kind}" for kind in CRITICAL_PII)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one pre-check: approved or not, and every finding that explains why."""

    approved: bool
    findings: tuple[Finding, ...]
    block_reason: str | None
    user: User
    rate_limit: RateLimitStatus | None = None

    @property
    def policies(self) -> list[str]:
        """Ids of every triggered policy, blocking or not, in reporting order."""
        return [f.policy_id for f in self.findings]

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.blocks)

    def __repr__(self) -> str:
        verdict = "approved" if self.approved else "blocked"
        return f"<Decision {verdict} policies={self.policies} user={self.user.token!r}>"


class DecisionEngine:
    """Runs every policy family on a query for a user and decides.

    ``policies`` is a :class:`PolicyWatcher`: an edited policies file is picked up by
    ``engine.policies.reload_if_changed()``, which the gateway calls on every pre-check.

    The environment switches AxonFlow honours are applied here, after detection, so the
    findings stay the same and only their action changes: ``SQLI_SCANNER_MODE=off`` skips the
    scanner, ``SQLI_BLOCK_MODE=warn`` and ``PII_BLOCK_CRITICAL=false`` report without blocking.
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
    ) -> None:
        self.users = users
        self.policies = policies
        self.limiter = limiter
        self.sqli_scanner = sqli_scanner
        self.sqli_block = sqli_block
        self.pii_block_critical = pii_block_critical

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
        user = self.users.lookup("")
        for text in texts:
            scan_sqli(text)
            scan_admin_access(text, user)
            scan_pii(text)
            self.policies.evaluate(text, user)
        return len(texts)

    def decide(self, query: str, user_token: str = "") -> Decision:
        """Decide one query. Consumes one rate-limit token for the user when limits are on."""
        user = self.users.lookup(user_token)
        findings: list[Finding] = []
        if self.sqli_scanner:
            found = scan_sqli(query)
            if not self.sqli_block:
                found = [replace(f, action="warn") for f in found]
            findings += found
        findings += scan_admin_access(query, user)
        found = scan_pii(query)
        if not self.pii_block_critical:
            found = [
                replace(f, action="warn") if f.policy_id in _CRITICAL_PII_IDS else f for f in found
            ]
        findings += found
        findings += self.policies.evaluate(query, user)
        status = None
        if self.limiter is not None:
            status = self.limiter.check(user.token, user.role)
            if not status.allowed:
                findings.append(self.limiter.finding(status))
        return self._verdict(tuple(findings), user, status)

    @staticmethod
    def _verdict(
        findings: tuple[Finding, ...], user: User, status: RateLimitStatus | None
    ) -> Decision:
        blocking = [f for f in findings if f.blocks]
        if not blocking:
            return Decision(True, findings, None, user, status)
        # min() keeps the first of equally severe findings, so the reporting order breaks ties.
        worst = min(blocking, key=lambda f: _SEVERITY_RANK[f.severity])
        reason = f"Blocked by policy {worst.policy_id}: {worst.reason}"
        if not reason.endswith("."):
            reason += "."
        return Decision(False, findings, reason, user, status)
