"""Run a coroutine on its own event loop in a worker thread, from any caller.

A notebook cell already runs inside the kernel's event loop, where ``asyncio.run`` is
refused; a script has no loop at all. :func:`run_async` serves both the same way: it starts
a fresh loop (``uvloop`` where available) in a worker thread, runs the coroutine there and
hands back its result or exception. Interrupting the caller (Ctrl-C, the notebook's stop
button) cancels the coroutine. Introduced in ``03_latency_analysis.ipynb``.

>>> run_async(lambda: asyncio.sleep(0, result=42))
42
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["run_async"]

T = TypeVar("T")


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:  # not on every platform; the standard loop still works
            return None
        return uvloop.new_event_loop
    return None


def run_async(factory: Callable[[], Awaitable[T]], *, loop: str = "uvloop") -> T:
    """Run ``factory()`` to completion on a fresh event loop in a worker thread.

    A notebook cell already runs inside an event loop, so this keeps the measuring loop
    separate (and ``uvloop`` where available). Interrupting the caller cancels the work.
    """
    box: dict[str, Any] = {}
    started = threading.Event()

    async def main() -> T:
        task = asyncio.current_task()
        running = asyncio.get_running_loop()
        box["cancel"] = lambda: running.call_soon_threadsafe(task.cancel)  # type: ignore[union-attr]
        started.set()
        return await factory()

    def target() -> None:
        try:
            with asyncio.Runner(loop_factory=_loop_factory(loop)) as runner:
                box["value"] = runner.run(main())
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=target, name="loadgen-loop", daemon=True)
    thread.start()
    try:
        thread.join()
    except BaseException:
        started.wait()
        if "cancel" in box:
            box["cancel"]()
        thread.join()
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]
