"""``python -m helpers.service``: run the governed chat service on loopback.

Binds first (port 0 picks a free port), then prints one line with the URL once it serves.
The provider key, for a real provider, comes from the environment through
:class:`helpers.settings.Settings`; against the stand-ins any key works.

Before it starts, the service asks the provider for its model list
(:func:`~helpers.service.app.probe_llm`). What cannot work, a base URL or key the provider
refuses (404, 401, 403) or a server that is not an LLM API, stops it with one line and exit
status 2; a provider that is down or slow for now is one warning line, and the service
starts (each chat then answers 502 or 504 until the provider is back).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from types import FrameType

import uvicorn

from helpers.errors import ProviderBadReply, ProviderError, ProviderRejected
from helpers.settings import DEFAULT_MODELS, Settings

from .app import ChatConfig, create_chat_app, probe_llm


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
    p = argparse.ArgumentParser(
        prog="python -m helpers.service", description="A governed chat service (gateway mode)."
    )
    p.add_argument("--gateway", required=True, help="gateway URL (embedded or AxonFlow)")
    p.add_argument("--llm-url", default=None, help="provider base URL (default: the real API)")
    p.add_argument("--provider", choices=("openai", "anthropic"), default="openai")
    p.add_argument("--model", default=None, help="model (default: settings.DEFAULT_MODELS)")
    p.add_argument("--fail-open", action="store_true", help="answer unchecked if gateway is down")
    p.add_argument("--pre-check-timeout", type=float, default=1.0, help="seconds (default 1)")
    p.add_argument(
        "--llm-timeout",
        type=float,
        default=60.0,
        help="seconds per provider attempt; the SDK retries once (default 60)",
    )
    p.add_argument("--baseline", action="store_true", help="also serve ungoverned /chat/direct")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.load()
    key = settings.openai_api_key if args.provider == "openai" else settings.anthropic_api_key
    model = args.model or DEFAULT_MODELS[args.provider]
    if args.llm_url is None and not key.get():
        print(f"service: no {args.provider} key set and no --llm-url given", file=sys.stderr)
        return 2
    for flag, value in (
        ("--pre-check-timeout", args.pre_check_timeout),
        ("--llm-timeout", args.llm_timeout),
    ):
        if value <= 0:
            print(f"service: {flag} {value} must be > 0", file=sys.stderr)
            return 2
    config = ChatConfig(
        gateway_url=args.gateway,
        llm_url=args.llm_url,
        provider=args.provider,
        model=model,
        api_key=key.get() or "offline-stand-in",
        llm_timeout_s=args.llm_timeout,
        fail_open=args.fail_open,
        pre_check_timeout_s=args.pre_check_timeout,
        baseline=args.baseline,
        gateway_settings=settings,
    )
    where = args.llm_url or f"the {args.provider} API"
    try:
        asyncio.run(probe_llm(config))
    except (ProviderRejected, ProviderBadReply) as exc:  # cannot work: say so and stop
        fix = "fix --llm-url (the server's root: the service adds /v1 for OpenAI) or the key"
        print(f"service: {where} cannot serve chats ({exc}); {fix}", file=sys.stderr)
        return 2
    except ProviderError as exc:  # down or slow for now: each chat answers 502/504 meanwhile
        print(f"service: warning: {where} failed a probe, starting anyway ({exc})", file=sys.stderr)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    uv = uvicorn.Config(
        create_chat_app(config),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )
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
