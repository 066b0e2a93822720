"""``python -m helpers.gateway``: run the embedded gateway on loopback.

Prints one line with its URL once it is ready to serve, then runs until SIGINT/SIGTERM.
``--port 0`` picks a free port. Options override the matching environment settings. Log
lines go to stderr from a thread of their own (:mod:`.logsink`), so a stderr nobody reads
can never hold up a request.
"""

from __future__ import annotations

import argparse
import socket
import sys
from importlib.util import find_spec
from pathlib import Path

import uvicorn

from helpers.errors import ConfigError
from helpers.settings import Settings

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
    return p


class _AnnouncingServer(uvicorn.Server):
    """Prints the URL only after startup (lifespan done), so a reader of stdout can connect."""

    url = ""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(f"axonflow-compatible gateway (embedded) listening on {self.url}", flush=True)


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
    try:
        settings = Settings.load(**overrides)
        app = create_app(settings, db_path=args.db)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
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
    try:
        server.run(sockets=[sock])
    finally:
        background.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
