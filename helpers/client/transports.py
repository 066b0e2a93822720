"""The wire under :mod:`helpers.client`: send JSON, get ``(status, parsed body)`` back.

Two async transports (httpx and aiohttp) and one blocking one (httpx) sit behind the same
two methods, ``post_json(path, body)`` and ``get_json(path, params)``, so the client holds
the API and the results while a transport only moves bytes. Each one keeps a single
long-lived connection pool (keep-alive) and turns its library's exceptions into
:mod:`helpers.errors`. aiohttp is offered because its per-request overhead on loopback is
roughly half of ``httpx.AsyncClient``'s, which matters when the thing being measured is a
sub-millisecond gateway. Introduced in ``01_gateway_mode_openai.ipynb``; the transport
comparison is in the latency notebook.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import httpx
import orjson

from helpers.errors import GatewayError, GatewayHTTPError, GatewayTimeout, GatewayUnavailable

__all__ = [
    "AiohttpTransport",
    "AsyncTransport",
    "HttpxTransport",
    "SyncHttpxTransport",
    "decode_json",
    "unavailable",
]

Params = Mapping[str, str] | None


class AsyncTransport(Protocol):
    """What :class:`helpers.client.GatewayClient` needs from a transport."""

    name: str

    async def post_json(self, path: str, body: Mapping[str, Any]) -> tuple[int, Any]: ...

    async def get_json(self, path: str, params: Params = None) -> tuple[int, Any]: ...

    async def aclose(self) -> None: ...


def _encode(body: Mapping[str, Any]) -> bytes:
    # orjson: compact UTF-8 JSON, several times faster than json.dumps on every call.
    return orjson.dumps(body)


def decode_json(status: int, content: bytes, url: str) -> Any:
    """Parse a response body; a body that is not JSON is an error that shows a snippet."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        snippet = content[:200].decode("utf-8", "replace").strip() or "<empty body>"
        raise GatewayHTTPError(status, f"expected a JSON body but got: {snippet!r}", url) from None


def unavailable(url: str, cause: object) -> GatewayUnavailable:
    """The error for "nothing answered": names the URL and says how to get a gateway."""
    return GatewayUnavailable(
        f"no gateway answered at {url} ({cause}). Start the embedded one with "
        "`python -m helpers.gateway --port 8080` (in notebooks, `helpers.stack` starts it "
        "for you), or set AXONFLOW_AGENT_URL to a running AxonFlow agent."
    )


def _timeout(url: str, seconds: float) -> GatewayTimeout:
    return GatewayTimeout(
        f"the gateway at {url} did not answer within {seconds:g} s; "
        "raise `timeout=` or check that it is not overloaded"
    )


def _map_httpx_error(exc: httpx.HTTPError, url: str, timeout: float) -> GatewayError:
    if isinstance(exc, httpx.TimeoutException):
        return _timeout(url, timeout)
    if isinstance(exc, httpx.TransportError):
        # Refused, reset, or the server vanished mid-reply: all mean "nothing answers".
        return unavailable(url, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return GatewayError(f"request to {url} failed: {exc}")


class HttpxTransport:
    """``httpx.AsyncClient`` with one pool for the client's lifetime.

    Pass ``client`` to use your own (for example one built on ``httpx.MockTransport``);
    the headers are then sent per request and the client is left open for you to close.
    """

    name = "httpx"

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self._owned = client is None
        self._client = client or httpx.AsyncClient(headers=dict(headers), timeout=timeout)
        self._per_request_headers = None if self._owned else dict(headers)

    async def _send(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        url = self.base_url + path
        try:
            resp = await self._client.request(method, url, headers=self._per_request_headers, **kw)
            content = resp.content
        except httpx.HTTPError as exc:
            raise _map_httpx_error(exc, url, self.timeout) from exc
        return resp.status_code, decode_json(resp.status_code, content, url)

    async def post_json(self, path: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        return await self._send("POST", path, content=_encode(body))

    async def get_json(self, path: str, params: Params = None) -> tuple[int, Any]:
        return await self._send("GET", path, params=params)

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()


class SyncHttpxTransport:
    """The blocking twin of :class:`HttpxTransport`, on ``httpx.Client``."""

    name = "httpx"

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self._owned = client is None
        self._client = client or httpx.Client(headers=dict(headers), timeout=timeout)
        self._per_request_headers = None if self._owned else dict(headers)

    def _send(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        url = self.base_url + path
        try:
            resp = self._client.request(method, url, headers=self._per_request_headers, **kw)
            content = resp.content
        except httpx.HTTPError as exc:
            raise _map_httpx_error(exc, url, self.timeout) from exc
        return resp.status_code, decode_json(resp.status_code, content, url)

    def post_json(self, path: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        return self._send("POST", path, content=_encode(body))

    def get_json(self, path: str, params: Params = None) -> tuple[int, Any]:
        return self._send("GET", path, params=params)

    def close(self) -> None:
        if self._owned:
            self._client.close()


class AiohttpTransport:
    """``aiohttp.ClientSession`` with one keep-alive connector.

    The session is created on the first request, because aiohttp binds it to the running
    event loop; constructing the client outside a coroutine is therefore fine.
    """

    name = "aiohttp"

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout: float) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self._headers = dict(headers)
        self._session: Any = None  # aiohttp.ClientSession, imported lazily

    def _get_session(self) -> Any:
        if self._session is None:
            import aiohttp  # only needed by callers who pick this transport

            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                # Skip aiohttp's cookie bookkeeping: the gateway sets no cookies.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def _send(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        import aiohttp

        url = self.base_url + path
        session = self._get_session()
        try:
            async with session.request(method, url, **kw) as resp:
                status = resp.status
                content = await resp.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise _timeout(url, self.timeout) from exc
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise unavailable(url, f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise GatewayError(f"request to {url} failed: {exc}") from exc
        return status, decode_json(status, content, url)

    async def post_json(self, path: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        return await self._send("POST", path, data=_encode(body))

    async def get_json(self, path: str, params: Params = None) -> tuple[int, Any]:
        return await self._send("GET", path, params=params)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
