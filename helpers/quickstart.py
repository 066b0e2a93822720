"""``python -m helpers.quickstart``: the smallest end-to-end check of the embedded gateway.

Starts the gateway on a free loopback port with a fresh temporary database, sends one
pre-check and one audit through :class:`helpers.client.SyncGatewayClient`, prints both, and
stops the gateway. No LLM is called here (the audit reports a made-up usage, labelled so).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .client import SyncGatewayClient, TokenUsage
from .server import start_gateway


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, start_gateway(db_path=Path(tmp) / "quick.db") as gw:
        print(f"embedded gateway (offline) at {gw.url}")
        with SyncGatewayClient(url=gw.url) as client:
            query = "What are best practices for AI model deployment?"
            pre = client.pre_check(query, user_token="user-123")
            print(
                f"\npre-check: approved={pre.approved} policies={list(pre.policies)} "
                f"context_id={pre.context_id} ({pre.duration_ms:.2f} ms)"
            )
            usage = TokenUsage(prompt_tokens=12, completion_tokens=48)
            audit = client.audit(pre.context_id, "openai", "gpt-4o-mini", usage, latency_ms=0)
            print(
                f"audit:     audit_id={audit.audit_id} ({audit.duration_ms:.2f} ms)"
                "  [no LLM was called; usage is illustrative]"
            )
            blocked = client.pre_check("My SSN is 123-45-6789", user_token="user-123")
            print(f"\npre-check: approved={blocked.approved} policies={list(blocked.policies)}")
            print(f"           block_reason: {blocked.block_reason}")
    print("\ngateway stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
