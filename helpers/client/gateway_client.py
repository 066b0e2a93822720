"""A client for the gateway-mode API: pre-check, audit, health, and a few extensions.

It speaks the same wire format as AxonFlow's agent in gateway mode, so the same code works
against the embedded gateway (``python -m helpers.gateway``) or a real AxonFlow deployment:
only the URL changes. Headers follow the official Python SDK 9.5 (Basic auth,
``X-Client-ID``, ``X-Tenant-ID``). Introduced in ``01_gateway_mode_openai.ipynb``.

**Copy it.** This module and ``results.py`` beside it are the whole client; besides them it
needs ``helpers/errors.py`` (the error hierarchy, which imports nothing), ``httpx`` and
``orjson`` (``aiohttp`` only for ``transport="aiohttp"``). It reads no ``.env`` and no
environment variable: pass the URL and credentials in, or any object with ``agent_url``,
``client_id``, ``client_secret`` and ``license_key`` attributes as ``settings=``.

How it is built, top to bottom:

1. **Transports** move bytes: ``post_json(path, body)`` and ``get_json(path, params)``
   return ``(status, parsed body)``, over ``httpx`` (async or blocking) or ``aiohttp``.
2. **Operations** are the API, written once: each is a generator that yields the
   :class:`Request` it needs (or a :class:`Wait`), receives the :class:`Reply` and returns a
   result type from ``results.py``. They do no I/O.
3. **Two drivers** run the operations: :class:`GatewayClient` awaits its transport,
   :class:`SyncGatewayClient` blocks on its own. Adding an endpoint is one operation plus one
   line in each client.

>>> async with GatewayClient("http://127.0.0.1:8080") as gw:        # doctest: +SKIP
...     ctx = await gw.pre_check("Summarise this ticket", user_token="user-123")
...     if ctx.approved:
...         ...  # call the LLM yourself, then:
...         await gw.audit(ctx.context_id, "openai", "gpt-4o-mini", TokenUsage(12, 40))
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime
from time import perf_counter_ns
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar
from urllib.parse import quote

import httpx
import orjson

from helpers.errors import (
    BadRequest,
    GatewayError,
    GatewayHTTPError,
    GatewayTimeout,
    GatewayUnavailable,
    Unauthorized,
)

from .results import (
    AuditResult,
    Explanation,
    HealthResult,
    PreCheckResult,
    RateLimitInfo,
    RecordPage,
    ReplyCheck,
    TokenUsage,
)

__all__ = [
    "DEFAULT_URL",
    "USER_AGENT",
    "AiohttpTransport",
    "AsyncTransport",
    "AuditResult",
    "GatewayClient",
    "HealthResult",
    "HttpxTransport",
    "PreCheckResult",
    "RateLimitInfo",
    "Reply",
    "Request",
    "SyncGatewayClient",
    "SyncHttpxTransport",
    "TokenUsage",
    "Wait",
    "decode_json",
    "unavailable",
]

#: AxonFlow's default agent address, used when neither ``url`` nor ``settings`` gives one.
DEFAULT_URL = "http://localhost:8080"
USER_AGENT = "gateway-mode-client/1.0"

PRE_CHECK_PATH = "/api/policy/pre-check"
AUDIT_PATH = "/api/audit/llm-call"
REPLY_CHECK_PATH = "/api/reply/check"
HEALTH_PATH = "/health"
VERIFY_PATH = "/api/audit/verify"
RECORDS_PATH = "/api/audit/records"
RELOAD_PATH = "/api/policies/reload"
EXPLAIN_PATH = "/api/v1/decisions/{}/explain"
#: How often a running chain verification is asked for its result.
POLL_EVERY_S = 0.25

Params = Mapping[str, str] | None


# ---------------------------------------------------------------- 1. transports


class AsyncTransport(Protocol):
    """What :class:`GatewayClient` needs from a transport (pass your own as ``transport=``)."""

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
        "for you), or pass the URL of a running AxonFlow agent (the notebooks take it from "
        "AXONFLOW_AGENT_URL)."
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


C = TypeVar("C", httpx.AsyncClient, httpx.Client)


class _HttpxPool(Generic[C]):
    """The set-up both httpx transports share: a ``_pool`` of their own for their lifetime,
    or the caller's ``client`` (then the headers go with each request)."""

    name = "httpx"
    _pool: type[C]

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        client: C | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self._owned = client is None
        self._client: C = client or self._pool(headers=dict(headers), timeout=timeout)
        self._per_request_headers = None if self._owned else dict(headers)


class HttpxTransport(_HttpxPool[httpx.AsyncClient]):
    """``httpx.AsyncClient`` with one keep-alive pool for the client's lifetime.

    Pass ``client`` to use your own (for example one built on ``httpx.MockTransport``);
    the headers are then sent per request and the client is left open for you to close.
    """

    _pool = httpx.AsyncClient

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


