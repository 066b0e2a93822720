"""A lesson that needs an extension: the gateway at hand, one started for it, or a skip."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from helpers.client.capabilities import forget
from helpers.extensions import extension_gateway

from .conftest import ThreadedGateway


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    forget()
    yield
    forget()


def test_a_gateway_that_offers_it_is_used_as_is(
    gateway: ThreadedGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    with extension_gateway("audit_records", gateway.url, lesson="Reading the trail") as ext:
        assert ext.ready and ext.url == gateway.url and not ext.embedded
    assert capsys.readouterr().out == ""


def test_a_stock_agent_gets_an_embedded_gateway_started_for_the_lesson(
    make_gateway: Callable[..., ThreadedGateway], capsys: pytest.CaptureFixture[str]
) -> None:
    agent = make_gateway(compat="axonflow")
    with extension_gateway(["audit_records", "idempotent_audits"], agent.url,
                           lesson="Reading the trail") as ext:  # fmt: skip
        assert ext.ready and ext.embedded and ext.url != agent.url
        health = httpx.get(f"{ext.url}/health").json()
        assert {"audit_records", "idempotent_audits"} <= set(health["extensions"])
        service = ext.service
    assert service is not None and not service.running  # stopped on leaving the block
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].startswith("Reading the trail runs on an embedded gateway started for it")
    assert f"the gateway at {agent.url} does not offer audit_records, idempotent_audits" in out[0]


def test_without_starting_one_it_is_a_skip_with_the_reason(
    make_gateway: Callable[..., ThreadedGateway], capsys: pytest.CaptureFixture[str]
) -> None:
    agent = make_gateway(compat="axonflow")
    ext = extension_gateway("reply_check", agent.url, lesson="Checking replies", start=False)
    assert not ext.ready and ext.url is None
    assert ext.reason == f"the gateway at {agent.url} does not offer reply_check"
    assert capsys.readouterr().out == f"skipped Checking replies: {ext.reason}\n"


def test_a_gateway_that_does_not_answer_is_a_skip_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ext = extension_gateway("audit_records", "http://127.0.0.1:9", start=False, quiet=True)
    assert not ext.ready and "did not answer" in str(ext.reason)
    assert capsys.readouterr().out == ""
