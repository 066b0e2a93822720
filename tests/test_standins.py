"""Tests for helpers/standins: the OpenAI and Anthropic stand-ins, driven by the real SDKs.

The server runs for real in a subprocess (``python -m helpers.standins``) at a tiny time
scale; the unmodified ``openai`` and ``anthropic`` SDKs talk to it through ``base_url``.
Unit tests cover the pieces that decide a reply: tokenizer, answer bank, latency model,
faults and pacing. Nothing here needs a key or the network, and nothing asserts speed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from helpers.errors import ConfigError
from helpers.settings import PROJECT_ROOT
from helpers.standins import (
    AnswerBank,
    FaultRates,
    LatencyProfile,
    Simulator,
    Turn,
    count_prompt_tokens,
    count_tokens,
    load_answer_bank,
    load_profiles,
    parse_fail_header,
    request_rng,
    simulate_latency,
    split_tokens,
)
from helpers.standins.faults import retry_after_headers
from helpers.standins.pacing import StandinState, pace
from helpers.standins.simulator import PlannedReply


def plan_reply(model: str, turns: list[Turn]) -> PlannedReply:
    """What the stand-in will answer, with the default answer bank and latency profiles."""
    return Simulator().plan(model, turns)


TIME_SCALE = 0.001
PROVIDER_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
READY = re.compile(
    r"^provider stand-in \(OpenAI \+ Anthropic wire protocol, simulated latency x([0-9.e-]+)\)"
    r" listening on (http://127\.0\.0\.1:\d+)$"
)
QUESTION = "What are best practices for AI model deployment?"
GPT, CLAUDE = "gpt-4o-mini", "claude-3-5-haiku-latest"


# --------------------------------------------------------------------------- the server


class Server:
    """A stand-in subprocess: reads the ready line, polls until it answers."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS}
        cmd = [sys.executable, "-m", "helpers.standins", "--host", "127.0.0.1", "--port", "0"]
        self.proc = subprocess.Popen(
            [*cmd, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
            env=env,
        )
        assert self.proc.stdout is not None
        self.line = self.proc.stdout.readline().rstrip("\n")  # "" if it died first
        match = READY.match(self.line)
        if not match:
            self.stop()
            raise RuntimeError(f"no ready line, got {self.line!r}: {self.stderr}")
        self.url = match.group(2)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, self.stderr = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, self.stderr = self.proc.communicate()
        self.rest_of_stdout = out
        return self.proc.returncode


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server("--time-scale", str(TIME_SCALE), "--seed", "0")
    yield srv
    assert srv.stop() == 0, srv.stderr


@pytest.fixture(scope="module")
def oai(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="any", max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def claude(server: Server) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key="any", max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def raw(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def ask(text: str = QUESTION) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# ------------------------------------------------------------------ OpenAI wire protocol


def test_openai_non_stream_shape_and_usage(oai: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *ask()]
    done = oai.chat.completions.create(model=GPT, messages=messages)
    text = done.choices[0].message.content
    assert done.id.startswith("chatcmpl-") and done.model == GPT
    assert done.system_fingerprint.startswith("fp_")
    assert done.choices[0].finish_reason == "stop"
    turns = [Turn("system", "Be brief."), Turn("user", QUESTION)]
    assert done.usage.prompt_tokens == count_prompt_tokens(turns)
    assert done.usage.completion_tokens == count_tokens(text)
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    # The in-process simulator predicts exactly what the server said.
    predicted = plan_reply(GPT, turns)
    assert predicted.text == text and predicted.answer.topic == "deployment"


def test_openai_stream_equals_non_stream_with_usage(oai: openai.OpenAI) -> None:
    whole = oai.chat.completions.create(model=GPT, messages=ask())
    chunks = list(
        oai.chat.completions.create(
            model=GPT, messages=ask(), stream=True, stream_options={"include_usage": True}
        )
    )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert "".join(pieces) == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == len(pieces) == whole.usage.completion_tokens
    assert last.usage.prompt_tokens == whole.usage.prompt_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_stream_without_usage_has_no_usage_chunk(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model=GPT, messages=ask(), stream=True))
    assert all(c.usage is None and c.choices for c in chunks)


def test_openai_raw_sse_framing(raw: httpx.Client) -> None:
    body = {"model": GPT, "messages": ask(), "stream": True, "max_tokens": 3}
    with raw.stream("POST", "/v1/chat/completions", json=body) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        text = resp.read().decode()
    frames = text.split("\n\n")
    assert frames[-1] == "" and frames[-2] == "data: [DONE]"
    assert all(f.startswith("data: {") for f in frames[:-2])
    assert len(frames[:-2]) == 1 + 3 + 1  # role chunk, one chunk per token, finish chunk


def test_openai_async_stream(server: Server) -> None:
    async def run() -> str:
        async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="any") as client:
            stream = await client.chat.completions.create(model=GPT, messages=ask(), stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream])

    assert asyncio.run(run()) == plan_reply(GPT, [Turn("user", QUESTION)]).text


