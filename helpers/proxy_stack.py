"""A stack for proxy mode: the gateway holds the provider keys and makes the LLM call.

:func:`start_proxy_stack` is :func:`~helpers.stack.start_stack` with ``proxy=True``: the
provider stand-ins first (unless both real keys are set), then the embedded gateway with the
providers' standard variables in its environment, so the same :class:`~helpers.stack.Stack`
serves gateway mode *and* proxy mode side by side. This module also builds the two
proxy-mode clients a notebook uses:

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

from .settings import Settings
from .stack import Stack, start_stack

__all__ = ["axonflow_client", "proxy_openai_client", "start_proxy_stack"]


def start_proxy_stack(
    settings: Settings | None = None,
    *,
    time_scale: float | None = None,
    gateway_env: dict[str, str] | None = None,
    quiet: bool = False,
) -> Stack:
    """:func:`~helpers.stack.start_stack` with ``proxy=True``: stand-ins, then the embedded
    gateway configured to call them (or the real APIs). The status line says which provider
    each side calls."""
    return start_stack(
        settings, time_scale=time_scale, proxy=True, gateway_env=gateway_env, quiet=quiet
    )


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
