"""Helpers for the gateway-mode governance notebooks.

The public surface is re-exported here; each name's module docstring says which notebook
introduces it. Importing this package starts nothing and changes no global state.
"""

from __future__ import annotations

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
from .findings import Finding
from .settings import Secret, Settings
from .stats import LatencySummary, ecdf, paired_differences, summarize

__version__ = "0.1.0"

__all__ = [
    "BadRequest",
    "ConfigError",
    "Finding",
    "GatewayError",
    "GatewayHTTPError",
    "GatewayTimeout",
    "GatewayUnavailable",
    "HelperError",
    "LatencySummary",
    "PolicyFileError",
    "Secret",
    "Settings",
    "Unauthorized",
    "__version__",
    "ecdf",
    "paired_differences",
    "summarize",
]