# --------------------------------------------------------------- Anthropic wire protocol


def test_anthropic_non_stream_shape_and_usage(claude: anthropic.Anthropic) -> None:
    msg = claude.messages.create(model=CLAUDE, max_tokens=300, system="Be brief.", messages=ask())
    text = msg.content[0].text
    assert msg.id.startswith("msg_") and msg.model == CLAUDE and msg.role == "assistant"
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    turns = [Turn("system", "Be brief."), Turn("user", QUESTION)]
    assert msg.usage.input_tokens == count_prompt_tokens(turns)
    assert msg.usage.output_tokens == count_tokens(text)
    assert plan_reply(CLAUDE, turns).text == text


def test_anthropic_stream_equals_non_stream(claude: anthropic.Anthropic) -> None:
    whole = claude.messages.create(model=CLAUDE, max_tokens=300, messages=ask())
    with claude.messages.stream(model=CLAUDE, max_tokens=300, messages=ask()) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == final.content[0].text == whole.content[0].text
    assert final.usage.output_tokens == len(pieces) == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert final.stop_reason == "end_turn"


def test_anthropic_raw_event_sequence(raw: httpx.Client) -> None:
    body = {"model": CLAUDE, "max_tokens": 4, "stream": True, "messages": ask()}
    with raw.stream("POST", "/v1/messages", json=body) as resp:
        text = resp.read().decode()
    names = []
    for frame in filter(None, text.split("\n\n")):
        event, data = frame.split("\n")
        name = event.removeprefix("event: ")
        assert json.loads(data.removeprefix("data: "))["type"] == name
        names.append(name)
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_anthropic_async_stream(server: Server) -> None:
    async def run() -> tuple[str, int]:
        async with anthropic.AsyncAnthropic(base_url=server.url, api_key="any") as client:
            async with client.messages.stream(
                model=CLAUDE, max_tokens=300, messages=ask()
            ) as stream:
                text = "".join([t async for t in stream.text_stream])
                return text, (await stream.get_final_message()).usage.output_tokens

    text, tokens = asyncio.run(run())
    assert tokens == count_tokens(text) and text


def test_anthropic_count_tokens(raw: httpx.Client) -> None:
    resp = raw.post("/v1/messages/count_tokens", json={"model": CLAUDE, "messages": ask()})
    assert resp.json() == {"input_tokens": count_prompt_tokens([Turn("user", QUESTION)])}


# ------------------------------------------------------- determinism and request limits


def test_same_request_same_text_but_latency_draw_varies(raw: httpx.Client) -> None:
    body = {"model": GPT, "messages": ask("How do I control cost?")}
    first, second = (raw.post("/v1/chat/completions", json=body) for _ in range(2))
    assert first.json()["choices"] == second.json()["choices"]
    assert first.json()["id"] != second.json()["id"]
    ttft = "x-standin-simulated-ttft-ms"
    assert first.headers[ttft] != second.headers[ttft]


def test_request_seed_selects_among_answers(oai: openai.OpenAI) -> None:
    texts = {
        oai.chat.completions.create(model=GPT, messages=ask(), seed=s).choices[0].message.content
        for s in range(12)
    }
    again = oai.chat.completions.create(model=GPT, messages=ask(), seed=3)
    assert len(texts) >= 2
    assert again.choices[0].message.content in texts


