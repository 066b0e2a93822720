"""Running against a live agent: a lesson's extension gateway, and the compatibility run."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from helpers.client.capabilities import forget
from helpers.live import agent_env, comparison_gateway, extension_gateway, main
from helpers.settings import PROJECT_ROOT

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
    assert out[0].startswith("Reading the trail: on an embedded gateway started for this purpose")
    assert out[0].endswith(f"since the gateway at {agent.url} does not offer audit_records, "
                           "idempotent_audits")  # fmt: skip


def test_without_starting_one_it_is_a_skip_with_the_reason(
    make_gateway: Callable[..., ThreadedGateway], capsys: pytest.CaptureFixture[str]
) -> None:
    agent = make_gateway(compat="axonflow")
    ext = extension_gateway("reply_check", agent.url, lesson="Checking replies", start=False)
    assert not ext.ready and ext.url is None
    assert ext.reason == f"the gateway at {agent.url} does not offer reply_check"
    assert capsys.readouterr().out == f"Checking replies: skipped, since {ext.reason}\n"


def test_a_gateway_that_does_not_answer_is_a_skip_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ext = extension_gateway("audit_records", "http://127.0.0.1:9", start=False, quiet=True)
    assert not ext.ready and "did not answer" in str(ext.reason)
    assert capsys.readouterr().out == ""


def test_an_embedded_gateway_is_the_default_side_of_a_comparison_as_it_is(
    gateway: ThreadedGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    with comparison_gateway(gateway.url, live=False, lesson="The switches") as base:
        assert base.ready and base.url == gateway.url and not base.embedded
    assert capsys.readouterr().out == ""


def test_a_live_agent_is_compared_through_an_embedded_default_gateway(
    make_gateway: Callable[..., ThreadedGateway], capsys: pytest.CaptureFixture[str]
) -> None:
    agent = make_gateway(compat="axonflow")
    with comparison_gateway(agent.url, live=True, lesson="The switches") as base:
        assert base.ready and base.embedded and base.url != agent.url
        assert httpx.get(f"{base.url}/health").json()["status"] == "healthy"
        service = base.service
    assert service is not None and not service.running  # stopped on leaving the block
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("The switches: both sides run on embedded gateways")
    assert f"since the live agent at {agent.url} decides with another detector" in out[0]


def test_the_run_points_the_command_at_a_compatibility_mode_agent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seen = tmp_path / "seen.json"
    probe = (
        "import json, os, sys, httpx; url = os.environ['AXONFLOW_AGENT_URL']; "
        "json.dump({'env': {k: os.environ[k] for k in ('NOTEBOOKS_OFFLINE', "
        "'NOTEBOOKS_LIVE_AGENT')}, 'url': url, 'health': httpx.get(url + '/health').json(), "
        "'records': httpx.get(url + '/api/audit/records').status_code}, open(sys.argv[1], 'w')); "
        "sys.exit(3)"
    )
    assert main(["--", sys.executable, "-c", probe, str(seen)]) == 3  # the command's own code
    got = json.loads(seen.read_text())
    assert got["env"] == {"NOTEBOOKS_OFFLINE": "1", "NOTEBOOKS_LIVE_AGENT": "1"}
    assert "extensions" not in got["health"] and got["records"] == 404
    assert f"at {got['url']}" in capsys.readouterr().out
    with pytest.raises(httpx.ConnectError):  # stopped once the command is done
        httpx.get(got["url"] + "/health")


def test_the_run_needs_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: python -m helpers.live CMD" in capsys.readouterr().err


def test_agent_env_keeps_everything_but_the_agent_offline() -> None:
    assert agent_env("http://127.0.0.1:1") == {
        "NOTEBOOKS_OFFLINE": "1", "NOTEBOOKS_LIVE_AGENT": "1",
        "AXONFLOW_AGENT_URL": "http://127.0.0.1:1",
    }  # fmt: skip


def test_ci_runs_every_notebook_against_the_stand_in_agent() -> None:
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test-crewai\nmake test-live$", ci, re.M)
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^test-live:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe is not None
    runs = recipe.group(1).splitlines()
    assert len(runs) == 2 and all("-m helpers.live " in run for run in runs)
    assert "$(CREW_PY) -m helpers.nbrun" in runs[1]  # notebook 13 in its own environment
