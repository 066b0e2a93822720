"""``python -m helpers.service``: run the governed chat service on loopback.

Binds first (port 0 picks a free port), then prints one line with the URL once it serves.
The provider key, for a real provider, comes from the environment through
:class:`helpers.settings.Settings`; against the stand-ins any key works.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from types import FrameType

import uvicorn

from helpers.settings import Settings

from .app import ChatConfig, create_chat_app


class _AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, line: str) -> None:
        super().__init__(config)
        self._line = line

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(self._line, flush=True)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # after uvicorn's graceful shutdown, which flushes the audits


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.service",
                                description="A governed chat service (gateway mode).")  # fmt: skip
    p.add_argument("--gateway", required=True, help="gateway URL (embedded or AxonFlow)")
    p.add_argument("--llm-url", default=None, help="provider base URL (default: the real API)")
    p.add_argument("--provider", choices=("openai", "anthropic"), default="openai")
    p.add_argument("--model", default=None, help="model (default gpt-4o-mini / claude-3-5-haiku)")
    p.add_argument("--fail-open", action="store_true", help="answer unchecked if gateway is down")
    p.add_argument("--pre-check-timeout", type=float, default=1.0, help="seconds (default 1)")
    p.add_argument("--baseline", action="store_true", help="also serve ungoverned /chat/direct")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.load()
    key = settings.openai_api_key if args.provider == "openai" else settings.anthropic_api_key
    model = args.model or (
        "gpt-4o-mini" if args.provider == "openai" else "claude-3-5-haiku-latest"
    )
    if args.llm_url is None and not key.get():
        print(f"service: no {args.provider} key set and no --llm-url given", file=sys.stderr)
        return 2
    if args.pre_check_timeout <= 0:
        print(f"service: --pre-check-timeout {args.pre_check_timeout} must be > 0", file=sys.stderr)
        return 2
    config = ChatConfig(
        gateway_url=args.gateway, llm_url=args.llm_url, provider=args.provider, model=model,
        api_key=key.get() or "offline-stand-in", fail_open=args.fail_open,
        pre_check_timeout_s=args.pre_check_timeout, baseline=args.baseline,
    )  # fmt: skip
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    uv = uvicorn.Config(create_chat_app(config), loop="uvloop", http="httptools",
                        access_log=False, log_level="warning", lifespan="on")  # fmt: skip
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    mode = "fail-open" if args.fail_open else "fail-closed"
    try:
        _AnnouncingServer(uv, f"governed chat service ({mode}) listening on {url}").run(
            sockets=[sock]
        )
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
