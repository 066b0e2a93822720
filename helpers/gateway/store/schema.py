"""The audit store's schema and the pieces of it that need no open store.

The two tables and their INSERTs, the chain head as SQLite holds it, replaying an
acknowledgement log into SQLite (:func:`replay_log`), opening the file with the store's
pragmas (:func:`connect`), the HMAC key (:func:`resolve_secret`), record ids
(:class:`IdSource`) and the checks on values before they are stored.
:mod:`helpers.gateway.store` builds the store on these.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from helpers.errors import ConfigError
from helpers.settings import Secret

from .acklog import close_and_unlock, hold_lock, read_entries
from .chain import (
    AUDIT_COLUMNS,
    CONTEXT_COLUMNS,
    GENESIS,
    ChainHead,
    dumps,
    load_or_create_secret,
)

__all__ = [
    "CHAIN_TABLES",
    "INSERT_SQL",
    "SCHEMA_VERSION",
    "IdSource",
    "check_count",
    "check_str",
    "check_strings",
    "connect",
    "json_or_none",
    "make_reader",
    "read_head",
    "replay_into",
    "replay_log",
    "resolve_secret",
]

SCHEMA_VERSION = 1
#: How long the event loop's read connection waits for a lock: a read in WAL mode rarely
#: needs one, and a lock held elsewhere must not hold up the loop.
READ_BUSY_MS = 250
log = logging.getLogger("helpers.gateway.store")

# seq is the INTEGER PRIMARY KEY (the rowid), so rows are appended in order and the chain
# walk is a plain table scan; ids are looked up through their UNIQUE index.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS contexts (
    seq INTEGER PRIMARY KEY,
    context_id TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    user_hash TEXT NOT NULL,
    query_hash TEXT NOT NULL,
    user_role TEXT,
    user_department TEXT,
    data_sources TEXT NOT NULL,
    policies TEXT NOT NULL,
    approved INTEGER NOT NULL,
    block_reason TEXT,
    request_context TEXT,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    row_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audits (
    seq INTEGER PRIMARY KEY,
    audit_id TEXT NOT NULL UNIQUE,
    context_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    total_tokens INTEGER NOT NULL,
    latency_ms INTEGER,
    cost_usd REAL NOT NULL,
    metadata TEXT,
    created_at TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    row_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audits_by_context ON audits (context_id);
CREATE INDEX IF NOT EXISTS contexts_by_created ON contexts (created_at);
"""
# Added after version 1 shipped: made on open, so older files gain it too. With the rowid
# (seq) at the end of every index entry, it serves ORDER BY created_at, seq: the keyset
# pages of the joined trail (.query).
_INDEXES = "CREATE INDEX IF NOT EXISTS audits_by_created ON audits (created_at)"

CHAIN_TABLES = {"contexts": CONTEXT_COLUMNS, "audits": AUDIT_COLUMNS}
INSERT_SQL = {
    table: f"INSERT INTO {table} ({', '.join(cols)}, prev_hash, row_hash) "
    f"VALUES ({', '.join('?' * (len(cols) + 2))})"
    for table, cols in CHAIN_TABLES.items()
}


class IdSource:
    """Random UUID v4 strings, about four times cheaper than ``str(uuid.uuid4())``.

    The bytes come from ``os.urandom``, as ``uuid4``'s do, fetched 4 KiB at a time. One
    source per store, used from the store's one thread.
    """

    def __init__(self) -> None:
        self._pool = bytearray()

    def __call__(self) -> str:
        if not self._pool:
            self._pool = bytearray(os.urandom(4096))
        raw = self._pool[-16:]
        del self._pool[-16:]
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def check_str(name: str, value: object, optional: bool = False) -> Any:
    # A non-string in a TEXT column would come back converted and no longer match its hash.
    if not (isinstance(value, str) or (optional and value is None)):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


