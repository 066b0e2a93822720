"""The gateway's own HTTP client for proxy mode: pooled keep-alive HTTP/1.1 over asyncio.

Proxy mode spends most of its time reaching the provider, so that hop is kept at the
transport floor: requests are written as bytes, responses are parsed by ``httptools`` (the
C parser the gateway's server already uses), and connections are kept open and reused.
Nothing is decoded here: :mod:`.providers` reads only what governance needs from the bytes.
Measured against the same stand-in, a plain call through this client costs a fraction of
one through the provider SDKs or a general-purpose client (``docs/benchmarks.md``).

One :class:`Upstream` serves one origin (scheme, host, port, and a path prefix such as
``/v1``). :meth:`Upstream.open` returns as soon as the status and headers are in; the body
is then read whole or streamed (:class:`UpstreamStream`). ``timeout_s`` bounds connecting
and every wait for more bytes (so, in a stream, the longest wait between two chunks).

Failures are :class:`UpstreamError`: :class:`UpstreamTimeout`, :class:`UpstreamUnreachable`
(refused, reset, closed before the answer ended) or :class:`UpstreamProtocolError` (what
came back is not HTTP). Not supported, by design: HTTP proxies, HTTP/2, redirects, and
compressed bodies (``accept-encoding: identity`` is sent). Introduced in
``11_proxy_mode.ipynb``.

>>> upstream = Upstream("http://127.0.0.1:8000/v1", timeout_s=30)          # doctest: +SKIP
>>> answer = await upstream.open("/chat/completions", body, headers)         # doctest: +SKIP
>>> answer.status, await answer.read()                                      # doctest: +SKIP
(200, b'{"id": ...}')
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from urllib.parse import SplitResult, urlsplit

import httptools

__all__ = [
    "Upstream",
    "check_base_url",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamStream",
    "UpstreamTimeout",
    "UpstreamUnreachable",
]

#: Idle connections kept per origin; more are closed once their answer is read.
MAX_IDLE = 32
_READ = 64 * 1024


class UpstreamError(Exception):
    """A request that got no complete HTTP answer."""


class UpstreamTimeout(UpstreamError):
    """Connecting, or waiting for more bytes, took longer than the timeout."""


class UpstreamUnreachable(UpstreamError):
    """Refused, reset, or closed before the answer ended."""


class UpstreamProtocolError(UpstreamError):
    """What came back is not an HTTP/1.1 response."""


class _Connection:
    """One keep-alive connection and the parser of the answer it is reading."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used = False  # answered at least once: a close before any byte may be staleness
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: dict[str, str] = {}
        self.pieces: deque[bytes] = deque()
        self.head_done = False
        self.keep_alive = False
        self.complete = False
        self.received = 0

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.head_done = True
        # Asked now: the parser forgets the answer's framing once the message is complete.
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.pieces.append(body)

    def on_message_complete(self) -> None:
        self.complete = True

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed

    @property
    def closed(self) -> bool:
        return self.writer.is_closing() or self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()

    async def fill(self, timeout_s: float) -> None:
        """Read once and parse; raises when the peer goes quiet or away too early."""
        try:
            async with asyncio.timeout(timeout_s):
                data = await self.reader.read(_READ)
        except TimeoutError:
            raise UpstreamTimeout(f"no answer within {timeout_s:g} s") from None
        except OSError as exc:
            raise UpstreamUnreachable(f"{type(exc).__name__}: {exc}") from None
        if not data:
            if self.head_done and not self._framed():
                self.complete = True  # a body delimited by the end of the connection
                return
            raise UpstreamUnreachable(
                "the server closed the connection before the answer ended"
                if self.received
                else "the server closed the connection without answering"
            )
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise UpstreamProtocolError(f"not an HTTP/1.1 answer ({exc})") from None

    def _framed(self) -> bool:
        return "content-length" in self.headers or "transfer-encoding" in self.headers


