"""Storage health: every fault of the audit store becomes a fast, clear answer, counted once.

Three parts of the store can fail, each on its own:

* ``log``: appending to the acknowledgement log (:mod:`.acklog`). A failed append
  acknowledges nothing. The next append that works, or the recovery probe, ends the fault.
* ``sqlite``: the applier copying logged rows into SQLite (:mod:`.applier`). The rows stay
  in the log meanwhile, so requests are still acknowledged until the backlog bound; the
  applier's next committed batch ends the fault. A statement that has not finished within
  :data:`STALL_AFTER_S` is a stall.
* ``read``: a lookup on the event loop's read connection. The next lookup that works ends
  the fault, or :data:`READ_FAULT_HOLD_S` without another failing one.

Whatever raised it (an ``OSError``, a ``sqlite3.Error``), a fault is one of a few kinds
(:func:`classify`): ``disk_full``, ``read_only``, ``locked``, ``io_error``, ``stalled`` or
``other``. :class:`StorageHealth` counts every error by part and kind, keeps each part's
current fault, and logs one line when a part fails, when its kind of fault changes and when
it recovers: never one per request. While a part is failing the store is degraded, and a
request that needs that part gets :class:`~helpers.errors.StorageUnavailable` (a 503 with
``Retry-After``) at once instead of waiting.

A part with a *probe* (the log's: write a small file beside it) is retried by a thread of
its own with back-off while it fails, so the store recovers even when no request arrives
(a load balancer that saw ``degraded`` sends none). Nothing here runs while all is well.

>>> health = StorageHealth(now=lambda: "2026-01-15T12:00:00.000000Z")
>>> error = health.failed("log", OSError(28, "No space left on device"))
>>> error.reason
'acknowledgement log: disk full ([Errno 28] No space left on device)'
>>> health.cleared("log")
>>> health.state()
<StorageState healthy>
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from helpers.errors import StorageUnavailable

__all__ = [
    "KINDS",
    "PARTS",
    "RETRY_AFTER_S",
    "STALL_AFTER_S",
    "Fault",
    "StorageHealth",
    "StorageState",
    "backoff",
    "classify",
]

log = logging.getLogger("helpers.gateway.store")

#: A storage statement (an insert, a commit, a wait for a lock) that has not finished in this
#: long is a stall: whoever waits on it gets a 503 instead of waiting longer.
STALL_AFTER_S = 1.0
#: The ``Retry-After`` of a storage 503, in whole seconds: about how often the store retries.
RETRY_AFTER_S = 1
#: A failing part is retried after 0.05 s, then twice as long each time, never more than 1 s.
BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 1.0
#: A read fault with no failing read since this long is over (reads have no probe).
READ_FAULT_HOLD_S = 10.0

#: The parts of the store, as a reason names them.
PARTS = {"log": "acknowledgement log", "sqlite": "copy into SQLite", "read": "read from SQLite"}
#: The kinds of fault, as a reason names them.
KINDS = {
    "disk_full": "disk full",
    "read_only": "read-only",
    "locked": "database locked by another connection",
    "io_error": "I/O error",
    "stalled": "stalled",
    "other": "storage error",
}
_ERRNO_KINDS = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EFBIG: "disk_full",
    errno.EROFS: "read_only",
    errno.EACCES: "read_only",
    errno.EPERM: "read_only",
    errno.EIO: "io_error",
}
_SQLITE_KINDS = {
    sqlite3.SQLITE_FULL: "disk_full",
    sqlite3.SQLITE_READONLY: "read_only",
    sqlite3.SQLITE_PERM: "read_only",
    sqlite3.SQLITE_BUSY: "locked",
    sqlite3.SQLITE_LOCKED: "locked",
    sqlite3.SQLITE_IOERR: "io_error",
    sqlite3.SQLITE_CANTOPEN: "io_error",
}


def classify(exc: BaseException) -> tuple[str, str]:
    """``(kind, detail)`` of a storage error: a key of :data:`KINDS` and the error's text."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        kind = "other" if code is None else _SQLITE_KINDS.get(code & 0xFF, "other")
        return kind, str(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        return _ERRNO_KINDS.get(exc.errno or 0, "other"), str(exc)
    return "other", str(exc) or type(exc).__name__


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0 first) of a failing part."""
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(attempt, 16))


@dataclass(frozen=True, slots=True)
class Fault:
    """What is wrong with one part of the store, and since when."""

    part: str
    kind: str
    detail: str
    #: When the part began to fail (the store's clock, RFC 3339), kept across kinds.
    since: str
    began: float
    #: ``time.monotonic()`` of the latest error of this fault.
    last: float

    @property
    def reason(self) -> str:
        return f"{PARTS[self.part]}: {KINDS[self.kind]} ({self.detail})"

    def __repr__(self) -> str:
        return f"<Fault {self.reason} since {self.since}>"


@dataclass(frozen=True, slots=True)
class StorageState:
    """The store's health at one moment: what ``/health`` and ``/prometheus`` report."""

    faults: tuple[Fault, ...] = ()
    #: ``(part, kind, count)`` of every storage error so far, sorted.
    errors: tuple[tuple[str, str, int], ...] = ()
    #: Rows acknowledged through the log and not yet in SQLite.
    backlog_rows: int = 0

    @property
    def healthy(self) -> bool:
        return not self.faults

    @property
    def reason(self) -> str | None:
        return "; ".join(f.reason for f in self.faults) or None

    @property
    def since(self) -> str | None:
        return min((f.since for f in self.faults), default=None)

    def __repr__(self) -> str:
        if self.healthy:
            return "<StorageState healthy>"
        return f"<StorageState degraded: {self.reason}>"


