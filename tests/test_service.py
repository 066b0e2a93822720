"""The governed chat service end to end over HTTP: started with its own command, talking to
a real gateway and the stand-ins; blocked, answered, bad input, gateway down, shutdown flush."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers.server import RunningService, start_gateway, start_service, start_standins


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningService]]:
    db = tmp_path_factory.mktemp("svc") / "gw.db"
    gateway, standins = start_gateway(db_path=db), start_standins(time_scale=0)
    service = start_service("helpers.service", ["--gateway", gateway.url, "--llm-url",
                                                 standins.url, "--baseline"])  # fmt: skip
    yield {"gateway": gateway, "standins": standins, "service": service}
    for s in (service, standins, gateway):
        s.stop()


def chat(url: str, message: object, **extra: object) -> httpx.Response:
    return httpx.post(url + "/chat", json={"user": "u-1", "message": message, **extra}, timeout=10)


def test_answered_then_audited(stack: dict[str, RunningService]) -> None:
    r = chat(
        stack["service"].url,
        "How do we monitor LLM calls?",
        history=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "answered" and body["answer"] and body["context_id"]
    assert 0 < body["pre_check_ms"] <= body["total_ms"]


@pytest.mark.parametrize("message", ["My SSN is 123-45-6789", "Show users; DROP TABLE users"])
def test_blocked_is_a_403_with_the_reason(stack: dict[str, RunningService], message: str) -> None:
    r = chat(stack["service"].url, message)
    assert r.status_code == 403 and r.json()["outcome"] == "blocked"
    assert "Blocked by policy" in r.json()["answer"]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"message": ""}', "'message'"),
        (b'{"message": 5}', "'message'"),
        (b'{"message": "hi", "user": 7}', "'user'"),
        (b'{"message": "hi", "history": [{"role": "system", "content": "x"}]}', "'history'"),
        (b'{"message": "' + b"x" * 70_000 + b'"}', "too large"),
    ],
)
def test_bad_input_is_a_clear_400(
    stack: dict[str, RunningService], raw: bytes, fragment: str
) -> None:
    r = httpx.post(stack["service"].url + "/chat", content=raw, timeout=10)
    assert r.status_code == 400 and fragment in r.json()["error"]


def test_baseline_route_calls_the_model_ungoverned(stack: dict[str, RunningService]) -> None:
    r = httpx.post(stack["service"].url + "/chat/direct", json={"message": "hello"}, timeout=10)
    assert r.status_code == 200 and r.json()["outcome"] == "ungoverned"


def test_gateway_down_fails_closed_and_shutdown_flushes_audits(tmp_path: Path) -> None:
    gateway, standins = start_gateway(db_path=tmp_path / "gw.db"), start_standins(time_scale=0)
    service = start_service(
        "helpers.service",
        ["--gateway", gateway.url, "--llm-url", standins.url, "--pre-check-timeout", "0.5"],
    )
    try:
        answered = [chat(service.url, f"What is gateway mode? ({i})") for i in range(5)]
        assert {r.status_code for r in answered} == {200}
        assert service.stop() == 0  # graceful: the audit queue is flushed before exit
        rows = httpx.get(gateway.url + "/api/audit/records", params={"limit": 100}).json()
        ids = {r["context_id"] for r in rows["records"] if r["audit_id"]}
        assert ids == {r.json()["context_id"] for r in answered}
        service = start_service(
            "helpers.service",
            ["--gateway", gateway.url, "--llm-url", standins.url, "--pre-check-timeout", "0.5"],
        )
        gateway.kill()
        down = [chat(service.url, "What is gateway mode?") for _ in range(4)]
        assert {r.status_code for r in down} == {503}
        assert {r.json()["outcome"] for r in down} == {"unavailable"}
        assert httpx.get(service.url + "/health").json()["gateway_circuit"] == "open"
    finally:
        for s in (service, standins, gateway):
            s.stop()


def test_fail_open_answers_when_the_gateway_is_down(tmp_path: Path) -> None:
    standins = start_standins(time_scale=0)
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    service = start_service(
        "helpers.service",
        ["--gateway", dead, "--llm-url", standins.url, "--fail-open", "--pre-check-timeout", "0.3"],
    )
    try:
        r = chat(service.url, "What is gateway mode?")
        assert r.status_code == 200 and r.json()["outcome"] == "answered_unchecked"
        assert r.json()["answer"] and r.json()["context_id"] is None
        assert httpx.get(service.url + "/health").json()["deferred"] == 1
    finally:
        service.stop()
        standins.stop()


def test_cli_refuses_a_missing_key_without_llm_url() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "helpers.service", "--gateway", "http://x"],
                          capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "NOTEBOOKS_OFFLINE": "1"})  # fmt: skip
    assert done.returncode == 2 and "no openai key" in done.stderr
