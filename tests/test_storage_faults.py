"""Storage faults never wedge the gateway: each is answered fast, reported, and recovered from.

One test per row of the fault matrix. Each makes the fault as really as this machine allows
(a full filesystem, a second connection holding SQLite's write lock, SQLite refusing writes,
or a failing or stalling ``write``/``fdatasync`` injected at the store's boundary, the
acknowledgement log), then checks the same things: how the gateway answers and how fast,
what ``/health`` says, that it recovers with no restart, and that every acknowledged row,
and nothing it refused, is in the trail, after recovery and after a restart.

Bounds are generous for a slow shared machine; the client's timeout still fails a test
long before anything could pass for a hang.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from helpers.gateway.store import AuditStore, acklog, audit_store, commits
from helpers.settings import PROJECT_ROOT
from tests.conftest import stored_contexts

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="faults are made the Linux way")

PRE = "/api/policy/pre-check"
AUDIT = "/api/audit/llm-call"
#: A fault that is known is answered in milliseconds; this leaves room for a busy machine.
FAST_S = 2.0
#: A stall is given up on after STALL_AFTER_S (1 s) and a check.
STALL_BOUND_S = 3.0
#: The client gives up here: a wedged gateway fails the test, it never passes as slow.
CLIENT_TIMEOUT_S = 10.0
RECOVER_S = 15.0


@dataclass(frozen=True, slots=True)
class Answer:
    """One reply as a client saw it."""

    status: int
    seconds: float
    body: dict[str, object]
    retry_after: str | None

    @property
    def error(self) -> str:
        return str(self.body.get("error", ""))


@dataclass
class Traffic:
    """Pre-checks, each audited, sent one after another; what was acknowledged and refused."""

    http: httpx.Client
    contexts: set[str] = field(default_factory=set)
    audits: set[str] = field(default_factory=set)
    refused: list[Answer] = field(default_factory=list)
    sent: int = 0

    def call(self, method: str, path: str, **kw: object) -> Answer:
        started = time.monotonic()
        r = self.http.request(method, path, **kw)  # type: ignore[arg-type]
        seconds = time.monotonic() - started
        return Answer(r.status_code, seconds, r.json(), r.headers.get("retry-after"))

    def pair(self) -> bool:
        """One pre-check and, if acknowledged, its audit; True when both were acknowledged."""
        self.sent += 1
        query = {"user_token": "svc-loadtest", "client_id": "acme", "query": f"q{self.sent}"}
        pre = self.call("POST", PRE, json=query)
        if pre.status != 200:
            self.refused.append(pre)
            return False
        self.contexts.add(str(pre.body["context_id"]))
        audit = self.call("POST", AUDIT, json=_audit(str(pre.body["context_id"])))
        if audit.status != 200:
            self.refused.append(audit)
            return False
        self.audits.add(str(audit.body["audit_id"]))
        return True

    def until_refused(self, limit: int = 200) -> Answer:
        """Send pairs until one is refused; that refusal."""
        for _ in range(limit):
            if not self.pair():
                return self.refused[-1]
        raise AssertionError(f"{limit} pairs and no refusal")

    def health(self) -> Answer:
        return self.call("GET", "/health")

    def stored(self) -> tuple[set[str], set[str]]:
        """Context and audit ids in the trail, read through the gateway."""
        page = self.call("GET", "/api/audit/records", params={"limit": 10_000})
        assert page.status == 200, page.body
        rows = page.body["records"]
        assert isinstance(rows, list)
        return {r["context_id"] for r in rows}, {r["audit_id"] for r in rows if r["audit_id"]}


def _audit(context_id: str) -> dict[str, object]:
    return {
        "context_id": context_id,
        "client_id": "acme",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "token_usage": {"prompt_tokens": 3, "completion_tokens": 5},
    }


def _assert_refused(answer: Answer, says: str, within: float = FAST_S) -> None:
    """A storage 503: fast, Retry-After, a message that says storage and what failed."""
    assert answer.status == 503, answer
    assert answer.seconds < within, f"answered in {answer.seconds:.2f} s: {answer}"
    assert answer.retry_after == "1"
    assert "storage is unavailable" in answer.error and says in answer.error, answer.error


def _assert_degraded(traffic: Traffic, says: str) -> Answer:
    health = traffic.health()
    assert health.status == 503 and health.seconds < FAST_S, health
    assert health.body["status"] == "degraded" and says in str(health.body["reason"]), health
    assert health.retry_after == "1" and health.body["since"]
    return health


def _wait_healthy(traffic: Traffic) -> float:
    """Seconds until /health says healthy again; fails after RECOVER_S."""
    started = time.monotonic()
    while (health := traffic.health()).status != 200:
        assert time.monotonic() - started < RECOVER_S, f"still degraded: {health.body}"
        time.sleep(0.05)
    assert health.body["status"] == "healthy"
    return time.monotonic() - started


def _assert_acknowledged_rows(
    traffic: Traffic, stored: tuple[set[str], set[str]], exact: bool = True
) -> None:
    """Every acknowledged row is stored; with ``exact``, nothing refused is."""
    contexts, audits = stored
    assert traffic.contexts <= contexts and traffic.audits <= audits
    if exact:
        assert (contexts, audits) == (traffic.contexts, traffic.audits)


def _stored_after_restart(db: Path) -> tuple[set[str], set[str]]:
    """Open the file as a restart would (replaying the log) and read what it holds."""
    with AuditStore.open(db) as store:
        report = store.verify_chain()
        contexts = {c.context_id for c in stored_contexts(store)}
        audits = {a.audit_id for a in store.list_audits(limit=100_000)}
    assert report.ok, report.problem
    return contexts, audits


# -- a real full disk, against the gateway process ---------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs; skipped where this user may not mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a size-limited tmpfs here (no mount command): {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def _fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with one file; returns it (delete it to free the space)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        for size in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


@pytest.fixture
def gateway_process(small_disk: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """``python -m helpers.gateway`` on the small disk, its stderr a pipe nobody reads, as an
    operator's wrapper once left it: the way a full disk used to wedge the gateway."""
    db = small_disk / "gw.db"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.gateway", "--port", "0", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://\S+", line)
        assert match, f"the gateway did not start: {line!r}"
        yield proc, match.group(0), db
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.slow
def test_disk_full_is_a_fast_503_and_the_gateway_recovers_when_space_returns(
    gateway_process: tuple[subprocess.Popen[str], str, Path],
) -> None:
    proc, url, db = gateway_process
    with httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S) as http:
        traffic = Traffic(http)
        for _ in range(20):
            assert traffic.pair()
        filler = _fill(db.parent)
        first = traffic.until_refused()
        # The log's last page may take a few more rows; then every request is refused, fast,
        # far past the ~62 refusals after which a traceback each used to fill the stderr pipe.
        for _ in range(300):
            assert not traffic.pair()
        for answer in [first, *traffic.refused[-300:]]:
            _assert_refused(answer, "disk full")
        _assert_degraded(traffic, "disk full")
        metrics = http.get("/prometheus").text
        assert "axonflow_gateway_storage_degraded 1" in metrics
        assert 'axonflow_gateway_storage_errors_total{part="log",kind="disk_full"}' in metrics

        filler.unlink()  # space returns; nobody restarts anything
        _wait_healthy(traffic)
        for _ in range(5):
            assert traffic.pair()
        _assert_acknowledged_rows(traffic, traffic.stored())
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    _assert_acknowledged_rows(traffic, _stored_after_restart(db))


