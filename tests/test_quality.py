"""helpers.trail.quality: metrics on hand-built results, and corpus runs through a real gateway."""

from __future__ import annotations

import math
from collections.abc import Callable

import matplotlib
import pandas as pd
import pytest

from helpers.client import SyncGatewayClient
from helpers.corpus import CorpusRow, load_corpus
from helpers.gateway.engine import DecisionEngine
from helpers.gateway.policies.pii import PII_TYPES
from helpers.trail.quality import (
    Counts,
    RowResult,
    decide_examples,
    family_of,
    quality_report,
    run_corpus,
)

from .conftest import ThreadedGateway, hermetic_settings

matplotlib.use("Agg")


def _row(rid: str, policies: tuple[str, ...], approved: bool, source: str = "pii") -> CorpusRow:
    return CorpusRow(rid, "test", "user-123", f"query {rid}", approved, policies, source)


@pytest.mark.parametrize(
    ("policy_id", "family"),
    [
        ("sqli_union_based", "sqli"),
        ("sqli_dangerous_query", "sqli"),
        ("sys_admin_users_table", "admin"),
        ("sys_pii_credit_card", "pii"),
        ("sys_pii_dob", "pii"),
        ("sys_secret_aws_access_key", "secret"),
        ("rate_limit", "rate_limit"),
        ("unreleased_code_names", "custom"),
        ("rate_limiter_rule", "custom"),  # only the exact id "rate_limit" is the limiter
    ],
)
def test_family_of(policy_id: str, family: str) -> None:
    assert family_of(policy_id) == family


def test_counts_precision_recall_and_undefined_values() -> None:
    c = Counts("x", tp=3, fp=1, fn=2, tn=10)
    assert (c.precision, c.recall, c.support) == (0.75, 0.6, 5)
    assert c.f1 == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    never = Counts("y", tp=0, fp=0, fn=0, tn=7)
    assert math.isnan(never.precision) and math.isnan(never.recall) and math.isnan(never.f1)


def test_row_result_missing_extra_and_correct() -> None:
    row = _row("a", ("sys_pii_ssn", "sys_pii_phone"), False)
    assert RowResult(row, False, ("sys_pii_phone", "sys_pii_ssn")).correct  # order-free
    wrong = RowResult(row, False, ("sys_pii_ssn", "sys_pii_email"))
    assert (wrong.missing, wrong.extra, wrong.correct) == (("sys_pii_phone",), ("sys_pii_email",),
                                                           False)  # fmt: skip
    assert not RowResult(row, True, row.expected_policies).correct  # same ids, wrong verdict
    # A miss says what was expected too (the benchmarks' reports list misses this way).
    assert repr(wrong) == (
        "<RowResult a MISS approved=False ['sys_pii_ssn', 'sys_pii_email'], "
        "expected approved=False ['sys_pii_ssn', 'sys_pii_phone']>"
    )


@pytest.fixture
def mixed_report():  # type: ignore[no-untyped-def]
    """Five rows: two right, a missed SSN, a false e-mail, a wrong family."""
    results = [
        RowResult(_row("ok-1", ("sys_pii_ssn",), False), False, ("sys_pii_ssn",)),
        RowResult(_row("ok-2", (), True, "benign"), True, ()),
        RowResult(_row("fn", ("sys_pii_ssn",), False), True, ()),
        RowResult(_row("fp", (), True, "benign"), True, ("sys_pii_email",)),
        RowResult(
            _row("swap", ("sqli_generic",), False, "sqli"), False, ("sys_admin_users_table",)
        ),
    ]
    return quality_report(results)


def test_report_totals_and_family_counts(mixed_report) -> None:  # type: ignore[no-untyped-def]
    assert (mixed_report.total, mixed_report.correct) == (5, 2)
    fam = mixed_report.by_family()
    assert list(fam.index) == ["sqli", "admin", "pii", "secret", "custom", "rate_limit"]
    assert fam.loc["pii", ["tp", "fp", "fn"]].tolist() == [1, 1, 1]
    assert fam.loc["pii", "precision"] == 0.5 and fam.loc["pii", "recall"] == 0.5
    assert fam.loc["sqli", ["tp", "fn"]].tolist() == [0, 1]
    assert fam.loc["admin", ["tp", "fp"]].tolist() == [0, 1]
    assert math.isnan(fam.loc["custom", "precision"])


