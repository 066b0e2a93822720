"""Hermetic runs for every test and every notebook under nbval (``make test``).

Before anything is collected: ``NOTEBOOKS_OFFLINE=1`` is set and every variable that could
switch to a live service (provider keys, ``AXONFLOW_AGENT_URL``, provider base URLs) is
removed from this process's environment, so neither the tests, nor the servers they start,
nor the notebook kernels nbval starts can read a user's ``.env`` or reach a paid API;
CrewAI's telemetry, trace upload and version check are switched off, and where CrewAI is
installed its data and config folders and ``HOME`` (task outputs, a key file) point at a
temporary home, not the user's. And this process refuses any connection that does not stay
on loopback.

Timeouts: pyproject's ``timeout`` (pytest-timeout) applies to every test; a test marked
``slow`` gets :data:`SLOW_TIMEOUT_S`, and a notebook cell under nbval gets nbval's own cell
timeout plus kernel start-up and a margin, so nbval's message (cell number and source) comes
first.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import socket
import tempfile
from importlib.util import find_spec
from typing import Any

import pytest

from helpers.settings import CREWAI_QUIET, LIVE_SWITCHES, OFFLINE_SWITCH

# The SDKs read these themselves when a client is built without them.
_PROVIDER_ENV = ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")
SLOW_TIMEOUT_S = 600


def _loopback_only(address: Any) -> None:
    if isinstance(address, str | bytes):
        return  # a Unix socket (the notebook kernels' IPC)
    host = str(address[0])
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host.split("%")[0]).is_loopback:
            return
    except ValueError:
        pass
    raise ConnectionRefusedError(f"tests stay on loopback: refused a connection to {host!r}")


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _loopback_only(address)
    return _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _loopback_only(address)
    return _connect_ex(self, address)


def pytest_configure(config: pytest.Config) -> None:
    os.environ[OFFLINE_SWITCH] = "1"
    for name in (*LIVE_SWITCHES, *_PROVIDER_ENV, "GATEWAY_COMPAT"):
        os.environ.pop(name, None)  # GATEWAY_COMPAT: the embedded gateways keep their extensions
    os.environ.update(CREWAI_QUIET)  # CrewAI (its own environment) would phone home otherwise
    if find_spec("crewai"):
        home = tempfile.mkdtemp(prefix="crewai-home-")
        atexit.register(shutil.rmtree, home, ignore_errors=True)
        os.environ["XDG_DATA_HOME"] = os.path.join(home, "data")
        os.environ["XDG_CONFIG_HOME"] = os.path.join(home, "config")
        os.environ["HOME"] = home  # its credentials key goes to ~/.local/share, not XDG's
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cell_timeout = getattr(config.option, "nbval_cell_timeout", None)
    startup = getattr(config.option, "nbval_kernel_startup_timeout", 60)
    for item in items:
        if item.get_closest_marker("timeout"):
            continue  # a test that sets its own limit keeps it
        if cell_timeout is not None and type(item).__name__ == "IPyNbCell":
            item.add_marker(pytest.mark.timeout(float(cell_timeout) + float(startup) + 30))
        elif item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))
