"""helpers.lab.machine: the provenance line says what a measurement was taken on."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from helpers.lab.machine import (
    cpu_seconds,
    load_average,
    machine_info,
    machine_line,
    package_versions,
    pin_beside,
    pinned,
    provenance,
)


def test_provenance_names_cpu_cores_load_python_and_versions() -> None:
    machine = {
        "cpu": "Example CPU 7", "cores": 4, "python": "3.11.7", "implementation": "CPython",
        "load_average": (2.0, 1.0, 0.5), "packages": {"httpx": "0.28.1", "openai": "1.2.3"},
    }  # fmt: skip
    line = provenance(machine)
    assert line.startswith("measured on: Example CPU 7, 4 cores, load average 2.00 / 1.00 / 0.50")
    assert "0.50 per core" in line and "CPython 3.11.7" in line
    assert line.endswith("httpx 0.28.1, openai 1.2.3")


def test_provenance_without_a_load_average_says_so() -> None:
    machine = {"cpu": "c", "cores": 1, "python": "3.12.0", "load_average": None, "packages": {}}
    assert "load average not available" in provenance(machine)


def test_this_machine_is_described_with_real_values() -> None:
    info = machine_info()
    assert len(info["load_average"] or (0, 0, 0)) == 3 and load_average() is not None
    assert package_versions(("pytest", "surely-not-a-package-xyz")) == {
        "pytest": __import__("pytest").__version__,
        "surely-not-a-package-xyz": "not installed",
    }
    assert provenance().startswith(f"measured on: {info['cpu']}, {info['cores']} cores")


def test_the_machine_line_adds_the_load_before_the_run_when_given() -> None:
    machine = {"cpu": "Example CPU 7", "cores": 4, "python": "3.11.7"}
    assert machine_line(machine) == "machine: 4 cores, Example CPU 7, Python 3.11.7"
    assert machine_line(machine, (2.0, 1.234, 0.5)).endswith(" | load before: [2.0, 1.23, 0.5]")


def test_cpu_seconds_grow_while_this_process_works() -> None:
    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert cpu_seconds(os.getpid()) > before


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pinning needs os.sched_setaffinity and two CPUs",
)
def test_a_second_gateway_is_pinned_as_the_first_not_with_the_client() -> None:
    """A process started inside pinned() inherits the client's CPUs; pin_beside gives its main
    thread the gateway's CPU and its other threads every CPU, as the first gateway has."""
    code = "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start(); "
    code += "print('up', flush=True); time.sleep(30)"
    everything = os.sched_getaffinity(0)
    with _sleeper(code) as first, pinned(first.pid) as pinning:
        assert pinning is not None
        with _sleeper(code) as second:
            assert os.sched_getaffinity(second.pid) == set(pinning["client_cpus"])
            pin_beside(second.pid, pinning)
            threads = {int(t) for t in os.listdir(f"/proc/{second.pid}/task")} - {second.pid}
            assert os.sched_getaffinity(second.pid) == {pinning["gateway_cpu"]}
            assert threads and all(os.sched_getaffinity(t) == everything for t in threads)


@contextlib.contextmanager
def _sleeper(code: str) -> Iterator[subprocess.Popen[str]]:
    """A Python process with a second thread, once both run; killed on exit."""
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "up\n"
            yield proc
        finally:
            proc.kill()