def test_report_per_pii_type_lists_every_type(mixed_report) -> None:  # type: ignore[no-untyped-def]
    pii = mixed_report.by_pii_type()
    assert list(pii.index) == list(PII_TYPES)
    assert pii.loc["ssn", ["support", "tp", "fn"]].tolist() == [2, 1, 1]
    assert pii.loc["email", ["support", "fp"]].tolist() == [0, 1]
    assert pii.loc["iban", "support"] == 0


def test_report_matrices(mixed_report) -> None:  # type: ignore[no-untyped-def]
    verdicts = mixed_report.verdicts()
    assert verdicts.loc["blocked", "approved"] == 1  # the missed SSN
    assert int(verdicts.to_numpy().sum()) == 5


def test_misses_frame_and_empty_misses(mixed_report) -> None:  # type: ignore[no-untyped-def]
    misses = mixed_report.misses()
    assert list(misses["id"]) == ["fn", "fp", "swap"]
    assert misses.set_index("id").loc["fp", "extra"] == "sys_pii_email"
    assert misses.set_index("id").loc["fn", "missing"] == "sys_pii_ssn"
    none = quality_report([RowResult(_row("a", (), True), True, ())]).misses()
    assert none.empty and "missing" in none.columns


def test_run_corpus_rejects_unknown_deciders() -> None:
    with pytest.raises(TypeError, match="gateway client"):
        run_corpus(object(), [])


# -- through a real gateway over HTTP ------------------------------------------------------

SAMPLE_IDS = ("benign-001", "sqli-001", "pii-053", "admin-020", "admin-021", "custom-001",
              "custom-007", "pii-059")  # fmt: skip


@pytest.fixture
def sample() -> list[CorpusRow]:
    rows = {r.id: r for r in load_corpus()}
    return [rows[i] for i in SAMPLE_IDS]


def test_corpus_sample_through_the_gateway_matches_labels_and_engine(
    make_gateway: Callable[..., ThreadedGateway], sample: list[CorpusRow]
) -> None:
    gw = make_gateway()
    with SyncGatewayClient(gw.url, settings=hermetic_settings()) as client:
        via_http = run_corpus(client, sample)
    engine = DecisionEngine.from_settings(hermetic_settings(), rate_limits=False)
    in_process = run_corpus(engine, sample)
    assert [r.row.id for r in via_http] == list(SAMPLE_IDS)
    assert all(r.correct for r in via_http), [r for r in via_http if not r.correct]
    assert [(r.approved, r.policies) for r in via_http] == [
        (r.approved, r.policies) for r in in_process
    ]


def test_rate_limited_rows_show_up_as_misses(
    make_gateway: Callable[..., ThreadedGateway], sample: list[CorpusRow], clock
) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway(clock=clock)
    # An unknown token is a guest (10 per 60 s); the clock does not move, so nothing refills.
    guest_rows = [CorpusRow(f"g{i}", "benign", "stranger", "Hello there", True, (), "benign")
                  for i in range(12)]  # fmt: skip
    with SyncGatewayClient(gw.url, settings=hermetic_settings()) as client:
        report = quality_report(run_corpus(client, guest_rows))
    assert report.correct == 10
    assert list(report.misses()["extra"]) == ["rate_limit", "rate_limit"]
    assert report.by_family().loc["rate_limit", "fp"] == 2


def test_decide_examples_keeps_order_and_reasons(
    make_gateway: Callable[..., ThreadedGateway],
) -> None:
    gw = make_gateway()
    examples = [
        ("ssn", "user-123", "My SSN is 123-45-6789"),
        ("admin", "user-789", "SELECT name FROM users WHERE id = 5"),
        ("engineer", "user-123", "SELECT name FROM users WHERE id = 5"),
    ]
    with SyncGatewayClient(gw.url, settings=hermetic_settings()) as client:
        frame = decide_examples(client, examples)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["example"]) == ["ssn", "admin", "engineer"]
    assert list(frame["approved"]) == [False, True, False]
    assert frame.loc[0, "policies"] == "sys_pii_ssn"
    assert frame.loc[0, "block_reason"].startswith("Blocked by policy sys_pii_ssn")
    assert frame.loc[1, "block_reason"] == ""
    assert frame.loc[2, "policies"] == "sys_admin_users_table"
