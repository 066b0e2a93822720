"""The gateway process's log: written by a thread of its own, so a stderr nobody reads can
never hold up the thread that logs (the event loop)."""

from __future__ import annotations

import io
import logging
import threading
import time

from helpers.gateway.logsink import BackgroundLog


class _StuckStream(io.StringIO):
    """A stream whose writes block until released: a pipe nobody reads."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()

    def write(self, text: str) -> int:
        self.released.wait(30)
        return super().write(text)


def test_logging_never_blocks_on_a_stuck_stream_and_reports_what_it_dropped() -> None:
    stream = _StuckStream()
    logger = logging.getLogger("tests.logsink")
    logger.propagate = False
    background = BackgroundLog(stream, capacity=100).install(logger)
    try:
        started = time.monotonic()
        for i in range(5_000):
            logger.error("storage degraded %d", i)
        assert time.monotonic() - started < 2.0  # never waited on the stream
        assert background.handler.dropped >= 5_000 - 101
        stream.released.set()
        background.close(timeout=10)
    finally:
        logger.handlers.clear()
        logger.propagate = True
    lines = stream.getvalue().splitlines()
    assert lines[0] == "ERROR tests.logsink: storage degraded 0"
    assert any(line.endswith("log line(s) dropped: stderr was not read") for line in lines)
    assert len(lines) <= 102 + 1


def test_records_below_warning_are_not_written() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("tests.logsink.levels")
    logger.propagate = False
    background = BackgroundLog(stream).install(logger)
    try:
        logger.info("not this")
        logger.warning("this")
        background.close(timeout=10)
    finally:
        logger.handlers.clear()
        logger.propagate = True
    assert stream.getvalue() == "WARNING tests.logsink.levels: this\n"
