"""The gateway process's log lines are written by a thread of their own, never by the loop.

Python's logging writes on the thread that logs, and a write to a stderr that nobody reads
fast enough (a pipe whose reader stalled, a journal that throttles, a terminal on hold)
blocks until there is room. When that thread is the event loop, every request waits,
``/health`` included, and a stderr that is never read again never lets go. That is how a
full disk once wedged the gateway: one traceback per refused request filled the 64 KiB
pipe, and the loop sat in ``write(2)`` after the disk had room again.

:class:`BackgroundLog` sends every record (the gateway's and uvicorn's) through a bounded
queue to one writer thread. Putting a record on the queue never blocks: a record that finds
the queue full is dropped and counted, and the writer reports the count when it catches up.
``python -m helpers.gateway`` installs it; a gateway embedded in a notebook or a test leaves
the host's logging as it is.

>>> background = BackgroundLog(sys.stderr).install()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import queue
import threading
from logging.handlers import QueueHandler
from typing import TextIO

__all__ = ["FORMAT", "BackgroundLog", "DroppingQueueHandler"]

#: How a line reads on stderr.
FORMAT = "%(levelname)s %(name)s: %(message)s"
_STOP = logging.makeLogRecord({"msg": "stop"})


class DroppingQueueHandler(QueueHandler):
    """A :class:`~logging.handlers.QueueHandler` that drops a record rather than wait."""

    def __init__(self, records: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(records)
        #: Records dropped so far because the queue was full.
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class BackgroundLog:
    """Log records written to ``stream`` by a daemon thread, through a queue of ``capacity``."""

    def __init__(self, stream: TextIO, capacity: int = 10_000, level: int = logging.WARNING):
        self.records: queue.Queue[logging.LogRecord] = queue.Queue(capacity)
        self.handler = DroppingQueueHandler(self.records)
        self.level = level
        self.target = logging.StreamHandler(stream)
        self.target.setFormatter(logging.Formatter(FORMAT))
        self._reported = 0
        self._thread = threading.Thread(target=self._write, name="log-writer", daemon=True)

    def __repr__(self) -> str:
        return f"<BackgroundLog queued={self.records.qsize()} dropped={self.handler.dropped}>"

    def install(self, logger: logging.Logger | None = None) -> BackgroundLog:
        """Make this the only handler of ``logger`` (the root logger by default); start."""
        logger = logger or logging.getLogger()
        logger.handlers[:] = [self.handler]
        logger.setLevel(self.level)
        self._thread.start()
        return self

    def close(self, timeout: float = 1.0) -> None:
        """Let the writer finish what is queued, waiting at most ``timeout`` (a blocked
        stderr may never take it)."""
        try:
            self.records.put(_STOP, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _write(self) -> None:
        while True:
            record = self.records.get()
            if record is _STOP:
                return
            self.target.handle(record)
            dropped = self.handler.dropped
            if dropped > self._reported:
                note = f"{dropped - self._reported} log line(s) dropped: stderr was not read"
                fields = {"name": __name__, "levelno": logging.WARNING, "msg": note}
                self.target.handle(logging.makeLogRecord({**fields, "levelname": "WARNING"}))
                self._reported = dropped
