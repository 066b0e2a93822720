"""The gateway's read endpoints: records, chain verification and the streaming export.

None of them reads on the event loop. Each first waits (without blocking the loop) until
every acknowledged row is in SQLite, then hands the reading to :class:`~.reader.Reader`'s
worker process, so pre-checks and audits are served at full speed meanwhile.

* ``GET /api/audit/records``: one page of the joined trail; ``limit`` is at most
  :data:`MAX_PAGE` (default 1,000), so no single request reads the whole trail. A full
  page carries ``next``, a cursor for ``after=`` (and ``next_url``, the same request
  continued): the next page starts after this one's last row by key, through an index,
  so page 200 costs what page 1 does. ``offset`` still works, reading everything it skips.
* ``GET /api/audit/export``: the whole joined trail (same filters, no paging) as JSON Lines,
  streamed while it is read.
* ``GET /api/audit/verify``: verifies the chain :data:`SEGMENT_ROWS` rows at a time. A
  short trail is answered at once (200, ``done: true``); a long one answers 202 with
  ``done: false``, ``checked``, ``total``, ``progress`` and a ``job`` id once ``wait``
  seconds (default :data:`VERIFY_WAIT_S`, counted once the reader process is up) have
  passed; ``?job=<id>`` asks again. One
  verification runs at a time; asking while one runs joins it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from .auth import Authenticator
from .endpoint import send_json
from .governance import Governance
from .reader import Reader, RecordsPage, export_lines
from .store import ChainReport, RecordFilter
from .store.query import RecordKey
from .store.verify import ChainCursor
from .validation import Call, Reject

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "SEGMENT_ROWS",
    "VERIFY_WAIT_S",
    "ReadBack",
    "StreamEndpoint",
    "VerifyJob",
    "decode_cursor",
    "encode_cursor",
]

#: The most rows one ``/api/audit/records`` request returns; page with ``next``.
MAX_PAGE = 10_000
#: Rows a ``/api/audit/records`` page has when ``limit`` is not given.
DEFAULT_PAGE = 1000
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
#: Rows verified per step in the reader process (about a quarter of a second each).
SEGMENT_ROWS = 20_000
#: How long ``/api/audit/verify`` waits for a result before answering with progress.
VERIFY_WAIT_S = 1.0
_MAX_WAIT_S = 30.0
_KEPT_JOBS = 16
_FILTERS = (
    "since",
    "until",
    "client_id",
    "user_hash",
    "user_token",
    "provider",
    "model",
    "approved",
)


def _query(call: Call, allowed: tuple[str, ...]) -> dict[str, str]:
    q = dict(parse_qsl(call.scope.get("query_string", b"").decode("latin-1")))
    unknown = sorted(set(q) - set(allowed))
    if unknown:
        kind = "filter(s)" if "since" in allowed else "parameter(s)"
        raise Reject(
            400, f"Unknown {kind}: {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    return q


def record_filter(q: dict[str, str], gw: Governance) -> RecordFilter:
    """The filters of ``/api/audit/records`` and the export, checked, naming a bad value."""
    out: dict[str, Any] = {}
    for key in ("client_id", "user_hash", "provider", "model"):
        if q.get(key):
            out[key] = q[key]
    if q.get("user_token"):
        out["user_hash"] = gw.store.hash(q["user_token"])  # type: ignore[union-attr]
    for key in ("since", "until"):
        if q.get(key):
            try:
                moment = datetime.fromisoformat(q[key].replace("Z", "+00:00"))
            except ValueError:
                raise Reject(400, f"{key}={q[key]!r} is not an RFC 3339 timestamp") from None
            if moment.tzinfo is None:
                raise Reject(400, f"{key}={q[key]!r} needs a time zone, e.g. a trailing Z")
            out[key] = moment
    if q.get("approved"):
        flag = q["approved"].lower()
        if flag not in ("true", "false"):
            raise Reject(400, f"approved={q['approved']!r} must be true or false")
        out["approved"] = flag == "true"
    return RecordFilter(**out)


def encode_cursor(key: RecordKey) -> str:
    """The ``next`` cursor for a row's key: opaque to clients, URL-safe."""
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).rstrip(b"=").decode()


def decode_cursor(text: str) -> RecordKey:
    """The key in a cursor from :func:`encode_cursor`; a 400 naming it when it is not one."""
    try:
        key = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        key = None
    ok = isinstance(key, list) and len(key) == 2 and isinstance(key[0], str)
    if not ok or not _TIMESTAMP.fullmatch(key[0]) or type(key[1]) is not int or key[1] < 0:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise Reject(
            400,
            f"after={shown!r} is not a cursor from this endpoint: pass the "
            "'next' of the previous page unchanged, or leave after out to start "
            "at the first row",
        )
    return key[0], key[1]


