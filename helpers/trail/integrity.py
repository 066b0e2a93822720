"""Integrity checks on a *copy* of a gateway database: snapshot, tamper, verify.

The embedded gateway is its database's only writer while it runs, and rows it acknowledged
may still be only in its acknowledgement log, so the integrity demo works on a copy taken
after it stops: :func:`snapshot_db` copies it with SQLite's backup
API, :func:`tamper_copy` edits or deletes one record the way an intruder with file access
would, and :func:`verify_db` walks the hash chain and names the first broken record.
Re-exported by :mod:`helpers.trail`. Introduced in ``09_trail_integrity.ipynb``.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.gateway.store import replay_log
from helpers.gateway.store.chain import ChainReport, verify_chain
from helpers.gateway.store.schema import CHAIN_TABLES

__all__ = ["TamperedCopy", "snapshot_db", "tamper_copy", "verify_db"]


def snapshot_db(db_path: str | Path, dest: str | Path) -> Path:
    """A consistent, self-contained copy of a gateway database file.

    The embedded gateway is the file's only writer while it runs (readers use the HTTP
    read-back), so stop it first. Uses SQLite's backup API (committed pages still in the
    write-ahead log included, which a plain file copy would miss) and copies the
    ``<db>.key`` file beside it, if any, so a gateway can open the copy with the same key.
    """
    src_path, dest = Path(db_path), Path(dest)
    if not src_path.is_file():
        raise FileNotFoundError(f"no database file at {src_path}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    src = sqlite3.connect(src_path, timeout=1.0)
    try:
        try:  # fail fast: sqlite's backup would retry a locked source for ever
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            raise RuntimeError(
                f"cannot copy {src_path}: {exc}. A running gateway is its database's only "
                "writer; stop it (service.stop()) and copy again."
            ) from None
        if Path(f"{src_path}.acklog").exists():
            # The gateway was killed with acknowledged rows still only in its log: opening
            # the store replays them, so the copy has every acknowledged record.
            replay_log(src_path)
        copy = sqlite3.connect(dest)
        try:
            src.backup(copy)
            # One self-contained file (no -wal/-shm beside it) is what an auditor is handed.
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
    finally:
        src.close()
    key = Path(str(src_path) + ".key")
    if key.exists():
        shutil.copy2(key, str(dest) + ".key")
    return dest


@dataclass(frozen=True, slots=True)
class TamperedCopy:
    """What :func:`tamper_copy` changed, so the verifier's answer can be checked against it."""

    path: Path
    table: str
    record_id: str
    seq: int
    column: str | None
    old: Any
    new: Any

    def __repr__(self) -> str:
        what = "deleted" if self.column is None else f"{self.column} {self.old!r} -> {self.new!r}"
        return f"<TamperedCopy {self.table} seq={self.seq} {self.record_id}: {what}>"


_ID_COLUMN = {"contexts": "context_id", "audits": "audit_id"}


def tamper_copy(
    db_path: str | Path,
    dest: str | Path,
    record_id: str,
    *,
    table: str = "audits",
    column: str | None = "cost_usd",
    value: Any = None,
) -> TamperedCopy:
    """Copy the database, then edit one row of the copy (``column=None`` deletes it).

    The edit is plain SQL, the way someone with write access to the file would do it; the
    row's stored hashes are left alone, which is exactly what :func:`verify_db` catches.
    """
    if table not in _ID_COLUMN:
        raise ValueError(f"table must be one of {sorted(_ID_COLUMN)}, got {table!r}")
    chained = CHAIN_TABLES[table]
    if column is not None and column not in chained:
        raise ValueError(f"{column!r} is not a column of {table} ({', '.join(chained)})")
    path = snapshot_db(db_path, dest)
    id_col = _ID_COLUMN[table]
    conn = sqlite3.connect(path)
    try:
        found = conn.execute(
            f"SELECT seq{', ' + column if column else ''} FROM {table} WHERE {id_col} = ?",
            (record_id,),
        ).fetchone()
        if found is None:
            raise ValueError(f"no {table} row with {id_col} = {record_id!r} in {db_path}")
        seq, old = found[0], (found[1] if column else None)
        with conn:
            if column is None:
                conn.execute(f"DELETE FROM {table} WHERE seq = ?", (seq,))
            else:
                conn.execute(f"UPDATE {table} SET {column} = ? WHERE seq = ?", (value, seq))
    finally:
        conn.close()
    return TamperedCopy(path, table, record_id, seq, column, old, value)


def verify_db(db_path: str | Path) -> ChainReport:
    """Check the hash chain of a database file, read-only, without the hashing secret.

    The chain is plain SHA-256 over each row and the previous row's hash, so anyone holding a
    copy can verify it. A file alone cannot show rows cut from its end; compare the last
    ``row_hash`` with an anchored copy of the chain head for that.
    """
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        return verify_chain(conn, CHAIN_TABLES)
    finally:
        conn.close()
