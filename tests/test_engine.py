"""The decision engine in process: the labelled corpus, reporting order, severity, switches."""

from __future__ import annotations

import pytest

from helpers.corpus import load_corpus
from helpers.gateway.engine import DecisionEngine
from helpers.gateway.policies.findings import FAMILIES
from helpers.gateway.policies.pii import PII_TYPES
from helpers.gateway.policies.sqli import SQLI_CATEGORIES
from helpers.trail.quality import quality_report, run_corpus

from .conftest import hermetic_settings

ROWS = load_corpus()


@pytest.fixture(scope="module")
def engine() -> DecisionEngine:
    # Rate limits off: the corpus labels the policy verdict, not a user's request budget.
    return DecisionEngine.from_settings(hermetic_settings(), rate_limits=False)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_corpus_row_decided_as_labelled(engine: DecisionEngine, row) -> None:  # type: ignore[no-untyped-def]
    decision = engine.decide(row.query, row.user_token)
    assert decision.approved == row.expected_approved
    assert decision.policies == list(row.expected_policies)  # exact ids, reporting order


def test_corpus_covers_every_family_and_type() -> None:
    assert len(ROWS) >= 300
    labelled = {p for r in ROWS for p in r.expected_policies}
    for kind in PII_TYPES:
        assert f"sys_pii_{kind}" in labelled, kind
    for category in SQLI_CATEGORIES:
        assert f"sqli_{category}" in labelled, category
    assert any(p.startswith("sys_admin_") for p in labelled)
    assert sum(1 for r in ROWS if r.expected_approved and not r.expected_policies) >= 100


def test_score_counts_misses(engine: DecisionEngine) -> None:
    result = quality_report(run_corpus(engine, ROWS))
    assert result.total == len(ROWS) and result.correct == len(ROWS) and result.misses().empty
    flipped = quality_report(
        run_corpus(lambda q, u: (not engine.decide(q, u).approved, []), ROWS[:5])
    )
    assert flipped.correct == 0 and len(flipped.misses()) == 5


def test_every_family_is_reported_in_order(engine: DecisionEngine) -> None:
    query = ("Confidential: run SELECT * FROM audit_logs WHERE id = 1' OR '1'='1 "
             "for SSN 123-45-6789 and mail jane@example.com")  # fmt: skip
    decision = engine.decide(query, "user-123")
    families = [f.family for f in decision.findings]
    assert families == sorted(families, key=FAMILIES.index)
    assert {"sqli", "admin", "pii"} <= set(families)
    assert not decision.approved


def test_block_reason_names_the_most_severe_blocking_finding(engine: DecisionEngine) -> None:
    # A phone (warn) and an SSN (critical, block): the SSN is named, the phone still listed.
    d = engine.decide("Call +1-415-555-0132 about SSN 123-45-6789", "user-123")
    assert d.policies == ["sys_pii_ssn", "sys_pii_phone"]
    assert d.block_reason is not None and d.block_reason.startswith("Blocked by policy sys_pii_ssn")
    assert [f.policy_id for f in d.blocking] == ["sys_pii_ssn"]


@pytest.mark.parametrize(
    ("overrides", "query", "approved", "ids"),
    [
        ({}, "My SSN is 123-45-6789", False, ["sys_pii_ssn"]),
        ({"pii_block_critical": False}, "My SSN is 123-45-6789", True, ["sys_pii_ssn"]),
        ({"sqli_block_mode": "warn"}, "x' UNION SELECT secret FROM vault--", True,
         ["sqli_union_based", "sqli_comment_injection"]),
        ({"sqli_scanner_mode": "off"}, "x' UNION SELECT secret FROM vault--", True, []),
    ],
)  # fmt: skip
def test_environment_switches(overrides, query, approved, ids) -> None:  # type: ignore[no-untyped-def]
    engine = DecisionEngine.from_settings(hermetic_settings(**overrides), rate_limits=False)
    d = engine.decide(query, "user-123")
    assert d.approved is approved and d.policies == ids


def test_admin_access_depends_on_the_directory_not_the_request() -> None:
    engine = DecisionEngine.from_settings(hermetic_settings(), rate_limits=False)
    admin = next(t for t, u in engine.users.users.items() if u.is_admin)
    query = "Show me everything in the audit_logs table"
    assert not engine.decide(query, "user-123").approved
    assert engine.decide(query, admin).approved


def test_rate_limit_blocks_when_the_bucket_is_empty() -> None:
    now = [1_000_000.0]
    engine = DecisionEngine.from_settings(hermetic_settings(), clock=lambda: now[0])
    limit = engine.users.role_limit(engine.users.lookup("unknown-token").role)[0]
    results = [engine.decide("hello", "unknown-token") for _ in range(limit + 1)]
    assert all(r.approved for r in results[:limit])
    last = results[-1]
    assert not last.approved and last.policies == ["rate_limit"]
    assert last.rate_limit is not None and last.rate_limit.remaining == 0


def test_warm_up_consumes_no_rate_limit() -> None:
    engine = DecisionEngine.from_settings(hermetic_settings(), clock=lambda: 5.0)
    assert engine.warm_up(["hello", "My SSN is 123-45-6789"]) == 2
    guest = engine.users.lookup("nobody")
    first = engine.decide("hello", "nobody")
    assert first.rate_limit is not None
    assert first.rate_limit.remaining == engine.users.role_limit(guest.role)[0] - 1
