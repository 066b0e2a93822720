"""AxonFlow's own SDK against the embedded gateway: the same three steps, telemetry off."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from helpers.client import GatewayClient, TokenUsage, official_sdk

from .conftest import ThreadedGateway


def test_three_steps_with_the_official_sdk(
    gateway: ThreadedGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    import axonflow.telemetry
    from axonflow.types import TokenUsage as SdkUsage

    monkeypatch.delenv("AXONFLOW_TELEMETRY")
    pings: list[Any] = []
    monkeypatch.setattr(axonflow.telemetry, "_send_telemetry_ping_now",
                        lambda *a, **k: pings.append(a) or True)  # fmt: skip

    async def run() -> tuple[Any, Any, Any, Any]:
        async with official_sdk(gateway.url, timeout=5) as sdk, GatewayClient(gateway.url) as ours:
            ok = await sdk.get_policy_approved_context(user_token="u1", query="What is RAG?")
            usage = SdkUsage(prompt_tokens=5, completion_tokens=7, total_tokens=12)
            audit = await sdk.audit_llm_call(
                ok.context_id, "ok", "openai", "gpt-4o-mini", usage, 90
            )
            blocked = await sdk.get_policy_approved_context(
                user_token="u1", query="SSN 123-45-6789"
            )
            # The same context audited again by our client with the same body: one audit.
            again = await ours.audit(ok.context_id, "openai", "gpt-4o-mini", TokenUsage(5, 7), 90,
                                     response_summary="ok")  # fmt: skip
            return ok, audit, blocked, again

    ok, audit, blocked, again = asyncio.run(run())
    assert os.environ["AXONFLOW_TELEMETRY"] == "off"
    assert ok.approved is True and blocked.approved is False
    assert blocked.policies == ["sys_pii_ssn"] and "sys_pii_ssn" in (blocked.block_reason or "")
    assert audit.success is True and again.audit_id == audit.audit_id
    assert pings == []
