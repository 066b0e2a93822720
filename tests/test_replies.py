"""The reply inspection (helpers.gateway.replies): every family, every split point, no value
emitted in part, the caller's own values restored and never reported."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from helpers.gateway.policies.redaction import redact
from helpers.gateway.replies import HOLD_BACK, ReplyInspector
from tests.conftest import ThreadedGateway
from tests.provider_fakes import ProxyFactory, openai_at, records

REDACT = {"pii": "redact", "secret": "redact"}
BLOCK = {"pii": "block", "secret": "block"}
WARN = {"pii": "warn", "secret": "warn"}
GH = "ghp_" + "Q7w8E9r0T1y2U3i4O5p6A7s8D9f0G1h2J3k4"  # built here: no token-shaped literal

# (family value, its placeholder type): one per family the inspector must catch.
VALUES = [
    ("219-09-9998", "SSN"),
    ("4111 1111 1111 1111", "CREDIT_CARD"),
    ("DE89 3704 0044 0532 0130 00", "IBAN"),
    ("jane.doe@example.com", "EMAIL"),
    ("(415) 555-2671", "PHONE"),
    (GH, "GITHUB_TOKEN"),
    ("AKIA" + "Z7Q2XJ4MP9LKW3RT", "AWS_ACCESS_KEY"),
]


def frame(value: str) -> str:
    return f"Here is what the document says: {value}. Anything else?"


def stream(inspector: ReplyInspector, pieces: list[str]) -> list[str]:
    return [inspector.feed(p) for p in pieces] + [inspector.finish()]


@pytest.mark.parametrize(("value", "kind"), VALUES, ids=[k for _, k in VALUES])
def test_a_leaked_value_is_redacted_at_every_split_point(value: str, kind: str) -> None:
    text = frame(value)
    want = frame(f"[{kind}_1]")
    for cut in range(1, len(text)):
        out = stream(ReplyInspector(REDACT), [text[:cut], text[cut:]])
        assert "".join(out) == want, cut
        # No piece ever carries the start of the value: it leaves whole, as a placeholder.
        assert not any(value[:5] in piece for piece in out), cut


@pytest.mark.parametrize(("value", "kind"), VALUES, ids=[k for _, k in VALUES])
def test_one_character_at_a_time(value: str, kind: str) -> None:
    text = frame(value)
    out = stream(ReplyInspector(REDACT), list(text))
    assert "".join(out) == frame(f"[{kind}_1]")
    assert not any(value[:5] in piece for piece in out)


@pytest.mark.parametrize(
    ("value", "blocked"),
    [("219-09-9998", True), (GH, True), ("jane.doe@example.com", False)],
)
def test_block_stops_a_critical_value_and_warns_on_the_rest(value: str, blocked: bool) -> None:
    text = frame(value)
    inspector = ReplyInspector(BLOCK)
    out = "".join(stream(inspector, [text[:40], text[40:]]))
    assert inspector.blocked is blocked
    if blocked:
        assert value[:5] not in out and inspector.verdict.note["blocked_by"].startswith("sys_")
        assert "did not send" in (inspector.reason or "")
    else:
        assert out == text and inspector.verdict.policies == ("sys_pii_email",)


def test_warn_forwards_and_reports() -> None:
    inspector = ReplyInspector(WARN)
    assert inspector.check(frame("219-09-9998")) == frame("219-09-9998")
    assert inspector.verdict.policies == ("sys_pii_ssn",) and not inspector.verdict.redacted


def test_the_callers_own_values_come_back_restored_and_are_not_a_leak() -> None:
    redaction = redact("my SSN is 123-45-6789")
    inspector = ReplyInspector(REDACT, redaction)
    text = "Noted [SSN_1]. Another customer has 219-09-9998."
    for cut in range(1, len(text)):
        inspector = ReplyInspector(REDACT, redaction)
        out = "".join(stream(inspector, [text[:cut], text[cut:]]))
        assert out == "Noted 123-45-6789. Another customer has [SSN_2].", cut
        assert inspector.verdict.note["redacted"] == {"types": ["ssn"], "count": 1}


def test_a_value_the_caller_sent_raw_is_its_own_under_warn() -> None:
    inspector = ReplyInspector(WARN, caller_values=["219-09-9998"])
    assert inspector.check(frame("219-09-9998")) == frame("219-09-9998")
    assert inspector.verdict.policies == ()


def test_a_token_longer_than_the_window_is_held_until_it_ends() -> None:
    token = "sk-" + "proj-" + "Ab1" * 60  # 188 characters: longer than the hold-back
    assert len(token) > HOLD_BACK
    inspector = ReplyInspector(REDACT)
    pieces = ["My key is "] + [token[i : i + 7] for i in range(0, len(token), 7)] + [" ok."]
    out = stream(inspector, pieces)
    assert "".join(out) == "My key is [OPENAI_KEY_1] ok."
    assert not any("Ab1Ab" in piece for piece in out)


def test_text_without_values_flows_with_only_the_window_held() -> None:
    inspector = ReplyInspector(REDACT)
    text = "A long answer about deployment practices. " * 10
    first = inspector.feed(text)
    assert first == text[: len(text) - HOLD_BACK]
    assert inspector.finish() == text[len(text) - HOLD_BACK :]


def test_a_labelled_number_split_anywhere_is_still_labelled() -> None:
    # 9xx fails the SSA's rules; the label before it makes it an SSN, wherever the split falls.
    text = "The applicant's ITIN, as filed, is 912-70-1234, filed in May."
    for cut in range(1, len(text)):
        out = stream(ReplyInspector(REDACT), [text[:cut], text[cut:]])
        assert "".join(out) == "The applicant's ITIN, as filed, is [SSN_1], filed in May.", cut


def test_no_inspection_only_restores() -> None:
    redaction = redact("my SSN is 123-45-6789")
    inspector = ReplyInspector(None, redaction)
    assert inspector.check("[SSN_1] and 219-09-9998") == "123-45-6789 and 219-09-9998"
    assert inspector.verdict.policies == ()


# -- through the gateway: a provider that leaks what the caller never sent ----------------------
LEAK = "The record on file: SSN 219-09-9998, card 4111 1111 1111 1111. Anything else?"


def leaky_provider(text: str, piece: int) -> Starlette:
    """An OpenAI-compatible upstream that answers ``text``, streamed ``piece`` characters per
    chunk (or whole), whatever it was asked: a model repeating a retrieved document."""

    async def chat(request: Request) -> Response:
        body = await request.json()
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": "chatcmpl-leak",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 20, "total_tokens": 25},
                }
            )

        async def events() -> AsyncIterator[bytes]:
            base = {
                "id": "chatcmpl-leak",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
            }
            for i in range(0, len(text), piece):
                delta = {"content": text[i : i + piece]}
                chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
            end = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield b"data: " + json.dumps(end).encode() + b"\n\n"
            usage = {
                **base,
                "choices": [],
                "usage": {"prompt_tokens": 5, "completion_tokens": 20, "total_tokens": 25},
            }
            yield b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture(params=[1, 7, 1000], ids=["1-char chunks", "7-char chunks", "one chunk"])
def leaky(request: pytest.FixtureRequest) -> Iterator[ThreadedGateway]:
    with ThreadedGateway(leaky_provider(LEAK, request.param)) as server:
        yield server


def ask(gw: ThreadedGateway, stream: bool) -> str:
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client:
        messages = [{"role": "user", "content": "Summarise the customer's record."}]
        if not stream:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            return reply.choices[0].message.content or ""
        chunks = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "whole"])
def test_redact_replaces_a_leaked_value_and_the_audit_says_so(
    streamed: bool, leaky: ThreadedGateway, make_proxy: ProxyFactory
) -> None:
    gw = make_proxy(env=openai_at(leaky.url, "5"), pii_action="redact")
    answer = ask(gw, streamed)
    assert answer == "The record on file: SSN [SSN_1], card [CREDIT_CARD_1]. Anything else?"
    [row] = records(gw.url)
    assert row["metadata"]["outcome"] == "ok"
    assert row["metadata"]["reply"] == {
        "policies": ["sys_pii_ssn", "sys_pii_credit_card"],
        "redacted": {"types": ["ssn", "credit_card"], "count": 2},
    }
    assert "219-09" not in json.dumps(row)


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "whole"])
def test_block_refuses_a_leaking_answer_and_nothing_of_the_value_goes_out(
    streamed: bool, leaky: ThreadedGateway, make_proxy: ProxyFactory
) -> None:
    gw = make_proxy(env=openai_at(leaky.url, "5"))  # the default: critical PII blocks
    seen: list[str] = []
    error = openai.PermissionDeniedError if not streamed else openai.APIError
    with pytest.raises(error, match="Reply blocked by policy sys_pii_ssn"):
        if streamed:
            with openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0) as client:
                for chunk in client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "Summarise the record."}],
                    stream=True,
                ):
                    seen.append(chunk.choices[0].delta.content or "")
        else:
            ask(gw, stream=False)
    assert "219" not in "".join(seen)
    [row] = records(gw.url)
    assert row["metadata"]["outcome"] == "reply_blocked"
    assert row["metadata"]["reply"]["blocked_by"] == "sys_pii_ssn"


def test_api_request_inspects_the_answer_too(
    leaky: ThreadedGateway, make_proxy: ProxyFactory
) -> None:
    gw = make_proxy(env=openai_at(leaky.url, "5"), pii_action="redact")
    body = {"query": "Summarise the record.", "user_token": "user-123", "client_id": "c"}
    answer = httpx.post(gw.url + "/api/request", json=body, timeout=10).json()
    assert answer["data"]["data"] == (
        "The record on file: SSN [SSN_1], card [CREDIT_CARD_1]. Anything else?"
    )
    blocked = make_proxy(env=openai_at(leaky.url, "5"))
    refused = httpx.post(blocked.url + "/api/request", json=body, timeout=10)
    assert refused.status_code == 403 and refused.json()["blocked"] is True
    assert refused.json()["policy_info"]["policies_evaluated"][0] == "sys_pii_ssn"


def test_inspection_can_be_switched_off(leaky: ThreadedGateway, make_proxy: ProxyFactory) -> None:
    gw = make_proxy(env=openai_at(leaky.url, "5"), inspect_replies=False)
    assert ask(gw, stream=True) == LEAK
    [row] = records(gw.url)
    assert "reply" not in row["metadata"]