# -- faults made in process: SQLite's own errors, and injected ones at the log's boundary ------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "gw.db"


def _client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S)


def _on_db_files(db: Path, real: Callable[..., object], fault: Callable[..., object]):  # type: ignore[no-untyped-def]
    """``real`` for every file descriptor but those of ``db``'s files, ``fault`` for them."""

    def call(fd: int, *args: object) -> object:
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = ""
        return (fault if path.startswith(str(db)) else real)(fd, *args)

    return call


def _raising(code: int) -> Callable[..., object]:
    def fail(fd: int, *args: object) -> object:
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize(
    ("call", "code", "fsync", "says"),
    [
        ("write", errno.EROFS, False, "read-only"),
        ("write", errno.EIO, False, "I/O error"),
        ("write", errno.ENOSPC, True, "disk full"),
        ("fdatasync", errno.EIO, True, "I/O error"),
    ],
)
def test_a_failing_log_write_or_fsync_is_a_fast_503_and_recovers(
    make_gateway,
    db: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
    call: str,
    code: int,
    fsync: bool,
    says: str,
) -> None:
    gw = make_gateway(db=db, fsync=fsync)
    real = getattr(acklog.os, call)
    with _client(gw.url) as http:
        traffic = Traffic(http)
        for _ in range(10):
            assert traffic.pair()
        monkeypatch.setattr(acklog.os, call, _on_db_files(db, real, _raising(code)))
        for _ in range(20):
            assert not traffic.pair()
        for answer in traffic.refused:
            _assert_refused(answer, says)
        _assert_degraded(traffic, f"acknowledgement log: {says}")
        monkeypatch.setattr(acklog.os, call, real)
        _wait_healthy(traffic)  # the probe finds the log working; no request needed
        for _ in range(5):
            assert traffic.pair()
        _assert_acknowledged_rows(traffic, traffic.stored())
    gw.__exit__(None, None, None)
    _assert_acknowledged_rows(traffic, _stored_after_restart(db))