@pytest.mark.parametrize(
    ("api", "limit"),
    [("openai", {"max_tokens": 5}), ("openai", {"max_completion_tokens": 7}),
     ("anthropic", {"max_tokens": 6})],
)  # fmt: skip
def test_max_tokens_truncates(
    api: str, limit: dict[str, int], oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    n = next(iter(limit.values()))
    full = plan_reply(GPT if api == "openai" else CLAUDE, [Turn("user", QUESTION)]).text
    if api == "openai":
        done = oai.chat.completions.create(model=GPT, messages=ask(), **limit)
        text, reason, used = (done.choices[0].message.content, done.choices[0].finish_reason,
                              done.usage.completion_tokens)  # fmt: skip
        assert reason == "length"
    else:
        msg = claude.messages.create(model=CLAUDE, messages=ask(), **limit)
        text, used = msg.content[0].text, msg.usage.output_tokens
        assert msg.stop_reason == "max_tokens"
    assert used == n == len(split_tokens(text)) and full.startswith(text) and text != full


def test_stop_sequences(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    done = oai.chat.completions.create(model=GPT, messages=ask(), stop=["."])
    msg = claude.messages.create(model=CLAUDE, max_tokens=200, messages=ask(), stop_sequences=["."])
    assert "." not in done.choices[0].message.content
    assert done.choices[0].finish_reason == "stop"
    assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == "."
    assert "." not in msg.content[0].text


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"model": GPT, "messages": []}, "messages", "empty_array"),
        ({"model": "", "messages": ask()}, None, None),
        ({"model": GPT, "messages": [{"role": "robot", "content": "x"}]},
         "messages[0].role", "invalid_value"),
        ({"model": GPT, "messages": ask(), "max_tokens": 0}, "max_tokens",
         "integer_below_min_value"),
        ({"model": GPT, "messages": [{"role": "user", "content": 5}]},
         "messages[0].content", "invalid_type"),
        ({"model": GPT, "messages": [{"content": "hi"}]}, "messages[0].role",
         "missing_required_parameter"),
    ],
)  # fmt: skip
def test_openai_bad_requests_raise_bad_request(
    oai: openai.OpenAI, kwargs: dict, param: str | None, code: str | None
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(**kwargs)
    err = info.value
    assert err.status_code == 400 and err.type == "invalid_request_error"
    assert err.param == param and err.code == code
    assert set(err.response.json()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"messages": [{"role": "system", "content": "x"}]}, 'Unexpected role "system"'),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"messages": []}, "at least one message"),
        ({"messages": ask(), "max_tokens": 0}, "max_tokens"),
        # anthropic 2.14's create() has no temperature argument any more; send it raw.
        ({"messages": ask(), "extra_body": {"temperature": 3}}, "temperature"),
    ],
)
def test_anthropic_bad_requests_raise_bad_request(
    claude: anthropic.Anthropic, kwargs: dict, needle: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(**{"model": CLAUDE, "max_tokens": 50, **kwargs})
    body = info.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert needle in body["error"]["message"]
    # As with the real API, the SDK finds the request id in the header.
    assert info.value.request_id == body["request_id"] and body["request_id"].startswith("req_")


@pytest.mark.parametrize(
    ("path", "content", "needle"),
    [
        ("/v1/chat/completions", b"{bad json", "could not parse"),
        ("/v1/chat/completions", b"[1, 2]", "expected an object"),
        ("/v1/chat/completions", b"\xff\xfe", "could not parse"),
        ("/v1/chat/completions", b"[" * 100_000, "could not parse"),
        ("/v1/chat/completions", b'{"messages": []}', "must provide a model"),
        ("/v1/chat/completions", b'{"model": "m"}', "Missing required parameter: 'messages'"),
        ("/v1/chat/completions", b'{"model": "m", "messages": "hi"}', "expected an array"),
        ("/v1/messages", b"{bad json", "not valid JSON"),
        ("/v1/messages", b"null", "expected an object"),
        ("/v1/messages", b'{"model": "m", "messages": []}', "max_tokens: Field required"),
        ("/v1/messages", b'{"max_tokens": 5, "messages": []}', "model: Field required"),
        ("/v1/messages", b'{"model": "m", "max_tokens": 5}', "messages: Field required"),
        ("/v1/messages", b'{"model": "m", "max_tokens": 1e400, "messages": []}', "integer"),
    ],
)
def test_raw_bad_bodies_get_400_json(
    raw: httpx.Client, path: str, content: bytes, needle: str
) -> None:
    resp = raw.post(path, content=content, headers={"content-type": "application/json"})
    assert resp.status_code == 400
    body = resp.json()
    message = body["error"]["message"]
    assert needle in message
    if path == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    else:
        assert body["error"]["type"] == "invalid_request_error"


def _random_json(rng: random.Random, depth: int = 0) -> object:
    choices = ["null", "bool", "int", "float", "str", "list", "dict"] if depth < 3 else ["str"]
    kind = rng.choice(choices)
    if kind == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "dict":
        keys = ["role", "content", "type", "text", "model", "x"]
        return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    scalars = {
        "null": None,
        "bool": rng.random() < 0.5,
        "int": rng.randint(-3, 3),
        "float": rng.uniform(-2, 2),
        "str": rng.choice(["", "user", "assistant", "hi"]),
    }
    return scalars[kind]


def test_random_bodies_never_500(raw: httpx.Client) -> None:
    rng = random.Random(42)
    fields = ["model", "messages", "max_tokens", "stream", "stop", "seed", "system",
              "stop_sequences", "stream_options", "temperature", "n",
              "max_completion_tokens"]  # fmt: skip
    statuses = set()
    for _ in range(150):
        body = {f: _random_json(rng) for f in rng.sample(fields, rng.randint(0, len(fields)))}
        if rng.random() < 0.5:
            body["model"], body["messages"] = GPT, [{"role": "user", "content": "hi"}]
            body["max_tokens"] = rng.choice([1, 3, None])
        for path in ("/v1/chat/completions", "/v1/messages"):
            resp = raw.post(path, json=body)
            statuses.add(resp.status_code)
            assert resp.status_code in (200, 400), (path, body, resp.text)
            if resp.headers["content-type"].startswith("application/json"):
                resp.json()
    assert statuses == {200, 400}


def test_routing_errors_in_each_providers_shape(raw: httpx.Client) -> None:
    missing = raw.post("/v1/nope", json={})
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Invalid URL (POST /v1/nope)"
    missing_a = raw.post("/v1/nope", json={}, headers={"anthropic-version": "2023-06-01"})
    assert missing_a.json()["error"]["type"] == "not_found_error"
    wrong_method = raw.get("/v1/chat/completions")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


def test_every_response_is_labelled(raw: httpx.Client) -> None:
    for resp in (raw.get("/health"), raw.post("/v1/messages", content=b"{")):
        assert resp.headers["x-standin"] == "true"
        assert resp.headers["x-standin-time-scale"] == str(TIME_SCALE)


# ----------------------------------------------------------------------- fault injection


def _retries_taken(server: Server, sdk: str, max_retries: int) -> int:
    """One call carrying ``x-standin-fail: 429x2``; how many retries the SDK needed."""
    header = {"x-standin-fail": "429x2"}
    if sdk == "openai":
        with openai.OpenAI(
            base_url=server.url + "/v1", api_key="k", max_retries=max_retries
        ) as client:
            return client.chat.completions.with_raw_response.create(
                model=GPT, messages=ask(), extra_headers=header
            ).retries_taken
    with anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=max_retries) as client:
        return client.messages.with_raw_response.create(
            model=CLAUDE, max_tokens=50, messages=ask(), extra_headers=header
        ).retries_taken


