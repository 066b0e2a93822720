"""What the numbers were measured on: recorded with every benchmark result.

:func:`provenance` is the line the measuring notebooks (03, 04, 10, 11) print in their setup
cell, before anything is timed: CPU model and count, the load average at that moment, and
the versions of Python and of the packages on the measured path. A number read without it
cannot be compared with another. Introduced in ``03_latency_analysis.ipynb``.

>>> "load average" in provenance()                                  # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "KEY_PACKAGES",
    "cpu_seconds",
    "load_average",
    "machine_info",
    "machine_line",
    "package_versions",
    "pin_beside",
    "pinned",
    "provenance",
    "rss_mb",
    "write_report",
]

#: The packages on the measured path: the provider SDKs, the HTTP clients, the event loop,
#: the gateway's server, and the analysis.
KEY_PACKAGES = (
    "openai",
    "anthropic",
    "axonflow",
    "httpx",
    "aiohttp",
    "uvloop",
    "starlette",
    "uvicorn",
    "numpy",
    "pandas",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> tuple[float, float, float] | None:
    """The 1-, 5- and 15-minute load averages, or ``None`` where the OS has none (Windows)."""
    try:
        one, five, fifteen = os.getloadavg()
    except (AttributeError, OSError):
        return None
    return (one, five, fifteen)


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed version of each package, ``"not installed"`` for one that is missing."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine_info() -> dict[str, object]:
    return {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_average": load_average(),
        "packages": package_versions(),
    }


def provenance(machine: dict[str, Any] | None = None) -> str:
    """Where a notebook's measurements come from, as the one line it prints before timing.

    It starts with ``measured on:`` so that the notebook tests can mask it whole: the
    machine, its load and the versions differ on every computer that re-runs a notebook.
    """
    m: dict[str, Any] = machine or machine_info()
    load = m.get("load_average")
    cores = m.get("cores") or 1
    if load:
        one, five, fifteen = load
        busy = one / cores
        load_text = (
            f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) "
            f"before the run, {busy:.2f} per core"
        )
    else:
        load_text = "load average not available on this system"
    packages = ", ".join(f"{k} {v}" for k, v in (m.get("packages") or {}).items())
    return (
        f"measured on: {m['cpu']}, {cores} cores, {load_text}; "
        f"{m.get('implementation', 'Python')} {m['python']}; {packages}"
    )


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process in MB (Linux), or None where /proc is unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_line(machine: dict[str, Any], load_before: Sequence[float] | None = None) -> str:
    """One line for a report's printed summary: what the numbers were measured on, and the
    load averages read before the run when given."""
    line = f"machine: {machine['cores']} cores, {machine['cpu']}, Python {machine['python']}"
    if load_before is None:
        return line
    return f"{line} | load before: {[round(x, 2) for x in load_before]}"


def write_report(out: Path, report: dict[str, Any]) -> None:
    """Write a benchmark report as indented JSON, creating its folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


@contextlib.contextmanager
def pinned(gateway_pid: int | None) -> Iterator[dict[str, Any] | None]:
    """Pin the gateway to the last CPU this process may use, and this process (and whatever
    it starts meanwhile) to the others; both are restored on exit.

    Yields what was pinned, for the report, or ``None`` where pinning is not possible (fewer
    than two CPUs, no ``os.sched_setaffinity``, or no gateway process). Kept apart, client
    and gateway stop being moved between cores by the scheduler, which otherwise makes
    each of them start requests with cold caches more often.
    """
    setaffinity = getattr(os, "sched_setaffinity", None)
    if gateway_pid is None or setaffinity is None:
        yield None
        return
    mine = sorted(os.sched_getaffinity(0))
    if len(mine) < 2:
        yield None
        return
    theirs = os.sched_getaffinity(gateway_pid)
    gateway_cpu, client_cpus = mine[-1], mine[:-1]
    setaffinity(gateway_pid, {gateway_cpu})
    setaffinity(0, set(client_cpus))
    try:
        yield {"gateway_cpu": gateway_cpu, "client_cpus": client_cpus}
    finally:
        setaffinity(0, set(mine))
        with contextlib.suppress(ProcessLookupError):  # the gateway may be gone already
            setaffinity(gateway_pid, theirs)


def pin_beside(pid: int, pinning: dict[str, Any] | None) -> None:
    """Pin a second gateway as :func:`pinned` pinned the first, for a comparison in one run.

    A process started inside :func:`pinned` inherits the client's CPUs, so it would share
    them with the client while the first gateway has a CPU of its own. This gives its main
    thread the gateway's CPU and leaves its other threads (the applier, the reader) free on
    every CPU, as the first gateway's are: they were started before it was pinned.
    """
    if pinning is None:
        return
    cpu = pinning["gateway_cpu"]
    every = {cpu, *pinning["client_cpus"]}
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that has just ended
            os.sched_setaffinity(int(task), every)
    os.sched_setaffinity(pid, {cpu})