class UpstreamStream:
    """An answer whose status and headers are in, its body still arriving.

    Read it with :meth:`read` (all of it) or :meth:`lines` (server-sent events); the
    connection goes back to the pool when the body has been read to its end, and is closed
    by :meth:`aclose` otherwise (an abandoned stream stops the upstream call).
    """

    def __init__(self, upstream: Upstream, conn: _Connection) -> None:
        self._upstream = upstream
        self._conn: _Connection | None = conn
        self.status = conn.parser.get_status_code()
        self.headers: Mapping[str, str] = conn.headers

    def __repr__(self) -> str:
        return f"<UpstreamStream [{self.status}]>"

    async def chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        try:
            while True:
                while conn.pieces:
                    yield conn.pieces.popleft()
                if conn.complete:
                    break
                await conn.fill(self._upstream.timeout_s)
        except BaseException:
            await self.aclose()
            raise
        self._conn = None
        self._upstream.release(conn)

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.chunks()])

    async def lines(self) -> AsyncIterator[bytes]:
        """The body split into lines (``\\n``, a trailing ``\\r`` dropped), blank ones kept."""
        rest = b""
        async for piece in self.chunks():
            rest += piece
            if b"\n" not in piece:
                continue
            *done, rest = rest.split(b"\n")
            for line in done:
                yield line[:-1] if line.endswith(b"\r") else line
        if rest:
            yield rest

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def check_base_url(base_url: str) -> SplitResult:
    """``base_url`` split; :class:`ValueError` unless it is ``http(s)://host[:port][/path]``."""
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as exc:
        raise ValueError(f"base URL {base_url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base URL {base_url!r} must be http:// or https:// with a host")
    return parts


class Upstream:
    """A pool of keep-alive connections to one origin; see the module docstring."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        parts = check_base_url(base_url)
        self.base_url = base_url
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        default_port = self.port == (443 if self.tls else 80)
        authority = self.host if default_port else f"{self.host}:{self.port}"
        self._host_header = f"host: {authority}\r\n".encode("latin-1")
        self.timeout_s = timeout_s
        self._idle: deque[_Connection] = deque()
        self._ssl: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return f"<Upstream {self.base_url} idle={len(self._idle)}>"

    async def open(
        self, path: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> UpstreamStream:
        """Send a POST and wait for the answer's status and headers."""
        request = self._request(path, body, headers or {})
        while True:
            conn = await self._connection()
            reused = conn.used
            try:
                conn.writer.write(request)
                while not conn.head_done:
                    await conn.fill(self.timeout_s)
            except UpstreamUnreachable:
                conn.close()
                if reused and conn.received == 0:
                    continue  # the server had closed this idle connection: use a fresh one
                raise
            except BaseException:
                conn.close()
                raise
            conn.used = True
            return UpstreamStream(self, conn)

    def release(self, conn: _Connection) -> None:
        """A connection whose answer was read to its end: kept for the next request."""
        if conn.reusable and len(self._idle) < MAX_IDLE:
            conn._reset()
            self._idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, deque()
        for conn in idle:
            conn.close()

    def _request(self, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        lines = [f"POST {self.prefix}{path} HTTP/1.1\r\n".encode("latin-1"), self._host_header]
        lines.extend(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items())
        lines.append(b"content-length: %d\r\n\r\n" % len(body))
        lines.append(body)
        return b"".join(lines)

    async def _connection(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to be stale
            if not conn.closed:
                return conn
            conn.close()
        try:
            async with asyncio.timeout(self.timeout_s):
                tls = self._tls() if self.tls else None
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=tls, server_hostname=self.host if tls else None
                )
        except TimeoutError:
            raise UpstreamTimeout(f"could not connect within {self.timeout_s:g} s") from None
        except OSError as exc:
            raise UpstreamUnreachable(f"{type(exc).__name__}: {exc}") from None
        return _Connection(reader, writer)

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            try:
                import certifi  # the CA bundle the provider SDKs trust

                self._ssl = ssl.create_default_context(cafile=certifi.where())
            except ImportError:
                self._ssl = ssl.create_default_context()
        return self._ssl
