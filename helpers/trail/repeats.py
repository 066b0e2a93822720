"""Contexts audited more than once: what the trail shows after retries and re-asks.

The gateway folds an exact repeat of an audit into the first one (same ``audit_id``), so a
client retry never counts twice. A context can still carry several *different* audits, as
AxonFlow allows: an app that re-asked the model under one pre-check, or a background queue
that changed the body between attempts. :func:`repeated_audits` lists those contexts, so a
cost report or a review can decide whether they are legitimate. Introduced in
``10_real_application.ipynb``; ``08_audit_trail.ipynb`` reads the trail it works on.

>>> import pandas as pd
>>> audits = pd.DataFrame({"context_id": ["a", "a", "b"], "audit_id": ["1", "2", "3"],
...                        "model": ["m", "m", "m"], "total_tokens": [10, 12, 5],
...     "audited_at": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"])})
>>> repeated_audits(audits)[["context_id", "audits", "total_tokens"]].to_dict("records")
[{'context_id': 'a', 'audits': 2, 'total_tokens': 22}]
"""

from __future__ import annotations

import pandas as pd

__all__ = ["repeated_audits"]


def repeated_audits(audits: pd.DataFrame) -> pd.DataFrame:
    """One row per context with more than one audit, most audits first.

    ``audits`` has one row per audit (the second frame of
    :func:`helpers.trail.split_trail`, or a read-back frame: rows without an ``audit_id``
    are ignored). Columns: ``context_id``, ``audits`` (how many), ``audit_ids`` (sorted),
    ``models`` (sorted, distinct), ``total_tokens`` (summed), ``first_audited_at`` and
    ``last_audited_at``.
    """
    rows = audits.loc[audits["audit_id"].notna()]
    grouped = rows.groupby("context_id", sort=True)
    out = pd.DataFrame(
        {
            "audits": grouped["audit_id"].nunique(),
            "audit_ids": grouped["audit_id"].agg(lambda s: tuple(sorted(s.unique()))),
            "models": grouped["model"].agg(lambda s: tuple(sorted(s.dropna().unique()))),
            "total_tokens": grouped["total_tokens"].sum(),
            "first_audited_at": grouped["audited_at"].min(),
            "last_audited_at": grouped["audited_at"].max(),
        }
    ).reset_index()
    out = out.loc[out["audits"] > 1]
    return out.sort_values(
        ["audits", "context_id"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
