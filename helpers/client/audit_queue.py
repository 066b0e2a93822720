"""Step 3 off the critical path: audits sent by background tasks from a bounded queue.

With a synchronous audit the user waits for the gateway to store the record before getting
the answer. :class:`AuditQueue` lets the request path only *enqueue* the audit (a few
microseconds); worker tasks on the same event loop send it, retrying transient failures
with exponential back-off. Nothing disappears silently:

* a full queue refuses the audit and counts it as ``dropped`` (``submit`` returns False);
* an audit that still fails after its retries, or is rejected by the gateway (4xx), is
  counted as ``failed`` with the last error kept;
* :meth:`AuditQueue.aclose` flushes what is queued; whatever cannot be sent before its
  timeout is counted as ``failed`` too.

The trade-off is durability: an audit waiting in memory is lost if the process dies. The
notebook compares both designs. Introduced in ``04_measurement_method.ipynb``.

>>> async with AuditQueue(gateway_client) as audits:                 # doctest: +SKIP
...     audits.submit(ctx.context_id, "openai", "gpt-4o-mini", usage, latency_ms=812)
>>> audits.stats                                                     # doctest: +SKIP
<AuditQueueStats submitted=1 sent=1 retried=0 failed=0 dropped=0 max_depth=1>
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from time import perf_counter_ns
from typing import Any

from helpers.errors import BadRequest, GatewayError, Unauthorized

from .gateway_client import GatewayClient, TokenUsage

__all__ = ["AuditJob", "AuditQueue", "AuditQueueStats"]


@dataclass(frozen=True, slots=True)
class AuditJob:
    """The arguments of one :meth:`GatewayClient.audit` call, waiting to be sent."""

    context_id: str
    provider: str
    model: str
    token_usage: TokenUsage | Mapping[str, int] | None = None
    latency_ms: float = 0.0
    response_summary: str = ""
    metadata: Mapping[str, Any] | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """The job as keyword arguments of :meth:`GatewayClient.audit` (and of ``submit``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class AuditQueueStats:
    """What happened to every submitted audit. ``lost`` is what never reached the gateway.

    ``send_ms`` holds the time each successful send took in the background (retries
    included): the cost moved off the request path, not removed.
    """

    submitted: int
    sent: int
    retried: int
    failed: int
    dropped: int
    max_depth: int
    send_ms: tuple[float, ...] = ()
    last_error: str | None = None

    @property
    def lost(self) -> int:
        return self.failed + self.dropped

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without the per-send times (summarise those separately)."""
        return {
            "submitted": self.submitted,
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "dropped": self.dropped,
            "lost": self.lost,
            "max_depth": self.max_depth,
            "last_error": self.last_error,
        }

    def __repr__(self) -> str:
        err = f" last_error={self.last_error!r}" if self.last_error else ""
        return (
            f"<AuditQueueStats submitted={self.submitted} sent={self.sent} "
            f"retried={self.retried} failed={self.failed} dropped={self.dropped} "
            f"max_depth={self.max_depth}{err}>"
        )


class AuditQueue:
    """A bounded queue of audits and ``workers`` tasks sending them through ``gateway``.

    Create and use it inside one running event loop (the workers start on the first
    :meth:`submit`). ``retries`` is the number of extra attempts after a transient failure
    (no answer, timeout, 5xx); a 400 or 401 is final at once, since resending the same body
    cannot succeed.
    """

    def __init__(
        self,
        gateway: GatewayClient,
        *,
        maxsize: int = 1000,
        workers: int = 2,
        retries: int = 3,
        backoff_s: float = 0.05,
    ) -> None:
        if maxsize < 1 or workers < 1 or retries < 0 or backoff_s < 0:
            raise ValueError(
                f"need maxsize >= 1, workers >= 1, retries >= 0, backoff_s >= 0; got "
                f"{maxsize=}, {workers=}, {retries=}, {backoff_s=}"
            )
        self.gateway = gateway
        self.maxsize = maxsize
        self.workers = workers
        self.retries = retries
        self.backoff_s = backoff_s
        self._queue: asyncio.Queue[AuditJob] = asyncio.Queue(maxsize)
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._submitted = self._sent = self._retried = self._failed = self._dropped = 0
        self._max_depth = 0
        self._send_ms: list[float] = []
        self._last_error: str | None = None

    def __repr__(self) -> str:
        return (
            f"<AuditQueue depth={self._queue.qsize()}/{self.maxsize} workers={self.workers} "
            f"retries={self.retries}>"
        )

    # -- request path ----------------------------------------------------------------------
    def submit(
        self,
        context_id: str,
        provider: str,
        model: str,
        token_usage: TokenUsage | Mapping[str, int] | None = None,
        latency_ms: float = 0.0,
        response_summary: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> bool:
        """Queue one audit without waiting. False (and counted as dropped) when full."""
        if self._closed:
            raise RuntimeError("AuditQueue is closed; submit audits before aclose()")
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        self._submitted += 1
        job = AuditJob(
            context_id, provider, model, token_usage, latency_ms, response_summary, metadata
        )
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self._dropped += 1
            self._last_error = f"queue full ({self.maxsize} waiting); audit dropped"
            return False
        self._max_depth = max(self._max_depth, self._queue.qsize())
        return True

    # -- background ------------------------------------------------------------------------
    async def _send(self, job: AuditJob) -> None:
        t0 = perf_counter_ns()
        for attempt in range(self.retries + 1):
            try:
                await self.gateway.audit(**job.as_kwargs())
            except (BadRequest, Unauthorized) as exc:
                self._failed += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                return
            except GatewayError as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
                if attempt == self.retries:
                    self._failed += 1
                    return
                self._retried += 1
                await asyncio.sleep(self.backoff_s * 2**attempt)
            else:
                self._sent += 1
                self._send_ms.append((perf_counter_ns() - t0) / 1e6)
                return

    async def _worker(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._send(job)
            finally:
                self._queue.task_done()

    # -- shutdown --------------------------------------------------------------------------
    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued audit is sent or failed; False if ``timeout`` ran out."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float = 10.0) -> AuditQueueStats:
        """Flush, stop the workers, and count anything still unsent as failed."""
        if not self._closed:
            self._closed = True
            flushed = await self.flush(timeout)
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if not flushed:
                # Jobs in flight when their worker was cancelled never reached the gateway
                # as far as we know, and jobs still queued certainly did not.
                unsent = self._submitted - self._dropped - self._sent - self._failed
                self._failed += unsent
                self._last_error = f"{unsent} audits still unsent after {timeout:g} s flush"
        return self.stats

    @property
    def stats(self) -> AuditQueueStats:
        return AuditQueueStats(
            self._submitted,
            self._sent,
            self._retried,
            self._failed,
            self._dropped,
            self._max_depth,
            tuple(self._send_ms),
            self._last_error,
        )

    async def __aenter__(self) -> AuditQueue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
