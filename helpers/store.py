"""The gateway's audit store: pre-check contexts and LLM-call audits in one SQLite file.

* Raw queries and user tokens are never stored: only keyed hashes (:func:`hash_value`).
* Rows form one tamper-evident chain across both tables (see :mod:`helpers.chain`).
* Acknowledgements are durable: ``await committed()`` returns once the rows added so far
  are on disk. Calls made in the same event-loop turn share one write (group commit).
  ``fsync=False`` survives ``kill -9`` of the process; ``fsync=True`` also survives power
  loss. A shared store (the default) inserts at once and commits to SQLite. An
  ``exclusive`` store (the gateway's) appends the rows to its acknowledgement log
  (:mod:`helpers.acklog`) and puts them in SQLite right after; opening a store replays
  any rows a crash left in the log only.

One process writes a database at a time is the expected use; a second writer is safe
(each transaction re-reads the chain head under the write lock) but waits for the lock.
All methods are meant to be called from one thread, the event loop's in the gateway.
Rows and hashing live in :mod:`helpers.chain`. Introduced in ``05_audit_trail.ipynb``.

>>> with AuditStore.open(":memory:") as store:
...     ctx = store.add_context("community", "user-123", "hello", approved=True)
...     store.commit()
...     store.get_context(ctx.context_id) == ctx
True
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from .acklog import RESET_AT_BYTES, AckLog, format_entry
from .chain import (
    AuditRecord,
    ChainHead,
    ChainReport,
    ContextRecord,
    dumps,
    hash_payload,
    hash_value,
    keyed_hasher,
    load_or_create_secret,
    row_hash,
    row_payload,
    timestamp,
)
from .chain import verify_chain as _verify_chain
from .errors import ConfigError
from .settings import Secret
from .store_query import _SELECT_AUDIT_BY_ID, _SELECT_CONTEXT_BY_ID, _count
from .store_query import list_audits as _list_audits
from .store_query import list_contexts as _list_contexts
from .store_query import list_records as _list_records
from .store_schema import (
    _CHAIN_TABLES,
    _INSERT,
    _SCHEMA,
    SCHEMA_VERSION,
    IdSource,
    _json_or_none,
    _read_head,
    _replay_into,
    _str,
    _strings,
    replay_log,
)

__all__ = [
    "AuditRecord",
    "AuditStore",
    "ChainHead",
    "ChainReport",
    "ContextRecord",
    "IdSource",
    "hash_value",
    "replay_log",
]

#: With an acknowledgement log, logged rows go into SQLite this long after they were
#: acknowledged, in one transaction, or at once when this many are waiting.
APPLY_AFTER_S = 0.02
APPLY_AT_ROWS = 1000
_USER_HASH_CACHE = 10_000
_SELECT_OWNER = "SELECT client_id, expires_at FROM contexts WHERE context_id = ?"
log = logging.getLogger("helpers.store")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Appended(NamedTuple):
    """A row just added: enough to acknowledge it (``await store.committed(appended)``).

    A handle on the hot path rather than a result: the records :meth:`AuditStore.add_context`
    and :meth:`AuditStore.add_audit` return are the frozen dataclasses.
    """

    seq: int
    record_id: str
    #: For a context, when it expires; ``None`` for an audit.
    expires_at: str | None
    #: The stored row: ``seq``, the chained columns, ``prev_hash``, ``row_hash``.
    row: tuple[Any, ...]


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
        conn: sqlite3.Connection,
        path: str,
        secret: bytes,
        fsync: bool,
        clock: Callable[[], datetime],
    ) -> None:
        self._conn = conn
        self.path = path
        self._secret = secret
        self._keyed_hash = keyed_hasher(secret)
        self.fsync = fsync
        self._clock = clock
        self._lost: list[tuple[int, int, BaseException]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self._commits = 0
        self.exclusive = False
        # With an acknowledgement log: rows added but not yet logged (lines and rows), and
        # rows logged (so acknowledged) but not yet in SQLite.
        self._log: AckLog | None = None
        self._lines: list[str] = []
        self._unlogged: list[tuple[str, tuple[Any, ...]]] = []
        self._unapplied: list[tuple[str, tuple[Any, ...]]] = []
        self._apply_scheduled = False
        self._unapplied_contexts: dict[str, tuple[Any, ...]] = {}
        self._user_hashes: dict[str, str] = {}
        self._new_id = IdSource()
        self._start_from_disk()

    def _start_from_disk(self) -> None:
        self._head = self._durable_head = self._read_head()
        self._next_seq = self._head.seq + 1
        # Group commit bookkeeping, all by seq: rows up to _decided are durable (or were
        # lost in a failed write, listed in _lost); rows after it are still pending.
        self._last_added = self._decided = self._head.seq

    @classmethod
    def open(
        cls,
        path: str | Path,
        secret: bytes | str | Secret | None = None,
        fsync: bool = False,
        clock: Callable[[], datetime] | None = None,
        exclusive: bool = False,
    ) -> AuditStore:
        """Open (or create) the store at ``path``; ``":memory:"`` for a throwaway one.

        Without ``secret``, the HMAC key is read from ``<path>.key`` or created there.
        ``exclusive=True`` (the gateway's choice) holds SQLite's lock for the connection's
        lifetime: no file locking per transaction and no re-reading of the chain head,
        because no other process can write. Readers go through the gateway's HTTP API.
        """
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: this class issues BEGIN/COMMIT itself, nothing implicit.
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
            conn.execute("PRAGMA busy_timeout=5000")
            if exclusive:
                conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise ConfigError(
                    f"{path}: audit store schema version {version}, expected {SCHEMA_VERSION}"
                )
            if version == 0:
                conn.executescript(
                    f"BEGIN; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
                )
            store = cls(conn, path, b"", fsync, clock or _utc_now)
            store.exclusive = exclusive
            log_path = Path(path + ".acklog")
            if path != ":memory:" and log_path.exists():
                store._replay(log_path)
            store._secret = store._resolve_secret(secret)
            store._keyed_hash = keyed_hasher(store._secret)
            if exclusive and path != ":memory:":
                store._log = AckLog(log_path, fsync)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ConfigError(f"{path}: cannot open as an audit store ({exc})") from None
        except BaseException:
            conn.close()
            raise
        return store

    def _replay(self, log_path: Path) -> None:
        _replay_into(self._conn, self.path, log_path)
        self._start_from_disk()

    def _resolve_secret(self, secret: bytes | str | Secret | None) -> bytes:
        if isinstance(secret, Secret):
            secret = secret.get()
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if secret:
            return bytes(secret)
        if self.path == ":memory:":
            return uuid.uuid4().bytes + uuid.uuid4().bytes
        key_path = Path(self.path + ".key")
        if not key_path.exists() and self._head.seq > 0:
            # A new key would silently make old and new hashes incomparable.
            raise ConfigError(
                f"{self.path} has records but its key file {key_path} is missing; "
                "restore it or pass the original secret"
            )
        return load_or_create_secret(key_path)

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Commit what was added, wake any waiters, and close the connection."""
        try:
            error = self._flush_now()  # with a log, this also applies what it holds
            if self._log is not None:
                self._log.close(remove=error is None)
        finally:
            self._conn.close()
        if error is not None:
            raise error

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "fsync" if self.fsync else "no-fsync"
        if self._log is not None:
            mode += " acklog"
        return f"<AuditStore {self.path} seq={self._head.seq} {mode}>"

    # -- hashing and time -----------------------------------------------------------------

    def hash(self, text: str) -> str:
        """The keyed hash this store records for ``text`` (use it to filter by user)."""
        return self._keyed_hash(text)

    def now(self) -> str:
        """The store clock's current time as a stored timestamp."""
        return timestamp(self._clock())

    # -- writing ------------------------------------------------------------------------

    def _read_head(self) -> ChainHead:
        return _read_head(self._conn)

    def _append(self, table: str, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """Insert (or log) one chained row; ``values`` are its columns after ``seq``.

        Returns the stored row: ``seq``, the values, ``prev_hash``, ``row_hash``.
        """
        if self._log is not None:
            seq = self._next_seq
            row = (seq, *values)
            prev = self._head.row_hash
            payload = row_payload(table, row)
            digest = hash_payload(prev, payload)
            self._lines.append(format_entry(prev, digest, payload))
            stored = (*row, prev, digest)
            self._unlogged.append((table, stored))
            self._last_added, self._next_seq = seq, seq + 1
            self._head = ChainHead(table, values[0], seq, digest)
            return stored
        if not self._conn.in_transaction:
            # IMMEDIATE takes the write lock now, so the head we read cannot move under us.
            self._conn.execute("BEGIN IMMEDIATE")
            if not self.exclusive:  # another writer may have moved the head since our last commit
                self._head = self._read_head()
            # Never reuse a seq, even one lost in a failed commit: committed(record) relies on it.
            self._next_seq = max(self._next_seq, self._head.seq + 1)
        seq = self._next_seq
        row = (seq, *values)
        prev = self._head.row_hash
        digest = row_hash(prev, table, row)
        stored = (*row, prev, digest)
        self._conn.execute(_INSERT[table], stored)
        self._last_added, self._next_seq = seq, seq + 1
        self._head = ChainHead(table, values[0], seq, digest)
        return stored

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
        sources, pols = _strings("data_sources", data_sources), _strings("policies", policies)
        _str("user_token", user_token)
        # Users repeat, queries rarely do: only the user's keyed hash is worth remembering.
        user_hash = self._user_hashes.get(user_token)
        if user_hash is None:
            if len(self._user_hashes) >= _USER_HASH_CACHE:
                self._user_hashes.clear()
            user_hash = self._user_hashes[user_token] = self.hash(user_token)
        context_id = _str("context_id", context_id or self._new_id())
        row = self._append(
            "contexts",
            (
                context_id,
                _str("client_id", client_id),
                user_hash,
                self.hash(_str("query", query)),
                _str("user_role", user_role, optional=True),
                _str("user_department", user_department, optional=True),
                dumps(sources) if sources else "[]",
                dumps(pols) if pols else "[]",
                int(bool(approved)),
                _str("block_reason", block_reason, optional=True),
                _json_or_none("request_context", request_context),
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
        prompt = _count("prompt_tokens", prompt_tokens)
        completion = _count("completion_tokens", completion_tokens)
        total = (
            prompt + completion if total_tokens is None else _count("total_tokens", total_tokens)
        )
        latency = None if latency_ms is None else _count("latency_ms", latency_ms)
        if (
            isinstance(cost_usd, bool)
            or not isinstance(cost_usd, int | float)
            or not (math.isfinite(cost_usd) and cost_usd >= 0)
        ):
            raise ValueError(f"cost_usd must be a finite number >= 0, got {cost_usd!r}")
        audit_id = _str("audit_id", audit_id or self._new_id())
        row = self._append(
            "audits",
            (
                audit_id,
                _str("context_id", context_id),
                _str("client_id", client_id),
                _str("provider", provider),
                _str("model", model),
                prompt,
                completion,
                total,
                latency,
                float(cost_usd),  # REAL column: hash the float SQLite will give back
                _json_or_none("metadata", metadata),
                timestamp(self._clock()),
            ),
        )
        return Appended(row[0], audit_id, None, row)

    # -- durable acknowledgement (group commit) ----------------------------------------------

    @property
    def commit_count(self) -> int:
        """Commits done so far: records added / commits shows how well batching works."""
        return self._commits

    @property
    def head(self) -> ChainHead:
        """The last row in the chain (anchor its ``row_hash`` elsewhere to pin the chain)."""
        return self._head

    async def committed(self, *records: ContextRecord | AuditRecord | Appended) -> None:
        """Return once everything added so far (or just ``records``) is committed.

        Every call made in one event-loop turn waits on the same commit, run by one
        ``loop.call_soon`` callback. If that commit fails, the error is raised here and the
        rows are gone: never acknowledge them. Without ``records``, call it right after
        ``add_*`` (no ``await`` in between), as the gateway's handlers do.

        With an acknowledgement log and no ``fsync``, the rows are written at once: one
        ``write()`` costs less than waiting for the next loop turn, and only the SQLite
        insert, which is what batching pays for, is left to a ``call_soon`` callback.
        """
        if self._lines and self._log is not None and not self.fsync:
            error = self._write_log()
            self._schedule_apply()
            if error is not None:
                raise error
        if len(records) == 1:
            target = records[0].seq
        else:
            target = max((r.seq for r in records), default=self._last_added)
        if target <= self._decided:
            for lo, hi, error in self._lost:
                if any(lo <= r.seq <= hi for r in records):
                    raise error
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        if self._flush_loop is not loop:
            loop.call_soon(self._flush)
            self._flush_loop = loop
        await waiter

    def commit(self) -> None:
        """Commit now (for scripts and tests); also wakes any ``committed()`` waiters."""
        error = self._flush_now()
        if error is not None:
            raise error

    def _flush(self) -> None:
        self._flush_loop = None
        self._flush_now(apply=False)
        self._schedule_apply()

    def _schedule_apply(self) -> None:
        # Off the request path: the rows are safe in the log, so SQLite gets them in one
        # transaction per APPLY_AFTER_S (sooner when many are waiting). Reads apply first.
        if not self._unapplied:
            return
        if len(self._unapplied) >= APPLY_AT_ROWS:
            asyncio.get_running_loop().call_soon(self._apply_in_background)
        elif not self._apply_scheduled:
            asyncio.get_running_loop().call_later(APPLY_AFTER_S, self._apply_in_background)
            self._apply_scheduled = True

    def _flush_now(self, apply: bool = True) -> BaseException | None:
        waiters, self._waiters = self._waiters, []
        if self._log is None:
            error = self._commit_open_transaction()
        else:
            error = self._write_log()
            if apply and error is None:
                error = self._apply_logged()
        for waiter in waiters:
            if waiter.done():  # its task was cancelled meanwhile
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
        return error

    def _write_log(self) -> BaseException | None:
        """Make the pending rows durable in the acknowledgement log (one write)."""
        if not self._lines:
            return None
        assert self._log is not None
        lines, rows, upto = self._lines, self._unlogged, self._last_added
        self._lines, self._unlogged = [], []
        try:
            self._log.append(lines)
        except OSError as exc:
            self._lost.append((self._decided + 1, upto, exc))
            self._decided = upto
            self._head = self._durable_head  # the chain continues from what is on disk
            return exc
        self._decided = upto
        self._durable_head = self._head
        self._commits += 1
        self._unapplied.extend(rows)
        for table, row in rows:
            if table == "contexts":
                self._unapplied_contexts[row[1]] = row
        return None

    def _apply_logged(self) -> BaseException | None:
        """Insert the logged rows into SQLite; on failure they stay queued (and logged)."""
        rows, self._unapplied = self._unapplied, []
        self._apply_scheduled = False
        if not rows:
            return None
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            for table, row in rows:
                self._conn.execute(_INSERT[table], row)
            self._conn.commit()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.rollback()
            self._unapplied[:0] = rows  # still safe in the log; tried again on the next turn
            return exc
        self._unapplied_contexts.clear()
        assert self._log is not None
        if self._log.size >= RESET_AT_BYTES:
            self._log.reset()  # every row in it is now in SQLite
        return None

    def _apply_in_background(self) -> None:
        if not self._unapplied:
            return  # a read or an earlier callback got there first
        error = self._apply_logged()
        if error is not None:
            log.error("%s: cannot copy logged rows into SQLite (kept in %s): %s",
                      self.path, self._log.path if self._log else "?", error)  # fmt: skip

    def _readable(self) -> None:
        """Before a read: everything acknowledged is in SQLite (raises if it cannot be)."""
        if self._unapplied:
            error = self._apply_logged()
            if error is not None:
                raise error

    def _commit_open_transaction(self) -> BaseException | None:
        if not self._conn.in_transaction:
            return None
        upto = self._last_added
        try:
            self._conn.commit()
        except Exception as exc:  # noqa: BLE001 - handed to every waiter, then re-raised
            try:
                if self._conn.in_transaction:
                    self._conn.rollback()
            except sqlite3.Error:
                pass  # the commit's error is the one worth reporting
            self._lost.append((self._decided + 1, upto, exc))
            self._decided = upto
            self._head = self._read_head()  # the chain continues from what is on disk
            return exc
        self._decided = upto
        self._commits += 1
        return None

    # -- reading ---------------------------------------------------------------------------

    def get_context(self, context_id: str) -> ContextRecord | None:
        """One context by id: an index lookup, or a dict lookup for a context that is
        acknowledged but not yet copied from the log into SQLite."""
        pending = self._unapplied_contexts.get(context_id)
        if pending is not None:
            return ContextRecord.from_row(pending)
        self._readable()
        row = self._conn.execute(_SELECT_CONTEXT_BY_ID, (context_id,)).fetchone()
        return None if row is None else ContextRecord.from_row(row)

    def context_owner(self, context_id: str) -> tuple[str, str] | None:
        """``(client_id, expires_at)`` of a context, or ``None``: what an audit checks."""
        pending = self._unapplied_contexts.get(context_id)
        if pending is not None:
            return pending[2], pending[12]
        self._readable()
        return self._conn.execute(_SELECT_OWNER, (context_id,)).fetchone()

    def get_live_context(self, context_id: str) -> ContextRecord | None:
        """The context if it exists and has not expired by the store's clock."""
        record = self.get_context(context_id)
        if record is None or record.is_expired(self._clock()):
            return None
        return record

    def get_audit(self, audit_id: str) -> AuditRecord | None:
        self._readable()
        row = self._conn.execute(_SELECT_AUDIT_BY_ID, (audit_id,)).fetchone()
        return None if row is None else AuditRecord.from_row(row)

    def list_contexts(
        self,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        client_id: str | None = None,
        user_hash: str | None = None,
        approved: bool | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[ContextRecord]:
        """Contexts in time order; ``since`` is inclusive, ``until`` exclusive."""
        self._readable()
        return _list_contexts(
            self._conn,
            since,
            until,
            client_id=client_id,
            user_hash=user_hash,
            approved=approved,
            limit=limit,
            offset=offset,
        )

    def list_audits(
        self,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        client_id: str | None = None,
        context_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[AuditRecord]:
        """Audits in time order; ``since`` is inclusive, ``until`` exclusive."""
        self._readable()
        return _list_audits(
            self._conn,
            since,
            until,
            client_id=client_id,
            context_id=context_id,
            provider=provider,
            model=model,
            limit=limit,
            offset=offset,
        )

    def list_records(
        self,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        client_id: str | None = None,
        user_hash: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        approved: bool | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """The trail joined: one row per audit with its context's decision, plus one row per
        context that was never audited (audit fields ``None``), so gaps show.

        Sorted by ``created_at`` (the audit's, else the context's) then ``seq``. Plain
        JSON-able dicts, ready for an HTTP response or ``pandas.DataFrame``.
        """
        self._readable()
        return _list_records(
            self._conn,
            since,
            until,
            client_id=client_id,
            user_hash=user_hash,
            provider=provider,
            model=model,
            approved=approved,
            limit=limit,
            offset=offset,
        )

    def verify_chain(self) -> ChainReport:
        """Check every link of the chain; reports the first broken record.

        Also catches rows removed from the end while this store is open (its head is gone).
        Reads the whole file: seconds for millions of rows.
        """
        self._readable()
        head = self._head if self._log is None else self._durable_head
        return _verify_chain(self._conn, _CHAIN_TABLES, head)
