"""Client-side timing for the notebooks: time exactly the step being named, in milliseconds.

``MEASURING.md`` asks for ``time.perf_counter_ns()`` around exactly one step, on the client.
:func:`timed` is that, as a context manager, with named *marks* for moments inside the step
(the first streamed token, say). :func:`breakdown_table` turns a few step durations into the
small table the notebooks print, with simulated steps labelled as simulated.
Introduced in ``01_gateway_mode_openai.ipynb``.

>>> with timed() as t:
...     for piece in ["Hel", "lo"]:
...         t.mark("first token")          # only the first call counts
>>> 0 <= t.ms_at("first token") <= t.ms
True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pandas is imported only when a table is built
    import pandas as pd

__all__ = ["MEASURED", "SIMULATED", "Timer", "breakdown_table", "timed", "timed_call"]

T = TypeVar("T")

#: How :func:`breakdown_table` labels the source of each number.
MEASURED = "measured"
SIMULATED = "simulated (stand-in)"


class Timer:
    """Start time, optional end time and named marks, all in ``perf_counter_ns`` units.

    Use it through :func:`timed`. ``ms`` is the time from start to the end of the ``with``
    block (or to now while still inside it); ``ms_at(name)`` is the time to a mark.
    """

    __slots__ = ("_clock", "_end", "_marks", "_start")

    def __init__(self, clock: Callable[[], int] = time.perf_counter_ns) -> None:
        self._clock = clock
        self._start = clock()
        self._end: int | None = None
        self._marks: dict[str, int] = {}

    def mark(self, name: str) -> None:
        """Record that ``name`` happened now. Later marks of the same name are ignored,
        so ``mark("first token")`` can sit inside the loop that reads a stream."""
        if name not in self._marks:
            self._marks[name] = self._clock()

    def stop(self) -> None:
        """Fix the end time (idempotent; :func:`timed` calls it on leaving the block)."""
        if self._end is None:
            self._end = self._clock()

    @property
    def running(self) -> bool:
        return self._end is None

    @property
    def ms(self) -> float:
        """Milliseconds from start to stop (to now while running)."""
        end = self._clock() if self._end is None else self._end
        return (end - self._start) / 1e6

    def ms_at(self, name: str) -> float:
        """Milliseconds from start to the mark ``name``; ``KeyError`` names the marks made."""
        try:
            return (self._marks[name] - self._start) / 1e6
        except KeyError:
            made = ", ".join(repr(m) for m in self._marks) or "none"
            raise KeyError(f"no mark {name!r} was made (marks made: {made})") from None

    @property
    def marks_ms(self) -> dict[str, float]:
        """Every mark, in the order made, as milliseconds from start."""
        return {name: (at - self._start) / 1e6 for name, at in self._marks.items()}

    def __repr__(self) -> str:
        state = "running " if self.running else ""
        marks = "".join(f" {name}={ms:.3f} ms" for name, ms in self.marks_ms.items())
        return f"<Timer {state}{self.ms:.3f} ms{marks}>"


@contextmanager
def timed(clock: Callable[[], int] = time.perf_counter_ns) -> Iterator[Timer]:
    """Time the ``with`` block. The timer stops also when the block raises, so the time a
    call spent before failing (retries and backoff included) can still be reported.

    ``clock`` returns integer nanoseconds; tests pass a fake one.
    """
    timer = Timer(clock)
    try:
        yield timer
    finally:
        timer.stop()


def timed_call(fn: Callable[..., T], *args: Any) -> tuple[float, T]:
    """``fn(*args)`` timed with ``perf_counter_ns``: (milliseconds, what it returned)."""
    t0 = time.perf_counter_ns()
    out = fn(*args)
    return (time.perf_counter_ns() - t0) / 1e6, out


def breakdown_table(steps_ms: Mapping[str, float], simulated: Collection[str] = ()) -> pd.DataFrame:
    """One row per step in the given order, plus a total: milliseconds, share, source.

    ``simulated`` names the steps whose time was simulated (the provider stand-in); every
    other step is labelled measured. A name in ``simulated`` that is not a step is an error,
    so a typo cannot silently drop the label.

    >>> breakdown_table({"pre-check": 1.0, "LLM call": 999.0}, simulated={"LLM call"})
    ... # doctest: +NORMALIZE_WHITESPACE
               time (ms)  share of total (%)                source
    step
    pre-check        1.0                 0.1              measured
    LLM call       999.0                99.9  simulated (stand-in)
    total         1000.0               100.0
    """
    import pandas as pd

    if not steps_ms:
        raise ValueError("breakdown_table needs at least one step, got none")
    unknown = sorted(set(simulated) - set(steps_ms))
    if unknown:
        raise ValueError(f"simulated names {unknown} that are not steps; steps: {list(steps_ms)}")
    for name, ms in steps_ms.items():
        if not ms >= 0:  # also catches NaN
            raise ValueError(f"step {name!r} has duration {ms!r} ms; durations must be >= 0")
    total = float(sum(steps_ms.values()))
    rows = [
        {
            "step": name,
            "time (ms)": float(ms),
            "share of total (%)": 100.0 * ms / total if total else 0.0,
            "source": SIMULATED if name in simulated else MEASURED,
        }
        for name, ms in steps_ms.items()
    ]
    rows.append({"step": "total", "time (ms)": total, "share of total (%)": 100.0, "source": ""})
    table = pd.DataFrame(rows).set_index("step")
    return table.round({"time (ms)": 3, "share of total (%)": 1})
