"""The gateway's audit store: pre-check contexts and LLM-call audits in one SQLite file.

* Raw queries and user tokens are never stored: only keyed hashes (:func:`hash_value`).
* Rows form one tamper-evident chain across both tables (:mod:`.chain`).
* Acknowledgements are durable: ``await committed()`` returns once the rows added so far
  are on disk. Calls made in the same event-loop turn share one write (group commit,
  :mod:`.commits`). ``fsync=False`` survives ``kill -9`` of the process; ``fsync=True``
  also survives power loss. A shared store (the default) inserts at once and commits to
  SQLite. An ``exclusive`` store (the gateway's) appends the rows to its acknowledgement log
  (:mod:`.acklog`) and a thread of its own puts them in SQLite right after
  (:mod:`.applier`); opening a store replays any rows a crash left in the log only.
* Reads (:mod:`.reads`) see everything acknowledged; the SQL is in :mod:`.query`.

This module opens the store and appends rows. One process writes a database at a time is
the expected use; a second shared writer is safe (each transaction re-reads the chain head
under the write lock) but waits for the lock, and no store opens a file a running gateway
holds (``<db>.lock``). All methods are meant to be called from one thread, the event loop's
in the gateway. Introduced in ``08_audit_trail.ipynb``.

>>> with AuditStore.open(":memory:") as store:
...     ctx = store.add_context("community", "user-123", "hello", approved=True)
...     store.commit()
...     store.get_context(ctx.context_id) == ctx
True
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from helpers.errors import ConfigError
from helpers.settings import Secret

from .acklog import close_and_unlock, format_entry, hold_lock
from .backlog import APPLY_AFTER_S, APPLY_AT_ROWS, Backlog
from .chain import (
    AuditRecord,
    ChainHead,
    ChainReport,
    ContextRecord,
    dumps,
    hash_payload,
    hash_value,
    keyed_hasher,
    row_hash,
    row_payload,
    timestamp,
)
from .commits import GroupCommit
from .health import StorageHealth
from .query import _count
from .reads import Reads
from .schema import (
    INSERT_SQL,
    IdSource,
    _json_or_none,
    _replay_into,
    _str,
    _strings,
    connect,
    make_reader,
    read_head,
    replay_log,
    resolve_secret,
)

__all__ = [
    "APPLY_AFTER_S",
    "APPLY_AT_ROWS",
    "AuditRecord",
    "AuditStore",
    "ChainHead",
    "ChainReport",
    "ContextRecord",
    "IdSource",
    "hash_value",
    "replay_log",
]

_USER_HASH_CACHE = 10_000
log = logging.getLogger("helpers.gateway.store")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Appended(NamedTuple):
    """A row just added: enough to acknowledge it (``await store.committed(appended)``).

    A handle on the hot path; :meth:`AuditStore.add_context` returns the frozen dataclass.
    """

    seq: int
    record_id: str
    #: For a context, when it expires; ``None`` for an audit.
    expires_at: str | None
    #: The stored row: ``seq``, the chained columns, ``prev_hash``, ``row_hash``.
    row: tuple[Any, ...]


class AuditStore(GroupCommit, Backlog, Reads):
    """Contexts and audits in SQLite, keyed-hashed, chained and durably acknowledged.

    >>> with AuditStore.open(":memory:") as store:
    ...     ctx = store.add_context("community", "user-123", "hi", approved=True)
    ...     audit = store.add_audit(ctx.context_id, "community", "openai", "gpt-4o")
    ...     store.commit()
    ...     store.verify_chain()
    <ChainReport ok checked=2>
    """

    def __init__(self, conn: sqlite3.Connection, path: str, secret: bytes, fsync: bool,
                 clock: Callable[[], datetime]) -> None:  # fmt: skip
        self._conn = conn
        self.path = path
        self._secret = secret
        self._keyed_hash = keyed_hasher(secret)
        self.fsync = fsync
        self._clock = clock
        self.exclusive = False
        self._lock_fd: int | None = None
        self._init_commits(StorageHealth(self.now))
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
        ``exclusive=True`` (the gateway's choice) makes this store the file's only writer
        (``<db>.lock``, see :mod:`.applier`): no re-reading of the chain head, rows
        acknowledged through the log and copied into SQLite by a thread of its own. Other
        processes read the file read-only, or through the gateway's HTTP API.
        """
        path = str(path)
        lock_fd = None
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            lock_fd = hold_lock(path, exclusive)
        try:
            conn = connect(path, fsync)
        except BaseException:
            close_and_unlock(None, lock_fd)
            raise
        try:
            store = cls(conn, path, b"", fsync, clock or _utc_now)
            store.exclusive, store._lock_fd = exclusive, lock_fd
            log_path = Path(path + ".acklog")
            if path != ":memory:" and log_path.exists():
                store._replay(log_path)
            store._secret = resolve_secret(secret, path, has_rows=store._head.seq > 0)
            store._keyed_hash = keyed_hasher(store._secret)
            if exclusive and path != ":memory:":
                store._start_log(log_path, connect(path, fsync, check_same_thread=False))
                make_reader(conn)  # this connection only reads from now on
        except sqlite3.DatabaseError as exc:
            close_and_unlock(conn, lock_fd)
            raise ConfigError(f"{path}: cannot open as an audit store ({exc})") from None
        except BaseException:
            close_and_unlock(conn, lock_fd)
            raise
        return store

    def _replay(self, log_path: Path) -> None:
        _replay_into(self._conn, self.path, log_path)
        self._start_from_disk()

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Commit what was added, wake any waiters, and close the connection."""
        try:
            error = self._flush_now()  # with a log, this also applies what it holds
            self._health.close()
            if self._applier is not None:
                self._applier.close()
            if self._log is not None:
                self._log.close(remove=error is None)
        finally:
            close_and_unlock(self._conn, self._lock_fd)
            self._lock_fd = None
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
        return read_head(self._conn)

    def _append(self, table: str, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """Insert (or log) one chained row; ``values`` are its columns after ``seq``.

        Returns the stored row: ``seq``, the values, ``prev_hash``, ``row_hash``.
        """
        if self._log is not None:
            if self._batch is not None or self._health.faulty:
                self._refuse_if_stuck()
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
        self._conn.execute(INSERT_SQL[table], stored)
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