def check_count(name: str, value: object) -> int:
    """A token count, latency or offset: an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return value


def check_strings(name: str, values: Iterable[str]) -> list[str]:
    # A bare string is iterable too; "abc" must not become ["a", "b", "c"].
    items = None if isinstance(values, str) else list(values)
    if items is None or not all(isinstance(v, str) for v in items):
        raise ValueError(f"{name} must be a list of strings, got {values!r}")
    return items


def json_or_none(name: str, value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    try:
        return dumps(dict(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a JSON-serialisable object: {exc}") from None


def replay_log(path: str | Path) -> int:
    """Copy the rows a crash left in ``<path>.acklog`` into the SQLite file at ``path``
    (no secret needed: the log holds keyed hashes already). Returns how many were added.

    Opening the store does this too; this is for tools that read the file directly.
    """
    log_path = Path(f"{path}.acklog")
    if not log_path.exists():
        return 0
    lock_fd = hold_lock(str(path), exclusive=False)  # never under a running gateway
    conn = None
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        return replay_into(conn, str(path), log_path)
    finally:
        close_and_unlock(conn, lock_fd)


def replay_into(conn: sqlite3.Connection, path: str, log_path: Path) -> int:
    """Insert the rows of the log at ``log_path`` that SQLite lacks, checking that each
    continues the chain; then remove the log. Returns how many rows were added."""
    conn.execute("BEGIN IMMEDIATE")  # the write lock first: nobody else replays meanwhile
    try:
        entries = read_entries(log_path, frozenset(CHAIN_TABLES))
        head = read_head(conn)
        added = 0
        for entry in entries:
            if entry.seq <= head.seq:
                continue  # already in SQLite
            if entry.prev_hash != head.row_hash:
                raise ConfigError(
                    f"{log_path} line {entry.line}: does not continue the chain at seq "
                    f"{head.seq}; move the file aside to open the store without it"
                )
            conn.execute(INSERT_SQL[entry.table], (*entry.values, entry.prev_hash, entry.row_hash))
            head = ChainHead(entry.table, entry.values[1], entry.seq, entry.row_hash)
            added += 1
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    if added:
        log.warning("%s: replayed %d acknowledged row(s) from %s", path, added, log_path)
    log_path.unlink()
    return added


def read_head(conn: sqlite3.Connection) -> ChainHead:
    best = ChainHead(None, None, 0, GENESIS)
    for table, cols in CHAIN_TABLES.items():
        row = conn.execute(
            f"SELECT seq, {cols[1]}, row_hash FROM {table} ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is not None and row[0] > best.seq:
            best = ChainHead(table, row[1], row[0], row[2])
    return best


def connect(path: str, fsync: bool, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open the SQLite file with the store's pragmas and schema (created when new).

    WAL, so readers (the gateway's reader process, its own lookups) never wait for the
    writer; ``check_same_thread=False`` for a connection handed to another thread.
    """
    # isolation_level=None: the store issues BEGIN/COMMIT itself, nothing implicit.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=check_same_thread)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        conn.execute("PRAGMA busy_timeout=5000")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise ConfigError(
                f"{path}: audit store schema version {version}, expected {SCHEMA_VERSION}"
            )
        if version == 0:
            conn.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
        conn.execute(_INDEXES)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ConfigError(f"{path}: cannot open as an audit store ({exc})") from None
    except BaseException:
        conn.close()
        raise
    return conn


def make_reader(conn: sqlite3.Connection) -> None:
    """Make ``conn`` the event loop's reader: it only reads from now on, and it gives up on a
    lock after :data:`READ_BUSY_MS` (an error the store answers with a 503, not a hang)."""
    conn.execute("PRAGMA query_only=ON")
    conn.execute(f"PRAGMA busy_timeout={READ_BUSY_MS}")


def resolve_secret(secret: bytes | str | Secret | None, path: str, has_rows: bool) -> bytes:
    """The store's HMAC key: ``secret`` if given, else ``<path>.key`` (created when new)."""
    if isinstance(secret, Secret):
        secret = secret.get()
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if secret:
        return bytes(secret)
    if path == ":memory:":
        return uuid.uuid4().bytes + uuid.uuid4().bytes
    key_path = Path(path + ".key")
    if not key_path.exists() and has_rows:
        # A new key would silently make old and new hashes incomparable.
        raise ConfigError(
            f"{path} has records but its key file {key_path} is missing; "
            "restore it or pass the original secret"
        )
    return load_or_create_secret(key_path)
