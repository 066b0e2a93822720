"""Asking the embedded gateway to verify its audit chain, and waiting for the answer.

``GET /api/audit/verify`` answers a short trail at once; a long one answers ``202`` with
``done: false``, its progress and a ``job`` id, and is asked again with ``?job=<id>``
until done. :func:`verify_chain` and :func:`verify_chain_sync` do that polling for the
clients' ``verify_audit_chain`` methods and return the final report only: ``success``,
``ok``, ``checked``, ``first_broken`` and ``problem``. Introduced in ``08_audit_trail.ipynb``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

__all__ = ["POLL_EVERY_S", "VERIFY_PATH", "verify_chain", "verify_chain_sync"]

VERIFY_PATH = "/api/audit/verify"
#: How often a running verification is asked for its result.
POLL_EVERY_S = 0.25
_REPORT_KEYS = ("success", "ok", "checked", "first_broken", "problem")

Call = Callable[..., tuple[int, Any, float]]
AsyncCall = Callable[..., Awaitable[tuple[int, Any, float]]]


def _report(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: data[key] for key in _REPORT_KEYS if key in data}


def _running(data: Any) -> bool:
    return isinstance(data, Mapping) and data.get("done") is False and "job" in data


async def verify_chain(call: AsyncCall) -> dict[str, Any]:
    """Start (or join) a verification through ``call`` and wait for its report."""
    data = (await call(VERIFY_PATH))[1]
    while _running(data):
        await asyncio.sleep(POLL_EVERY_S)
        data = (await call(VERIFY_PATH, params={"job": data["job"]}))[1]
    return _report(data)


def verify_chain_sync(call: Call) -> dict[str, Any]:
    """Blocking :func:`verify_chain`."""
    data = call(VERIFY_PATH)[1]
    while _running(data):
        time.sleep(POLL_EVERY_S)
        data = call(VERIFY_PATH, params={"job": data["job"]})[1]
    return _report(data)
