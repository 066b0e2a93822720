"""Run the provider stand-in: ``python -m helpers.standins --host 127.0.0.1 --port 0``.

Binds first (port 0 picks a free port), then prints exactly one line with the URL once the
server accepts connections, for example::

    provider stand-in (OpenAI + Anthropic wire protocol, simulated latency x1.0) listening on http://127.0.0.1:54321

Point the OpenAI SDK at ``<url>/v1`` and the Anthropic SDK at ``<url>``; any API key
works. Runs until SIGTERM or SIGINT and then exits with status 0.
Introduced in ``01_gateway_mode_openai.ipynb``.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from importlib.util import find_spec
from types import FrameType

import uvicorn

from helpers.errors import ConfigError
from helpers.settings import Settings

from .app import create_standin_app, startup_line
from .faults import FaultRates


class _AnnouncingServer(uvicorn.Server):
    """Prints the ready line after uvicorn has started listening, not before."""

    def __init__(self, config: uvicorn.Config, line: str) -> None:
        super().__init__(config)
        self._line = line

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(self._line, flush=True)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    # uvicorn handles SIGTERM/SIGINT itself (graceful shutdown), then re-raises the signal
    # to the handler that was installed before it; this one turns that into exit status 0.
    raise SystemExit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.standins",
        description="Local stand-in for the OpenAI and Anthropic HTTP APIs "
        "(canned answers, simulated latency).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help="multiply simulated delays (0 = none; default STANDIN_TIME_SCALE or 1.0)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=RATE",
        help="inject faults at a rate, KIND in 429, 500, 529, slow (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for answers and draws")
    parser.add_argument("--profiles", default=None, help="latency profiles YAML file")
    parser.add_argument("--answers", default=None, help="answer bank YAML file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        time_scale = (
            args.time_scale if args.time_scale is not None else Settings.load().standin_time_scale
        )
        if time_scale < 0:
            raise ConfigError(f"--time-scale {time_scale} must be >= 0")
        faults = FaultRates.parse(args.fault)
        app = create_standin_app(
            time_scale=time_scale,
            profiles_path=args.profiles,
            answers_path=args.answers,
            faults=faults,
            seed=args.seed,
        )
        sock = _bind(args.host, args.port)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"provider stand-in: {exc}", file=sys.stderr)
        return 2
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    config = uvicorn.Config(
        app,
        loop="uvloop" if find_spec("uvloop") else "asyncio",  # no uvloop on Windows
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
        # An open stream at time scale 1 can last seconds; do not hold up a stop for it.
        timeout_graceful_shutdown=3,
    )
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    try:
        _AnnouncingServer(config, startup_line(url, time_scale)).run(sockets=[sock])
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
