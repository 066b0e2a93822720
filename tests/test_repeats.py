"""Contexts with more than one audit, read back from a real gateway's trail."""

from __future__ import annotations

from helpers.client import SyncGatewayClient, TokenUsage
from helpers.trail import read_trail, repeated_audits, split_trail

from .conftest import ThreadedGateway


def test_retries_fold_and_re_asks_show(gateway: ThreadedGateway) -> None:
    with SyncGatewayClient(gateway.url) as gw:
        once, twice, never = (gw.pre_check(f"question {i}", "u1") for i in range(3))
        first = gw.audit(once.context_id, "openai", "gpt-4o-mini", TokenUsage(5, 7), 100)
        retry = gw.audit(once.context_id, "openai", "gpt-4o-mini", TokenUsage(5, 7), 100)
        a = gw.audit(twice.context_id, "openai", "gpt-4o-mini", TokenUsage(5, 7), 100)
        b = gw.audit(twice.context_id, "openai", "gpt-4o", TokenUsage(5, 9), 120)
        c = gw.audit(twice.context_id, "openai", "gpt-4o", TokenUsage(5, 9), 121)
        trail = read_trail(gw)
    assert retry.audit_id == first.audit_id
    _, audits = split_trail(trail)
    repeats = repeated_audits(audits)
    assert repeats["context_id"].tolist() == [twice.context_id]
    row = repeats.iloc[0]
    assert row["audits"] == 3 and row["audit_ids"] == tuple(
        sorted([a.audit_id, b.audit_id, c.audit_id])
    )
    assert row["models"] == ("gpt-4o", "gpt-4o-mini") and row["total_tokens"] == 12 + 14 + 14
    assert row["first_audited_at"] <= row["last_audited_at"]
    assert never.context_id not in set(repeats["context_id"])
    # The raw read-back frame works too: rows without an audit are ignored.
    assert repeated_audits(trail)["context_id"].tolist() == [twice.context_id]


def test_no_repeats_is_an_empty_frame(gateway: ThreadedGateway) -> None:
    with SyncGatewayClient(gateway.url) as gw:
        ctx = gw.pre_check("hello", "u1")
        gw.audit(ctx.context_id, "anthropic", "claude-3-haiku", TokenUsage(1, 1))
        empty = repeated_audits(read_trail(gw))
    assert empty.empty and "audits" in empty.columns
