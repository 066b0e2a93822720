"""The gateway's audit store: pre-check contexts and LLM-call audits in one SQLite file.

* Raw queries and user tokens are never stored: only keyed hashes (:func:`hash_value`).
* Rows form one tamper-evident chain across both tables (:mod:`.chain`).
* Acknowledgements are durable: ``await committed()`` returns once the rows added so far
  are in the store's acknowledgement log (:mod:`.acklog`). Calls made in the same event-loop
  turn share one write (group commit, :mod:`.commits`), and a thread of the store's own puts
  the rows in SQLite right after (:mod:`.applier`). ``fsync=False`` survives ``kill -9`` of
  the process; ``fsync=True`` also survives power loss. Opening a store replays any rows a
  crash left in the log only.
* Reads see everything acknowledged; they are the plain queries of :mod:`.query`, run on
  the store's read-only connection.

A store is the only writer of its file while it is open (``<db>.lock``): a second store on
the same file, in this process or another, is refused. Other processes read the file
read-only, or through the gateway's HTTP API. All methods are meant to be called from one
thread, the event loop's in the gateway. Introduced in ``08_audit_trail.ipynb``.

>>> with AuditStore.open(":memory:") as store:
...     ctx = store.add_context("community", "user-123", "hello", approved=True)
...     store.commit()
...     store.context_owner(ctx.context_id) == ("community", ctx.expires_at)
True
"""

from __future__ import annotations

import math
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from helpers.errors import ConfigError
from helpers.settings import Secret

from . import query
from .acklog import AckLog, close_and_unlock, hold_lock
from .applier import Applier
from .chain import (
    AuditRecord,
    ChainHead,
    ChainReport,
    ContextRecord,
    dumps,
    keyed_hasher,
    timestamp,
    verify_chain,
)
from .commits import Appended, GroupCommit
from .health import StorageHealth, StorageState
from .schema import (
    CHAIN_TABLES,
    IdSource,
    check_count,
    check_str,
    check_strings,
    connect,
    json_or_none,
    make_reader,
    read_head,
    replay_into,
    resolve_secret,
)

__all__ = ["AuditStore"]