def _page(q: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "after" in q:
        if "offset" in q:
            raise Reject(400, "Page with after (the previous page's next) or with offset, not both")
        out["after"] = decode_cursor(q["after"])
    for key, low, top in (("limit", 1, MAX_PAGE), ("offset", 0, None)):
        raw = q.get(key)
        if raw is None:
            continue
        if not raw.isdigit() or int(raw) < low or (top is not None and int(raw) > top):
            hint = "; page with next, or stream it all from /api/audit/export" if top else ""
            raise Reject(
                400, f"{key}={raw!r} must be an integer from {low} to {top or 'any'}{hint}"
            )
        out[key] = int(raw)
    return out


class StreamEndpoint:
    """A plain ASGI endpoint that sends its own response (a streamed body)."""

    def __init__(self, app: Callable[[dict[str, Any], Any, Any], Awaitable[None]]) -> None:
        self.app = app
        self.__name__ = app.__name__

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class VerifyJob:
    """One verification of the chain, run segment by segment in the reader process."""

    def __init__(self, total: int) -> None:
        self.id = secrets.token_hex(8)
        self.total = total
        self.checked = 0
        self.started = time.monotonic()
        self.report: ChainReport | None = None
        self.error: str | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def done(self) -> bool:
        return self.report is not None or self.error is not None

    def __repr__(self) -> str:
        return f"<VerifyJob {self.id} {self.checked}/{self.total} done={self.done}>"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "success": True,
            "job": self.id,
            "done": self.done,
            "checked": self.checked,
            "total": self.total,
            "progress": round(min(1.0, self.checked / self.total), 4) if self.total else 1.0,
            "elapsed_s": round(time.monotonic() - self.started, 3),
        }
        report = self.report
        if report is None:
            out.update(ok=None, first_broken=None, problem=None)
            return out
        broken = report.first_broken
        out.update(
            ok=report.ok,
            checked=report.checked,
            problem=report.problem,
            first_broken=None
            if broken is None
            else {"table": broken[0], "id": broken[1], "seq": broken[2]},
        )
        return out


class ReadBack:
    """The read endpoints of one gateway; ``close()`` stops its reader process."""

    def __init__(self, gw: Governance, auth: Authenticator) -> None:
        self.gw = gw
        self.auth = auth
        self._reader: Reader | None = None
        self.jobs: OrderedDict[str, VerifyJob] = OrderedDict()
        self.current: VerifyJob | None = None

    @property
    def reader(self) -> Reader:
        store = self.gw.store
        assert store is not None, "the gateway's store is not open"
        if self._reader is None or self._reader.store is not store:
            self._reader = Reader(store)
        return self._reader

    def close(self) -> None:
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
        if self._reader is not None:
            self._reader.close()

    # -- records ---------------------------------------------------------------------------
    async def records(self, call: Call) -> tuple[int, dict[str, Any]]:
        self.auth.check_operator(call)
        q = _query(call, (*_FILTERS, "limit", "offset", "after"))
        where, paging = record_filter(q, self.gw), _page(q)
        reader = self.reader
        await reader.store.applied()  # every acknowledged row is readable
        page: RecordsPage = await reader.call("records", where, paging)
        nxt = url = None
        if page.last is not None and page.count == paging.get("limit", DEFAULT_PAGE):
            nxt = encode_cursor(page.last)
            rest = {k: v for k, v in q.items() if k not in ("after", "offset")}
            url = f"{call.scope.get('path', '')}?{urlencode({**rest, 'after': nxt})}"
        return 200, {
            "success": True,
            "count": page.count,
            "next": nxt,
            "next_url": url,
            "records": orjson.Fragment(page.json),
        }

    # -- verification ------------------------------------------------------------------------
    async def verify(self, call: Call) -> tuple[int, dict[str, Any]]:
        self.auth.check_operator(call)
        q = _query(call, ("job", "wait"))
        wait = VERIFY_WAIT_S
        if "wait" in q:
            try:
                wait = float(q["wait"])
            except ValueError:
                wait = -1.0
            if not 0 <= wait <= _MAX_WAIT_S:
                raise Reject(400, f"wait={q['wait']!r} must be seconds from 0 to {_MAX_WAIT_S:g}")
        if "job" in q:
            job = self.jobs.get(q["job"])
            if job is None:
                raise Reject(
                    404, f"No verification job {q['job']!r}; start one with GET /api/audit/verify"
                )
        elif self.current is not None and not self.current.done:
            job = self.current  # one verification at a time: join the running one
        else:
            job = self._start()
        if not job.done and wait > 0:
            assert job.task is not None
            await self.reader.ready()  # the wait is for verifying, not for a process to start
            await asyncio.wait({job.task}, timeout=wait)
        if job.error is not None:
            raise Reject(503, f"Verification failed: {job.error}. Retry.")
        return (200 if job.done else 202), job.as_dict()

    def _start(self) -> VerifyJob:
        store = self.reader.store
        job = VerifyJob(total=store.verified_head.seq)
        self.jobs[job.id] = self.current = job
        while len(self.jobs) > _KEPT_JOBS:
            self.jobs.popitem(last=False)
        job.task = asyncio.get_running_loop().create_task(self._run(job))
        return job

    async def _run(self, job: VerifyJob) -> None:
        reader = self.reader
        try:
            await reader.store.applied()
            head = reader.store.verified_head
            job.total = head.seq
            cursor = ChainCursor()
            while True:
                report, cursor = await reader.call("verify", cursor, SEGMENT_ROWS, head)
                job.checked = cursor.checked if report is None else report.checked
                if report is not None:
                    job.report = report
                    return
        except Exception as exc:  # reported to whoever asks for the job
            job.error = str(exc) or type(exc).__name__

    # -- export ------------------------------------------------------------------------------
    async def export(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """``GET /api/audit/export``: a raw ASGI endpoint, since it streams its body."""
        call = Call(scope, receive)
        try:
            self.auth.check_operator(call)
            where = record_filter(_query(call, _FILTERS), self.gw)
            store = self.reader.store
            await store.applied()
        except Reject as exc:
            await send_json(send, exc.status, {"success": False, "error": exc.message})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/x-ndjson")],
            }
        )
        stream = export_lines(store, where)
        try:
            async for chunk in stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await stream.aclose()  # stops the export process if the client went away
        await send({"type": "http.response.body", "body": b""})
