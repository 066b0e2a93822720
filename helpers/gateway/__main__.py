"""``python -m helpers.gateway``: run the embedded gateway on loopback.

Prints one line with its URL and its credential mode once it is ready to serve, then runs
until SIGINT/SIGTERM. It binds 127.0.0.1 by default; any other address needs client
secrets (``GATEWAY_CLIENT_SECRETS`` or ``--clients``) and an operator token
(``GATEWAY_ADMIN_TOKEN``), else it refuses to start and says what to set (``--insecure-bind``
overrides that, with a warning on stderr).
``--compat axonflow`` (or ``GATEWAY_COMPAT=axonflow``) answers as a stock AxonFlow agent:
AxonFlow's endpoints, fields and metric names only (docs/compat.md).
``--port 0`` picks a free port. Options override the matching environment settings. Log
lines go to stderr from a thread of their own (:mod:`.logsink`), so a stderr nobody reads
can never hold up a request.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from importlib.util import find_spec
from pathlib import Path

import uvicorn

from helpers.errors import ConfigError
from helpers.settings import COMPAT_MODES, Settings

from .app import create_app
from .logsink import BackgroundLog


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m helpers.gateway",
        description="Embedded governance gateway speaking AxonFlow's gateway-mode HTTP API.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one (default 8080)")
    p.add_argument("--db", default="gateway.db", help="SQLite audit database (default gateway.db)")
    p.add_argument("--users", type=Path, help="user directory YAML (default data/users.yaml)")
    p.add_argument(
        "--policies", type=Path, help="custom policies YAML (default data/policies.yaml)"
    )
    p.add_argument("--pricing", type=Path, help="pricing table YAML (default data/pricing.yaml)")
    p.add_argument(
        "--fsync", action="store_true", help="fdatasync every acknowledgement (power-loss durable)"
    )
    p.add_argument(
        "--clients",
        type=Path,
        help="clients file, one client_id:secret a line (e.g. data/clients); turns on "
        "client authentication",
    )
    p.add_argument(
        "--compat",
        choices=COMPAT_MODES,
        help="axonflow: behave like a stock AxonFlow agent on the wire, every extension off "
        "(default: GATEWAY_COMPAT, else off)",
    )
    p.add_argument(
        "--insecure-bind",
        action="store_true",
        help="bind a non-loopback --host without client secrets or an operator token "
        "(anyone on the network may use the gateway and its provider keys)",
    )
    return p


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def open_bind_problem(host: str, settings: Settings) -> str | None:
    """Why binding ``host`` would open the gateway to the network; None when it would not.

    Loopback is always fine (the tutorials' posture). Any other address needs both client
    secrets (for pre-check, audit and the proxy endpoints) and an operator token (for the
    trail, the reload and the metrics).
    """
    if is_loopback(host):
        return None
    missing = []
    if not settings.authenticated:
        missing.append(
            "client secrets (GATEWAY_CLIENT_SECRETS='app1:secret1,app2:secret2' or "
            "--clients data/clients)"
        )
    if not settings.admin_token:
        missing.append("an operator token (GATEWAY_ADMIN_TOKEN)")
    if not missing:
        return None
    return (
        f"refusing to bind {host}: it is not a loopback address, and without "
        f"{' and '.join(missing)} anyone who can reach it may use the gateway, read its audit "
        "trail, reload its policies and spend its provider keys. Set them, bind 127.0.0.1, "
        "or pass --insecure-bind to start anyway"
    )


def mode_line(settings: Settings) -> str:
    """The start-up line's account of credentials."""
    clients = (
        f"client credentials required ({len(settings.client_secrets)} client(s))"
        if settings.authenticated
        else "community mode: no client credentials required"
    )
    operator = "operator token required" if settings.admin_token else "no operator token"
    compat = f"; compatibility mode: {settings.compat}, extensions off" if settings.compat else ""
    return f"{clients}; {operator}{compat}"


class _AnnouncingServer(uvicorn.Server):
    """Prints the URL only after startup (lifespan done), so a reader of stdout can connect."""

    url = ""
    mode = ""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(
                f"axonflow-compatible gateway (embedded) listening on {self.url} ({self.mode})",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, object] = {}
    if args.users:
        overrides["users_file"] = args.users
    if args.policies:
        overrides["policies_file"] = args.policies
    if args.pricing:
        overrides["pricing_file"] = args.pricing
    if args.fsync:
        overrides["fsync"] = True
    if args.clients:
        overrides["clients_file"] = args.clients
    if args.compat:
        overrides["compat"] = "" if args.compat == "off" else args.compat
    try:
        settings = Settings.load(**overrides)
        app = create_app(settings, db_path=args.db)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    problem = open_bind_problem(args.host, settings)
    if problem is not None and not args.insecure_bind:
        print(f"gateway: {problem}.", file=sys.stderr)
        return 2
    if problem is not None:
        print(
            f"gateway: WARNING --insecure-bind: {args.host} is reachable from the network "
            "and the gateway is open: anyone who can reach it may use it, read its trail "
            "and spend its provider keys.",
            file=sys.stderr,
            flush=True,
        )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(
            f"gateway: cannot bind {args.host}:{args.port}: {exc.strerror}. "
            "Pick another --port, or 0 for a free one.",
            file=sys.stderr,
        )
        return 2
    host, port = sock.getsockname()[:2]
    background = BackgroundLog(sys.stderr).install()
    config = uvicorn.Config(
        app,
        loop="uvloop" if find_spec("uvloop") else "asyncio",  # no uvloop on Windows
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,  # uvicorn's records go to the root logger, so through the queue too
        log_level="warning",
        proxy_headers=False,  # loopback service: no proxy in front, no header rewriting
        server_header=False,
        backlog=2048,
    )
    server = _AnnouncingServer(config)
    server.url = f"http://{host}:{port}"
    server.mode = mode_line(settings)
    try:
        server.run(sockets=[sock])
    finally:
        background.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
