"""A circuit breaker, so a dead gateway costs one timeout, not one per request.

Three states, the classic ones:

* ``closed``: calls go through. ``failure_threshold`` failures in a row open the circuit.
* ``open``: calls are refused at once (no network, no timeout) for ``reset_after_s``.
* ``half_open``: after that pause, *one* trial call goes through. Success closes the
  circuit; failure opens it again for another pause. Other callers are refused meanwhile,
  so a recovering gateway gets one request, not a stampede.

What counts as a failure is the caller's choice: :func:`helpers.client.governed_completion`
counts an unreachable, hung or 5xx gateway, never a policy block or a 400. Every state
change is kept in :attr:`CircuitBreaker.transitions` with its time, for the notebook and
the tests. Introduced in ``10_real_application.ipynb``.

>>> breaker = CircuitBreaker(failure_threshold=2, reset_after_s=30, clock=lambda: 0.0)
>>> breaker.record_failure(); breaker.record_failure(); breaker.state
'open'
>>> breaker.allow()
False
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

__all__ = ["CircuitBreaker", "State"]

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Counts consecutive failures of one dependency and stops calling it while it is down.

    Safe to share between threads and between the async and blocking forms of
    :func:`~helpers.client.governed_completion`; ``clock`` (monotonic seconds) is
    injectable for tests.
    """

    def __init__(
        self,
        failure_threshold: int = 3,
        reset_after_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if reset_after_s <= 0:
            raise ValueError(f"reset_after_s must be > 0, got {reset_after_s}")
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._trial_out = False
        #: Every state change as ``(clock time, old state, new state)``.
        self.transitions: list[tuple[float, State, State]] = []
        #: Calls refused without trying, while open.
        self.rejected = 0

    def __repr__(self) -> str:
        return (
            f"<CircuitBreaker {self.state} failures={self._failures}/{self.failure_threshold} "
            f"rejected={self.rejected}>"
        )

    @property
    def state(self) -> State:
        with self._lock:
            self._maybe_half_open()
            return self._state

    def allow(self) -> bool:
        """May a call go out now? ``False`` means: fail at once, the dependency is down."""
        with self._lock:
            self._maybe_half_open()
            if self._state == "closed":
                return True
            if self._state == "half_open" and not self._trial_out:
                self._trial_out = True
                return True
            self.rejected += 1
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._trial_out = False
            if self._state != "closed":
                self._move("closed")

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_out = False
            if self._state == "half_open" or (
                self._state == "closed" and self._failures >= self.failure_threshold
            ):
                self._opened_at = self._clock()
                self._move("open")

    def _maybe_half_open(self) -> None:
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_after_s:
            self._move("half_open")

    def _move(self, new: State) -> None:
        self.transitions.append((self._clock(), self._state, new))
        self._state = new
