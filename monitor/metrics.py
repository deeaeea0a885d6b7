"""Prometheus metrics, one registry per daemon (several daemons can live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.records_received = Counter(
            "labormon_records_received",
            "Input messages and rows received, by channel and kind.",
            ["channel", "kind"],
            registry=registry,
        )
        self.records_stored = Counter(
            "labormon_records_stored",
            "Input records stored for the first time.",
            ["channel", "kind"],
            registry=registry,
        )
        self.records_duplicate = Counter(
            "labormon_records_duplicate",
            "Input records already stored with the same contents (redeliveries).",
            ["channel", "kind"],
            registry=registry,
        )
        self.records_rejected = Counter(
            "labormon_records_rejected",
            "Inputs refused, by channel and reason class.",
            ["channel", "reason"],
            registry=registry,
        )
        self.up = Gauge("labormon_up", "1 while the daemon runs.", registry=registry)
        self.batch_seconds = Histogram(
            "labormon_store_batch_seconds",
            "Time to validate and commit one batch of input records.",
            registry=registry,
        )
        self.reports = Counter(
            "labormon_reports",
            "Monthly report runs, by outcome (done, failed, taken by another daemon).",
            ["outcome"],
            registry=registry,
        )
        self.report_seconds = Histogram(
            "labormon_report_seconds",
            "Time to compute, render and queue one monthly report.",
            buckets=(0.5, 1, 2, 5, 10, 20, 60, 120),
            registry=registry,
        )
