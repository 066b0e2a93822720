"""The circuit breaker's states: closed, open, half-open, and back."""

from __future__ import annotations

import threading

import pytest

from helpers.client import CircuitBreaker


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_failures_in_a_row() -> None:
    clock = Ticks()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=5, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # the run of failures is broken
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    assert [breaker.allow() for _ in range(4)] == [False] * 4
    assert breaker.rejected == 4
    assert breaker.transitions == [(100.0, "closed", "open")]


def test_half_open_lets_one_trial_through_and_success_closes() -> None:
    clock = Ticks()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=5, clock=clock)
    breaker.record_failure()
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state == "half_open"
    assert breaker.allow() is True
    assert breaker.allow() is False  # only one trial at a time
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()
    states = [(old, new) for _, old, new in breaker.transitions]
    assert states == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_failed_trial_opens_again_for_a_full_pause() -> None:
    clock = Ticks()
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=5, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow()
    breaker.record_failure()  # one failure in half-open is enough
    assert breaker.state == "open"
    clock.now += 4
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()
    assert breaker.transitions[-1] == (110.0, "open", "half_open")


def test_one_trial_among_many_threads() -> None:
    clock = Ticks()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=1, clock=clock)
    breaker.record_failure()
    clock.now += 1
    allowed: list[bool] = []
    threads = [threading.Thread(target=lambda: allowed.append(breaker.allow())) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(True) == 1 and len(allowed) == 16


@pytest.mark.parametrize(("kw", "word"), [({"failure_threshold": 0}, "failure_threshold"),
                                          ({"reset_after_s": 0}, "reset_after_s")])  # fmt: skip
def test_bad_settings_are_refused(kw: dict[str, float], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        CircuitBreaker(**kw)  # type: ignore[arg-type]


def test_repr_shows_state() -> None:
    breaker = CircuitBreaker(failure_threshold=1, clock=Ticks())
    breaker.record_failure()
    breaker.allow()
    assert repr(breaker) == "<CircuitBreaker open failures=1/1 rejected=1>"