_USER_HASH_CACHE = 10_000


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AuditStore:
    """Contexts and audits in SQLite, keyed-hashed, chained and durably acknowledged.

    >>> with AuditStore.open(":memory:") as store:
    ...     ctx = store.add_context("community", "user-123", "hi", approved=True)
    ...     audit = store.add_audit(ctx.context_id, "community", "openai", "gpt-4o")
    ...     store.commit()
    ...     store.verify_chain()
    <ChainReport ok checked=2>
    """

    def __init__(
        self,
        path: str,
        conn: sqlite3.Connection,
        commits: GroupCommit,
        secret: bytes,
        clock: Callable[[], datetime],
        lock_fd: int,
        scratch: Path | None = None,
    ) -> None:
        self.path = path
        self.fsync = commits.fsync
        self._conn = conn
        self._commits = commits
        self._health = commits.health
        self._keyed_hash = keyed_hasher(secret)
        self._clock = clock
        self._lock_fd: int | None = lock_fd
        self._scratch = scratch
        self._user_hashes: dict[str, str] = {}
        self._new_id = IdSource()

    @classmethod
    def open(
        cls,
        path: str | Path,
        secret: bytes | str | Secret | None = None,
        fsync: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> AuditStore:
        """Open (or create) the store at ``path``; ``":memory:"`` for a throwaway one.

        Without ``secret``, the HMAC key is read from ``<path>.key`` or created there. The
        store holds ``<db>.lock`` while open: it is the file's only writer. A throwaway
        store lives in a temporary folder, removed on close, with a random key.
        """
        path = str(path)
        clock = clock or _utc_now
        scratch = Path(tempfile.mkdtemp(prefix="audit-store-")) if path == ":memory:" else None
        file = str(scratch / "audit.db") if scratch is not None else path
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        lock_fd = hold_lock(file)
        conn = None
        try:
            conn = connect(file, fsync)
            log_path = Path(file + ".acklog")
            if log_path.exists():
                replay_into(conn, file, log_path)
            head = read_head(conn)
            key = resolve_secret(secret, path, has_rows=head.seq > 0)
            health = StorageHealth(lambda: timestamp(clock()))
            log = AckLog(log_path, fsync)
            health.add_probe("log", log.probe)
            writer = connect(file, fsync, check_same_thread=False)
            applier = Applier(writer, head.seq, health)
            make_reader(conn)  # this connection only reads from now on
        except BaseException as exc:
            close_and_unlock(conn, lock_fd)
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            if isinstance(exc, sqlite3.DatabaseError):
                raise ConfigError(f"{path}: cannot open as an audit store ({exc})") from None
            raise
        commits = GroupCommit(log, applier, health, head, fsync)
        return cls(path, conn, commits, key, clock, lock_fd, scratch)

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Commit what was added, wake any waiters, and close the store."""
        try:
            error = self._commits.close()
        finally:
            close_and_unlock(self._conn, self._lock_fd)
            self._lock_fd = None
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
        if error is not None:
            raise error

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "fsync" if self.fsync else "no-fsync"
        return f"<AuditStore {self.path} seq={self.head.seq} {mode}>"

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's read-only connection, for the queries of :mod:`.query`. Call
        :meth:`applied` (or :meth:`commit`) first to read everything acknowledged."""
        return self._conn

    # -- hashing and time -----------------------------------------------------------------

    def hash(self, text: str) -> str:
        """The keyed hash this store records for ``text`` (use it to filter by user)."""
        return self._keyed_hash(text)

    def now(self) -> str:
        """The store clock's current time as a stored timestamp."""
        return timestamp(self._clock())

    # -- acknowledging ---------------------------------------------------------------------

    @property
    def head(self) -> ChainHead:
        """The last row in the chain (anchor its ``row_hash`` elsewhere to pin the chain)."""
        return self._commits.head

    @property
    def verified_head(self) -> ChainHead:
        """The last row a verification must find: the last one logged."""
        return self._commits.verified_head

    @property
    def commit_count(self) -> int:
        """Commits done so far: records added / commits shows how well batching works."""
        return self._commits.commit_count

    async def committed(self, *records: ContextRecord | AuditRecord | Appended) -> None:
        """Return once everything added so far (or just ``records``) is durable; see
        :meth:`.commits.GroupCommit.committed`. If the write fails, the error is raised here
        and the rows are gone: never acknowledge them."""
        await self._commits.committed(*records)

    def commit(self) -> None:
        """Commit now and wait until SQLite has it (for scripts and tests); also wakes any
        ``committed()`` waiters."""
        error = self._commits.flush()
        if error is not None:
            raise error

    async def applied(self) -> None:
        """Return once every acknowledged row is in SQLite, without blocking the loop:
        what the gateway awaits before a read in another thread or process."""
        await self._commits.applied()

    def storage_health(self) -> StorageState:
        """The storage's health now (what ``/health`` reports): never blocks on a disk."""
        return self._commits.storage_health()

    @property
    def degraded(self) -> bool:
        """Whether some part of the storage is failing or stalled now (cheap: no I/O)."""
        return self._commits.degraded

    # -- writing ------------------------------------------------------------------------

    def add_context(
        self, client_id: str, user_token: str, query: str, **fields: Any
    ) -> ContextRecord:
        """Record one pre-check decision (not yet committed: ``await committed()``).

        ``fields`` are the keyword arguments of :meth:`append_context`.
        """
        appended = self.append_context(client_id, user_token, query, **fields)
        return ContextRecord.from_row(appended.row)

    def append_context(
        self,
        client_id: str,
        user_token: str,
        query: str,
        *,
        approved: bool,
        policies: Iterable[str] = (),
        block_reason: str | None = None,
        data_sources: Iterable[str] = (),
        user_role: str | None = None,
        user_department: str | None = None,
        request_context: Mapping[str, Any] | None = None,
        ttl_s: float = 300.0,
        context_id: str | None = None,
    ) -> Appended:
        """:meth:`add_context` without building the record: what the gateway's hot path uses."""
        now = self._clock()
        created_at, expires_at = timestamp(now), timestamp(now + timedelta(seconds=ttl_s))
        sources, pols = (
            check_strings("data_sources", data_sources),
            check_strings("policies", policies),
        )
        check_str("user_token", user_token)
        # Users repeat, queries rarely do: only the user's keyed hash is worth remembering.
        user_hash = self._user_hashes.get(user_token)
        if user_hash is None:
            if len(self._user_hashes) >= _USER_HASH_CACHE:
                self._user_hashes.clear()
            user_hash = self._user_hashes[user_token] = self.hash(user_token)
        context_id = check_str("context_id", context_id or self._new_id())
        row = self._commits.append(
            "contexts",
            (
                context_id,
                check_str("client_id", client_id),
                user_hash,
                self.hash(check_str("query", query)),
                check_str("user_role", user_role, optional=True),
                check_str("user_department", user_department, optional=True),
                dumps(sources) if sources else "[]",
                dumps(pols) if pols else "[]",
                int(bool(approved)),
                check_str("block_reason", block_reason, optional=True),
                json_or_none("request_context", request_context),
                expires_at,
                created_at,
            ),
        )
        return Appended(row[0], context_id, expires_at, row)

    def add_audit(
        self, context_id: str, client_id: str, provider: str, model: str, **fields: Any
    ) -> AuditRecord:
        """Record one LLM call (not yet committed: ``await committed()``).

        ``fields`` are the keyword arguments of :meth:`append_audit`.
        """
        return AuditRecord.from_row(
            self.append_audit(context_id, client_id, provider, model, **fields).row
        )

    def append_audit(
        self,
        context_id: str,
        client_id: str,
        provider: str,
        model: str,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        total_tokens: int | None = None,
        latency_ms: int | None = None,
        cost_usd: float = 0.0,
        metadata: Mapping[str, Any] | None = None,
        audit_id: str | None = None,
    ) -> Appended:
        """:meth:`add_audit` without building the record.

        ``cost_usd`` is the caller's estimate (see :mod:`helpers.gateway.pricing`).
        """
        prompt = check_count("prompt_tokens", prompt_tokens)
        completion = check_count("completion_tokens", completion_tokens)
        total = (
            prompt + completion
            if total_tokens is None
            else check_count("total_tokens", total_tokens)
        )
        latency = None if latency_ms is None else check_count("latency_ms", latency_ms)
        if (
            isinstance(cost_usd, bool)
            or not isinstance(cost_usd, int | float)
            or not (math.isfinite(cost_usd) and cost_usd >= 0)
        ):
            raise ValueError(f"cost_usd must be a finite number >= 0, got {cost_usd!r}")
        audit_id = check_str("audit_id", audit_id or self._new_id())
        row = self._commits.append(
            "audits",
            (
                audit_id,
                check_str("context_id", context_id),
                check_str("client_id", client_id),
                check_str("provider", provider),
                check_str("model", model),
                prompt,
                completion,
                total,
                latency,
                float(cost_usd),  # REAL column: hash the float SQLite will give back
                json_or_none("metadata", metadata),
                timestamp(self._clock()),
            ),
        )
        return Appended(row[0], audit_id, None, row)

    # -- reading ------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Everything acknowledged is in SQLite, and a failing read is a storage fault."""
        self._commits.readable()
        try:
            yield
        except sqlite3.Error as exc:
            raise self._health.failed("read", exc) from exc
        self._health.cleared("read")

    def context_owner(self, context_id: str) -> tuple[str, str] | None:
        """``(client_id, expires_at)`` of a context, or ``None``: what an audit checks."""
        pending = self._commits.pending_context(context_id)
        if pending is not None:
            return pending[2], pending[12]
        try:
            owner = query.context_owner(self._conn, context_id)
        except sqlite3.Error as exc:  # the audit's hot path: no context manager
            raise self._health.failed("read", exc) from exc
        if self._health.faulty:
            self._health.cleared("read")
        return owner

    def list_audits(self, **filters: Any) -> list[AuditRecord]:
        """Audits in time order, of everything acknowledged: what the idempotency index reads
        for a context it cannot vouch for. ``filters`` are :func:`.query.list_audits`'s
        (``since`` inclusive, ``until`` exclusive, ``context_id=``, ``limit=``...)."""
        with self._reading():
            return query.list_audits(self._conn, **filters)

    def verify_chain(self) -> ChainReport:
        """Check every link of the chain; reports the first broken record.

        Also catches rows removed from the end while this store is open (its head is gone).
        Reads the whole file: seconds for millions of rows.
        """
        with self._reading():
            return verify_chain(self._conn, CHAIN_TABLES, self.verified_head)
