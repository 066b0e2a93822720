"""Prometheus exposition: AxonFlow's names, sub-millisecond buckets, cumulative counts."""

from __future__ import annotations

from helpers.gateway.metrics import BUCKETS_MS, GatewayMetrics, Histogram


def test_buckets_resolve_from_50us_to_500ms() -> None:
    assert BUCKETS_MS[0] == 0.05 and BUCKETS_MS[-1] == 500.0
    assert list(BUCKETS_MS) == sorted(BUCKETS_MS)


def test_histogram_is_cumulative() -> None:
    h = Histogram("x_ms", "help")
    for v in (0.03, 0.05, 0.07, 0.4, 900.0):
        h.observe(v)
    lines = dict(line.rsplit(" ", 1) for line in h.render() if not line.startswith("#"))
    assert lines['x_ms_bucket{le="0.05"}'] == "2"  # le is inclusive
    assert lines['x_ms_bucket{le="0.1"}'] == "3"
    assert lines['x_ms_bucket{le="0.5"}'] == "4"
    assert lines['x_ms_bucket{le="500.0"}'] == "4"
    assert lines['x_ms_bucket{le="+Inf"}'] == "5"
    assert lines["x_ms_count"] == "5"
    assert float(lines["x_ms_sum"]) == 900.0 + 0.03 + 0.05 + 0.07 + 0.4


def test_gateway_metric_names_and_labels() -> None:
    m = GatewayMetrics()
    m.precheck_requests.inc("success", "false")
    m.audit_requests.inc("success", 'we"ird')
    m.precheck_duration.observe(0.12)
    text = m.render()
    assert 'axonflow_gateway_precheck_requests_total{status="success",approved="false"} 1' in text
    assert 'axonflow_gateway_audit_requests_total{status="success",provider="we\\"ird"} 1' in text
    assert 'axonflow_gateway_precheck_duration_milliseconds_bucket{le="0.15"} 1' in text
    assert "# TYPE axonflow_gateway_audit_duration_milliseconds histogram" in text


def test_storage_health_is_mirrored_from_the_store() -> None:
    from helpers.gateway.store import StorageState
    from helpers.gateway.store.health import Fault

    m = GatewayMetrics()
    fault = Fault("log", "disk_full", "[Errno 28] No space left on device", "t", 0.0, 0.0)
    m.observe_storage(StorageState((fault,), (("log", "disk_full", 63),), backlog_rows=12))
    text = m.render()
    assert 'axonflow_gateway_storage_errors_total{part="log",kind="disk_full"} 63' in text
    assert "# TYPE axonflow_gateway_storage_degraded gauge" in text
    assert "axonflow_gateway_storage_degraded 1" in text
    assert "axonflow_gateway_storage_backlog_rows 12" in text
    m.observe_storage(StorageState((), (("log", "disk_full", 64),)))
    text = m.render()
    assert "axonflow_gateway_storage_degraded 0" in text
    assert 'axonflow_gateway_storage_errors_total{part="log",kind="disk_full"} 64' in text
