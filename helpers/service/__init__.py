"""A governed web service: one chat endpoint built on :func:`helpers.client.governed_completion`.

What the reusable function looks like inside a real application: a Starlette app whose
lifespan owns the gateway client, the provider SDK client and an
:class:`~helpers.client.AuditQueue` (audits leave the request path and are flushed on
shutdown); ``POST /chat`` pre-checks the new user message, calls the model, and answers
with the outcome. Start it with one command::

    python -m helpers.service --gateway http://127.0.0.1:8080 --llm-url http://127.0.0.1:9000

This room is an *application*: it may import the client and the shared modules, never the
gateway, the stand-ins, the lab or the trail (an import-linter contract in
``pyproject.toml``). Introduced in ``10_real_application.ipynb``.
"""

from __future__ import annotations

from .app import ChatConfig, create_chat_app

__all__ = ["ChatConfig", "create_chat_app"]
