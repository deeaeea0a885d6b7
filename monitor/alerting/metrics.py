"""Prometheus metrics of alerting, escalation and the outbox, on the context's registry.

Kept apart from `monitor.metrics` so that each daemon (and each test context) gets its
own set, created on first use for a registry.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.metrics import Metrics

_BY_REGISTRY: WeakKeyDictionary[CollectorRegistry, AlertingMetrics] = WeakKeyDictionary()


class AlertingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.alerts_opened = Counter(
            "labormon_alerts_opened",
            "Alerts opened, by level and kind.",
            ["level", "kind"],
            registry=registry,
        )
        self.alert_events = Counter(
            "labormon_alert_events",
            "Changes to alerts (the audit log), by event.",
            ["event"],
            registry=registry,
        )
        self.findings_processed = Counter(
            "labormon_findings_processed",
            "Findings turned into alert changes.",
            registry=registry,
        )
        self.findings_failed = Counter(
            "labormon_findings_failed",
            "Findings that could not be processed (logged with their id).",
            registry=registry,
        )
        self.undeliverable = Counter(
            "labormon_notifications_undeliverable",
            "Notifications for a tier that has no contact at all, by tier.",
            ["tier"],
            registry=registry,
        )
        self.deliveries = Counter(
            "labormon_deliveries",
            "Delivery attempts by channel and outcome (sent, retry, failed).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.delivery_latency = Histogram(
            "labormon_delivery_latency_seconds",
            "From a delivery being written to its receiver accepting it.",
            ["channel"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 1800, 7200),
            registry=registry,
        )
        self.channel_failed = Gauge(
            "labormon_channel_failed",
            "1 while a channel's last delivery failed permanently (until its next success).",
            ["channel", "recipient"],
            registry=registry,
        )
        self.channel_failing = Gauge(
            "labormon_channel_failing",
            "Consecutive failed attempts on a channel (0 when the last attempt succeeded).",
            ["channel", "recipient"],
            registry=registry,
        )
        self.compose_errors = Counter(
            "labormon_delivery_compose_errors",
            "Messages that could not be built (failed at once, never retried): an operator's "
            "alarm, by channel.",
            ["channel"],
            registry=registry,
        )
        self.deliveries_pending = Gauge(
            "labormon_deliveries_pending",
            "Deliveries waiting to be sent (including retries), at the sender's last look.",
            registry=registry,
        )


def alerting_metrics(metrics: Metrics) -> AlertingMetrics:
    registry = metrics.registry
    found = _BY_REGISTRY.get(registry)
    if found is None:
        found = _BY_REGISTRY[registry] = AlertingMetrics(registry)
    return found