class SyncHttpxTransport(_HttpxPool[httpx.Client]):
    """The blocking twin of :class:`HttpxTransport`, on ``httpx.Client``."""

    _pool = httpx.Client

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

    aiohttp's per-request overhead on loopback is lower than ``httpx.AsyncClient``'s, which
    matters when the thing being measured is a sub-millisecond gateway. The session is
    created on the first request, because aiohttp binds it to the running event loop;
    constructing the client outside a coroutine is therefore fine.
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


# ---------------------------------------------------------------- 2. operations


@dataclass(frozen=True)
class Request:
    """One HTTP exchange an operation asks for: a POST when ``body`` is set, else a GET."""

    path: str
    body: Mapping[str, Any] | None = None
    params: Params = None

    @property
    def method(self) -> str:
        return "GET" if self.body is None else "POST"


@dataclass(frozen=True)
class Reply:
    """A 2xx answer to a :class:`Request`; ``ms`` brackets encode, send, receive and decode."""

    status: int
    data: Any
    ms: float
    url: str


@dataclass(frozen=True)
class Wait:
    """An operation asking to pause (polling) before its next request."""

    seconds: float


T = TypeVar("T")
P = ParamSpec("P")
F = TypeVar("F", bound=Callable[..., Any])
#: An operation: yields what it needs, is sent each :class:`Reply`, returns its result.
#: What a driver sends back after a :class:`Wait` (an operation does not read it).
WAITED = Reply(0, None, 0.0, "")
Op = Generator[Request | Wait, Reply, T]


def _check(status: int, data: Any, url: str) -> Any:
    """Return the body of a 2xx reply; turn anything else into the matching error."""
    if 200 <= status < 300:
        return data
    message = data.get("error") if isinstance(data, dict) else None
    if not isinstance(message, str) or not message:
        message = repr(data)[:200]
    cls = {400: BadRequest, 401: Unauthorized}.get(status, GatewayHTTPError)
    raise cls(status, message, url)


def _query_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _setting(settings: object, name: str) -> str:
    """``settings.<name>`` as text; a masked secret object is unwrapped with ``.get()``."""
    value = getattr(settings, name, None) if settings is not None else None
    if value is not None and not isinstance(value, str) and callable(getattr(value, "get", None)):
        value = value.get()
    return value or ""


