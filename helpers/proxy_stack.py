"""A stack for proxy mode: the gateway holds the provider keys and makes the LLM call.

:func:`start_proxy_stack` starts the provider stand-ins first (unless both real keys are
set), then the embedded gateway with the providers' standard variables in its environment
(``OPENAI_BASE_URL``/``ANTHROPIC_BASE_URL`` pointing at the stand-ins, or the real keys),
so the same :class:`~helpers.stack.Stack` serves gateway mode *and* proxy mode side by
side. It also builds the two proxy-mode clients a notebook uses:

* :func:`axonflow_client`: the official ``axonflow`` SDK (``proxy_llm_call``), with its
  vendor telemetry off unless ``AXONFLOW_TELEMETRY`` says otherwise, and its 60 s response
  cache off, since a cached answer is not a measurement;
* :func:`proxy_openai_client`: ``openai.OpenAI`` whose ``base_url`` is the gateway, for the
  OpenAI-compatible ``/v1/chat/completions`` (streaming included).

Introduced in ``11_proxy_mode.ipynb``.

>>> with start_proxy_stack(time_scale=0) as stack:          # doctest: +SKIP
...     llm = proxy_openai_client(stack)
"""

from __future__ import annotations

import os
from typing import Any

from .server import RunningService, start_gateway, start_standins
from .settings import Settings
from .stack import Backend, Stack

__all__ = ["axonflow_client", "proxy_openai_client", "start_proxy_stack"]

OFFLINE_KEY = "offline-stand-in"  # what the gateway sends the stand-in; not a secret


def start_proxy_stack(
    settings: Settings | None = None,
    *,
    time_scale: float | None = None,
    gateway_env: dict[str, str] | None = None,
    quiet: bool = False,
) -> Stack:
    """Stand-ins, then the embedded gateway configured to call them (or the real APIs).

    ``gateway_env`` adds variables to the gateway's environment (for example
    ``GATEWAY_PROVIDER_TIMEOUT_S``). The status line says which provider each side calls.
    """
    settings = settings or Settings.load()
    scale = settings.standin_time_scale if time_scale is None else time_scale
    services: list[RunningService] = []
    try:
        standin_url = ""
        if not (settings.openai_api_key and settings.anthropic_api_key):
            standin = start_standins(time_scale=scale)
            services.append(standin)
            standin_url = standin.url
        env: dict[str, str] = {}
        for name, key, base in (
            ("openai", settings.openai_api_key, standin_url + "/v1"),
            ("anthropic", settings.anthropic_api_key, standin_url),
        ):
            upper = name.upper()
            if key:
                env[f"{upper}_API_KEY"] = key.get()
            else:
                env[f"{upper}_API_KEY"] = OFFLINE_KEY
                env[f"{upper}_BASE_URL"] = base
        env.update(gateway_env or {})
        gw = start_gateway(env=env)
        services.append(gw)
    except BaseException:
        for service in reversed(services):
            service.stop()
        raise
    gateway = Backend("gateway", gw.url, False, "embedded gateway, proxy mode on")
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
    stack = Stack(settings, gateway, openai_b, anthropic_b, scale, [], services)
    if not quiet:
        print(stack.describe())
    return stack


def axonflow_client(stack: Stack, **kwargs: Any) -> Any:
    """The official SDK's async ``AxonFlow`` client for ``stack``'s gateway.

    Its telemetry ping is turned off (``AXONFLOW_TELEMETRY=off``) unless the environment
    already says something else, because it would leave the machine; its response cache is
    off unless ``cache_enabled=True`` is passed. Use it as ``async with``.
    """
    os.environ.setdefault("AXONFLOW_TELEMETRY", "off")
    from axonflow import AxonFlow

    kwargs.setdefault("cache_enabled", False)
    kwargs.setdefault("client_id", stack.settings.client_id)
    return AxonFlow(endpoint=stack.gateway.url, **kwargs)


def proxy_openai_client(stack: Stack, *, asynchronous: bool = False, **kwargs: Any) -> Any:
    """``openai.OpenAI`` (or ``AsyncOpenAI``) talking to the gateway's ``/v1``.

    The API key is not a provider key: the gateway holds those. It is sent as
    ``client_id:secret`` when the gateway runs in authenticated mode, else ignored.
    """
    import openai

    secret = stack.settings.client_secret.get()
    key = f"{stack.settings.client_id}:{secret}" if secret else "governed-by-gateway"
    headers = {"X-Client-ID": stack.settings.client_id, **kwargs.pop("default_headers", {})}
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=stack.gateway.url + "/v1", api_key=key, default_headers=headers, **kwargs)