def test_a_stalled_fsync_is_a_503_within_its_bound_and_recovers(
    make_gateway,
    db: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    gw = make_gateway(db=db, fsync=True)
    disk_back = threading.Event()
    real = acklog.os.fdatasync

    def stall(fd: int) -> None:
        disk_back.wait(60)
        real(fd)

    with _client(gw.url) as http:
        traffic = Traffic(http)
        for _ in range(5):
            assert traffic.pair()
        monkeypatch.setattr(acklog.os, "fdatasync", _on_db_files(db, real, stall))
        first = traffic.until_refused()
        _assert_refused(first, "stalled", within=STALL_BOUND_S)  # waited for the stall bound
        for _ in range(10):  # refused before they join the chain: no waiting at all
            assert not traffic.pair()
        for answer in traffic.refused[1:]:
            _assert_refused(answer, "stalled")
        _assert_degraded(traffic, "acknowledgement log: stalled")
        disk_back.set()
        monkeypatch.setattr(acklog.os, "fdatasync", real)
        _wait_healthy(traffic)
        for _ in range(5):
            assert traffic.pair()
        # The row whose wait gave up may still have reached the log: stored, never acknowledged.
        stored = traffic.stored()
        _assert_acknowledged_rows(traffic, stored, exact=False)
        assert len(stored[0]) - len(traffic.contexts) <= 1
    gw.__exit__(None, None, None)
    _assert_acknowledged_rows(traffic, _stored_after_restart(db), exact=False)


@pytest.fixture
def writer_connections(monkeypatch: pytest.MonkeyPatch) -> list[sqlite3.Connection]:
    """The connections the stores open for their applier threads, as they are opened."""
    opened: list[sqlite3.Connection] = []
    real = audit_store.connect

    def connect(path: str, fsync: bool, check_same_thread: bool = True) -> sqlite3.Connection:
        conn = real(path, fsync, check_same_thread=check_same_thread)
        if not check_same_thread:
            opened.append(conn)
        return conn

    monkeypatch.setattr(audit_store, "connect", connect)
    return opened


def test_sqlite_locked_by_another_connection_then_free_again(
    make_gateway,
    db: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """A second connection holds SQLite's write lock past the busy timeout (5 s). The log
    acknowledges meanwhile, up to the backlog bound (made small here); then new rows are
    refused, and so are reads, which cannot see every acknowledged row."""
    monkeypatch.setattr(commits, "MAX_BACKLOG_ROWS", 30)
    gw = make_gateway(db=db)
    with _client(gw.url) as http:
        traffic = Traffic(http)
        for _ in range(5):
            assert traffic.pair()
        blocker = sqlite3.connect(db, timeout=0)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            first = traffic.until_refused()
            assert len(traffic.contexts) >= 5 + 15  # acknowledged through the log meanwhile
            _assert_refused(first, "copy into SQLite", within=STALL_BOUND_S)
            for _ in range(5):
                assert not traffic.pair()
            for answer in traffic.refused[1:]:
                _assert_refused(answer, "copy into SQLite")
            _assert_degraded(traffic, "copy into SQLite")
            read = traffic.call("GET", "/api/audit/records")
            _assert_refused(read, "copy into SQLite", within=STALL_BOUND_S)
            started = time.monotonic()  # past the busy timeout (5 s) it is SQLITE_BUSY
            while "locked" not in str(traffic.health().body.get("reason")):
                assert time.monotonic() - started < RECOVER_S
                time.sleep(0.1)
            time.sleep(1.5)  # its retries stall on the lock again: still reported as locked
            _assert_degraded(traffic, "copy into SQLite: database locked")
        finally:
            blocker.rollback()
            blocker.close()
        _wait_healthy(traffic)
        for _ in range(5):
            assert traffic.pair()
        _assert_acknowledged_rows(traffic, traffic.stored())
    gw.__exit__(None, None, None)
    _assert_acknowledged_rows(traffic, _stored_after_restart(db))


def test_sqlite_read_only_then_writable_again(
    make_gateway,
    db: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
    writer_connections: list[sqlite3.Connection],
) -> None:
    """SQLite refuses every write on the applier's connection (SQLITE_READONLY)."""
    monkeypatch.setattr(commits, "MAX_BACKLOG_ROWS", 30)
    gw = make_gateway(db=db)
    (writer,) = writer_connections
    with _client(gw.url) as http:
        traffic = Traffic(http)
        for _ in range(5):
            assert traffic.pair()
        writer.execute("PRAGMA query_only=ON")
        first = traffic.until_refused()
        _assert_refused(first, "read-only")
        for _ in range(5):
            assert not traffic.pair()
        for answer in traffic.refused:
            _assert_refused(answer, "read-only")
        _assert_degraded(traffic, "copy into SQLite: read-only")
        _assert_refused(traffic.call("GET", "/api/audit/records"), "read-only")
        writer.execute("PRAGMA query_only=OFF")
        _wait_healthy(traffic)
        for _ in range(5):
            assert traffic.pair()
        _assert_acknowledged_rows(traffic, traffic.stored())
        metrics = http.get("/prometheus").text
        assert 'axonflow_gateway_storage_errors_total{part="sqlite",kind="read_only"}' in metrics
        assert "axonflow_gateway_storage_degraded 0" in metrics
    gw.__exit__(None, None, None)
    _assert_acknowledged_rows(traffic, _stored_after_restart(db))
