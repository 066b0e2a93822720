"""Per-user rate limits: one token bucket per ``user_token``, sized by the user's role.

A role allowing ``requests`` per ``per_seconds`` gives each of its users a bucket holding at
most ``requests`` tokens, refilled continuously at ``requests / per_seconds`` tokens a second.
Each pre-check takes one token; an empty bucket refuses with policy id ``rate_limit`` and says
when to come back (contract Part B.4). Every pre-check reports the bucket as
``{"limit", "remaining", "reset_at"}``, the shape AxonFlow's SDKs parse. Introduced in
``05_policies.ipynb``.

>>> clock = iter([0.0, 0.0, 0.0]).__next__
>>> limiter = RateLimiter({"guest": (2, 60)}, clock=clock)
>>> [limiter.check("t", "guest").remaining for _ in range(2)]
[1, 0]
>>> limiter.check("t", "guest").allowed
False
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from helpers.errors import ConfigError

from .findings import Finding

__all__ = ["RateLimitStatus", "RateLimiter", "rfc3339"]


def rfc3339(epoch_s: float) -> str:
    """UTC RFC 3339 with whole seconds, rounded *up* so waiting until then is always enough."""
    # The microsecond of slack keeps float noise (1020.0000000001) from adding a whole second.
    return _whole_seconds(math.ceil(epoch_s - 1e-6))


@lru_cache(maxsize=4096)
def _whole_seconds(whole: int) -> str:
    # Cached: every pre-check reports a reset time, and most fall in the same few seconds.
    return datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """One check's outcome. ``remaining`` is after this request's token was taken.

    ``reset_at`` (epoch seconds) is when the bucket is full again; ``retry_after_s`` is how
    long until the next request would be allowed (0 when one would be allowed now).
    ``per_seconds`` is the role's window, so the limit reads "10 requests per 60 s".
    """

    allowed: bool
    limit: int
    remaining: int
    reset_at: float
    retry_after_s: float
    per_seconds: float = 0.0

    def as_dict(self) -> dict[str, int | str]:
        """The contract's ``rate_limit`` object: ``{"limit", "remaining", "reset_at"}``."""
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "reset_at": rfc3339(self.reset_at),
        }

    def __repr__(self) -> str:
        verdict = "allowed" if self.allowed else f"refused, retry in {self.retry_after_s:.3g}s"
        return f"<RateLimitStatus {verdict} {self.remaining}/{self.limit}>"


