"""Reading the audit trail with pandas: read-back, join, costs, gaps.

Everything here reads the trail the way an analyst or an auditor would:

* :func:`read_trail` pages through the gateway's read-back endpoint (``GET
  /api/audit/records``) into a DataFrame; no database file is opened.
* :func:`split_trail` and :func:`join_trail` separate decisions (pre-checks) from audits
  (LLM calls) and join them again on ``context_id``, keeping both kinds of orphan.
* :func:`add_costs` recomputes each call's cost from the split input/output pricing table,
  next to AxonFlow's single-price estimate; :func:`rollup` sums any grouping.
* :func:`find_gaps` lists decisions that were approved but never audited.

Integrity checks on a copy of the database are in :mod:`.integrity`, the compliance export
in :mod:`.export`.

Introduced in ``08_audit_trail.ipynb``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from helpers.gateway.pricing import PricingTable

__all__ = [
    "AUDIT_FIELDS",
    "DECISION_FIELDS",
    "add_costs",
    "blocked_share",
    "blocking_policy",
    "find_gaps",
    "join_trail",
    "read_trail",
    "rollup",
    "split_trail",
    "user_labels",
]

#: Columns of one decision (a pre-check context) in the read-back rows.
DECISION_FIELDS: tuple[str, ...] = (
    "context_id",
    "client_id",
    "user_hash",
    "query_hash",
    "user_role",
    "user_department",
    "data_sources",
    "policies",
    "approved",
    "block_reason",
    "request_context",
    "expires_at",
    "decided_at",
    "app_time",
    "event_time",
    "blocking_policy",
)
#: Columns of one audit (an LLM call) in the read-back rows.
AUDIT_FIELDS: tuple[str, ...] = (
    "audit_id",
    "context_id",
    "provider",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "cost_usd",
    "metadata",
    "outcome",
    "audited_at",
)
# What the read-back endpoint returns for each row (helpers.gateway.store.query.list_records).
_RECORD_KEYS = (
    "created_at",
    "seq",
    "client_id",
    "context_id",
    "user_hash",
    "query_hash",
    "user_role",
    "user_department",
    "data_sources",
    "policies",
    "approved",
    "block_reason",
    "request_context",
    "expires_at",
    "context_created_at",
    "audit_id",
    "provider",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "cost_usd",
    "metadata",
    "audit_created_at",
)
_INT_COLUMNS = ("prompt_tokens", "completion_tokens", "total_tokens", "latency_ms")
_BLOCKED_BY = re.compile(r"^Blocked by policy (\S+?):")
SIMULATED_KEY = "simulated_at"


def _ts(values: pd.Series) -> pd.Series:
    # One resolution for every timestamp column, whatever pandas infers from the values (an
    # all-empty column would otherwise come back in seconds and refuse to mix with the rest).
    return pd.to_datetime(values, utc=True, format="ISO8601").astype("datetime64[us, UTC]")


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


def _outcome(audit_id: Any, meta: Any) -> str | None:
    """What the app said became of the call: ``answered`` unless its metadata says otherwise."""
    if not isinstance(audit_id, str):
        return None
    value = meta.get("outcome") if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) else "answered"


def _settled(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row once: a decision read before its audit arrived comes again with the audit
    on a later page; the audited copy is the one kept."""
    audited = {r.get("context_id") for r in records if r.get("audit_id")}
    seen: set[tuple[Any, Any]] = set()
    out = []
    for r in records:
        key = (r.get("context_id"), r.get("audit_id"))
        if key in seen or (key[1] is None and key[0] in audited):
            continue
        seen.add(key)
        out.append(r)
    return out


def read_trail(client: Any, *, page_size: int = 1000, **filters: object) -> pd.DataFrame:
    """All read-back rows matching ``filters`` as one DataFrame, oldest first.

    ``client`` is a :class:`~helpers.client.SyncGatewayClient`; filters are those of
    ``list_records`` (``since``, ``until``, ``provider``, ``approved``...). One row per audit
    with its decision's fields, plus one row per decision never audited (audit fields
    empty). Added columns: ``decided_at`` and ``audited_at`` (the gateway's UTC clock),
    ``app_time`` (the ``simulated_at`` the app sent in its context or metadata: the app's
    clock, recorded but never trusted), ``event_time`` (``app_time``, else ``decided_at``),
    ``blocking_policy``, ``audited`` and ``outcome`` (``answered``, or what the app recorded in
    the audit's metadata, such as ``refused`` or ``provider_error``).
    """
    records: list[dict[str, Any]] = []
    page = client.list_records(limit=page_size, **filters)
    while True:
        records.extend(page)
        cursor = getattr(page, "next", None)  # the gateway's keyset cursor: one indexed read
        if not cursor or len(page) < page_size:
            break
        page = client.list_records(limit=page_size, after=cursor, **filters)
    df = pd.DataFrame(_settled(records), columns=list(_RECORD_KEYS))
    df["decided_at"] = _ts(df["context_created_at"])
    df["audited_at"] = _ts(df["audit_created_at"])
    df["expires_at"] = _ts(df["expires_at"])
    simulated = [
        _simulated(c, m) for c, m in zip(df["request_context"], df["metadata"], strict=True)
    ]
    df["app_time"] = _ts(pd.Series(simulated, index=df.index, dtype=object))
    df["event_time"] = df["app_time"].fillna(df["decided_at"]).fillna(df["audited_at"])
    df["blocking_policy"] = [
        blocking_policy(r, p) for r, p in zip(df["block_reason"], df["policies"], strict=True)
    ]
    df["audited"] = df["audit_id"].notna()
    df["outcome"] = [_outcome(a, m) for a, m in zip(df["audit_id"], df["metadata"], strict=True)]
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
    return joined.sort_values(
        ["event_time", "decided_at", "audited_at"], kind="stable"
    ).reset_index(drop=True)


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
        out["provider"],
        out["model"],
        out["prompt_tokens"],
        out["completion_tokens"],
        out["total_tokens"],
        strict=True,
    ):
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
    columns = [
        "context_id",
        "event_time",
        "decided_at",
        "user_role",
        "user_department",
        "policies",
        "expires_at",
        "expired",
    ]
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
