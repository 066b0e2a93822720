"""Reading the trail: what an analyst or an auditor does with what the gateway stored.

* :mod:`.readback`: the read-back endpoint into pandas, decisions joined with audits,
  costs, gaps and blocked share.
* :mod:`.export`: the compliance export (CSV and JSON Lines, one documented schema).
* :mod:`.integrity`: snapshot, tamper and verify a *copy* of the database file.
* :mod:`.traffic`: a seeded day of simulated application traffic to read back.
* :mod:`.repeats`: contexts audited more than once (different bodies; exact repeats are
  folded into one audit by the gateway).
* :mod:`.quality`: detection quality (precision, recall, confusion) on the labelled corpus.

The trail reads through the client and the HTTP API, or from a copy of the file; it may
import the gateway's store and policies (to verify a chain, to name policy families) but
the gateway never imports it (import-linter contracts in ``pyproject.toml``).
"""

from __future__ import annotations

from .export import (
    EXPORT_SCHEMA,
    EXPORT_VERSION,
    ExportField,
    ExportResult,
    dumps_ordered,
    export_records,
    export_trail,
)
from .integrity import TamperedCopy, snapshot_db, tamper_copy, verify_db
from .readback import (
    AUDIT_FIELDS,
    DECISION_FIELDS,
    SIMULATED_KEY,
    add_costs,
    blocked_share,
    blocking_policy,
    find_gaps,
    join_trail,
    read_trail,
    rollup,
    split_trail,
    user_labels,
)
from .repeats import repeated_audits

__all__ = [
    "AUDIT_FIELDS",
    "DECISION_FIELDS",
    "EXPORT_SCHEMA",
    "EXPORT_VERSION",
    "SIMULATED_KEY",
    "ExportField",
    "ExportResult",
    "TamperedCopy",
    "add_costs",
    "blocked_share",
    "blocking_policy",
    "dumps_ordered",
    "export_records",
    "export_trail",
    "find_gaps",
    "join_trail",
    "read_trail",
    "repeated_audits",
    "rollup",
    "snapshot_db",
    "split_trail",
    "tamper_copy",
    "user_labels",
    "verify_db",
]
