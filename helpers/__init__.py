"""Helpers for the gateway-mode governance notebooks.

The public surface is re-exported here; each name's module docstring says which notebook
introduces it. Importing this package starts nothing and changes no global state.
"""

from __future__ import annotations

from helpers.client.results import AuditResult, HealthResult, PreCheckResult, TokenUsage
from helpers.gateway.engine import Decision, DecisionEngine
from helpers.gateway.policies.findings import Finding
from helpers.lab.stats import LatencySummary, ecdf, paired_differences, summarize

from .client import GatewayClient, SyncGatewayClient
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
