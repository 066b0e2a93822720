"""The gateway benchmark's throughput section: wrk, a separate load generator, if installed.

Without wrk the section is skipped and the report says why; nothing else depends on it.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from helpers.lab.machine import rss_mb

__all__ = ["throughput_section"]

_WRK_LUA = """
wrk.method = "POST"
wrk.body = '{"user_token": "%s", "client_id": "bench", '
  .. '"query": "What are best practices for AI model deployment?"}'
wrk.headers["Content-Type"] = "application/json"
"""


def _wrk(
    url: str, path: str, connections: int, seconds: float, script: Path | None
) -> dict[str, Any]:
    cmd = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    cmd.append(url + path)
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    pct = {m[0]: m[1] + m[2] for m in re.findall(r"\s+(50|90|99)%\s+([\d.]+)(us|ms|s)", text)}
    return {
        "connections": connections,
        "seconds": seconds,
        "requests": int(total.group(1)) if total else 0,
        "requests_per_s": float(rps.group(1)) if rps else 0.0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, sock.groups())) if sock else 0,
        "latency_wrk": {f"p{k}": v for k, v in sorted(pct.items())},
    }


def throughput_section(url: str, pid: int, quick: bool, user: str) -> dict[str, Any]:
    """Pre-checks per second from wrk at 1, 8 and 32 connections, /health at 32, and the
    gateway's resident memory before and after a long run; skipped, saying so, without wrk."""
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (Debian: apt-get install wrk)"}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "precheck.lua"
        script.write_text(_WRK_LUA % user)
        seconds = 2 if quick else 5
        runs = [_wrk(url, "/api/policy/pre-check", c, seconds, script) for c in (1, 8, 32)]
        health = _wrk(url, "/health", 32, seconds, None)
        # Memory: a long run of pre-checks, resident size sampled before and after.
        target = 20_000 if quick else 200_000
        rss_before = rss_mb(pid)
        best = max(r["requests_per_s"] for r in runs) or 1000.0
        # A sustained run is slower than the best short one: the margin keeps it past target.
        seconds = max(2, math.ceil(1.2 * target / best))
        soak = _wrk(url, "/api/policy/pre-check", 32, seconds, script)
        rss_after = rss_mb(pid)
    return {
        "load_generator": "wrk (separate process), POST pre-check, keep-alive",
        "pre_check": runs,
        "health_32": health,
        "memory": {
            "pre_checks": soak["requests"],
            "rss_mb_before": rss_before,
            "rss_mb_after": rss_after,
            "non_2xx": soak["non_2xx"],
        },
    }
