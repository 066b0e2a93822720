"""The gateway against an outside harness: ``pii-leak-benchmark`` 0.6.0 (Apache-2.0).

The harness binds a capture server that plays the gateway's OpenAI upstream, sends one
prompt with synthetic personal data and credentials (email, SSN, card, AWS key id, GitHub
and Slack tokens) and reads two things from the run: no raw value reached the upstream
(``configured_upstream_boundary``), and the client got the prompt back byte for byte
(``response_fidelity``: the capture echoes what it received, one character per SSE event,
so a masking gateway must restore its placeholders across chunk boundaries). The values are
seeded: ``pii-leak-benchmark ci --seed gateway-ci-v1`` replays the same ones.

* ``/v1/chat/completions`` (streamed) is what the harness speaks, so it is measured as is.
* The negative control (``capture://self``, no gateway) must report LEAK for every type;
  otherwise the capture is blind and a CLEAN verdict here would mean nothing.
* ``/api/request`` is not a protocol the harness speaks. An adapter makes its call with the
  official SDK's ``proxy_llm_call`` and sends the answer back as SSE; a relay in front of
  the capture turns the capture's SSE echo into the JSON ``chat.completion`` a non-streamed provider
  call expects. Neither inspects nor rewrites a value; the capture still sees the request.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pii_leak_benchmark as bench
import pytest
from axonflow import AxonFlow
from axonflow.exceptions import AxonFlowError
from pii_leak_benchmark import selfcheck

from helpers.server import start_gateway

SEED = "gateway-ci-v1"  # the `pii-leak-benchmark ci` default: the CLI replays these values
USER = "user-123"  # an engineer (600 requests/min), not the guest's 10
ALL_TYPES = {"EMAIL", "SSN", "CREDIT_CARD", "AWS_ACCESS_KEY_ID", "GITHUB_TOKEN", "SLACK_TOKEN"}
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the harness nor the gateway it starts may route loopback through a proxy."""
    for name in _PROXIES:
        monkeypatch.delenv(name, raising=False)


def _gateway_env(upstream: str) -> dict[str, str]:
    return {
        "NOTEBOOKS_OFFLINE": "1",
        "PII_ACTION": "redact",
        "SECRET_ACTION": "redact",
        "OPENAI_BASE_URL": upstream,
        "OPENAI_API_KEY": "sk-conformance-dummy",
        "GATEWAY_PROVIDER_RETRIES": "0",
        "GATEWAY_PROVIDER_TIMEOUT_S": "10",
    }


def _run(target: str, capture: Any, tmp_path: Path, specimens: Any = None) -> dict[str, Any]:
    """One seeded harness run over ``capture``; returns the report as written to disk."""
    report = bench.run_http_conformance(
        target,
        session=capture,
        include_credentials=True,
        fixture_seed=SEED,
        extra_headers={"X-User-Token": USER},
        timeout_seconds=10,
        specimens=specimens,
    )
    path = bench.write_conformance_report(report, str(tmp_path / "report.json"))
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _explain(report: dict[str, Any], specimens: Any = None) -> str:
    verdict, reason = selfcheck.verdict_for(report)
    states = [f"{name}={'pass' if c['passed'] else 'FAIL'}" for name, c in report["checks"].items()]
    lines = [f"{verdict}: {reason}", "checks: " + ", ".join(states)]
    if specimens is not None and specimens.client_text != specimens.prompt:
        lines += [f"client sent: {specimens.prompt}", f"client got:  {specimens.client_text}"]
    return "\n".join(lines)


def _assert_clean(report: dict[str, Any], specimens: Any) -> None:
    verdict, _ = selfcheck.verdict_for(report)
    assert set(report["fixture"]["formats"]) == ALL_TYPES
    assert verdict == selfcheck.VERDICT_CLEAN, _explain(report, specimens)
    assert report["checks"]["response_fidelity"]["passed"], _explain(report, specimens)


# -- /v1/chat/completions: the harness's own protocol -----------------------------------------
def test_chat_completions_sends_no_raw_value_upstream_and_restores_every_one(
    tmp_path: Path,
) -> None:
    specimens = bench.OperatorSpecimens()
    with (
        bench.capture_session(capture_port=0) as capture,
        start_gateway(env=_gateway_env(capture.advertised_base_url)) as gw,
    ):
        report = _run(gw.url + "/v1", capture, tmp_path, specimens)
    _assert_clean(report, specimens)


def test_negative_control_without_a_gateway_reports_every_type_leaked(tmp_path: Path) -> None:
    with bench.capture_session(capture_port=0) as capture:
        report = _run("capture://self", capture, tmp_path)
    verdict, _ = selfcheck.verdict_for(report)
    assert verdict == selfcheck.VERDICT_LEAK, _explain(report)
    assert set(report["checks"]["configured_upstream_boundary"]["leaked_entity_types"]) == ALL_TYPES


