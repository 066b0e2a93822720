"""helpers.lab.machine: the provenance line says what a measurement was taken on."""

from __future__ import annotations

import os
import time

from helpers.lab.machine import (
    cpu_seconds,
    load_average,
    machine_info,
    machine_line,
    package_versions,
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
