"""``POST /v1/chat/completions``: the unmodified ``openai`` SDK pointed at the gateway.

Streaming is the point: the pre-check before the first byte, chunks relayed as they come,
the audit written after the last one with the stream's usage, and a clean outcome in the
trail when the provider stalls or the client walks away.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from helpers.errors import StorageUnavailable
from helpers.gateway.openai_compat import parse_chat
from tests.provider_fakes import ProxyFactory, bad_provider, openai_at, records

ASK = [{"role": "user", "content": "What are best practices for AI model deployment?"}]


_OPENED: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Every SDK client a test opened is closed when it ends, so no socket is left for the
    garbage collector to find (and warn about) in a later test."""
    yield
    while _OPENED:
        _OPENED.pop().close()


def sdk(url: str, **kw: object) -> openai.OpenAI:
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused-offline", timeout=10, **kw)
    _OPENED.append(client)
    return client


def test_plain_call_is_answered_and_audited(make_proxy: ProxyFactory) -> None:
    gw = make_proxy()
    raw = sdk(gw.url).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    completion = raw.parse()
    assert completion.choices[0].message.content and completion.usage.completion_tokens > 0
    [row] = records(gw.url)
    assert row["context_id"] == raw.headers["x-axonflow-context-id"]
    assert row["audit_id"] == raw.headers["x-axonflow-audit-id"]
    assert row["completion_tokens"] == completion.usage.completion_tokens
    assert row["prompt_tokens"] == completion.usage.prompt_tokens
    assert row["metadata"]["endpoint"] == "/v1/chat/completions"
    assert row["metadata"]["stream"] is False


def test_stream_relays_every_chunk_and_audits_its_usage(make_proxy: ProxyFactory) -> None:
    gw = make_proxy()
    client = sdk(gw.url)
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=ASK, seed=1)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=ASK,
            seed=1,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices
    assert usage.completion_tokens == plain.usage.completion_tokens
    [row] = [r for r in records(gw.url, expected=2) if r["metadata"]["stream"]]
    assert row["metadata"]["outcome"] == "ok"
    assert row["completion_tokens"] == usage.completion_tokens
    assert row["metadata"]["ttft_ms"] is not None
    assert row["metadata"]["ttft_ms"] <= row["latency_ms"] + 1


def test_stream_without_include_usage_sends_none_but_audits_it(make_proxy: ProxyFactory) -> None:
    gw = make_proxy()
    chunks = list(
        sdk(gw.url).chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True)
    )
    assert chunks and all(c.usage is None and c.choices for c in chunks)
    [row] = records(gw.url)
    assert row["completion_tokens"] > 0 and row["prompt_tokens"] > 0


def test_claude_models_stream_through_anthropic_in_openai_shape(make_proxy: ProxyFactory) -> None:
    gw = make_proxy()
    chunks = list(
        sdk(gw.url).chat.completions.create(
            model="claude-3-5-haiku-20241022",
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "system", "content": "Be brief."}, *ASK],
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text) > 20
    assert chunks[-2].choices[0].finish_reason in ("stop", "length")
    [row] = records(gw.url)
    assert (
        row["provider"] == "anthropic"
        and row["completion_tokens"] == chunks[-1].usage.completion_tokens
    )


@pytest.mark.parametrize(
    ("text", "policy"),
    [("My SSN is 123-45-6789", "sys_pii_ssn"), ("id=7 union all select 1,2,3", "sqli_union_based")],
)
def test_block_is_403_before_the_first_byte(
    make_proxy: ProxyFactory, text: str, policy: str
) -> None:
    gw = make_proxy()
    with pytest.raises(openai.PermissionDeniedError) as caught:
        sdk(gw.url).chat.completions.create(
            model="gpt-4o-mini",
            stream=True,
            messages=[
                {"role": "system", "content": "You help."},
                {"role": "user", "content": text},
            ],
        )
    body = caught.value.body
    assert body["type"] == "policy_violation" and body["policies"][0] == policy
    [row] = records(gw.url)
    assert row["approved"] is False and row["audit_id"] is None


def test_every_message_is_checked_not_only_the_last(make_proxy: ProxyFactory) -> None:
    gw = make_proxy()
    history = [
        {"role": "user", "content": "Card 4111 1111 1111 1111"},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "Thanks"},
    ]
    with pytest.raises(openai.PermissionDeniedError):
        sdk(gw.url).chat.completions.create(model="gpt-4o-mini", messages=history)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": ASK}, "you must provide a model"),
        ({"model": "gpt-4o-mini", "messages": []}, "messages must be a non-empty list"),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "hi"}]},
            "messages[0] needs a role",
        ),
        (
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": [{"type": "image_url"}]}],
            },
            "messages[0].content: only text",
        ),
        ({"model": "gpt-4o-mini", "messages": ASK, "tools": [{}]}, "tools is not supported"),
        ({"model": "gpt-4o-mini", "messages": ASK, "stream": "yes"}, "stream must be a boolean"),
        ({"model": "gpt-4o-mini", "messages": ASK, "max_tokens": -1}, "max_tokens=-1"),
        ({"model": "gpt-4o-mini", "messages": ASK, "temperature": 3}, "temperature=3"),
        ({"model": "gpt-4o-mini", "messages": ASK, "user": 5}, "user must be a string"),
    ],
)
def test_bad_input_is_openai_shaped_400(make_proxy: ProxyFactory, body: dict, message: str) -> None:
    gw = make_proxy()
    r = httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["message"].startswith(message)
    assert records(gw.url, expected=0) == []