@pytest.mark.parametrize(
    ("sdk", "rate_limit_error"),
    [("openai", openai.RateLimitError), ("anthropic", anthropic.RateLimitError)],
)
def test_fail_header_then_sdk_retries(
    server: Server, sdk: str, rate_limit_error: type[Exception]
) -> None:
    assert _retries_taken(server, sdk, max_retries=2) == 2
    with pytest.raises(rate_limit_error) as info:
        _retries_taken(server, sdk, max_retries=1)
    response = info.value.response  # type: ignore[attr-defined]
    assert response.status_code == 429
    assert int(response.headers["retry-after-ms"]) >= 1
    assert response.headers["retry-after"].isdigit()


def test_fault_kinds_map_to_provider_errors(
    oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    def anth(kind: str) -> None:
        claude.messages.create(model=CLAUDE, max_tokens=9, messages=ask(),
                               extra_headers={"x-standin-fail": kind})  # fmt: skip

    with pytest.raises(anthropic.OverloadedError):
        anth("529")
    with pytest.raises(anthropic.InternalServerError) as info:
        anth("500")
    assert info.value.response.json()["error"]["type"] == "api_error"
    with pytest.raises(openai.InternalServerError) as oinfo:
        oai.chat.completions.create(
            model=GPT, messages=ask(), extra_headers={"x-standin-fail": "500"}
        )
    assert oinfo.value.status_code == 500 and oinfo.value.type == "server_error"
    with pytest.raises(openai.BadRequestError, match="x-standin-fail"):
        oai.chat.completions.create(
            model=GPT, messages=ask(), extra_headers={"x-standin-fail": "5xx"}
        )


def test_configured_fault_rate_from_cli() -> None:
    srv = Server("--time-scale", "0", "--fault", "429=1")
    try:
        assert READY.match(srv.line).group(1) == "0.0"
        with httpx.Client(base_url=srv.url) as client:
            resp = client.post(
                "/v1/messages", json={"model": CLAUDE, "max_tokens": 5, "messages": ask()}
            )
            assert resp.status_code == 429 and resp.json()["error"]["type"] == "rate_limit_error"
            resp = client.post("/v1/chat/completions", json={"model": GPT, "messages": ask()})
            assert resp.json()["error"]["code"] == "rate_limit_exceeded"
    finally:
        assert srv.stop() == 0


# --------------------------------------------------------------------------- models, CLI


def test_models_listed_per_provider(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    assert {"gpt-4o-mini", "gpt-4o"} <= {m.id for m in oai.models.list()}
    assert "claude-3-5-haiku" in {m.id for m in claude.models.list()}
    assert oai.models.retrieve("gpt-4o-mini-2024-07-18").id == "gpt-4o-mini-2024-07-18"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("no-such-model")


def test_cli_prints_one_line_and_exits_cleanly_on_sigint() -> None:
    srv = Server("--time-scale", "0.5")
    assert READY.match(srv.line).group(1) == "0.5"
    assert srv.stop(signal.SIGINT) == 0
    assert srv.rest_of_stdout == ""


@pytest.mark.parametrize("args", [["--fault", "429=2"], ["--fault", "teapot=0.1"],
                                  ["--time-scale", "-1"]])  # fmt: skip
def test_cli_rejects_bad_options(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "helpers.standins", "--port", "0", *args],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert "provider stand-in:" in done.stderr


# ----------------------------------------------------------------- latency model (units)


@pytest.mark.parametrize(("model", "p50", "p95"), [(GPT, 645, 1094), (CLAUDE, 731, 1106)])
def test_lognormal_reproduces_published_percentiles(model: str, p50: float, p95: float) -> None:
    profile = load_profiles().for_model(model)
    assert (profile.ttft_p50_ms, profile.ttft_p95_ms) == (p50, p95) and not profile.estimate
    rng = random.Random(1234)
    draws = sorted(profile.draw_ttft_ms(rng) for _ in range(40_000))
    assert draws[len(draws) // 2] == pytest.approx(p50, rel=0.02)
    assert draws[int(len(draws) * 0.95)] == pytest.approx(p95, rel=0.03)


def test_lognormal_parameters_formula() -> None:
    p = LatencyProfile("m", "openai", 645, 1094, 105)
    assert p.mu == pytest.approx(6.4693, abs=1e-4)
    assert p.sigma == pytest.approx((6.99760 - 6.46925) / 1.645, abs=1e-4)


def test_published_profiles_cite_their_source() -> None:
    profiles = load_profiles()
    for name in ("gpt-4o-mini", "claude-3-5-haiku"):
        assert "7-day window, ~60,000 probes per model" in profiles.for_model(name).source
    assert profiles.for_model("gpt-4o").estimate and profiles.default.estimate


@pytest.mark.parametrize(
    ("model", "profile"),
    [("gpt-4o-mini", "gpt-4o-mini"), ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
     ("gpt-4o-2024-05-13", "gpt-4o"), ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
     ("claude-haiku-3-5", "claude-3-5-haiku"), ("claude-3-haiku-20240307", "claude-3-haiku"),
     ("some-local-model", "default")],
)  # fmt: skip
def test_profile_resolution(model: str, profile: str) -> None:
    assert load_profiles().for_model(model).name == profile


def test_time_scale_zero_means_no_delay_and_draws_do_not_depend_on_it() -> None:
    at_zero = simulate_latency(GPT, 105, request_rng(1), time_scale=0)
    at_one = simulate_latency(GPT, 105, request_rng(1), time_scale=1)
    assert at_zero.wall_ttft_s == at_zero.wall_total_s == at_zero.wall_per_token_s == 0
    assert at_zero.ttft_s == at_one.ttft_s > 0
    assert at_one.generation_s == pytest.approx(1.0) and at_one.wall_total_s == at_one.total_s
    with pytest.raises(ValueError):
        simulate_latency(GPT, 1, request_rng(1), time_scale=-1)


def test_slow_fault_delays_first_token_tenfold() -> None:
    sim = Simulator(time_scale=0)
    turns = [Turn("user", "hi")]
    normal = sim.plan(GPT, turns, rng=request_rng(5))
    slow = sim.plan(GPT, turns, rng=request_rng(5), slow=True)
    assert slow.latency.ttft_s == pytest.approx(10 * normal.latency.ttft_s) and slow.latency.slowed
    assert slow.text == normal.text


def test_bad_profiles_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("default: {ttft_p50_ms: 900, ttft_p95_ms: 100, tokens_per_s: 5}\n")
    with pytest.raises(ConfigError, match="ttft_p50_ms <= ttft_p95_ms"):
        Simulator(profiles=bad)


def test_state_is_reproducible_for_the_same_sequence() -> None:
    def draws(state: StandinState) -> list[float]:
        return [state.begin("openai", b).rng.random() for b in (b"a", b"b", b"a")]

    one, two = (StandinState(Simulator(seed=3), FaultRates()) for _ in range(2))
    first = draws(one)
    assert first == draws(two)
    assert first[0] != first[2]  # the same body later in the run gets a new draw


def test_pace_batches_only_below_a_millisecond() -> None:
    tokens = [f"t{i}" for i in range(40)]

    async def batches(per_token_s: float) -> list[list[str]]:
        return [list(b) async for b in pace(tokens, per_token_s)]

    instant = asyncio.run(batches(0.0))
    fast = asyncio.run(batches(0.0001))
    assert instant == [tokens]
    assert sum(fast, []) == tokens and len(fast[0]) >= 10
    assert sum(asyncio.run(batches(0.002)), []) == tokens


# -------------------------------------------------------------- tokenizer, answers, faults


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("Hello world", ["Hello", " world"]),
        ("Deployment", ["Deplo", "yment"]),
        (" deployment", [" deplo", "yment"]),
        ("2024-07-18", ["202", "4", "-", "07", "-", "18"]),
        ("a  b\n", ["a", " ", " b", "\n"]),
        ("don't!", ["don", "'", "t", "!"]),
        ("", []),
    ],
)
def test_tokenizer_pieces(text: str, pieces: list[str]) -> None:
    assert split_tokens(text) == pieces


@pytest.mark.parametrize(
    "text",
    ["Grüße aus Köln, 12345 €!", "tabs\tand\n\nlines  ", "snake_case_name", "日本語のテキスト"],
)
def test_tokenizer_round_trips(text: str) -> None:
    assert "".join(split_tokens(text)) == text
    assert count_tokens(text) == len(split_tokens(text)) > 0


def test_tokenizer_ascii_fast_path_matches_general_rule() -> None:
    from helpers.standins import tokens

    rng = random.Random(3)
    alphabet = "abcXYZ 019_.,'-\t\n\x1f"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert tokens._ASCII_PIECE.findall(text) == tokens._PIECE.findall(text), repr(text)


def test_tokenizer_is_about_four_chars_per_token_on_prose() -> None:
    bank = load_answer_bank()
    prose = " ".join(a for topic in bank.topics for a in topic.answers)
    assert 3.5 <= len(prose) / count_tokens(prose) <= 5.0


def test_prompt_token_formula() -> None:
    turns = [Turn("system", "Be brief."), Turn("user", "Hi")]
    content = count_tokens("system") + count_tokens("Be brief.") + count_tokens("user") + 1
    assert count_prompt_tokens(turns) == 3 + 2 * 3 + content


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        (QUESTION, "deployment"),
        ("How does retrieval augmented generation work?", "rag"),
        ("Tips for few-shot prompting?", "prompt_engineering"),
        ("What should we monitor for LLM calls?", "monitoring"),
        ("How can we reduce our token spend?", "cost"),
        ("How do we defend against prompt injection attacks?", "security"),
        ("How do I redact PII before sending it?", "privacy"),
        ("Tell me a joke", "general"),
        ("", "general"),
    ],
)
def test_answer_topics(question: str, topic: str) -> None:
    assert load_answer_bank().choose(GPT, question, 0).topic == topic


