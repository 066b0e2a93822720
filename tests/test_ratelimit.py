"""Per-user token buckets, driven by a fake clock (no test waits for real time)."""

from __future__ import annotations

import threading

import pytest

from helpers.errors import ConfigError
from helpers.gateway.policies.ratelimit import RateLimiter, RateLimitStatus, rfc3339
from helpers.gateway.policies.rbac import UserDirectory

T0 = 1_768_478_400.0  # 2026-01-15T12:00:00Z


class Clock:
    """Epoch seconds that only move when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock: Clock) -> RateLimiter:
    # guest: 3 per 60 s (one token every 20 s); engineer: 100 per 10 s.
    return RateLimiter({"guest": (3, 60), "engineer": (100, 10)}, clock=clock)


def test_counts_down_then_refuses(limiter: RateLimiter) -> None:
    seen = [limiter.check("alice", "guest") for _ in range(5)]
    assert [s.allowed for s in seen] == [True, True, True, False, False]
    assert [s.remaining for s in seen] == [2, 1, 0, 0, 0]
    assert {s.limit for s in seen} == {3}


def test_reset_at_and_retry_after(limiter: RateLimiter) -> None:
    first = limiter.check("alice", "guest")
    assert first.reset_at == pytest.approx(T0 + 20)  # one token short of full
    assert first.retry_after_s == 0
    limiter.check("alice", "guest")
    limiter.check("alice", "guest")
    refused = limiter.check("alice", "guest")
    assert not refused.allowed
    assert refused.reset_at == pytest.approx(T0 + 60)
    assert refused.retry_after_s == pytest.approx(20)


def test_refill_is_continuous_and_capped(limiter: RateLimiter, clock: Clock) -> None:
    for _ in range(3):
        limiter.check("alice", "guest")
    clock.advance(19.9)
    assert not limiter.check("alice", "guest").allowed
    clock.advance(0.1)
    ok = limiter.check("alice", "guest")
    assert ok.allowed and ok.remaining == 0
    clock.advance(3600)  # an hour idle refills to capacity, never beyond
    assert [limiter.check("alice", "guest").remaining for _ in range(3)] == [2, 1, 0]
    assert not limiter.check("alice", "guest").allowed


def test_full_reset_after_the_window(limiter: RateLimiter, clock: Clock) -> None:
    for _ in range(4):
        last = limiter.check("alice", "guest")
    clock.now = last.reset_at
    assert limiter.check("alice", "guest").remaining == 2  # full again: 3 - the one taken


def test_refused_checks_do_not_consume(limiter: RateLimiter, clock: Clock) -> None:
    for _ in range(3):
        limiter.check("alice", "guest")
    for _ in range(10):
        assert not limiter.check("alice", "guest").allowed
    clock.advance(20)
    assert limiter.check("alice", "guest").allowed


def test_users_and_roles_are_independent(limiter: RateLimiter) -> None:
    for _ in range(3):
        limiter.check("alice", "guest")
    assert not limiter.check("alice", "guest").allowed
    assert limiter.check("bob", "guest").remaining == 2
    assert limiter.check("carol", "engineer").remaining == 99


def test_manual_reset(limiter: RateLimiter) -> None:
    for _ in range(3):
        limiter.check("alice", "guest")
    limiter.reset("alice")
    assert limiter.check("alice", "guest").remaining == 2
    limiter.reset()
    assert len(limiter) == 0


def test_clock_going_backwards_changes_nothing(limiter: RateLimiter, clock: Clock) -> None:
    limiter.check("alice", "guest")
    clock.advance(-1000)
    assert limiter.check("alice", "guest").remaining == 1


def test_role_change_keeps_the_tokens_left(limiter: RateLimiter) -> None:
    for _ in range(3):
        limiter.check("alice", "engineer")
    status = limiter.check("alice", "guest")  # 97 left, capped at the guest capacity 3
    assert status.allowed and status.limit == 3 and status.remaining == 2


def test_as_dict_is_the_contract_shape(limiter: RateLimiter) -> None:
    d = limiter.check("alice", "guest").as_dict()
    assert d == {"limit": 3, "remaining": 2, "reset_at": "2026-01-15T12:00:20Z"}


def test_rfc3339_rounds_up() -> None:
    assert rfc3339(T0) == "2026-01-15T12:00:00Z"
    assert rfc3339(T0 + 0.2) == "2026-01-15T12:00:01Z"


def test_finding_names_limit_and_times(limiter: RateLimiter) -> None:
    for _ in range(3):
        limiter.check("alice", "guest")
    refused = limiter.check("alice", "guest")
    f = limiter.finding(refused)
    assert (f.policy_id, f.family, f.action, f.severity) == (
        "rate_limit",
        "rate_limit",
        "block",
        "medium",
    )
    assert "3 requests per 60 s" in f.reason
    assert "2026-01-15T12:01:00Z" in f.reason  # full reset
    assert "2026-01-15T12:00:20Z" in f.reason  # next token


def test_idle_full_buckets_are_dropped(clock: Clock) -> None:
    limiter = RateLimiter({"guest": (2, 1)}, clock=clock, sweep_at=100)
    for i in range(98):
        limiter.check(f"t{i}", "guest")
    limiter.check("busy", "guest")
    limiter.check("busy", "guest")
    assert len(limiter) == 99
    clock.advance(0.75)  # t0..t97 are full again (one token back in 0.5 s); busy has 1.5
    limiter.check("newcomer", "guest")  # the 100th bucket triggers a sweep
    assert len(limiter) == 2
    # A bucket not yet full survives: 1.5 tokens, one taken (a fresh one would leave 1).
    assert limiter.check("busy", "guest").remaining == 0


def test_memory_stays_bounded_over_many_tokens(clock: Clock) -> None:
    limiter = RateLimiter({"guest": (5, 1)}, clock=clock)
    for i in range(50_000):
        limiter.check(f"user-{i}", "guest")
        clock.advance(0.01)  # each bucket is full 0.2 s after its one request
    assert len(limiter) < 2 * RateLimiter.SWEEP_AT


def test_unknown_role_and_bad_limits() -> None:
    limiter = RateLimiter({"guest": (1, 1)})
    with pytest.raises(ConfigError, match="no rate limit configured for role 'pilot'"):
        limiter.check("x", "pilot")
    with pytest.raises(ConfigError, match="requests"):
        RateLimiter({"guest": (0, 1)})
    with pytest.raises(ConfigError, match="per_seconds"):
        RateLimiter({"guest": (1, 0)})


def test_threads_never_overspend(clock: Clock) -> None:
    limiter = RateLimiter({"guest": (500, 3600)}, clock=clock)
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = [limiter.check("shared", "guest").allowed for _ in range(200)]
        with lock:
            allowed.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 500 and len(allowed) == 800


def test_configured_from_the_directory(clock: Clock) -> None:
    users = UserDirectory.load()
    limiter = RateLimiter({r: users.role_limit(r) for r in users.roles}, clock=clock)
    statuses = [limiter.check("contractor-901", "guest") for _ in range(11)]
    assert statuses[-1] == RateLimitStatus(False, 10, 0, T0 + 60, 6.0, 60.0)