def test_invalid_json_is_400(make_proxy: ProxyFactory) -> None:
    gw = make_proxy()
    r = httpx.post(gw.url + "/v1/chat/completions", content=b"{nope", timeout=10)
    assert r.status_code == 400 and r.json()["error"]["message"] == "Invalid request body"


def test_text_parts_are_joined() -> None:
    chat = parse_chat(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                }
            ],
        }
    )
    assert chat.messages == [{"role": "user", "content": "ab"}]


def test_missing_key_is_a_502_that_the_sdk_does_not_retry(make_proxy: ProxyFactory) -> None:
    gw = make_proxy(env={})
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(gw.url, max_retries=2).chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert caught.value.status_code == 502 and "OPENAI_API_KEY" in caught.value.message
    [row] = records(gw.url)  # one attempt, audited as failed
    assert row["metadata"]["outcome"] == "provider_no_key"


def test_provider_hanging_before_the_first_byte_is_a_504(make_proxy: ProxyFactory) -> None:
    with bad_provider("hang") as hung:
        gw = make_proxy(env=openai_at(hung.url, timeout_s="0.3"))
        with pytest.raises(openai.APIStatusError) as caught:
            sdk(gw.url).chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True)
    assert caught.value.status_code == 504
    [row] = records(gw.url)
    assert row["metadata"]["outcome"] == "provider_timeout"


def test_provider_stalling_mid_stream_ends_it_with_an_error(make_proxy: ProxyFactory) -> None:
    with bad_provider("stall") as stalled:
        gw = make_proxy(env=openai_at(stalled.url, timeout_s="0.3"))
        seen = []
        with pytest.raises(openai.APIError, match="timed out"):
            for chunk in sdk(gw.url).chat.completions.create(
                model="gpt-4o-mini", messages=ASK, stream=True
            ):
                seen.append(chunk.choices[0].delta.content)
        # What arrived before the stall is relayed (after the reply inspection's hold-back).
        assert "".join(seen) == "Hello"
        [row] = records(gw.url)
        assert row["metadata"]["outcome"] == "provider_timeout"
        assert row["metadata"]["chunks"] == len(seen)
        assert stalled.closed_by_peer.wait(2)  # the gateway let go of the upstream call


def test_client_leaving_mid_stream_stops_the_upstream_call(make_proxy: ProxyFactory) -> None:
    with bad_provider("stall") as stalled:
        gw = make_proxy(env=openai_at(stalled.url, timeout_s="30"))
        with (
            httpx.Client(timeout=10) as http,
            http.stream(
                "POST",
                gw.url + "/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": ASK, "stream": True},
            ) as response,
        ):
            # The first chunk is relayed at once; its text waits in the reply inspection's
            # hold-back, since more could follow.
            first = next(response.iter_lines())
            assert first.startswith("data: ") and '"role":"assistant"' in first
        left = time.monotonic()
        [row] = records(gw.url)
        assert row["metadata"]["outcome"] == "client_disconnected"
        assert stalled.closed_by_peer.wait(5)
        assert time.monotonic() - left < 5  # not the 30 s provider timeout


def test_audit_storage_failing_after_the_stream_ends_it_with_an_error(
    make_proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection at the storage boundary: the answer has been relayed when the audit
    write fails. The client gets an error event (not a silent [DONE], not a dropped socket),
    and the gateway goes on serving."""
    gw = make_proxy()
    store = gw.server.config.app.state.gateway.store

    def disk_full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as patch:
        patch.setattr(store, "append_audit", disk_full)
        seen = []
        with pytest.raises(openai.APIError, match="could not store its audit"):
            for chunk in sdk(gw.url).chat.completions.create(
                model="gpt-4o-mini", messages=ASK, stream=True
            ):
                seen.extend(c.delta.content or "" for c in chunk.choices)
        assert "".join(seen)  # the answer itself did arrive
    answer = sdk(gw.url).chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert answer.choices[0].message.content
    rows = records(gw.url, expected=2)
    assert [r["audit_id"] is not None for r in rows].count(True) == 1  # only the second call


def test_a_storage_fault_is_a_fast_503_that_says_storage(
    make_proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = make_proxy()
    store = gw.server.config.app.state.gateway.store

    def full(*args: object, **kwargs: object) -> None:
        raise StorageUnavailable("acknowledgement log: disk full")

    body = {"model": "gpt-4o-mini", "messages": ASK}
    with monkeypatch.context() as patch:
        patch.setattr(store, "append_context", full)
        refused = httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=10)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    error = refused.json()["error"]
    assert error["code"] == "storage_unavailable" and "disk full" in error["message"]
    assert httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=10).status_code == 200
