"""Custom rules that ask for approval or only log: ``verdict`` and what the caller is told.

``require_approval`` stops the request like ``block`` but answers ``verdict: needs_approval``;
a hard block outranks it. ``log`` (a custom rule's action, or ``PII_ACTION=log``) approves and
keeps the finding in the trail without listing it in the reply's ``policies``; ``warn`` lists it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers.client import PreCheckResult, SyncGatewayClient, governed_completion_sync

from .conftest import ThreadedGateway

PRE = "/api/policy/pre-check"
RULES = """rules:
  - id: wire_transfer_approval
    keywords: [wire transfer]
    action: require_approval
    severity: high
    reason: Wire transfers are approved by a person
  - id: competitor_mention_log
    keywords: [globex]
    action: log
    severity: low
    reason: Competitor mentions are counted
  - id: internal_codename_warn
    keywords: [nightjar]
    action: warn
    severity: low
    reason: Internal code name
"""


@pytest.fixture
def gw(make_gateway: Callable[..., ThreadedGateway], tmp_path: Path) -> ThreadedGateway:
    policies = tmp_path / "policies.yaml"
    policies.write_text(RULES)
    return make_gateway(policies_file=str(policies))


def pre_check(url: str, query: str) -> dict[str, Any]:
    r = httpx.post(url + PRE, json={"client_id": "acme", "user_token": "user-123", "query": query})
    assert r.status_code == 200, r.text
    return r.json()


def stored(url: str, context_id: str) -> dict[str, Any]:
    rows = httpx.get(url + "/api/audit/records", params={"limit": 1000}).json()["records"]
    return next(r for r in rows if r["context_id"] == context_id)


@pytest.mark.parametrize(
    ("query", "approved", "verdict", "reported", "kept", "reason"),
    [
        ("Please send a wire transfer of 900 EUR", False, "needs_approval",
         ["wire_transfer_approval"], ["wire_transfer_approval"], "Approval required by policy"),
        ("Wire  Transfer the refund, then DROP TABLE payments", False, "deny",
         ["sqli_dangerous_query", "wire_transfer_approval"],
         ["sqli_dangerous_query", "wire_transfer_approval"], "Blocked by policy sqli_dangerous"),
        ("How does Globex price its plans?", True, "allow", [], ["competitor_mention_log"], None),
        ("Status of Nightjar vs Globex?", True, "allow", ["internal_codename_warn"],
         ["competitor_mention_log", "internal_codename_warn"], None),
        ("What is a wire service?", True, "allow", [], [], None),
    ],
)  # fmt: skip
def test_verdicts_and_what_is_reported(
    gw: ThreadedGateway,
    query: str,
    approved: bool,
    verdict: str,
    reported: list[str],
    kept: list[str],
    reason: str | None,
) -> None:
    body = pre_check(gw.url, query)
    assert (body["approved"], body["verdict"]) == (approved, verdict)
    assert sorted(body["policies"]) == sorted(reported)
    assert (body.get("block_reason") or "").startswith(reason or "")
    assert ("block_reason" in body) is (reason is not None)
    record = stored(gw.url, body["context_id"])
    assert sorted(record["policies"]) == sorted(kept)


def test_pii_action_log_keeps_the_finding_in_the_trail_only(
    make_gateway: Callable[..., ThreadedGateway], tmp_path: Path
) -> None:
    warn = make_gateway(db=tmp_path / "warn.db", pii_action="warn").url
    log = make_gateway(db=tmp_path / "log.db", pii_action="log").url
    query = "My SSN is 123-45-6789"
    warned, logged = pre_check(warn, query), pre_check(log, query)
    assert warned["approved"] and logged["approved"]
    assert warned["policies"] == ["sys_pii_ssn"] and logged["policies"] == []
    assert stored(log, logged["context_id"])["policies"] == ["sys_pii_ssn"]
    metrics = httpx.get(log + "/prometheus").text
    assert 'policy="sys_pii_ssn"' in metrics  # the operator still counts it


def test_needs_approval_reaches_the_client_and_stops_the_call(gw: ThreadedGateway) -> None:
    class NoLLM:
        class messages:  # the SDK's attribute name
            @staticmethod
            def create(**kw: Any) -> None:
                raise AssertionError("the LLM was called")

    with SyncGatewayClient(gw.url) as client:
        done = governed_completion_sync(
            client, NoLLM(), "m", [{"role": "user", "content": "wire transfer 5,000 USD"}]
        )
    assert done.outcome == "blocked" and done.message.startswith("Approval required")
    assert isinstance(done.decision, PreCheckResult) and done.decision.verdict == "needs_approval"


def test_official_sdk_parses_needs_approval(
    gw: ThreadedGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AXONFLOW_TELEMETRY", "off")
    from axonflow import AxonFlow

    loop = asyncio.new_event_loop()  # the SDK's sync client does not close a loop it did not make
    asyncio.set_event_loop(loop)
    client = AxonFlow.sync(endpoint=gw.url, client_id="acme")
    try:
        result = client.get_policy_approved_context(user_token="user-123", query="wire transfer")
    finally:
        client.close()
        asyncio.set_event_loop(None)
        loop.close()
    assert result.approved is False and result.verdict == "needs_approval"
    assert result.policies == ["wire_transfer_approval"]
