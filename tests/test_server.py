"""helpers.server: start a service in its own process, wait for it, stop it.

Most tests run a tiny throwaway HTTP service written into ``tmp_path``; the gateway and
stand-in tests run the real modules.
"""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from helpers import server
from helpers.errors import GatewayUnavailable
from helpers.server import RunningService, start_gateway, start_service, start_standins

TOY_SERVICE = textwrap.dedent(
    """
    import http.server, json, os, signal, sys, time

    mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
    if mode == "crash":
        print("fatal: cannot open database /nowhere/x.db", file=sys.stderr)
        sys.exit(3)
    if mode == "silent":
        print("warming up, no URL yet", flush=True)
        time.sleep(60)
    if mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = 200, {"status": "healthy"}
            if self.path == "/health" and mode == "unhealthy":
                status = 503
            elif self.path == "/env":
                body = {"probe": os.environ.get("PROBE")}
            elif self.path == "/spam":
                # Far more than a pipe buffer holds: blocks forever unless someone reads.
                for i in range(20000):
                    print("out", i, "x" * 100)
                    print("err", i, "y" * 100, file=sys.stderr)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"toy service listening on http://127.0.0.1:{srv.server_address[1]}")
    srv.serve_forever()
    """
)


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    path = tmp_path / "toy_service.py"
    path.write_text(TOY_SERVICE)
    return path


def test_start_reports_url_pid_and_repr_then_stops(toy: Path) -> None:
    svc = start_service(script=toy, args=["ok"], name="toy")
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", svc.url)
        assert svc.running and svc.returncode is None
        assert repr(svc) == f"<RunningService toy {svc.url} pid={svc.pid}>"
        assert httpx.get(svc.url + "/health").json() == {"status": "healthy"}
    finally:
        code = svc.stop()
    assert code == -15  # ended by SIGTERM
    assert not svc.running
    assert repr(svc).endswith("exited=-15>")
    with pytest.raises(httpx.ConnectError):
        httpx.get(svc.url + "/health")


def test_context_manager_stops_and_stop_is_idempotent(toy: Path) -> None:
    with start_service(script=toy) as svc:
        assert svc.running
    assert not svc.running
    assert svc.stop() == -15


def test_name_defaults_to_script_stem(toy: Path) -> None:
    with start_service(script=toy) as svc:
        assert svc.name == "toy_service"


def test_env_is_added_to_the_childs_environment(toy: Path) -> None:
    with start_service(script=toy, env={"PROBE": "hello"}) as svc:
        assert httpx.get(svc.url + "/env").json() == {"probe": "hello"}


def test_early_exit_raises_with_stderr_tail(toy: Path) -> None:
    with pytest.raises(GatewayUnavailable) as info:
        start_service(script=toy, args=["crash"], name="toy")
    message = str(info.value)
    assert "toy did not start" in message
    assert "exited with code 3" in message
    assert "cannot open database /nowhere/x.db" in message


def test_no_url_within_timeout_raises_and_stops_the_child(toy: Path) -> None:
    with pytest.raises(GatewayUnavailable, match="no URL on stdout within 0.5 s"):
        start_service(script=toy, args=["silent"], ready_timeout=0.5)
    assert not server._running  # nothing left behind for atexit


def test_unhealthy_service_times_out_naming_the_status(toy: Path) -> None:
    with pytest.raises(GatewayUnavailable, match=r"answered 503"):
        start_service(script=toy, args=["unhealthy"], ready_timeout=1.0)


def test_health_path_none_skips_the_poll(toy: Path) -> None:
    with start_service(script=toy, args=["unhealthy"], health_path=None) as svc:
        assert httpx.get(svc.url + "/health").status_code == 503


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(toy: Path) -> None:
    svc = start_service(script=toy, args=["ignore-term"])
    assert svc.stop(timeout=0.5) == -9


def test_kill_is_sigkill(toy: Path) -> None:
    with start_service(script=toy) as svc:
        assert svc.kill() == -9
        assert not svc.running


def test_output_is_drained_so_a_chatty_service_never_blocks(toy: Path) -> None:
    with start_service(script=toy) as svc:
        # 2 MB to each pipe: without the drain threads the child blocks on write.
        assert httpx.get(svc.url + "/spam", timeout=20).status_code == 200
        # The drain threads read on their own schedule: wait (bounded) for the last lines.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            "out 19999" in svc.stdout_tail(5) and "err 19999" in svc.stderr_tail(5)
        ):
            time.sleep(0.05)
        assert "out 19999" in svc.stdout_tail(5)
        assert "err 19999" in svc.stderr_tail(5)


def test_module_mode_runs_python_dash_m(tmp_path: Path) -> None:
    # http.server prints "Serving HTTP on ... (http://127.0.0.1:PORT/) ...".
    args = ["0", "--bind", "127.0.0.1", "--directory", str(tmp_path)]
    with start_service("http.server", args, health_path="/") as svc:
        assert svc.name == "server"
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", svc.url)


def test_exactly_one_of_module_or_script(toy: Path) -> None:
    with pytest.raises(TypeError):
        start_service()
    with pytest.raises(TypeError):
        start_service("http.server", script=toy)


def test_exit_safety_net_stops_what_is_still_running(toy: Path) -> None:
    svc = start_service(script=toy)
    assert svc in server._running
    server._stop_all()
    assert not svc.running
    assert svc not in server._running


# ------------------------------------------------------------------ the real services


def _pre_check_and_audit(url: str) -> tuple[str, str]:
    headers = {"Authorization": "Basic Y29tbXVuaXR5Og=="}
    with httpx.Client(base_url=url, headers=headers) as http:
        ctx = http.post(
            "/api/policy/pre-check",
            json={"user_token": "user-123", "client_id": "community", "query": "Hello"},
        ).json()
        audit = http.post(
            "/api/audit/llm-call",
            json={"context_id": ctx["context_id"], "client_id": "community",
                  "provider": "openai", "model": "gpt-4o-mini"},
        ).json()  # fmt: skip
    return ctx["context_id"], audit["audit_id"]


def test_start_gateway_uses_a_temporary_database_removed_at_stop() -> None:
    svc = start_gateway()
    try:
        assert isinstance(svc, RunningService) and svc.name == "gateway"
        assert httpx.get(svc.url + "/health").json()["status"] == "healthy"
        assert svc.db_path is not None and svc.db_path.parent.name.startswith("gateway-")
        _pre_check_and_audit(svc.url)
        assert svc.db_path.exists()
    finally:
        svc.stop()
    assert not svc.db_path.parent.exists()


def test_given_database_survives_kill_and_restart(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    first = start_gateway(db_path=db)
    try:
        context_id, audit_id = _pre_check_and_audit(first.url)
        assert first.kill() == -9
    finally:
        first.stop()
    assert db.exists()  # a caller's database is never removed
    with start_gateway(db_path=db) as second:
        records = httpx.get(second.url + "/api/audit/records").json()["records"]
    text = repr(records)
    assert context_id in text and audit_id in text


def test_gateway_on_a_busy_port_fails_with_its_own_message() -> None:
    with start_gateway() as first:
        port = first.url.rsplit(":", 1)[1]
        with pytest.raises(GatewayUnavailable, match="cannot bind"):
            start_gateway(port=int(port), ready_timeout=10)


def test_start_standins_answers_models() -> None:
    with start_standins(time_scale=0) as svc:
        assert svc.name == "standins"
        assert httpx.get(svc.url + "/v1/models").status_code == 200
