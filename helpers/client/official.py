"""AxonFlow's own Python SDK (``axonflow``, pinned), built with its telemetry off.

The official SDK sends usage pings to its vendor by default (a heartbeat on first use and
at exit). A tutorial that promises to run offline must not phone home, and neither should
an application that has not decided to, so :func:`official_sdk` sets the SDK's only
opt-out, ``AXONFLOW_TELEMETRY=off``, before building the client. The SDK is async
(``AxonFlow``; ``SyncAxonFlow`` wraps it), returns pydantic models, retries with its own
policy and defaults to a 60 s timeout. ``01_gateway_mode_openai.ipynb`` runs the three steps
with it; ``10_real_application.ipynb`` sets it side by side with
:class:`~helpers.client.GatewayClient`.

>>> sdk = official_sdk("http://127.0.0.1:8080", timeout=2.0)          # doctest: +SKIP
>>> ctx = await sdk.get_policy_approved_context(user_token="u", query="hi")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["TELEMETRY_ENV", "official_sdk"]

TELEMETRY_ENV = "AXONFLOW_TELEMETRY"


def official_sdk(url: str, client_id: str = "community", timeout: float = 5.0) -> Any:
    """An ``axonflow.AxonFlow`` client for ``url``, telemetry off (see the module doc)."""
    os.environ[TELEMETRY_ENV] = "off"  # the SDK's only opt-out; it reads it on every ping
    from axonflow import AxonFlow  # imported here: the SDK is optional for everything else

    return AxonFlow(endpoint=url, client_id=client_id, timeout=timeout)