# -- /api/request: AxonFlow proxy mode, through an adapter and a relay --------------------------
class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return

    def reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Adapter(_Quiet):
    """The harness's streamed chat call, made as the official SDK's ``proxy_llm_call``
    (``POST /api/request``), its answer sent back as the SSE the harness reads."""

    def do_POST(self) -> None:
        chat = json.loads(self.rfile.read(int(self.headers["content-length"])))
        query = chat["messages"][-1]["content"]
        context = {"provider": "openai", "model": chat["model"]}
        url = self.server.target  # type: ignore[attr-defined]

        async def call() -> Any:
            async with AxonFlow(endpoint=url, client_id="conformance", cache_enabled=False) as ax:
                return await ax.proxy_llm_call(USER, query, "chat", context)

        try:
            answer = asyncio.run(call())
        except AxonFlowError as exc:  # a block or a refusal: the harness sees an HTTP error
            self.reply(403, "application/json", json.dumps({"error": str(exc)}).encode())
            return
        if not answer.success:  # a provider failure
            self.reply(502, "application/json", json.dumps({"error": answer.error}).encode())
            return
        events = [{"choices": [{"delta": {"content": ch}}]} for ch in answer.data["data"]]
        sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        self.reply(200, "text/event-stream", sse.encode())


class _Relay(_Quiet):
    """The gateway's upstream: each request goes on to the capture unchanged, and the capture's
    SSE echo comes back as the JSON ``chat.completion`` a non-streamed call expects."""

    _HOP = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in self._HOP}
        url = self.server.target + self.path  # type: ignore[attr-defined]
        reply = httpx.request(self.command, url, content=raw, headers=headers, timeout=10)
        streamed = raw and json.loads(raw).get("stream")
        if streamed or not reply.headers.get("content-type", "").startswith("text/event-stream"):
            self.reply(reply.status_code, reply.headers.get("content-type", ""), reply.content)
            return
        data = [line[5:].strip() for line in reply.text.splitlines() if line.startswith("data:")]
        events = [json.loads(d) for d in data if d != "[DONE]"]
        text = "".join(event["choices"][0]["delta"]["content"] for event in events)
        completion = {
            "id": "chatcmpl-conformance",
            "object": "chat.completion",
            "created": 0,
            "model": json.loads(raw)["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
        self.reply(200, "application/json", json.dumps(completion).encode())

    do_GET = do_POST


@contextmanager
def _serve(handler: type[BaseHTTPRequestHandler], target: str) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.target = target  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_api_request_sends_no_raw_value_upstream_and_restores_every_one(tmp_path: Path) -> None:
    specimens = bench.OperatorSpecimens()
    with (
        bench.capture_session(capture_port=0) as capture,
        _serve(_Relay, capture.advertised_base_url.removesuffix("/v1")) as relay,
        start_gateway(env=_gateway_env(relay + "/v1")) as gw,
        _serve(_Adapter, gw.url) as adapter,
    ):
        report = _run(adapter + "/v1", capture, tmp_path, specimens)
    _assert_clean(report, specimens)


# -- replies: the v2 profile (streamed answers, split at every position) -------------------------
V2_SEED = "5eed0019"
V2_LABEL = "embedded-gateway"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def v2_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One v2 run (every case, every 2-part split) and its partial-emission pass, against a
    gateway under ``PII_ACTION=redact`` whose upstream is the harness's capture port."""
    from pii_leak_benchmark import partial_emission, v2_emitter

    port = _free_port()
    # The harness's SSNs are unlabelled numbers in the 9xx area, which the SSA's rules reject
    # (the gateway's default): PII_SSN_RULES=layout counts every number in an SSN's layout.
    env = {**_gateway_env(f"http://127.0.0.1:{port}/v1"), "PII_SSN_RULES": "layout"}
    mp = pytest.MonkeyPatch()
    mp.setenv("V2_GATEWAY_HEADERS", json.dumps({"X-User-Token": "svc-loadtest"}))
    for name in _PROXIES:
        mp.delenv(name, raising=False)
    try:
        with start_gateway(env=env) as gw:
            url = gw.url + "/v1/chat/completions"
            kw = {"seed": V2_SEED, "gateway_url": url, "upstream_port": port}
            report, summary = v2_emitter.run_policy(V2_LABEL, oracle="exhaustive-2-part", **kw)
            partial = partial_emission.run_partial_emission(V2_LABEL, **kw)
    finally:
        mp.undo()
    out = tmp_path_factory.mktemp("v2") / "v2.json"
    out.write_text(json.dumps({"report": report, "partial": partial}, default=str))
    return {"report": report, "summary": summary, "partial": partial}


def test_v2_replies_leak_nothing_and_restore_everything(v2_run: dict[str, Any]) -> None:
    summary, report = v2_run["summary"], v2_run["report"]
    keys = ("fidelity_rate", "leak_single_chunk", "leak_adversarial", "delta_frag")
    figures = {k: summary[k] for k in (*keys, "cases_applicable", "cases_attempted")}
    assert summary["cases_applicable"] >= 24, figures  # the tool cases are refused (400)
    assert summary["leak_single_chunk"] == 0 and summary["leak_adversarial"] == 0, figures
    assert summary["fidelity_rate"] == 1.0, figures
    assert report["outcome"] == "pass", (report["outcome"], report.get("outcome_rationale"))


def test_v2_no_fragment_of_a_value_is_emitted_before_it_is_redacted(
    v2_run: dict[str, Any],
) -> None:
    metrics = v2_run["partial"]["metrics"]
    assert metrics["partitions_tried"] > 0
    assert metrics["partial_emission_rate"]["overall"] == 0, metrics["partial_emission_rate"]