class StorageHealth:
    """The faults of one store's parts, their counts, their log lines and recovery probes.

    Thread-safe: the event loop, the applier thread and a probe thread all report here.
    ``now()`` gives the store clock's timestamp for :attr:`Fault.since`.
    """

    def __init__(self, now: Callable[[], str]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._errors: dict[tuple[str, str], int] = {}
        self._probes: dict[str, Callable[[], None]] = {}
        self._probing: set[str] = set()
        self._stop = threading.Event()
        #: True while any part fails: the one attribute the hot path reads.
        self.faulty = False

    def __repr__(self) -> str:
        return repr(self.state()).replace("StorageState", "StorageHealth", 1)

    def add_probe(self, part: str, probe: Callable[[], None]) -> None:
        """While ``part`` fails, call ``probe()`` (off the event loop, with back-off) until it
        returns without raising: then the part is healthy again."""
        self._probes[part] = probe

    def failed(self, part: str, exc: BaseException) -> StorageUnavailable:
        """Count the error ``exc`` of ``part``; returns what to raise (chained to ``exc``)."""
        kind, detail = classify(exc)
        error = self._fault(part, kind, detail, count=True)
        error.__cause__ = exc
        return error

    def stalled(self, part: str, seconds: float) -> StorageUnavailable:
        """``part`` has not finished a statement in ``seconds``: a fault (counted once). A part
        failing with a known error that stalls again on its retry keeps that error's kind."""
        fault = self._faults.get(part)
        if fault is not None and fault.kind != "stalled":
            return StorageUnavailable(fault.reason, RETRY_AFTER_S)
        return self._fault(part, "stalled", f"nothing finished for {seconds:.1f} s", count=False)

    def cleared(self, part: str) -> None:
        """``part`` worked: end its fault, if it had one (one log line)."""
        if part in self._faults:  # no lock on the healthy path
            self._clear(part, probe_done=False)

    def unavailable(self, part: str, fallback: str) -> StorageUnavailable:
        """The error to raise for a request that needs ``part`` now."""
        fault = self._faults.get(part)
        return StorageUnavailable(fault.reason if fault else f"{PARTS[part]}: {fallback}")

    def state(self, backlog_rows: int = 0) -> StorageState:
        """The faults now and the error counts so far; never blocks on storage."""
        read = self._faults.get("read")
        if read is not None and time.monotonic() - read.last > READ_FAULT_HOLD_S:
            self.cleared("read")
        with self._lock:
            faults = tuple(self._faults[p] for p in PARTS if p in self._faults)
            errors = tuple((p, k, n) for (p, k), n in sorted(self._errors.items()))
        return StorageState(faults, errors, backlog_rows)

    def close(self) -> None:
        """Stop any probe thread (the store is closing)."""
        self._stop.set()

    # -- internals ---------------------------------------------------------------------------
    def _fault(self, part: str, kind: str, detail: str, count: bool) -> StorageUnavailable:
        now = time.monotonic()
        start_probe = False
        with self._lock:
            old = self._faults.get(part)
            changed = old is None or old.kind != kind
            if count or changed:
                self._errors[(part, kind)] = self._errors.get((part, kind), 0) + 1
            if old is None:
                fault = Fault(part, kind, detail, self._now(), now, now)
            else:
                fault = replace(old, kind=kind, detail=detail, last=now)
            self._faults[part] = fault
            self.faulty = True
            if part in self._probes and part not in self._probing and not self._stop.is_set():
                self._probing.add(part)
                start_probe = True
        if changed and old is None:
            log.error(
                "storage degraded: %s; storage requests are answered 503 until it "
                "recovers (retried with back-off, no restart needed)",
                fault.reason,
            )
        elif changed:
            log.error("storage still degraded, now: %s", fault.reason)
        if start_probe:
            name = f"storage-probe-{part}"
            threading.Thread(target=self._probe, args=(part,), name=name, daemon=True).start()
        return StorageUnavailable(fault.reason, RETRY_AFTER_S)

    def _clear(self, part: str, probe_done: bool) -> None:
        with self._lock:
            fault = self._faults.pop(part, None)
            self.faulty = bool(self._faults)
            if probe_done:
                self._probing.discard(part)
            errors = sum(n for (p, _), n in self._errors.items() if p == part)
        if fault is not None:
            log.warning(
                "storage recovered: the %s works again after %.1f s (was: %s); "
                "%d %s error(s) so far",
                PARTS[part],
                time.monotonic() - fault.began,
                fault.reason,
                errors,
                part,
            )

    def _probe(self, part: str) -> None:
        probe = self._probes[part]
        attempt = 0
        while not self._stop.wait(backoff(attempt)):
            attempt += 1
            with self._lock:
                if part not in self._faults:  # a request's own write worked meanwhile
                    self._probing.discard(part)
                    return
            try:
                probe()
            except Exception as exc:  # every failure is the fault going on
                kind, detail = classify(exc)
                self._fault(part, kind, detail, count=False)
                continue
            self._clear(part, probe_done=True)
            return
        with self._lock:
            self._probing.discard(part)