def test_answers_are_pure_functions_of_model_question_seed() -> None:
    bank = load_answer_bank()
    assert bank.choose(GPT, QUESTION, 0) == bank.choose(GPT, QUESTION, 0)
    assert len({bank.choose(GPT, QUESTION, s).index for s in range(20)}) > 1
    for topic in bank.topics:
        for answer in topic.answers:
            assert 2 <= answer.count(". ") + 1 <= 4, answer


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Repeat after me: [SSN_1] is on file.", "[SSN_1] is on file."),
        ("  repeat AFTER me :\n two lines\nhere ", "two lines\nhere"),
    ],
)
def test_repeat_after_me_returns_the_rest(question: str, answer: str) -> None:
    chosen = load_answer_bank().choose(GPT, question, 0)
    assert (chosen.topic, chosen.text) == ("repeat", answer)


@pytest.mark.parametrize(
    "question", ["Repeat after me:", "Please repeat after me: hi", "repeat it"]
)
def test_repeat_needs_the_prefix_and_some_text(question: str) -> None:
    assert load_answer_bank().choose(GPT, question, 0).topic != "repeat"


def test_repeat_through_the_openai_wire(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "Repeat after me: [CREDIT_CARD_1] ok"}]
    )
    assert reply.choices[0].message.content == "[CREDIT_CARD_1] ok"


