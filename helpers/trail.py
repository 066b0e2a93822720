"""Reading the audit trail with pandas: read-back, join, costs, gaps, integrity.

Everything here reads the trail the way an analyst or an auditor would:

* :func:`read_trail` pages through the gateway's read-back endpoint (``GET
  /api/audit/records``) into a DataFrame; no database file is opened.
* :func:`split_trail` and :func:`join_trail` separate decisions (pre-checks) from audits
  (LLM calls) and join them again on ``context_id``, keeping both kinds of orphan.
* :func:`add_costs` recomputes each call's cost from the split input/output pricing table,
  next to AxonFlow's single-price estimate; :func:`rollup` sums any grouping.
* :func:`find_gaps` lists decisions that were approved but never audited.
* :func:`snapshot_db`, :func:`tamper_copy` and :func:`verify_db` work on a *copy* of the
  database file, so the integrity demo never touches the live trail.
* :func:`export_trail` writes CSV and JSON Lines with the schema in :data:`EXPORT_SCHEMA`,
  documented in ``docs/audit-export-schema.md``.

Introduced in ``05_audit_trail.ipynb``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.gateway.pricing import PricingTable
from helpers.gateway.store.chain import dumps

from .trail_integrity import TamperedCopy, snapshot_db, tamper_copy, verify_db

__all__ = [
    "AUDIT_FIELDS",
    "DECISION_FIELDS",
    "EXPORT_SCHEMA",
    "EXPORT_VERSION",
    "ExportField",
    "ExportResult",
    "TamperedCopy",
    "add_costs",
    "blocked_share",
    "blocking_policy",
    "export_records",
    "export_trail",
    "find_gaps",
    "join_trail",
    "read_trail",
    "rollup",
    "snapshot_db",
    "split_trail",
    "tamper_copy",
    "user_labels",
    "verify_db",
]

#: Columns of one decision (a pre-check context) in the read-back rows.
DECISION_FIELDS: tuple[str, ...] = (
    "context_id", "client_id", "user_hash", "query_hash", "user_role", "user_department",
    "data_sources", "policies", "approved", "block_reason", "request_context", "expires_at",
    "decided_at", "app_time", "event_time", "blocking_policy",
)  # fmt: skip
#: Columns of one audit (an LLM call) in the read-back rows.
AUDIT_FIELDS: tuple[str, ...] = (
    "audit_id", "context_id", "provider", "model", "prompt_tokens", "completion_tokens",
    "total_tokens", "latency_ms", "cost_usd", "metadata", "audited_at",
)  # fmt: skip
# What the read-back endpoint returns for each row (helpers.gateway.store.AuditStore.list_records).
_RECORD_KEYS = (
    "created_at", "seq", "client_id", "context_id", "user_hash", "query_hash", "user_role",
    "user_department", "data_sources", "policies", "approved", "block_reason", "request_context",
    "expires_at", "context_created_at", "audit_id", "provider", "model", "prompt_tokens",
    "completion_tokens", "total_tokens", "latency_ms", "cost_usd", "metadata", "audit_created_at",
)  # fmt: skip
_INT_COLUMNS = ("prompt_tokens", "completion_tokens", "total_tokens", "latency_ms")
_BLOCKED_BY = re.compile(r"^Blocked by policy (\S+?):")
SIMULATED_KEY = "simulated_at"


def _ts(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, format="ISO8601")


def blocking_policy(block_reason: str | None, policies: Sequence[str] | None = None) -> str | None:
    """The policy that blocked: named in the embedded gateway's reason, else the first id.

    >>> blocking_policy("Blocked by policy sys_pii_ssn: Query contains a US Social Security number")
    'sys_pii_ssn'
    >>> blocking_policy(None, ["sys_pii_email"]) is None
    True
    """
    if not isinstance(block_reason, str) or not block_reason:
        return None
    match = _BLOCKED_BY.match(block_reason)
    if match:
        return match.group(1)
    # Another gateway words its reasons differently; the first reported id is the best guess.
    return policies[0] if isinstance(policies, list | tuple) and policies else None


def _simulated(ctx: Any, meta: Any) -> Any:
    for source in (ctx, meta):
        if isinstance(source, Mapping) and isinstance(source.get(SIMULATED_KEY), str):
            return source[SIMULATED_KEY]
    return None


def read_trail(client: Any, *, page_size: int = 1000, **filters: object) -> pd.DataFrame:
    """All read-back rows matching ``filters`` as one DataFrame, oldest first.

    ``client`` is a :class:`~helpers.client.SyncGatewayClient`; filters are those of
    ``list_records`` (``since``, ``until``, ``provider``, ``approved``...). One row per audit
    with its decision's fields, plus one row per decision never audited (audit fields
    empty). Added columns: ``decided_at`` and ``audited_at`` (the gateway's UTC clock),
    ``app_time`` (the ``simulated_at`` the app sent in its context or metadata: the app's
    clock, recorded but never trusted), ``event_time`` (``app_time``, else ``decided_at``),
    ``blocking_policy`` and ``audited``.
    """
    records: list[dict[str, Any]] = []
    while True:
        page = client.list_records(limit=page_size, offset=len(records), **filters)
        records.extend(page)
        if len(page) < page_size:
            break
    df = pd.DataFrame(records, columns=list(_RECORD_KEYS))
    df["decided_at"] = _ts(df["context_created_at"])
    df["audited_at"] = _ts(df["audit_created_at"])
    df["expires_at"] = _ts(df["expires_at"])
    simulated = [_simulated(c, m) for c, m in zip(df["request_context"], df["metadata"],
                                                      strict=True)]  # fmt: skip
    df["app_time"] = _ts(pd.Series(simulated, index=df.index, dtype=object))
    df["event_time"] = df["app_time"].fillna(df["decided_at"]).fillna(df["audited_at"])
    df["blocking_policy"] = [
        blocking_policy(r, p) for r, p in zip(df["block_reason"], df["policies"], strict=True)
    ]
    df["audited"] = df["audit_id"].notna()
    for col in _INT_COLUMNS:
        df[col] = df[col].astype("Int64")
    df["cost_usd"] = df["cost_usd"].astype(float)
    df["approved"] = df["approved"].astype("boolean")
    return df.drop(columns=["created_at", "context_created_at", "audit_created_at"])


def user_labels(client: Any, tokens: Iterable[str]) -> dict[str, str]:
    """Map stored user hashes back to the tokens *you already know*, via the gateway.

    The trail keeps only keyed hashes; the gateway hashes a ``user_token`` filter with its
    own secret, so one read-back per known token finds its hash without the secret ever
    leaving the gateway. Tokens with no records are left out.
    """
    labels = {}
    for token in tokens:
        rows = client.list_records(user_token=token, limit=1)
        if rows and rows[0].get("user_hash"):
            labels[rows[0]["user_hash"]] = token
    return labels


def split_trail(trail: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(decisions, audits)``: one row per pre-check context, one row per LLM-call audit."""
    has_decision = trail["user_hash"].notna()
    decisions = (
        trail.loc[has_decision, list(DECISION_FIELDS)]
        .drop_duplicates("context_id")
        .reset_index(drop=True)
    )
    audits = trail.loc[trail["audit_id"].notna(), list(AUDIT_FIELDS)].reset_index(drop=True)
    return decisions, audits


def join_trail(decisions: pd.DataFrame, audits: pd.DataFrame) -> pd.DataFrame:
    """Decisions outer-joined with audits on ``context_id``; ``link`` says what matched.

    ``link`` is ``"audited"`` (decision with an audit), ``"decision only"`` (never audited)
    or ``"audit only"`` (an audit whose decision is missing from the trail).
    """
    joined = decisions.merge(audits, on="context_id", how="outer", indicator="link", sort=False)
    joined["link"] = joined["link"].map(
        {"both": "audited", "left_only": "decision only", "right_only": "audit only"}
    )
    return joined.sort_values(["event_time", "decided_at", "audited_at"],
                              kind="stable").reset_index(drop=True)  # fmt: skip


def add_costs(audits: pd.DataFrame, pricing: PricingTable | None = None) -> pd.DataFrame:
    """Copy of ``audits`` with ``input_usd``, ``output_usd``, ``axonflow_usd`` and ``priced_as``.

    Input (prompt) and output (completion) tokens are priced separately from the table
    (dated ids price as their family); ``input_usd + output_usd`` equals the ``cost_usd`` the
    gateway stored. ``axonflow_usd`` is AxonFlow's estimate: total tokens at one price per
    exact model name, else 0.01 per 1K.
    """
    table = pricing or PricingTable.load()
    out = audits.copy()
    inputs, outputs, axonflow, priced_as = [], [], [], []
    for provider, model, p_tok, c_tok, t_tok in zip(
        out["provider"], out["model"], out["prompt_tokens"], out["completion_tokens"],
        out["total_tokens"], strict=True,
    ):  # fmt: skip
        if pd.isna(provider):  # a decision-only row of a joined frame: no call, no cost
            row = (0.0, 0.0, 0.0, None)
        else:
            price = table.price(provider, model)
            row = (
                int(p_tok) * price.input_per_1k / 1000,
                int(c_tok) * price.output_per_1k / 1000,
                table.axonflow_cost(model, int(t_tok)),
                price.matched_as or "fallback",
            )
        inputs.append(row[0])
        outputs.append(row[1])
        axonflow.append(row[2])
        priced_as.append(row[3])
    out["input_usd"], out["output_usd"] = inputs, outputs
    out["axonflow_usd"], out["priced_as"] = axonflow, priced_as
    return out


def rollup(costed: pd.DataFrame, by: str | Sequence[str]) -> pd.DataFrame:
    """Calls, tokens and USD per group of :func:`add_costs` output, most expensive first."""
    keys = [by] if isinstance(by, str) else list(by)
    calls = costed[costed["audit_id"].notna()]
    grouped = calls.groupby(keys, sort=True, dropna=False)
    out = grouped.agg(
        calls=("audit_id", "size"),
        prompt_tokens=("prompt_tokens", "sum"),
        completion_tokens=("completion_tokens", "sum"),
        input_usd=("input_usd", "sum"),
        output_usd=("output_usd", "sum"),
        cost_usd=("cost_usd", "sum"),
        axonflow_usd=("axonflow_usd", "sum"),
    )
    out[["prompt_tokens", "completion_tokens"]] = out[
        ["prompt_tokens", "completion_tokens"]
    ].astype(int)
    return out.sort_values("cost_usd", ascending=False, kind="stable")


def find_gaps(joined: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
    """Approved decisions that were never audited: the LLM call's record is missing.

    A blocked decision without an audit is not a gap (the LLM was never called). ``expired``
    is true once the context can no longer be audited (after ``expires_at``), when the gap
    is permanent.
    """
    now = now or datetime.now(UTC)
    approved = joined["approved"].fillna(False).astype(bool)
    gaps = joined.loc[approved & (joined["link"] == "decision only")].copy()
    gaps["expired"] = gaps["expires_at"] <= pd.Timestamp(now)
    columns = ["context_id", "event_time", "decided_at", "user_role", "user_department",
               "policies", "expires_at", "expired"]  # fmt: skip
    return gaps[columns].reset_index(drop=True)


def blocked_share(decisions: pd.DataFrame, freq: str = "1h") -> pd.DataFrame:
    """Per time bin of ``event_time``: decisions, and the share blocked by each policy.

    Columns: ``decisions`` (count in the bin), then one column per blocking policy with the
    fraction of that bin's decisions it blocked (0 to 1), policies in alphabetical order.
    """
    bins = decisions["event_time"].dt.floor(freq)
    total = decisions.groupby(bins).size().rename("decisions")
    blocked = decisions[decisions["blocking_policy"].notna()]
    counts = blocked.groupby([bins[blocked.index], "blocking_policy"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=total.index, fill_value=0).sort_index(axis=1)
    share = counts.div(total, axis=0)
    share.insert(0, "decisions", total)
    share.index.name = "hour" if freq == "1h" else "bin"
    share.columns.name = None
    return share


# -- integrity: always on a copy ---------------------------------------------------------


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
    _f("status", "string", "audited, approved_not_audited, blocked, blocked_audited or "
                           "audit_without_decision."),
    _f("client_id", "string|null", "Tenant (client id) that made the pre-check."),
    _f("decided_at", "timestamp|null", "When the gateway recorded the decision (its clock)."),
    _f("audited_at", "timestamp|null", "When the gateway recorded the audit (its clock)."),
    _f("app_time", "timestamp|null", "The app's own time for the request (simulated_at), as "
                                     "sent; recorded, never trusted."),
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
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The files :func:`export_trail` wrote and how many records each holds."""

    csv_path: Path
    jsonl_path: Path
    rows: int
    version: int = EXPORT_VERSION

    def __repr__(self) -> str:
        return (f"<ExportResult v{self.version} {self.rows} rows: {self.csv_path.name}, "
                f"{self.jsonl_path.name}>")  # fmt: skip


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
