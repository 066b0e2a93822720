"""The capability probe: what a gateway offers, asked once per base URL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from helpers.client import capabilities
from helpers.client.capabilities import Capabilities, forget, probe
from helpers.errors import GatewayUnavailable
from helpers.gateway.app import EXTENSIONS

from .conftest import ThreadedGateway


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    forget()
    yield
    forget()


def counting(bodies: list[tuple[int, object]]) -> tuple[httpx.Client, list[str]]:
    """A client whose /health answers come from ``bodies`` in turn, recording each call."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        status, body = bodies[min(len(calls), len(bodies)) - 1]
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status)

    return httpx.Client(transport=httpx.MockTransport(handler)), calls


def test_the_embedded_gateway_lists_its_extensions(gateway: ThreadedGateway) -> None:
    caps = probe(gateway.url)
    assert caps.extensions == frozenset(EXTENSIONS) and not caps.stock
    assert caps.supports("audit_records", "idempotent_audits")
    assert caps.service == "axonflow-agent"


def test_compatibility_mode_offers_nothing(
    make_gateway: Callable[..., ThreadedGateway],
) -> None:
    caps = probe(make_gateway(compat="axonflow").url)
    assert caps.stock and not caps.supports("audit_records")
    assert caps.missing("reply_check", "audit_records") == ("reply_check", "audit_records")


def test_answers_are_cached_per_base_url() -> None:
    http, calls = counting([(200, {"status": "healthy", "extensions": ["reply_check"]})])
    first = probe("http://gw.test/", http=http)
    second = probe("http://gw.test", http=http)
    assert first is second and calls == ["http://gw.test/health"]
    probe("http://other.test", http=http)
    assert len(calls) == 2


def test_refresh_asks_again() -> None:
    http, calls = counting([(200, {"extensions": ["reply_check"]}), (200, {"status": "healthy"})])
    assert probe("http://gw.test", http=http).supports("reply_check")
    assert probe("http://gw.test", http=http, refresh=True).stock
    assert probe("http://gw.test", http=http).stock and len(calls) == 2


@pytest.mark.parametrize(
    "body",
    [{"status": "healthy"}, {"extensions": "reply_check"}, ["reply_check"], None],
)
def test_anything_but_a_list_of_names_means_no_extensions(body: object) -> None:
    http, _ = counting([(200, body)])
    assert probe("http://gw.test", http=http).extensions == frozenset()


def test_a_degraded_gateway_still_says_what_it_offers() -> None:
    http, _ = counting([(503, {"status": "degraded", "extensions": ["audit_records"]})])
    assert probe("http://gw.test", http=http).supports("audit_records")


def test_nothing_answering_is_a_clear_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(GatewayUnavailable, match=r"http://gw.test/health failed \(ConnectError\)"):
        probe("http://gw.test", http=http)
    assert "http://gw.test" not in capabilities._cache  # a failure is not remembered


def test_a_server_error_without_a_body_is_unavailable() -> None:
    http, _ = counting([(502, None)])
    with pytest.raises(GatewayUnavailable, match="answered 502"):
        probe("http://gw.test", http=http)


def test_repr_says_what_it_found() -> None:
    caps = Capabilities.from_health("http://gw.test", {"service": "axonflow-agent",
                                                        "version": "2.6.0"})  # fmt: skip
    assert repr(caps) == "<Capabilities http://gw.test axonflow-agent 2.6.0: no extensions>"
