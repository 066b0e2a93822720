"""CrewAI stays on loopback when the switches in ``CREWAI_QUIET`` are set, and only then.

A crew runs in a fresh interpreter whose name lookups are recorded (and refused off
loopback), so what CrewAI would contact is seen even where it swallows the error. The same
run without the switches is the control: it shows the probe can see CrewAI phone home.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.settings import CREWAI_QUIET, PROJECT_ROOT
from helpers.standins import create_standin_app
from tests.conftest import ThreadedGateway

LOOPBACK = {"127.0.0.1", "localhost", "::1"}

PROBE = r"""
import atexit, json, socket, sys

looked_up = []
# Registered before CrewAI is imported, so it runs after CrewAI's own exit handlers.
atexit.register(lambda: print("LOOKUPS " + json.dumps(sorted(set(looked_up))), flush=True))
real_getaddrinfo = socket.getaddrinfo


def getaddrinfo(host, *args, **kwargs):
    looked_up.append(str(host))
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise socket.gaierror(f"probe: no lookups off loopback ({host})")
    return real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = getaddrinfo
from crewai import LLM, Agent, Crew, Task

llm = LLM(model="gpt-4o-mini", base_url=sys.argv[1], api_key="offline-stand-in")
agent = Agent(role="Researcher", goal="Find facts", backstory="An analyst.", llm=llm)
task = Task(description="State one fact about audits.", expected_output="One sentence.",
            agent=agent)
Crew(agents=[agent], tasks=[task]).kickoff()
"""


@pytest.fixture(scope="module")
def standin_url() -> Iterator[str]:
    with ThreadedGateway(create_standin_app(time_scale=0)) as server:
        yield server.url + "/v1"


def _lookups(standin_url: str, tmp_path: Path, quiet: bool) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k not in CREWAI_QUIET}
    if quiet:
        env.update(CREWAI_QUIET)
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               PYTHONPATH=str(PROJECT_ROOT))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", PROBE, standin_url], env=env, cwd=tmp_path,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = [x for x in done.stdout.splitlines() if x.startswith("LOOKUPS ")]
    return set(json.loads(line.removeprefix("LOOKUPS ")))


@pytest.mark.slow
def test_with_the_switches_a_crew_looks_up_nothing_off_loopback(
    standin_url: str, tmp_path: Path
) -> None:
    looked_up = _lookups(standin_url, tmp_path, quiet=True)
    assert looked_up and looked_up <= LOOPBACK, looked_up


@pytest.mark.slow
def test_without_them_crewai_would_phone_home(standin_url: str, tmp_path: Path) -> None:
    assert _lookups(standin_url, tmp_path, quiet=False) - LOOPBACK


DOTENV_PROBE = r"""
import os
import crewai  # noqa: F401 - its import is what would read the .env

print("KEY " + os.environ.get("OPENAI_API_KEY", "<unset>"))
"""


@pytest.mark.parametrize("quiet", [True, False])
def test_importing_crewai_leaves_a_dotenv_alone_only_with_the_switches(
    tmp_path: Path, quiet: bool
) -> None:
    """CrewAI calls ``load_dotenv()`` on import; without ``PYTHON_DOTENV_DISABLED`` a user's
    key would land in the environment of the kernel and of every service it starts."""
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-from-a-dotenv-file\n")
    env = {k: v for k, v in os.environ.items() if k not in CREWAI_QUIET and k != "OPENAI_API_KEY"}
    if quiet:
        env.update(CREWAI_QUIET)
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               HOME=str(tmp_path), PYTHONPATH=str(PROJECT_ROOT))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", DOTENV_PROBE], env=env, cwd=tmp_path,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = [x for x in done.stdout.splitlines() if x.startswith("KEY ")]
    assert line == ("KEY <unset>" if quiet else "KEY sk-from-a-dotenv-file")
