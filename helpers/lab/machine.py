"""What the numbers were measured on: recorded with every benchmark result."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["machine_info", "machine_line", "pinned", "rss_mb", "write_report"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, object]:
    return {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process in MB (Linux), or None where /proc is unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def machine_line(machine: dict[str, Any]) -> str:
    """One line for a report's printed summary: what the numbers were measured on."""
    return f"machine: {machine['cores']} cores, {machine['cpu']}, Python {machine['python']}"


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
