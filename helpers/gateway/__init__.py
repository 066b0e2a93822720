"""The embedded governance gateway: AxonFlow's gateway-mode HTTP API on loopback, all of it.

* HTTP layer: :mod:`.app` (routes, handlers, lifespan), :mod:`.validation` (request bodies),
  ``__main__`` (``python -m helpers.gateway --port 8080``); the read endpoints in
  :mod:`.readback`, which read in the reader process of :mod:`.reader`.
* :mod:`.engine`: runs the policies and builds the decision, callable in process.
* :mod:`.policies`: one module per policy family (SQL injection, PII, RBAC, rate limits,
  custom rules). They never import the store or the HTTP layer.
* :mod:`.store`: the tamper-evident SQLite audit trail and its acknowledgement log.
* :mod:`.pricing` and :mod:`.metrics`: cost estimates and Prometheus metrics.
* Proxy mode, where the gateway calls the LLM itself: :mod:`.proxy` (``/api/request``, as
  the official SDK's ``proxy_llm_call`` speaks it), :mod:`.openai_compat` (an
  OpenAI-compatible ``/v1/chat/completions`` with streaming) and :mod:`.providers` (the
  ``openai``/``anthropic`` SDK calls, keys from the providers' environment variables).
* Changing a policy safely: :mod:`.explain` (``/api/v1/decisions/{id}/explain``),
  :mod:`.traffic_sample` (the opt-in masked sample of recent queries) and
  :mod:`.policy_check` (``python -m helpers.gateway.policy_check``: replay a candidate).

May import: :mod:`helpers.errors`, :mod:`helpers.settings`, :mod:`helpers.yamlcheck` and
:mod:`helpers.corpus`; never the client, the stand-ins, the lab or the trail (import-linter
contracts in ``pyproject.toml``). Build the ASGI app in process with :func:`create_app`.
Introduced in ``01_gateway_mode_openai.ipynb``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VERSION", "create_app"]


def __getattr__(name: str) -> Any:
    # The HTTP layer (Starlette, orjson) loads only when asked for, so importing the engine
    # or a policy module for in-process use does not pay for it.
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
