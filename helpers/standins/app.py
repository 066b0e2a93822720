"""The provider stand-in ASGI app: OpenAI and Anthropic wire protocols on one server.

This is a *local stand-in* for the providers' HTTP APIs, not a model and not a proxy: it
answers from a small answer bank with simulated latency so the unmodified ``openai`` and
``anthropic`` SDKs, pointed at it with ``base_url``, behave as they would against the real
services, offline and reproducibly. Every response carries ``x-standin: true`` and
``x-standin-time-scale``. Introduced in ``01_gateway_mode_openai.ipynb``.

>>> app = create_standin_app(time_scale=0)
>>> [route.path for route in app.routes][:3]
['/health', '/standin/received', '/v1/models']
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import anthropic_api, openai_api
from .anthropic_validate import anthropic_error
from .faults import FaultRates
from .openai_validate import openai_error
from .pacing import StandinState
from .simulator import Simulator

__all__ = ["create_standin_app", "startup_line"]

log = logging.getLogger(__name__)


def startup_line(url: str, time_scale: float) -> str:
    """The one line the CLI prints when it is ready; it always names itself a stand-in."""
    return (
        f"provider stand-in (OpenAI + Anthropic wire protocol, simulated latency "
        f"x{float(time_scale)}) listening on {url}"
    )


class StandinHeaders:
    """Pure ASGI middleware adding the stand-in labels to every response, errors included.

    (Pure ASGI rather than ``BaseHTTPMiddleware`` so streamed responses pass through
    untouched and without an extra task per request.)
    """

    def __init__(self, app: ASGIApp, time_scale: float) -> None:
        self.app = app
        self.extra = [
            (b"x-standin", b"true"),
            (b"x-standin-time-scale", str(float(time_scale)).encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_labelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.extra]
            await send(message)

        await self.app(scope, receive, send_labelled)


def _wants_anthropic(request: Request) -> bool:
    """The Anthropic SDK always sends ``anthropic-version``; the OpenAI SDK never does."""
    return "anthropic-version" in request.headers or request.url.path.startswith("/v1/messages")


async def health(request: Request) -> Response:
    state: StandinState = request.app.state.standin
    return JSONResponse(
        {
            "status": "ok",
            "service": "provider-standin",
            "standin": True,
            "time_scale": state.time_scale,
        }
    )


async def received(request: Request) -> Response:
    """``GET /standin/received``: the last request bodies the stand-in was sent, oldest
    first, as ``[{"api": "openai" | "anthropic", "body": {...}}]`` (a stand-in's own
    endpoint: it shows what a provider would have seen, e.g. whether a prompt was redacted).
    """
    state: StandinState = request.app.state.standin
    bodies = [{"api": api, "body": json.loads(raw)} for api, raw in state.received]
    return JSONResponse(bodies)


async def list_models(request: Request) -> Response:
    profiles = request.app.state.standin.simulator.profiles
    if _wants_anthropic(request):
        return JSONResponse(anthropic_api.anthropic_model_list(profiles))
    return JSONResponse(openai_api.openai_model_list(profiles))


async def get_model(request: Request) -> Response:
    profiles = request.app.state.standin.simulator.profiles
    model_id = request.path_params["model_id"]
    anthropic = _wants_anthropic(request)
    provider = "anthropic" if anthropic else "openai"
    profile = profiles.for_model(model_id)
    if profile is profiles.default or profile.provider != provider:
        if anthropic:
            return anthropic_error(404, f"model: {model_id}", type="not_found_error")
        return openai_error(
            404,
            f"The model '{model_id}' does not exist or you do not have access to it.",
            code="model_not_found",
        )
    if anthropic:
        return JSONResponse(anthropic_api.anthropic_model(model_id, profile.name))
    return JSONResponse(openai_api.openai_model(model_id))


async def http_error(request: Request, exc: Exception) -> Response:
    """404 / 405 from routing, in the shape of whichever SDK is asking."""
    status = exc.status_code if isinstance(exc, HTTPException) else 400
    if _wants_anthropic(request):
        kind = "not_found_error" if status == 404 else "invalid_request_error"
        return anthropic_error(status, "Not Found" if status == 404 else str(exc), type=kind)
    message = (
        f"Invalid URL ({request.method} {request.url.path})"
        if status in (404, 405)
        else str(getattr(exc, "detail", exc))
    )
    return openai_error(status, message)


async def server_error(request: Request, exc: Exception) -> Response:
    """A bug in the stand-in: still answer in the provider's shape (and log it)."""
    log.error("provider stand-in failed on %s %s", request.method, request.url.path, exc_info=exc)
    if _wants_anthropic(request):
        return anthropic_error(
            500, "Internal server error (provider stand-in bug)", type="api_error"
        )
    return openai_error(500, "Internal error in the provider stand-in.", type="server_error")


def create_standin_app(
    time_scale: float = 1.0,
    profiles_path: str | Path | None = None,
    answers_path: str | Path | None = None,
    faults: FaultRates | Mapping[str, float] | None = None,
    seed: int = 0,
) -> Starlette:
    """Build the stand-in app. Nothing starts until a server runs it.

    ``time_scale`` multiplies every simulated delay (0 = none); ``faults`` maps kinds
    (``"429"``, ``"500"``, ``"529"``, ``"slow"``) to per-request probabilities; ``seed``
    fixes the answer choice and every random draw. Paths default to ``data/``.
    """
    simulator = Simulator(
        answers=answers_path, profiles=profiles_path, seed=seed, time_scale=time_scale
    )
    state = StandinState(simulator, FaultRates.coerce(faults))
    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/standin/received", received, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/v1/chat/completions", openai_api.chat_completions, methods=["POST"]),
        Route("/v1/messages", anthropic_api.messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", anthropic_api.count_tokens, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(StandinHeaders, time_scale=time_scale)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.standin = state
    return app
