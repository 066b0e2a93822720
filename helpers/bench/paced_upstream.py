"""A paced OpenAI-compatible upstream for the replies benchmark (a stand-in, not a model).

``python -m helpers.bench.paced_upstream --size 400 --piece 4 --gap-ms 2`` answers every
chat completion with the same deterministic text of about ``size`` characters (a sentence
with a card number and an SSN in it, repeated; with ``--sparse``, prose with one such
sentence every 10,000 characters), streamed ``piece`` characters per chunk every ``gap-ms``
milliseconds, so the time at which the gateway has received its first ``n`` characters is
known. It runs in its own process, like every service the project starts, and prints its
URL once bound. Used by :mod:`helpers.bench.replies`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["create_paced_app", "reply_text"]

_RECORD = (
    "The customer record on file lists card 4111 1111 1111 1111 and SSN 219-09-9998; "
    "the account was opened in March and has two open support tickets. "
)
_PROSE = (
    "Roll new model versions out behind a canary, compare quality, latency and cost with "
    "the current version, and keep the previous one warm so that a rollback takes seconds. "
)


def reply_text(size: int, dense: bool = True) -> str:
    """The answer, whole sentences up to about ``size`` characters: the record sentence (a
    card and an SSN) repeated (``dense``), or plain prose with one record sentence every
    10,000 characters or so."""
    if dense:
        unit = _RECORD
    else:
        unit = _RECORD + _PROSE * (10_000 // len(_PROSE))
    return unit * max(1, size // len(unit)) + (_PROSE * (size % len(unit) // len(_PROSE)))


def create_paced_app(size: int, piece: int, gap_s: float, dense: bool = True) -> Starlette:
    text = reply_text(size, dense)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": "paced-upstream", "standin": True})

    async def chat(request: Request) -> Response:
        body = await request.json()
        base = {"id": "chatcmpl-paced", "created": 0, "model": body.get("model", "paced")}
        usage = {"prompt_tokens": 10, "completion_tokens": size // 4, "total_tokens": 0}
        if not body.get("stream"):
            message = {"role": "assistant", "content": text}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return JSONResponse(
                {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )

        async def events() -> AsyncIterator[bytes]:
            head = {**base, "object": "chat.completion.chunk"}
            for i in range(0, len(text), piece):
                if i and gap_s:
                    await asyncio.sleep(gap_s)
                choice = {"index": 0, "delta": {"content": text[i : i + piece]}}
                yield b"data: " + json.dumps({**head, "choices": [choice]}).encode() + b"\n\n"
            end = {"index": 0, "delta": {}, "finish_reason": "stop"}
            yield b"data: " + json.dumps({**head, "choices": [end]}).encode() + b"\n\n"
            tail = {**head, "choices": [], "usage": usage}
            yield b"data: " + json.dumps(tail).encode() + b"\n\ndata: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.bench.paced_upstream")
    p.add_argument("--size", type=int, default=400, help="characters per answer")
    p.add_argument("--piece", type=int, default=4, help="characters per streamed chunk")
    p.add_argument("--gap-ms", type=float, default=2.0, help="pause between chunks")
    p.add_argument("--sparse", action="store_true", help="one record per 10,000 characters")
    args = p.parse_args(argv)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_paced_app(args.size, args.piece, args.gap_ms / 1000, dense=not args.sparse)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    print(f"paced upstream (a stand-in) listening on http://127.0.0.1:{port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
