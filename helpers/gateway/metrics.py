"""Prometheus metrics for the embedded gateway, in AxonFlow's names but sub-millisecond.

AxonFlow's histograms start at 1 ms, so every gateway-mode request lands in its first bucket.
These use the same metric names with fractional milliseconds and buckets from 0.05 ms to
500 ms (contract Part B.10). Written by hand, not with ``prometheus_client``, because the
exposition format is small and an observation here is one ``bisect`` and two additions on
the gateway's hot path. Introduced in ``03_latency_analysis.ipynb``.

The storage's health is this gateway's own addition: ``axonflow_gateway_storage_errors_total``
by part and kind, ``axonflow_gateway_storage_degraded`` (1 while a storage fault lasts) and
the acknowledged rows not yet copied into SQLite, read from the store when scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import StorageState

__all__ = ["AXONFLOW_METRICS", "BUCKETS_MS", "Counter", "GatewayMetrics", "Gauge", "Histogram"]

#: The gateway-mode metrics a stock AxonFlow agent exposes (``gateway_handlers.go``, v2.6);
#: the only ones rendered in compatibility mode (docs/compat.md).
AXONFLOW_METRICS = (
    "axonflow_gateway_precheck_requests_total",
    "axonflow_gateway_precheck_duration_milliseconds",
    "axonflow_gateway_audit_requests_total",
    "axonflow_gateway_audit_duration_milliseconds",
    "axonflow_gateway_llm_tokens_total",
    "axonflow_gateway_llm_cost_usd_total",
)

# A table: `# fmt: skip` keeps the bounds in two rows, not one number per line.
#: Upper bounds in milliseconds: 0.05 ms resolution at the bottom, 500 ms at the top.
BUCKETS_MS: tuple[float, ...] = (
    0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
    10.0, 20.0, 50.0, 100.0, 200.0, 500.0,
)  # fmt: skip


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    inner = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else f"{int(value)}"


class Histogram:
    """A cumulative-bucket histogram in milliseconds."""

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = BUCKETS_MS):
        self.name = name
        self.help = help_text
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # last slot is +Inf
        self.total = 0.0
        self.n = 0

    def observe(self, value_ms: float) -> None:
        self.counts[bisect_left(self.buckets, value_ms)] += 1
        self.total += value_ms
        self.n += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        running = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            lines.append(f'{self.name}_bucket{{le="{bound}"}} {running}')
        lines.append(f'{self.name}_bucket{{le="+Inf"}} {self.n}')
        lines.append(f"{self.name}_sum {_number(self.total)}")
        lines.append(f"{self.name}_count {self.n}")
        return lines


class Counter:
    """A counter with a fixed tuple of label names."""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()):
        self.name = name
        self.help = help_text
        self.label_names = labels
        self.values: defaultdict[tuple[str, ...], float] = defaultdict(float)

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        self.values[label_values] += amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        for key in sorted(self.values):
            labels = _labels(self.label_names, key)
            lines.append(f"{self.name}{labels} {_number(self.values[key])}")
        return lines


class Gauge:
    """A single value that goes up and down."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help = help_text
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = value

    def render(self) -> list[str]:
        return [
            f"# HELP {self.name} {self.help}",
            f"# TYPE {self.name} gauge",
            f"{self.name} {_number(self.value)}",
        ]


class GatewayMetrics:
    """The gateway's metric set; ``render()`` gives Prometheus text exposition format.

    ``only`` limits what is rendered to those metric names (compatibility mode passes
    :data:`AXONFLOW_METRICS`); everything is still counted.
    """

    def __init__(self, only: tuple[str, ...] | None = None) -> None:
        self.only = only
        self.precheck_duration = Histogram(
            "axonflow_gateway_precheck_duration_milliseconds",
            "Gateway pre-check handling time in milliseconds (server side).",
        )
        self.audit_duration = Histogram(
            "axonflow_gateway_audit_duration_milliseconds",
            "Gateway audit handling time in milliseconds, commit included (server side).",
        )
        self.precheck_requests = Counter(
            "axonflow_gateway_precheck_requests_total",
            "Gateway pre-check requests.",
            ("status", "approved"),
        )
        self.audit_requests = Counter(
            "axonflow_gateway_audit_requests_total",
            "Gateway audit requests.",
            ("status", "provider"),
        )
        self.audit_duplicates = Counter(
            "axonflow_gateway_audit_duplicates_total",
            "Audits answered with an earlier audit_id: a repeat of the same body (this "
            "gateway only; AxonFlow stores every copy).",
            ("rule",),
        )
        self.policy_triggers = Counter(
            "axonflow_gateway_policy_triggered_total",
            "Policies that triggered in pre-checks, blocking or not.",
            ("policy",),
        )
        self.llm_tokens = Counter(
            "axonflow_gateway_llm_tokens_total", "LLM tokens reported in audits.", ("type",)
        )
        self.llm_cost = Counter(
            "axonflow_gateway_llm_cost_usd_total",
            "Estimated LLM cost in USD reported in audits.",
            ("provider", "model"),
        )
        self.storage_errors = Counter(
            "axonflow_gateway_storage_errors_total",
            "Storage errors by part (log, sqlite, read) and kind (disk_full, read_only, "
            "locked, io_error, stalled, other); this gateway only.",
            ("part", "kind"),
        )
        self.storage_degraded = Gauge(
            "axonflow_gateway_storage_degraded",
            "1 while a storage fault lasts (GET /health gives the reason), else 0.",
        )
        self.storage_backlog = Gauge(
            "axonflow_gateway_storage_backlog_rows",
            "Acknowledged rows in the acknowledgement log not yet copied into SQLite.",
        )

    def observe_storage(self, state: StorageState) -> None:
        """Take the store's health as it is now (the store counts; this only mirrors it)."""
        for part, kind, count in state.errors:
            self.storage_errors.values[(part, kind)] = count
        self.storage_degraded.set(0 if state.healthy else 1)
        self.storage_backlog.set(state.backlog_rows)

    def render(self) -> str:
        parts: list[str] = []
        for metric in (
            self.precheck_requests,
            self.precheck_duration,
            self.audit_requests,
            self.audit_duplicates,
            self.audit_duration,
            self.policy_triggers,
            self.llm_tokens,
            self.llm_cost,
            self.storage_errors,
            self.storage_degraded,
            self.storage_backlog,
        ):
            if self.only is None or metric.name in self.only:
                parts.extend(metric.render())
        return "\n".join(parts) + "\n"
