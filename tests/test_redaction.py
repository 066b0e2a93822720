"""PII_ACTION and AXONFLOW_PROFILE, redacted_query, placeholders restored, what the trail keeps."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import httpx
import pytest

from helpers.client import PreCheckResult, placeholder_map, restore_placeholders
from helpers.corpus import CORPUS_DIR, load_corpus
from helpers.gateway.engine import DecisionEngine
from helpers.gateway.policies.obfuscation import scan_views, sensitive_matches
from helpers.gateway.policies.redaction import Restorer, mask, redact, redact_parts

from .conftest import hermetic_settings

PRE = "/api/policy/pre-check"
SSN_QUERY = "My SSN is 123-45-6789, can you fill in the tax form?"


def fw(s: str) -> str:
    return "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in s)


def engine(**env: str) -> DecisionEngine:
    from helpers.settings import Settings

    return DecisionEngine.from_settings(Settings.load(env=env, dotenv_path=None), rate_limits=False)


# -- redaction on the original text -------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    ["123-45-6789", fw("123-45-6789"), "1\u200b2\u200b3-45-6789", "123\u201345\u20136789",
     "123.45.6789", "\u0967\u0968\u0969-\u0966\u0967-\u0967\u0968\u0969\u096a"],
)  # fmt: skip
def test_redaction_replaces_exactly_the_identifiers_characters(value: str) -> None:
    text = f"Hi,\u200b my SSN is {value}. Thanks!"
    result = redact(text)
    assert result.text == "Hi,\u200b my SSN is [SSN_1]. Thanks!"
    assert result.types == ("ssn",) and result.count == 1


def test_same_value_same_placeholder_and_types_numbered_separately() -> None:
    text = "SSN 123-45-6789 and 219-09-9998, again 123 45 6789; card 4111.1111.1111.1111"
    result = redact(text)
    assert result.text == "SSN [SSN_1] and [SSN_2], again [SSN_1]; card [CREDIT_CARD_1]"
    assert result.types == ("credit_card", "ssn") and result.count == 4
    assert "123" not in repr(result)


def test_benign_look_alikes_are_left_alone() -> None:
    text = "Order 2024/0518/7731, ISBN 978-0-306-40615-7, card 4111.1111.1111.1112"
    assert redact(text).text == text and redact(text).count == 0


# -- the actions and profiles -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "approved", "redacted"),
    [
        ({}, False, None),
        ({"PII_ACTION": "block"}, False, None),
        ({"PII_ACTION": "redact"}, True, "My SSN is [SSN_1], can you fill in the tax form?"),
        ({"PII_ACTION": "warn"}, True, None),
        ({"PII_ACTION": "log"}, True, None),
        ({"AXONFLOW_PROFILE": "default"}, True, None),
        ({"AXONFLOW_PROFILE": "strict"}, False, None),
        ({"AXONFLOW_PROFILE": "default", "PII_ACTION": "redact"}, True,
         "My SSN is [SSN_1], can you fill in the tax form?"),
        ({"PII_BLOCK_CRITICAL": "false"}, True, None),
        ({"PII_BLOCK_CRITICAL": "false", "PII_ACTION": "block"}, False, None),
    ],
)  # fmt: skip
def test_pii_action_and_profile(env: dict[str, str], approved: bool, redacted: str | None) -> None:
    d = engine(**env).decide(SSN_QUERY, "user-123")
    assert d.approved is approved and d.policies == ["sys_pii_ssn"]
    assert d.requires_redaction is (redacted is not None)
    assert (d.redaction.text if d.redaction else None) == redacted
    assert d.verdict == ("allow" if approved else "deny")


@pytest.mark.parametrize(
    ("env", "sqli_approved", "dangerous_approved"),
    [
        ({}, False, False),
        ({"AXONFLOW_PROFILE": "default"}, True, False),
        ({"AXONFLOW_PROFILE": "strict"}, False, False),
        ({"SQLI_BLOCK_MODE": "warn"}, True, True),
        ({"AXONFLOW_PROFILE": "default", "SQLI_BLOCK_MODE": "block"}, False, False),
    ],
)
def test_sql_injection_posture(
    env: dict[str, str], sqli_approved: bool, dangerous_approved: bool
) -> None:
    e = engine(**env)
    assert e.decide("name x' OR '1'='1", "user-123").approved is sqli_approved
    assert e.decide("DROP TABLE orders", "user-123").approved is dangerous_approved


def test_a_blocking_finding_wins_over_redaction() -> None:
    d = engine(PII_ACTION="redact").decide("SSN 123-45-6789'; DROP TABLE x--", "user-123")
    assert not d.approved and not d.requires_redaction


# -- the served endpoint and the client ---------------------------------------------------------
def _pre_check(http: httpx.Client, query: str) -> dict:  # type: ignore[type-arg]
    r = http.post(PRE, json={"user_token": "user-123", "client_id": "acme", "query": query})
    assert r.status_code == 200
    return r.json()


def test_served_redaction_fields_and_client(make_gateway, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "redact.db"
    gw = make_gateway(clock=clock, db=db, pii_action="redact")
    query = f"My SSN is {fw('123-45-6789')} and my card 4111.1111.1111.1111"
    with httpx.Client(base_url=gw.url) as http:
        body = _pre_check(http, query)
        benign = _pre_check(http, "What are best practices for AI model deployment?")
    assert body["approved"] is True and body["requires_redaction"] is True
    assert body["redacted_query"] == "My SSN is [SSN_1] and my card [CREDIT_CARD_1]"
    assert body["decision_id"] == body["context_id"] and body["verdict"] == "allow"
    assert benign["requires_redaction"] is False and "redacted_query" not in benign
    result = PreCheckResult.from_response(body, 1.0)
    assert result.redacted_query == body["redacted_query"] and result.verdict == "allow"
    mapping = placeholder_map(query, result.redacted_query)
    assert mapping == {"[SSN_1]": fw("123-45-6789"), "[CREDIT_CARD_1]": "4111.1111.1111.1111"}
    answer = "Done: [SSN_1] saved, [CREDIT_CARD_1] charged, [EMAIL_1] unknown."
    assert restore_placeholders(answer, mapping) == (
        f"Done: {fw('123-45-6789')} saved, 4111.1111.1111.1111 charged, [EMAIL_1] unknown."
    )
    gw.__exit__(None, None, None)
    # The trail keeps that redaction happened and which types, never a value or the mapping.
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("redact.db*"))
    for secret in (fw("123-45-6789"), "4111.1111.1111.1111", "[SSN_1]"):
        assert secret.encode() not in raw
    con = sqlite3.connect(db)
    stored = [json.loads(r[0]) if r[0] else None for r in con.execute(
        "SELECT request_context FROM contexts ORDER BY seq")]  # fmt: skip
    con.close()
    assert stored[0] == {"_gateway_redaction": {"types": ["credit_card", "ssn"], "count": 2}}
    assert stored[1] in (None, {})


def test_placeholder_map_rejects_a_mismatched_original() -> None:
    with pytest.raises(ValueError, match="does not match"):
        placeholder_map("a completely different text", "My SSN is [SSN_1].")
    assert placeholder_map("no pii here", "no pii here") == {}


def test_official_sdk_parses_the_new_fields(make_gateway, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AXONFLOW_TELEMETRY", "off")
    for name in ("AXONFLOW_AGENT_URL", "AXONFLOW_CLIENT_ID", "AXONFLOW_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    from axonflow import AxonFlow

    gw = make_gateway(clock=clock, pii_action="redact")
    # The SDK's sync client runs on the thread's current event loop and does not close one
    # it did not create, so the test provides the loop and closes it.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    client = AxonFlow.sync(endpoint=gw.url, client_id="acme")
    try:
        redacted = client.get_policy_approved_context(user_token="user-123", query=SSN_QUERY)
        blocked = client.get_policy_approved_context(user_token="user-123", query="x' OR '1'='1")
    finally:
        client.close()
        asyncio.set_event_loop(None)
        loop.close()
    assert redacted.approved and redacted.requires_redaction is True
    assert redacted.decision_id == redacted.context_id and redacted.verdict == "allow"
    assert not blocked.approved and blocked.requires_redaction is False
    assert blocked.verdict == "deny" and blocked.decision_id == blocked.context_id


def test_hermetic_settings_default_is_the_tutorials_posture() -> None:
    s = hermetic_settings()
    assert (s.pii_action, s.sqli_block_mode, s.profile) == ("block", "block", "")


# -- restoring a stream, whatever the splits ----------------------------------------------------
REPLY = "Dear [NAME_1], your SSN [SSN_1] and card [CREDIT_CARD_12] are on file; [SSN_9] is not."
VALUES = {"[SSN_1]": "123-45-6789", "[CREDIT_CARD_12]": "4111 1111 1111 1111"}
WANT = (
    "Dear [NAME_1], your SSN 123-45-6789 and card 4111 1111 1111 1111 are on file; [SSN_9] is not."
)


def stream_through(pieces: list[str]) -> tuple[str, list[str]]:
    restorer = Restorer(VALUES)
    out = [restorer.feed(p) for p in pieces] + [restorer.flush()]
    return "".join(out), out


@pytest.mark.parametrize("cut", range(1, len(REPLY)))
def test_restorer_is_exact_at_every_split_point(cut: int) -> None:
    text, out = stream_through([REPLY[:cut], REPLY[cut:]])
    assert text == WANT
    # No piece ends in the start of an issued placeholder: each one leaves whole, restored.
    starts = {p[:i] for p in VALUES for i in range(1, len(p))}
    assert not any(piece.endswith(start) for piece in out for start in starts)


def test_restorer_one_character_at_a_time_and_in_threes() -> None:
    assert stream_through(list(REPLY))[0] == WANT
    assert stream_through([REPLY[i : i + 3] for i in range(0, len(REPLY), 3)])[0] == WANT


def test_restorer_holds_back_only_what_could_still_be_a_placeholder() -> None:
    restorer = Restorer(VALUES)
    assert restorer.feed("card [CRED") == "card "  # could still be [CREDIT_CARD_12]
    assert restorer.feed("ENTIALS] ok") == "[CREDENTIALS] ok"  # it was not
    assert restorer.feed("price [5") == "price [5"  # "[5" starts no placeholder


def test_a_stream_ending_mid_placeholder_is_flushed_as_received() -> None:
    restorer = Restorer(VALUES)
    assert restorer.feed("your SSN [SSN_") == "your SSN "
    assert restorer.flush() == "[SSN_"


def test_redact_parts_numbers_across_parts_and_restores() -> None:
    parts = ["system: card 4111 1111 1111 1111", "user: SSN 123-45-6789, card 4111111111111111"]
    result = redact_parts(parts)
    assert result.texts == (
        "system: card [CREDIT_CARD_1]",
        "user: SSN [SSN_1], card [CREDIT_CARD_1]",
    )
    assert result.restore("[SSN_1] / [CREDIT_CARD_1]") == "123-45-6789 / 4111 1111 1111 1111"
    assert "123" not in repr(result) and "4111" not in repr(result)


def test_issued_placeholders_skip_those_the_caller_wrote() -> None:
    result = redact("Template [SSN_1], real 123-45-6789")
    assert result.text == "Template [SSN_1], real [SSN_2]"
    assert result.restore("[SSN_1] [SSN_2]") == "[SSN_1] 123-45-6789"


MASKED = (
    {"note": "SSN 123-45-6789", "n": 3, "tags": ["ok", "mail bob@example.com"]},
    {"note": "SSN [SSN_1]", "n": 3, "tags": ["ok", "mail [EMAIL_1]"]},
)


@pytest.mark.parametrize(
    ("value", "masked"), [MASKED, ({"plain": "nothing to see", "nested": {"k": [1, 2]}}, None)]
)
def test_mask_replaces_values_in_any_json_and_keeps_clean_ones_as_they_are(
    value: dict, masked: dict | None
) -> None:
    result = mask(value)
    if masked is None:
        assert result is value
    else:
        assert result == masked


# -- one scan: the decision's own search gives redaction its spans ----------------------------
_ALL_ROWS = [r.query for r in load_corpus() + load_corpus(CORPUS_DIR / "adversarial")]


@pytest.mark.parametrize("layout", [False, True])
def test_the_decision_scan_finds_every_value_that_redaction_would(layout: bool) -> None:
    for text in _ALL_ROWS:
        collected = scan_views(text, layout=layout, collect=True).sensitive
        assert list(collected or ()) == sensitive_matches(text, layout=layout), text


def test_a_redacting_decision_searches_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import helpers.gateway.policies.redaction as redaction

    def second_pass(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("redaction searched the query a second time")

    monkeypatch.setattr(redaction, "sensitive_matches", second_pass)
    text = "SSN 1\u200b2\u200b3-45-6789, card 4111.1111.1111.1111"
    decision = engine(PII_ACTION="redact").decide(text, "user-123")
    assert decision.redaction is not None
    assert decision.redaction.text == "SSN [SSN_1], card [CREDIT_CARD_1]"
