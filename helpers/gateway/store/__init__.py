"""The audit trail's storage: keyed hashes in SQLite, one hash chain, durable acknowledgements.

* :mod:`.audit_store`: :class:`AuditStore`, opening a store, appending rows, reading back.
* :mod:`.commits`: :class:`~.commits.GroupCommit`, the commit machinery a store is built
  from: group commit through the log, and handing the rows to the applier.
* :mod:`.query`: lookups, listings and the joined trail, as plain queries on a connection.
* :mod:`.chain`: rows, canonical JSON, keyed hashing and chain verification.
* :mod:`.acklog`: the append-only acknowledgement log, its replay, and the one-writer lock.
* :mod:`.applier`: the thread that copies logged rows into SQLite, off the event loop.
* :mod:`.verify`: verifying the chain a segment at a time, so a long walk reports progress.
* :mod:`.health`: storage faults as fast answers, counted, logged once per change, recovered.
* :mod:`.schema`: tables, pragmas, the HMAC key file, record ids, value checks.

May import: :mod:`helpers.errors` and :mod:`helpers.settings` only; never the policies or
the HTTP layer, which call it.
"""

from __future__ import annotations

from .audit_store import AuditStore
from .chain import AuditRecord, ChainHead, ChainReport, ContextRecord, hash_value
from .commits import APPLY_AFTER_S, APPLY_AT_ROWS, Appended
from .health import StorageState
from .query import RecordFilter
from .schema import IdSource, replay_log

__all__ = [
    "APPLY_AFTER_S",
    "APPLY_AT_ROWS",
    "Appended",
    "AuditRecord",
    "AuditStore",
    "ChainHead",
    "ChainReport",
    "ContextRecord",
    "IdSource",
    "RecordFilter",
    "StorageState",
    "hash_value",
    "replay_log",
]