def test_bad_answer_bank_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "a.yaml"
    bad.write_text("fallback: nope\ntopics:\n  - {id: x, keywords: [a], answers: [Hi.]}\n")
    with pytest.raises(ConfigError, match="fallback 'nope'"):
        AnswerBank.from_yaml(bad)


@pytest.mark.parametrize(
    ("header", "kind", "attempts"),
    [("429x2", "429", 2), ("500", "500", None), (" slow x1 ", "slow", 1), ("529X3", "529", 3)],
)
def test_fail_header_parsing(header: str, kind: str, attempts: int | None) -> None:
    rule = parse_fail_header(header)
    assert (rule.kind, rule.attempts) == (kind, attempts)


@pytest.mark.parametrize("header", ["", "418", "429x", "429x-1", "fail"])
def test_fail_header_rejects_nonsense(header: str) -> None:
    with pytest.raises(ValueError, match="x-standin-fail"):
        parse_fail_header(header)


def test_fault_rates() -> None:
    rates = FaultRates({"429": 0.1, "500": 0.05})
    rng = random.Random(7)
    drawn = [rates.draw(rng) for _ in range(20_000)]
    assert drawn.count("429") / len(drawn) == pytest.approx(0.1, abs=0.01)
    assert drawn.count("500") / len(drawn) == pytest.approx(0.05, abs=0.01)
    with pytest.raises(ValueError):
        FaultRates({"429": 0.8, "500": 0.3})
    with pytest.raises(ValueError):
        FaultRates.parse(["429"])
    assert retry_after_headers(0) == {"retry-after": "1", "retry-after-ms": "1"}
    assert retry_after_headers(1.0) == {"retry-after": "1", "retry-after-ms": "1000"}