class _Bucket:
    __slots__ = ("capacity", "window", "rate", "tokens", "stamp")

    def __init__(self, capacity: int, window: float, tokens: float, stamp: float) -> None:
        self.capacity = capacity
        self.window = window
        self.rate = capacity / window
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """Token buckets per user, configured per role: ``{role: (requests, per_seconds)}``.

    ``clock`` returns epoch seconds and is injectable so tests control time. Buckets of idle
    users that have refilled completely are indistinguishable from new ones, so they are
    dropped now and then: memory stays proportional to recently active users.
    """

    #: Default number of held buckets that triggers a sweep for full ones.
    SWEEP_AT = 4096

    def __init__(
        self,
        limits: Mapping[str, tuple[int, float]],
        clock: Callable[[], float] = time.time,
        *,
        sweep_at: int = SWEEP_AT,
    ) -> None:
        self._limits: dict[str, tuple[int, float]] = {}
        for role, (requests, per_seconds) in limits.items():
            if isinstance(requests, bool) or not isinstance(requests, int) or requests <= 0:
                raise ConfigError(
                    f"rate limit for role {role!r}: requests must be an int > 0, not {requests!r}"
                )
            if not (isinstance(per_seconds, int | float) and 0 < per_seconds < math.inf):
                raise ConfigError(
                    f"rate limit for role {role!r}: per_seconds must be > 0, not {per_seconds!r}"
                )
            self._limits[role] = (requests, float(per_seconds))
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        # A lock costs well under a microsecond uncontended and makes check() exact from threads.
        self._lock = threading.Lock()
        self._min_sweep = self._sweep_at = max(1, sweep_at)

    def _limit(self, role: str) -> tuple[int, float]:
        try:
            return self._limits[role]
        except KeyError:
            known = ", ".join(sorted(self._limits))
            raise ConfigError(
                f"no rate limit configured for role {role!r} (configured: {known})"
            ) from None

    def _refill(self, token: str, role: str, now: float) -> _Bucket:
        requests, per_seconds = self._limit(role)
        bucket = self._buckets.get(token)
        if bucket is None:
            if len(self._buckets) + 1 >= self._sweep_at:
                self._sweep(now)  # before inserting: a brand-new bucket is full, too
            bucket = self._buckets[token] = _Bucket(requests, per_seconds, float(requests), now)
            return bucket
        # max(): a clock that steps backwards must not drain or overfill the bucket.
        elapsed = max(0.0, now - bucket.stamp)
        bucket.tokens = min(float(bucket.capacity), bucket.tokens + elapsed * bucket.rate)
        if bucket.capacity != requests or bucket.window != per_seconds:
            # The user's role (or its limit) changed: keep what they had, within the new size.
            bucket.capacity, bucket.window, bucket.rate = (
                requests,
                per_seconds,
                requests / per_seconds,
            )
            bucket.tokens = min(float(requests), bucket.tokens)
        bucket.stamp = max(bucket.stamp, now)
        return bucket

    def _status(self, bucket: _Bucket, allowed: bool, now: float) -> RateLimitStatus:
        missing = bucket.capacity - bucket.tokens
        reset_at = now + missing / bucket.rate
        retry = 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / bucket.rate
        # The tiny epsilon keeps float noise (0.9999999) from reporting one token fewer.
        remaining = max(0, int(math.floor(bucket.tokens + 1e-9)))
        return RateLimitStatus(allowed, bucket.capacity, remaining, reset_at, retry, bucket.window)

    def check(self, user_token: str, role: str) -> RateLimitStatus:
        """Take one token for the user if one is there; report the bucket either way."""
        with self._lock:
            now = self._clock()
            bucket = self._refill(user_token, role, now)
            allowed = bucket.tokens >= 1.0 - 1e-9
            if allowed:
                bucket.tokens = max(0.0, bucket.tokens - 1.0)
            return self._status(bucket, allowed, now)

    def reset(self, user_token: str | None = None) -> None:
        """Refill one user's bucket (or every bucket): for notebooks and tests."""
        with self._lock:
            if user_token is None:
                self._buckets.clear()
            else:
                self._buckets.pop(user_token, None)

    @staticmethod
    def finding(status: RateLimitStatus) -> Finding:
        """The ``rate_limit`` finding for a refused check, naming the limit and the reset time."""
        window = f"{status.per_seconds:g} s" if status.per_seconds else "window"
        # For a refused check the next token lands (limit - 1) / rate before the bucket is full.
        retry_at = status.reset_at - (status.limit - 1) * status.per_seconds / status.limit
        reason = (
            f"Rate limit exceeded: {status.limit} requests per {window} for this user; "
            f"next request allowed at {rfc3339(retry_at)}, "
            f"limit fully resets at {rfc3339(status.reset_at)}"
        )
        return Finding("rate_limit", "rate_limit", "medium", "block", reason)

    def __len__(self) -> int:
        """Buckets currently held (active users whose buckets are not yet full again)."""
        return len(self._buckets)

    def _sweep(self, now: float) -> None:
        full = [
            token
            for token, b in self._buckets.items()
            if b.tokens + max(0.0, now - b.stamp) * b.rate >= b.capacity
        ]
        for token in full:
            del self._buckets[token]
        # Doubling keeps sweeps amortised O(1) per check even when nobody's bucket is full.
        self._sweep_at = max(self._min_sweep, 2 * len(self._buckets))

    def __repr__(self) -> str:
        roles = ", ".join(f"{r}={n}/{s:g}s" for r, (n, s) in sorted(self._limits.items()))
        return f"<RateLimiter {roles}; {len(self._buckets)} active buckets>"
