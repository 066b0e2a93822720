"""Helpers for the gateway-mode governance notebooks.

The public surface is re-exported here; each name's module docstring says which notebook
introduces it. Importing this package starts nothing and changes no global state.

The folders are the architecture (the README's layout table, and the import-linter
contracts in ``pyproject.toml``):

* :mod:`helpers.client`: what an application copies (pre-check, audit, background audits).
* :mod:`helpers.gateway`: the embedded gateway (HTTP layer, engine, policies, store).
* :mod:`helpers.standins`: the OpenAI and Anthropic wire-protocol stand-ins.
* :mod:`helpers.lab`: measuring what governance costs.
* :mod:`helpers.trail`: reading, exporting and checking the audit trail.
* :mod:`helpers.service`: a governed chat web service built on the client.
* :mod:`helpers.bench`: the benchmarks (``python -m helpers.bench``).
* Glue for the notebooks at the top level: settings, errors, services, the stack.
"""

from __future__ import annotations

from .client import (
    AuditResult,
    GatewayClient,
    HealthResult,
    PreCheckResult,
    SyncGatewayClient,
    TokenUsage,
)
from .errors import (
    BadRequest,
    ConfigError,
    GatewayError,
    GatewayHTTPError,
    GatewayTimeout,
    GatewayUnavailable,
    HelperError,
    PolicyFileError,
    Unauthorized,
)
from .gateway.engine import Decision, DecisionEngine
from .gateway.policies.findings import Finding
from .lab.stats import LatencySummary, ecdf, paired_differences, summarize
from .server import RunningService, start_gateway, start_standins
from .settings import Secret, Settings
from .stack import Stack, start_stack

__version__ = "0.1.0"

__all__ = [
    "AuditResult",
    "BadRequest",
    "ConfigError",
    "Decision",
    "DecisionEngine",
    "Finding",
    "GatewayClient",
    "GatewayError",
    "GatewayHTTPError",
    "GatewayTimeout",
    "GatewayUnavailable",
    "HealthResult",
    "HelperError",
    "LatencySummary",
    "PolicyFileError",
    "PreCheckResult",
    "RunningService",
    "Secret",
    "Settings",
    "Stack",
    "SyncGatewayClient",
    "TokenUsage",
    "Unauthorized",
    "__version__",
    "ecdf",
    "paired_differences",
    "start_gateway",
    "start_stack",
    "start_standins",
    "summarize",
]
