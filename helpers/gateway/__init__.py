"""The embedded governance gateway: AxonFlow's gateway-mode HTTP API on loopback.

Run it with ``python -m helpers.gateway --port 8080``; build the ASGI app in process with
:func:`create_app`. Introduced in ``01_gateway_mode_openai.ipynb``.
"""

from __future__ import annotations

from .app import VERSION, create_app

__all__ = ["VERSION", "create_app"]
