"""How every endpoint of the gateway answers: one JSON writer and one plain ASGI endpoint.

The endpoints are plain ASGI callables rather than Starlette request/response functions: on
the pre-check path Starlette's ``Request`` and ``JSONResponse`` objects cost about as much
as the policy decision, and every endpoint, ``/health`` included, goes through the same
code, so the ``/health`` floor and the pre-check are measured on equal terms.

A storage fault (:class:`~helpers.errors.StorageUnavailable`) is answered at once with a 503
whose message names it, and is not logged here: the store logs one line when its state
changes, not one per request. Every 503 carries ``Retry-After``.
Introduced in ``01_gateway_mode_openai.ipynb``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson

from helpers.errors import StorageUnavailable

from .store.health import RETRY_AFTER_S
from .validation import Call, Reject

__all__ = ["NOT_STORED", "RETRY_AFTER", "Endpoint", "Handler", "send_json", "storage_error"]

log = logging.getLogger("helpers.gateway")
#: The answer to a failure of the gateway's own (a storage error): nothing was acknowledged.
NOT_STORED = "The gateway could not record this request; nothing was stored. Retry."
_PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"
#: The header every 503 carries: clients and load balancers retry after it.
RETRY_AFTER = ((b"retry-after", b"%d" % RETRY_AFTER_S),)
Handler = Callable[[Call], Awaitable[tuple[int, Any]]]


def storage_error(exc: StorageUnavailable) -> dict[str, Any]:
    """The contract's error body for a storage fault: says storage, why, and when to retry."""
    message = (
        f"The gateway's storage is unavailable ({exc.reason}); nothing was stored. "
        f"Retry in {exc.retry_after_s} s."
    )
    return {"success": False, "error": message}


async def send_json(
    send: Any, status: int, payload: Any, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send a whole response: a str payload as Prometheus text, anything else as JSON."""
    if isinstance(payload, str):
        body, kind = payload.encode(), _PROMETHEUS
    else:
        body, kind = orjson.dumps(payload), b"application/json"
    start = [(b"content-type", kind), (b"content-length", b"%d" % len(body)), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


class Endpoint:
    """A plain ASGI endpoint around ``handler(call) -> (status, payload)``.

    :class:`Reject` becomes the contract's error body; a storage fault is a 503 that says so
    (:func:`storage_error`); any other exception is the server's fault: logged, answered 503,
    and nothing is acknowledged.

    >>> Route("/health", Endpoint(gateway.health), methods=["GET"])  # doctest: +SKIP
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.__name__ = handler.__name__

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            status, payload = await self.handler(Call(scope, receive))
        except Reject as exc:
            status, payload = exc.status, {"success": False, "error": exc.message}
        except StorageUnavailable as exc:  # counted and logged by the store, once per change
            status, payload = 503, storage_error(exc)
        except Exception:
            log.exception("gateway handler failed")
            status, payload = 503, {"success": False, "error": NOT_STORED}
        await send_json(send, status, payload, RETRY_AFTER if status == 503 else ())
