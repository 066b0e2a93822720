"""Bring up everything a notebook needs with one call, live where configured, offline otherwise.

* Gateway: ``AXONFLOW_AGENT_URL`` set and healthy means the real agent; otherwise the embedded
  gateway starts in its own process on a free port with a fresh temporary database.
* Providers: ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY`` set means the real API; otherwise the
  local wire-protocol stand-in (simulated latency, labelled as such).

``start_stack(proxy=True)`` (or :func:`helpers.proxy_stack.start_proxy_stack`) also hands
the embedded gateway the provider keys or the stand-ins' URLs, for proxy mode.

It prints one line saying what is live and what is offline, never a key, and stops what it
started on :meth:`Stack.close`, on ``with`` exit (also when a cell fails), or at interpreter
exit. Introduced in ``01_gateway_mode_openai.ipynb``.

>>> with start_stack(time_scale=0) as stack:      # doctest: +SKIP
...     client = stack.sync_gateway_client()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from .client import GatewayClient, SyncGatewayClient
from .server import RunningService, start_gateway, start_standins
from .settings import Settings

__all__ = ["Backend", "Stack", "start_stack"]

#: The key a client or the embedded gateway sends a stand-in; any key works, so not a secret.
OFFLINE_KEY = "offline-stand-in"


@dataclass(frozen=True, slots=True)
class Backend:
    """One resolved service: where it is and whether it is the real thing."""

    name: str
    url: str
    live: bool
    kind: str

    def __repr__(self) -> str:
        return f"<Backend {self.name} {'live' if self.live else 'offline'} {self.url}>"


def _agent_healthy(url: str) -> bool:
    try:
        r = httpx.get(url.rstrip("/") + "/health", timeout=3.0)
        return r.status_code == 200 and r.json().get("status") == "healthy"
    except (httpx.HTTPError, ValueError):
        return False


@dataclass
class Stack:
    """The resolved backends, clients built for them, and the processes to stop."""

    settings: Settings
    gateway: Backend
    openai: Backend
    anthropic: Backend
    time_scale: float
    notes: list[str] = field(default_factory=list)
    _services: list[RunningService] = field(default_factory=list, repr=False)

    @property
    def gateway_pid(self) -> int | None:
        """The embedded gateway's process id, or ``None`` when the gateway is a live agent."""
        for service in self._services:
            if service.name == "gateway":
                return service.pid
        return None

    # -- clients ---------------------------------------------------------------------------
    def gateway_client(self, **kwargs: Any) -> GatewayClient:
        """An async :class:`GatewayClient` for this stack's gateway (``transport=`` etc.)."""
        return GatewayClient(url=self.gateway.url, settings=self.settings, **kwargs)

    def sync_gateway_client(self, **kwargs: Any) -> SyncGatewayClient:
        return SyncGatewayClient(url=self.gateway.url, settings=self.settings, **kwargs)

    def openai_client(self, **kwargs: Any) -> Any:
        """``openai.OpenAI`` for the real API (key set) or the stand-in (``base_url``)."""
        import openai

        return self._provider_client(openai.OpenAI, self.openai, **kwargs)

    def async_openai_client(self, **kwargs: Any) -> Any:
        import openai

        return self._provider_client(openai.AsyncOpenAI, self.openai, **kwargs)

    def anthropic_client(self, **kwargs: Any) -> Any:
        """``anthropic.Anthropic`` for the real API (key set) or the stand-in (``base_url``)."""
        import anthropic

        return self._provider_client(anthropic.Anthropic, self.anthropic, **kwargs)

    def async_anthropic_client(self, **kwargs: Any) -> Any:
        import anthropic

        return self._provider_client(anthropic.AsyncAnthropic, self.anthropic, **kwargs)

    def _provider_client(self, sdk_class: Any, backend: Backend, **kwargs: Any) -> Any:
        """``sdk_class`` with the real key when ``backend`` is live, else at the stand-in."""
        if backend.live:
            key = getattr(self.settings, f"{backend.name}_api_key").get()
            return sdk_class(api_key=key, **kwargs)
        return sdk_class(api_key=OFFLINE_KEY, base_url=backend.url, **kwargs)

    # -- status ----------------------------------------------------------------------------
    @property
    def offline(self) -> bool:
        return not (self.gateway.live or self.openai.live or self.anthropic.live)

    def describe(self) -> str:
        """One line: what is live, what is offline, and where (never a key)."""
        parts = []
        for b in (self.gateway, self.openai, self.anthropic):
            parts.append(f"{b.name}: {'LIVE' if b.live else 'offline'} {b.kind} ({b.url})")
        line = " | ".join(parts)
        if not (self.openai.live and self.anthropic.live):
            line += f" | stand-in latency is simulated, time scale x{self.time_scale:g}"
        return line

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every process this stack started (idempotent)."""
        while self._services:
            self._services.pop().stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_stack(
    settings: Settings | None = None,
    *,
    time_scale: float | None = None,
    standin_args: tuple[str, ...] = (),
    proxy: bool = False,
    gateway_env: dict[str, str] | None = None,
    quiet: bool = False,
) -> Stack:
    """Resolve and start the backends; prints the status line unless ``quiet``.

    ``time_scale`` overrides ``STANDIN_TIME_SCALE`` for the stand-in's simulated latency.
    The provider stand-ins start first (unless both real keys are set), then the gateway.
    With ``proxy=True`` the gateway is always the embedded one, started with the providers'
    standard variables (``OPENAI_BASE_URL``/``ANTHROPIC_BASE_URL`` pointing at the
    stand-ins, or the real keys), so it can make the LLM call itself (proxy mode) as well
    as serve gateway mode. ``gateway_env`` adds variables to the embedded gateway's
    environment (for example ``GATEWAY_PROVIDER_TIMEOUT_S``).
    """
    settings = settings or Settings.load()
    scale = settings.standin_time_scale if time_scale is None else time_scale
    services: list[RunningService] = []
    notes: list[str] = []
    try:
        standin_url = ""
        if not (settings.openai_api_key and settings.anthropic_api_key):
            standin = start_standins(time_scale=scale, extra_args=standin_args)
            services.append(standin)
            standin_url = standin.url
        openai_b = (
            Backend("openai", "https://api.openai.com/v1", True, "OpenAI API")
            if settings.openai_api_key
            else Backend("openai", standin_url + "/v1", False, "stand-in")
        )
        anthropic_b = (
            Backend("anthropic", "https://api.anthropic.com", True, "Anthropic API")
            if settings.anthropic_api_key
            else Backend("anthropic", standin_url, False, "stand-in")
        )
        if proxy:
            env = {**_provider_env(settings, openai_b, anthropic_b), **(gateway_env or {})}
            gw = start_gateway(env=env)
            services.append(gw)
            gateway = Backend("gateway", gw.url, False, "embedded gateway, proxy mode on")
        elif settings.agent_url and _agent_healthy(settings.agent_url):
            gateway = Backend("gateway", settings.agent_url, True, "AxonFlow agent")
        else:
            if settings.agent_url:
                notes.append(
                    f"AXONFLOW_AGENT_URL={settings.agent_url} did not answer /health; "
                    "using the embedded gateway instead"
                )
            gw = start_gateway(env=gateway_env)
            services.append(gw)
            gateway = Backend("gateway", gw.url, False, "embedded gateway")
    except BaseException:
        for service in reversed(services):
            service.stop()
        raise
    stack = Stack(settings, gateway, openai_b, anthropic_b, scale, notes, services)
    if not quiet:
        for note in notes:
            print(f"note: {note}")
        print(stack.describe())
    return stack


def _provider_env(settings: Settings, *backends: Backend) -> dict[str, str]:
    """The providers' standard variables for a gateway that calls them: the real key, or
    the stand-in's URL with a placeholder key."""
    env: dict[str, str] = {}
    for backend in backends:
        upper = backend.name.upper()
        if backend.live:
            env[f"{upper}_API_KEY"] = getattr(settings, f"{backend.name}_api_key").get()
        else:
            env[f"{upper}_API_KEY"] = OFFLINE_KEY
            env[f"{upper}_BASE_URL"] = backend.url
    return env
