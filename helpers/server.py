"""Run a service (the embedded gateway, the provider stand-ins) in its own process.

A separate process keeps the service's CPU work out of the notebook's interpreter, so the
latencies the notebooks measure are not distorted by sharing one GIL. A service announces
itself by printing one line with its URL on stdout; :func:`start_service` waits for that
line, then polls a health path until it answers 200. Output is drained in background
threads so a chatty service can never block on a full pipe. Anything still running when
Python exits is stopped. Introduced in ``01_gateway_mode_openai.ipynb``.

>>> with start_gateway() as gw:                                      # doctest: +SKIP
...     print(gw)
<RunningService gateway http://127.0.0.1:41237 pid=12345>
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx

from .errors import GatewayUnavailable
from .settings import PROJECT_ROOT

__all__ = ["RunningService", "start_gateway", "start_service", "start_standins"]

_URL = re.compile(r"https?://[^\s'\"<>]+")
_running: set[RunningService] = set()
_registry_lock = threading.Lock()
_atexit_registered = False


class _Drain(threading.Thread):
    """Reads one pipe to its end, keeping the last lines and spotting the first URL."""

    def __init__(self, stream: IO[str], label: str, watch_url: bool) -> None:
        super().__init__(name=f"drain-{label}", daemon=True)
        self.stream = stream
        self.lines: deque[str] = deque(maxlen=200)
        self.watch_url = watch_url
        self.url: str | None = None
        self.settled = threading.Event()  # set when the URL is seen or the pipe ends

    def run(self) -> None:
        try:
            for line in self.stream:
                self.lines.append(line.rstrip("\n"))
                if self.watch_url and self.url is None and (m := _URL.search(line)):
                    self.url = m.group(0).rstrip(".,;)/")
                    self.settled.set()
        except (OSError, ValueError):  # the pipe was closed under us
            pass
        finally:
            self.settled.set()

    def tail(self, n: int) -> str:
        return "\n".join(list(self.lines)[-n:])


class RunningService:
    """A started service: its ``url``, ``pid``, and how to stop it.

    ``stop()`` asks politely (SIGTERM) and then insists (SIGKILL); ``kill()`` is the
    crash used by durability tests (temporary files are kept until ``stop()``).
    """

    def __init__(
        self,
        name: str,
        url: str,
        process: subprocess.Popen[str],
        drains: tuple[_Drain, _Drain],
        cleanup: Sequence[Callable[[], None]] = (),
        db_path: Path | None = None,
    ) -> None:
        self._name = name
        self._url = url
        self._process = process
        self._drains = drains
        self._cleanup = list(cleanup)
        self._db_path = db_path
        self._lock = threading.Lock()

    name = property(lambda self: self._name, doc="Short label, e.g. ``gateway``.")
    url = property(lambda self: self._url, doc="Base URL, e.g. ``http://127.0.0.1:41237``.")
    pid = property(lambda self: self._process.pid, doc="Process id of the service.")
    db_path = property(lambda self: self._db_path, doc="The gateway's database file, if any.")

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """``None`` while running; negative is the signal that ended it (``-9`` after kill)."""
        return self._process.poll()

    def stdout_tail(self, n: int = 20) -> str:
        return self._drains[0].tail(n)

    def stderr_tail(self, n: int = 20) -> str:
        return self._drains[1].tail(n)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; removes temporary files."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._release()
        return self._process.returncode

    def kill(self) -> int:
        """SIGKILL at once, like a crash. Temporary files stay until :meth:`stop`."""
        if self._process.poll() is None:
            self._process.kill()
        return self._process.wait()

    def _release(self) -> None:
        for drain in self._drains:
            drain.join(timeout=2.0)
        with self._lock:
            cleanup, self._cleanup = self._cleanup, []
        for step in cleanup:
            step()
        for stream in (self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()
        with _registry_lock:
            _running.discard(self)

    def __enter__(self) -> RunningService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        code = self._process.poll()
        state = "" if code is None else f" exited={code}"
        return f"<RunningService {self._name} {self._url} pid={self.pid}{state}>"


def _stop_all() -> None:
    with _registry_lock:
        services = list(_running)
    for service in services:
        service.stop(timeout=2.0)


def _register(service: RunningService) -> None:
    global _atexit_registered
    with _registry_lock:
        _running.add(service)
        if not _atexit_registered:  # registered on first use: importing starts nothing
            atexit.register(_stop_all)
            _atexit_registered = True


def start_service(
    module: str | None = None,
    args: Sequence[str] = (),
    *,
    script: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
    name: str | None = None,
    health_path: str | None = "/health",
    cwd: str | os.PathLike[str] | None = None,
    _cleanup: Sequence[Callable[[], None]] = (),
    _db_path: Path | None = None,
) -> RunningService:
    """Run ``python -m module *args`` (or ``python script *args``) and wait until it serves.

    Ready means: a stdout line contained a URL, and ``GET url + health_path`` answered 200
    (``health_path=None`` skips the poll). ``env`` is added to this process's environment.
    Raises :class:`GatewayUnavailable`, with the tail of the service's stderr, if the
    service exits early or is not ready within ``ready_timeout`` seconds.
    """
    if (module is None) == (script is None):
        raise TypeError("pass exactly one of module= or script=")
    if module is not None:
        cmd = [sys.executable, "-m", module, *map(str, args)]
        name = name or module.rsplit(".", 1)[-1]
    else:
        script_path = Path(os.fspath(script))  # type: ignore[arg-type]
        cmd = [sys.executable, str(script_path), *map(str, args)]
        name = name or script_path.stem
    child_env = dict(os.environ)
    # Unbuffered so the URL line arrives at once; PROJECT_ROOT on the path so
    # `-m helpers...` resolves from any working directory (notebooks run in notebooks/).
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    child_env.update(env or {})

    process = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
        env=child_env,
        cwd=cwd,
    )
    assert process.stdout is not None and process.stderr is not None
    drains = (_Drain(process.stdout, f"{name}-out", True), _Drain(process.stderr, name, False))
    for drain in drains:
        drain.start()
    service = RunningService(name, "", process, drains, _cleanup, _db_path)
    _register(service)

    def fail(why: str) -> GatewayUnavailable:
        service.stop(timeout=2.0)
        tail = service.stderr_tail(15) or "(nothing on stderr)"
        return GatewayUnavailable(
            f"{name} did not start ({' '.join(cmd[1:])}): {why}. Last stderr lines:\n{tail}"
        )

    deadline = time.monotonic() + ready_timeout
    drains[0].settled.wait(max(0.0, deadline - time.monotonic()))
    if drains[0].url is None:
        if drains[0].is_alive():
            raise fail(f"no URL on stdout within {ready_timeout:g} s")
        try:  # stdout ended: the process has exited or is about to
            code = process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            raise fail("it closed its stdout without printing a URL") from None
        raise fail(f"it exited with code {code} before printing its URL")
    service._url = drains[0].url
    if health_path is not None:
        _wait_healthy(service, health_path, deadline, fail)
    return service


def _wait_healthy(
    service: RunningService,
    path: str,
    deadline: float,
    fail: Callable[[str], GatewayUnavailable],
) -> None:
    probe = service.url + path
    last = "no answer yet"
    pause = 0.01
    with httpx.Client(timeout=1.0) as http:
        while True:
            if not service.running:
                raise fail(f"it exited with code {service.returncode} while starting")
            try:
                status = http.get(probe).status_code
                if status == 200:
                    return
                last = f"GET {path} answered {status}"
            except httpx.HTTPError as exc:
                last = f"GET {path} failed: {type(exc).__name__}"
            if time.monotonic() >= deadline:
                raise fail(f"not healthy in time ({last})")
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


def start_gateway(
    db_path: str | os.PathLike[str] | None = None,
    port: int = 0,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
    compat: str | None = None,
) -> RunningService:
    """Start ``python -m helpers.gateway`` on 127.0.0.1 (``port=0`` picks a free port).

    Without ``db_path`` the database lives in a fresh temporary directory that is removed
    when the service is stopped. ``compat="axonflow"`` starts it as a stock AxonFlow agent
    on the wire, ``"off"`` with every extension whatever ``GATEWAY_COMPAT`` says; ``None``
    leaves it to ``GATEWAY_COMPAT``.
    """
    cleanup: list[Callable[[], None]] = []
    if db_path is None:
        tmp = tempfile.mkdtemp(prefix="gateway-")
        db = Path(tmp) / "gateway.db"
        cleanup.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    else:
        db = Path(db_path).resolve()
    args = ["--host", "127.0.0.1", "--port", str(port), "--db", str(db), *extra_args]
    if compat is not None:
        args += ["--compat", compat]
    try:
        return start_service(
            "helpers.gateway",
            args,
            env=env,
            ready_timeout=ready_timeout,
            name="gateway",
            _cleanup=cleanup,
            _db_path=db,
        )
    except BaseException:
        for step in cleanup:  # start_service stopped the process; only the files remain
            step()
        raise


def start_standins(
    time_scale: float = 1.0,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
) -> RunningService:
    """Start the OpenAI/Anthropic stand-ins (``python -m helpers.standins``) on a free port.

    ``time_scale`` multiplies their simulated latency (0 answers at once).
    """
    args = ["--port", "0", "--time-scale", str(time_scale), *extra_args]
    return start_service(
        "helpers.standins",
        args,
        env=env,
        ready_timeout=ready_timeout,
        name="standins",
        health_path="/v1/models",
    )
