"""The compliance export of the joined trail: CSV and JSON Lines with one documented schema.

:func:`export_trail` writes both files from :func:`~helpers.trail.readback.join_trail`'s
frame; :data:`EXPORT_SCHEMA` lists the fields, documented in
``docs/audit-export-schema.md``. Introduced in ``09_trail_integrity.ipynb``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.gateway.store.chain import dumps

__all__ = [
    "EXPORT_SCHEMA",
    "EXPORT_VERSION",
    "ExportField",
    "ExportResult",
    "dumps_ordered",
    "export_records",
    "export_trail",
]

#: Bumped when a field is renamed, removed or changes meaning (adding one at the end is not).
EXPORT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ExportField:
    """One exported field: its name, JSON type (``|null`` when it may be empty) and meaning."""

    name: str
    type: str
    description: str

    def __repr__(self) -> str:
        return f"<ExportField {self.name}: {self.type}>"


def _f(name: str, type_: str, description: str) -> ExportField:
    return ExportField(name, type_, description)


#: The export's fields, in column order. ``docs/audit-export-schema.md`` documents each one.
EXPORT_SCHEMA: tuple[ExportField, ...] = (
    _f("context_id", "string|null", "Id of the pre-check decision (UUID v4)."),
    _f("audit_id", "string|null", "Id of the LLM-call audit (UUID v4); null when never audited."),
    _f(
        "status",
        "string",
        "audited, approved_not_audited, blocked, blocked_audited or audit_without_decision.",
    ),
    _f("client_id", "string|null", "Tenant (client id) that made the pre-check."),
    _f("decided_at", "timestamp|null", "When the gateway recorded the decision (its clock)."),
    _f("audited_at", "timestamp|null", "When the gateway recorded the audit (its clock)."),
    _f(
        "app_time",
        "timestamp|null",
        "The app's own time for the request (simulated_at), as sent; recorded, never trusted.",
    ),
    _f("user_hash", "string|null", "HMAC-SHA-256 of the user token, 64 hex characters."),
    _f("query_hash", "string|null", "HMAC-SHA-256 of the query text, 64 hex characters."),
    _f("user_role", "string|null", "The user's role in the gateway's directory."),
    _f("user_department", "string|null", "The user's department in the directory."),
    _f("approved", "boolean|null", "The pre-check verdict."),
    _f("policies", "string[]|null", "Every policy id that triggered, in reporting order."),
    _f("blocking_policy", "string|null", "The policy named by the block reason."),
    _f("block_reason", "string|null", "The sentence returned to the caller when blocked."),
    _f("provider", "string|null", "LLM provider reported in the audit (openai, anthropic)."),
    _f("model", "string|null", "Model id reported in the audit."),
    _f("prompt_tokens", "integer|null", "Input tokens of the call."),
    _f("completion_tokens", "integer|null", "Output tokens of the call."),
    _f("total_tokens", "integer|null", "Total tokens as reported by the app."),
    _f("latency_ms", "integer|null", "LLM call latency reported by the app, milliseconds."),
    _f("cost_usd", "number|null", "Estimated cost in USD, input and output priced separately."),
    _f("expires_at", "timestamp|null", "Until when the decision could be audited."),
    _f("data_sources", "string[]|null", "Data sources named in the pre-check."),
    _f("request_context", "object|null", "The pre-check's context object, as sent."),
    _f("metadata", "object|null", "The audit's metadata object, as sent."),
)


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The files :func:`export_trail` wrote and how many records each holds."""

    csv_path: Path
    jsonl_path: Path
    rows: int
    version: int = EXPORT_VERSION

    def __repr__(self) -> str:
        return (
            f"<ExportResult v{self.version} {self.rows} rows: {self.csv_path.name}, "
            f"{self.jsonl_path.name}>"
        )


def _status(row: Mapping[str, Any]) -> str:
    if row["link"] == "audit only":
        return "audit_without_decision"
    audited = row["link"] == "audited"
    if row["approved"] is True:
        return "audited" if audited else "approved_not_audited"
    return "blocked_audited" if audited else "blocked"


def _value(kind: str, value: Any) -> Any:
    """A frame value as the schema's JSON type (None for missing)."""
    if value is None or (not isinstance(value, list | dict | tuple) and pd.isna(value)):
        return None
    base = kind.removesuffix("|null")
    if base == "timestamp":
        return pd.Timestamp(value).tz_convert(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if base == "integer":
        return int(value)
    if base == "number":
        return float(value)
    if base == "boolean":
        return bool(value)
    if base == "string[]":
        return [str(v) for v in value]
    if base == "object":
        return dict(value)
    return str(value)


def export_records(joined: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a :func:`join_trail` frame as plain dicts in :data:`EXPORT_SCHEMA` order."""
    out = []
    for row in joined.to_dict("records"):
        row["status"] = _status(row)
        out.append({f.name: _value(f.type, row.get(f.name)) for f in EXPORT_SCHEMA})
    return out


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(value)
    if isinstance(value, dict):
        return dumps(value)
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    return str(value)


def export_trail(
    joined: pd.DataFrame, folder: str | Path, stem: str = "audit-trail"
) -> ExportResult:
    """Write ``<stem>.csv`` and ``<stem>.jsonl`` (UTF-8) in ``folder``; one record per row.

    CSV: a header of field names, empty cell for null, lists joined with ``;``, objects as
    compact JSON. JSON Lines: one object per line, keys in schema order, real JSON types.
    """
    import csv

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records = export_records(joined)
    names = [f.name for f in EXPORT_SCHEMA]
    csv_path, jsonl_path = folder / f"{stem}.csv", folder / f"{stem}.jsonl"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for rec in records:
            writer.writerow([_csv_cell(rec[n]) for n in names])
    with jsonl_path.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(dumps_ordered(rec) + "\n")
    return ExportResult(csv_path, jsonl_path, len(records))


def dumps_ordered(record: Mapping[str, Any]) -> str:
    """Compact JSON keeping the schema's key order (nested objects are sorted, as stored)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
