"""``GET /api/v1/decisions/{decision_id}/explain``: why a decision came out as it did."""

from __future__ import annotations

import httpx
import pytest

from helpers.gateway.explain import DecisionLog

from .conftest import FakeClock

PRE = "/api/policy/pre-check"
SSN = "123-45-6789"


def pre_check(http: httpx.Client, query: str, token: str = "user-123") -> dict:
    r = http.post(PRE, json={"user_token": token, "client_id": "acme", "query": query})
    assert r.status_code == 200
    return r.json()


def explain(http: httpx.Client, decision_id: str) -> httpx.Response:
    return http.get(f"/api/v1/decisions/{decision_id}/explain")


def test_a_blocked_decision_explains_itself_without_the_values(http: httpx.Client) -> None:
    body = pre_check(http, f"My SSN is {SSN}; also status of Project Nightjar?")
    assert body["approved"] is False
    r = explain(http, body["decision_id"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    got = r.json()
    assert got["decision_id"] == body["decision_id"] == body["context_id"]
    assert (got["verdict"], got["approved"]) == ("deny", False)
    assert got["block_reason"] == body["block_reason"]
    assert got["expires_at"] == body["expires_at"]  # it answers as long as its context lives
    ids = [f["policy_id"] for f in got["findings"]]
    assert ids == ["sys_pii_ssn", "unreleased_code_names"] == body["policies"]
    ssn = got["findings"][0]
    assert ssn["action"] == "block" and ssn["stops_request"] is True
    start, end = ssn["span"]
    query = f"My SSN is {SSN}; also status of Project Nightjar?"
    assert SSN in query[start:end]
    assert got["findings"][1]["action_set_by"] == "the rule's own action"
    assert [f["family"] for f in got["families"]] == [
        "sqli", "admin", "pii", "secret", "custom", "rate_limit",
    ]  # fmt: skip
    assert all(f["evaluated"] for f in got["families"])
    assert got["posture"]["pii_action"] == "block"
    assert "unreleased_code_names" in got["custom_rules"]["rules"]
    assert "sys_pii_ssn" in got["steps"][-1] and "deny" in got["steps"][-1]
    assert SSN not in r.text and "Nightjar" not in r.text


def test_an_approved_decision_says_nothing_stopped_it(http: httpx.Client) -> None:
    body = pre_check(http, "What are best practices for AI model deployment?")
    got = explain(http, body["decision_id"]).json()
    assert got["verdict"] == "allow" and got["findings"] == []
    assert got["steps"][-1].endswith("verdict allow.")


def test_admin_roles_skip_the_admin_family(http: httpx.Client) -> None:
    body = pre_check(http, "Show me the audit_logs table", token="user-789")
    families = {f["family"]: f for f in explain(http, body["decision_id"]).json()["families"]}
    assert families["admin"]["evaluated"] is False and "admin role" in families["admin"]["note"]


def test_unknown_and_expired_ids_are_distinct_404s(make_gateway, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(clock=clock)
    with httpx.Client(base_url=gw.url, timeout=10) as http:
        body = pre_check(http, "hello there, how are you")
        r = explain(http, "not-a-decision")
        assert r.status_code == 404 and r.json()["success"] is False
        assert r.json()["error"].startswith("Unknown decision 'not-a-decision'")
        clock.advance(301)
        r = explain(http, body["decision_id"])
        assert r.status_code == 404 and "has expired" in r.json()["error"]


def test_the_log_is_bounded_and_ages_out() -> None:
    now = [0.0]
    log = DecisionLog(capacity=2, max_age_s=10, clock=lambda: now[0])
    for name in ("a", "b", "c"):
        log.keep(name, object(), object(), "acme")  # type: ignore[arg-type]
    assert len(log) == 2 and log.lookup("a") is None and log.lookup("c") is not None
    now[0] = 11.0
    assert log.lookup("b") is None and len(log) == 1
    log.keep("d", object(), object(), "acme")  # type: ignore[arg-type]
    assert len(log) == 1  # the stale oldest entry left as the new one came


@pytest.mark.parametrize("pii_action", ["redact", "warn"])
def test_a_switch_is_named_as_what_set_the_action(make_gateway, pii_action: str) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(pii_action=pii_action)
    with httpx.Client(base_url=gw.url, timeout=10) as http:
        body = pre_check(http, f"My SSN is {SSN}")
        got = explain(http, body["decision_id"]).json()
    assert got["verdict"] == "allow"
    (finding,) = got["findings"]
    assert finding["action"] == pii_action
    assert finding["action_set_by"] == f"PII_ACTION={pii_action}"
    assert got["posture"]["pii_action"] == pii_action
    assert ("redaction" in got) == (pii_action == "redact")


def test_the_clients_read_an_explanation(gateway, http: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from helpers.client import GatewayClient, SyncGatewayClient
    from helpers.errors import GatewayHTTPError

    from .conftest import hermetic_settings

    settings = hermetic_settings()
    with SyncGatewayClient(gateway.url, client_id="acme", settings=settings) as gw:
        ctx = gw.pre_check(f"My SSN is {SSN}", user_token="user-123")
        got = gw.explain(ctx.decision_id)
        assert got.verdict == "deny" and got.policies == ["sys_pii_ssn"]
        assert "sys_pii_ssn: block" in got.summary() and SSN not in got.summary()
        with pytest.raises(GatewayHTTPError) as info:
            gw.explain("no such id")
        assert info.value.status_code == 404 and "Unknown decision" in info.value.message

    async def run() -> str:
        async with GatewayClient(gateway.url, client_id="acme", settings=settings) as agw:
            return (await agw.explain(ctx.decision_id)).verdict

    assert asyncio.run(run()) == "deny"


def test_with_client_secrets_a_client_reads_only_its_own_decisions(make_gateway) -> None:  # type: ignore[no-untyped-def]
    import base64

    from helpers.settings import Secret

    gw = make_gateway(client_secrets={"acme": Secret("a-secret"), "globex": Secret("g-secret")})

    def basic(client: str, secret: str) -> dict[str, str]:
        return {
            "Authorization": "Basic " + base64.b64encode(f"{client}:{secret}".encode()).decode()
        }

    with httpx.Client(base_url=gw.url, timeout=10) as http:
        r = http.post(
            PRE,
            json={"user_token": "user-123", "client_id": "acme", "query": f"SSN {SSN}"},
            headers=basic("acme", "a-secret"),
        )
        decision_id = r.json()["decision_id"]
        path = f"/api/v1/decisions/{decision_id}/explain"
        assert http.get(path).status_code == 401
        assert http.get(path, headers=basic("acme", "a-secret")).json()["verdict"] == "deny"
        other = http.get(path, headers=basic("globex", "g-secret"))
        assert other.status_code == 404 and "Unknown decision" in other.json()["error"]


@pytest.mark.parametrize(
    ("span", "view", "expected"),
    [((3, 9), None, ([3, 9], None)), (None, "canonical", (None, "canonical"))],
)
def test_findings_without_or_with_richer_spans_read_defensively(span, view, expected) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from helpers.gateway.explain import span_of, view_of

    finding = SimpleNamespace(span=span, view=view)
    assert (span_of(finding), view_of(finding)) == expected  # type: ignore[arg-type]
    as_object = SimpleNamespace(
        span=SimpleNamespace(start=1, end=4), view=SimpleNamespace(name="nfkc")
    )
    assert (span_of(as_object), view_of(as_object)) == ([1, 4], "nfkc")  # type: ignore[arg-type]