class _Operations:
    """Configuration, headers and every API call, written once for both clients."""

    def __init__(
        self,
        url: str | None,
        client_id: str | None,
        client_secret: str | None,
        license_key: str | None,
        tenant_id: str | None,
        timeout: float,
        settings: object | None,
    ) -> None:
        self.url = (url or _setting(settings, "agent_url") or DEFAULT_URL).rstrip("/")
        self.client_id = client_id or _setting(settings, "client_id") or "community"
        secret = client_secret if client_secret is not None else _setting(settings, "client_secret")
        if license_key is None:
            license_key = _setting(settings, "license_key")
        self.tenant_id = tenant_id or self.client_id
        self.timeout = timeout
        # Like SDK 9.5: always Basic auth, "community:" when no secret is configured.
        basic = base64.b64encode(f"{self.client_id}:{secret}".encode()).decode()
        self._headers = {
            "Authorization": f"Basic {basic}",
            "X-Client-ID": self.client_id,
            "X-Tenant-ID": self.tenant_id,
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
        }
        if license_key:
            self._headers["X-License-Key"] = license_key

    def _reply(self, request: Request, status: int, data: Any, t0: int) -> Reply:
        ms = (perf_counter_ns() - t0) / 1e6
        url = self.url + request.path
        return Reply(status, _check(status, data, url), ms, url)

    def op_pre_check(
        self,
        query: str,
        user_token: str = "",
        data_sources: list[str] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Op[PreCheckResult]:
        """Step 1: ask whether ``query`` may go to the LLM. A block is a result, not an error."""
        body: dict[str, Any] = {
            "user_token": user_token,
            "client_id": self.client_id,
            "query": query,
        }
        if data_sources is not None:
            body["data_sources"] = list(data_sources)
        if context is not None:
            body["context"] = dict(context)
        r = yield Request(PRE_CHECK_PATH, body)
        return PreCheckResult.from_response(r.data, r.ms, status=r.status, url=r.url)

    def op_audit(
        self,
        context_id: str,
        provider: str,
        model: str,
        token_usage: TokenUsage | Mapping[str, int] | None = None,
        latency_ms: float = 0,
        response_summary: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> Op[AuditResult]:
        """Step 3: record the LLM call made under ``context_id``."""
        body: dict[str, Any] = {
            "context_id": context_id,
            "client_id": self.client_id,
            "provider": provider,
            "model": model,
            "response_summary": response_summary,
            # The contract types latency_ms as an integer; fractions would be a 400 there.
            "latency_ms": round(latency_ms),
        }
        if token_usage is not None:
            if not isinstance(token_usage, TokenUsage):
                token_usage = TokenUsage.from_mapping(token_usage)
            body["token_usage"] = token_usage.as_dict()
        if metadata is not None:
            body["metadata"] = dict(metadata)
        r = yield Request(AUDIT_PATH, body)
        return AuditResult.from_response(r.data, r.ms, status=r.status, url=r.url)

    def op_check_reply(
        self, context_id: str, text: str, *, context: str = "", final: bool = True
    ) -> Op[ReplyCheck]:
        """Inspect the model's answer before showing it (``POST /api/reply/check``, an
        extension of the embedded gateway). For a stream, send what has not been shown yet
        with ``final=False`` and the shown text as ``context``; keep the last ``held``
        characters and send them again with the next chunk."""
        body = {
            "context_id": context_id,
            "client_id": self.client_id,
            "text": text,
            "context": context,
            "final": final,
        }
        r = yield Request(REPLY_CHECK_PATH, body)
        return ReplyCheck.from_response(r.data, r.ms, status=r.status, url=r.url)

    def op_health(self) -> Op[HealthResult]:
        """``GET /health``; ``.ok`` is true when the status is ``"healthy"``."""
        r = yield Request(HEALTH_PATH)
        return HealthResult.from_response(r.data, r.ms, status=r.status, url=r.url)

    def op_verify_audit_chain(self) -> Op[dict[str, Any]]:
        """``GET /api/audit/verify``: check the hash chain of stored records.

        A long trail answers ``202`` with ``done: false`` and a ``job`` id; this asks again
        every :data:`POLL_EVERY_S` seconds until done, and returns the final report:
        ``success``, ``ok``, ``checked``, ``first_broken``, ``problem``. An extension of
        the embedded gateway (a real AxonFlow agent has no such endpoint).
        """
        data = (yield Request(VERIFY_PATH)).data
        while isinstance(data, Mapping) and data.get("done") is False and "job" in data:
            yield Wait(POLL_EVERY_S)
            data = (yield Request(VERIFY_PATH, params={"job": data["job"]})).data
        keys = ("success", "ok", "checked", "first_broken", "problem")
        return {key: data[key] for key in keys if key in data}

    def op_list_records(self, /, **filters: object) -> Op[RecordPage]:
        """``GET /api/audit/records``: pre-checks joined with their audits, newest first.

        Filters: since, until (aware datetime or RFC 3339 text), client_id, user_hash,
        user_token (hashed by the gateway), provider, model, approved (bool), limit, after
        (the previous page's ``next``), offset; an unknown filter is a :class:`BadRequest`.
        Returns a :class:`RecordPage`. An extension of the embedded gateway.
        """
        # The gateway validates names and values (a 400 names the bad one).
        params = {k: _query_value(v) for k, v in filters.items() if v is not None}
        r = yield Request(RECORDS_PATH, params=params)
        return RecordPage.from_response(r.data, r.url)

    def op_explain(self, decision_id: str) -> Op[Explanation]:
        """``GET /api/v1/decisions/{decision_id}/explain`` (AxonFlow v11): why a pre-check
        decided as it did. The posture in force, every policy family and whether it ran,
        each finding with the action it asked for and where it was found (offsets, never the
        value), and the steps from the findings to the verdict. ``decision_id`` is a
        pre-check reply's ``decision_id``; an unknown or expired one is a 404."""
        if not decision_id:
            raise ValueError("decision_id is empty; pass the decision_id of a pre-check reply")
        r = yield Request(EXPLAIN_PATH.format(quote(decision_id, safe="")))
        return Explanation.from_response(r.data)

    def op_reload_policies(self) -> Op[dict[str, Any]]:
        """``POST /api/policies/reload``: re-read the custom policy and user files.

        An extension of the embedded gateway.
        """
        return (yield Request(RELOAD_PATH, {})).data


# ---------------------------------------------------------------- 3. the two drivers


def _named(method: F, op: Callable[..., Any]) -> F:
    """``method`` under the operation's public name, with its docstring (for ``help()``)."""
    method.__name__ = method.__qualname__ = op.__name__.removeprefix("op_")
    method.__doc__ = op.__doc__
    return method


def _awaitable(
    op: Callable[Concatenate[_Operations, P], Op[T]],
) -> Callable[Concatenate[GatewayClient, P], Awaitable[T]]:
    """An operation as an ``async`` method of :class:`GatewayClient`."""

    async def method(self: GatewayClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._drive(op(self, *args, **kwargs))

    return _named(method, op)


def _blocking(
    op: Callable[Concatenate[_Operations, P], Op[T]],
) -> Callable[Concatenate[SyncGatewayClient, P], T]:
    """An operation as a blocking method of :class:`SyncGatewayClient`."""

    def method(self: SyncGatewayClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._drive(op(self, *args, **kwargs))

    return _named(method, op)


class GatewayClient(_Operations):
    """Async client for a gateway-mode API; one keep-alive connection pool per client.

    ``url`` defaults to ``settings.agent_url``, then :data:`DEFAULT_URL`; ``client_id``,
    ``client_secret`` and ``license_key`` likewise come from ``settings`` (any object with
    those attributes, such as :class:`helpers.settings.Settings`) when not given. Nothing
    is read from the environment. ``transport`` is ``"httpx"`` (default), ``"aiohttp"``,
    or any :class:`AsyncTransport`; ``http_client`` injects an ``httpx.AsyncClient`` (the
    caller closes it). Use one client per event loop.

    >>> GatewayClient("http://127.0.0.1:8080")
    <GatewayClient http://127.0.0.1:8080 client_id='community' transport=httpx>
    """

    def __init__(
        self,
        url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        license_key: str | None = None,
        tenant_id: str | None = None,
        timeout: float = 10.0,
        transport: str | AsyncTransport = "httpx",
        settings: object | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(url, client_id, client_secret, license_key, tenant_id, timeout, settings)
        if not isinstance(transport, str):
            self._transport: AsyncTransport = transport
        elif transport == "httpx":
            self._transport = HttpxTransport(self.url, self._headers, timeout, http_client)
        elif transport == "aiohttp":
            if http_client is not None:
                raise ValueError("http_client is an httpx.AsyncClient; it needs transport='httpx'")
            self._transport = AiohttpTransport(self.url, self._headers, timeout)
        else:
            raise ValueError(f"transport={transport!r}; use 'httpx' or 'aiohttp'")

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.url} client_id={self.client_id!r} "
            f"transport={self._transport.name}>"
        )

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._transport.aclose()

    async def _drive(self, op: Op[T]) -> T:
        step = next(op)
        while True:
            if isinstance(step, Wait):
                await asyncio.sleep(step.seconds)
                reply = WAITED
            else:
                t0 = perf_counter_ns()
                if step.body is None:
                    status, data = await self._transport.get_json(step.path, step.params)
                else:
                    status, data = await self._transport.post_json(step.path, step.body)
                reply = self._reply(step, status, data, t0)
            try:
                step = op.send(reply)
            except StopIteration as done:
                return done.value

    pre_check = _awaitable(_Operations.op_pre_check)
    audit = _awaitable(_Operations.op_audit)
    check_reply = _awaitable(_Operations.op_check_reply)
    health = _awaitable(_Operations.op_health)
    verify_audit_chain = _awaitable(_Operations.op_verify_audit_chain)
    list_records = _awaitable(_Operations.op_list_records)
    explain = _awaitable(_Operations.op_explain)
    reload_policies = _awaitable(_Operations.op_reload_policies)


class SyncGatewayClient(_Operations):
    """The same API as :class:`GatewayClient`, blocking, on ``httpx.Client`` (for scripts).

    >>> with SyncGatewayClient("http://127.0.0.1:8080") as gw:         # doctest: +SKIP
    ...     print(gw.health().ok)
    """

    def __init__(
        self,
        url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        license_key: str | None = None,
        tenant_id: str | None = None,
        timeout: float = 10.0,
        settings: object | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(url, client_id, client_secret, license_key, tenant_id, timeout, settings)
        self._transport = SyncHttpxTransport(self.url, self._headers, timeout, http_client)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} client_id={self.client_id!r} transport=httpx>"

    def __enter__(self) -> SyncGatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._transport.close()

    def _drive(self, op: Op[T]) -> T:
        step = next(op)
        while True:
            if isinstance(step, Wait):
                time.sleep(step.seconds)
                reply = WAITED
            else:
                t0 = perf_counter_ns()
                if step.body is None:
                    status, data = self._transport.get_json(step.path, step.params)
                else:
                    status, data = self._transport.post_json(step.path, step.body)
                reply = self._reply(step, status, data, t0)
            try:
                step = op.send(reply)
            except StopIteration as done:
                return done.value

    pre_check = _blocking(_Operations.op_pre_check)
    audit = _blocking(_Operations.op_audit)
    check_reply = _blocking(_Operations.op_check_reply)
    health = _blocking(_Operations.op_health)
    verify_audit_chain = _blocking(_Operations.op_verify_audit_chain)
    list_records = _blocking(_Operations.op_list_records)
    explain = _blocking(_Operations.op_explain)
    reload_policies = _blocking(_Operations.op_reload_policies)
