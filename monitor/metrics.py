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
        self.detector_findings = Counter(
            "labormon_detector_findings",
            "Findings written by the detectors, by kind and level (none: risk cleared).",
            ["kind", "level"],
            registry=registry,
        )
        self.detector_records_checked = Counter(
            "labormon_detector_records_checked",
            "Input records checked by the detectors (event severity, wage-report rules).",
            ["kind"],
            registry=registry,
        )
        self.detector_job_seconds = Histogram(
            "labormon_detector_job_seconds",
            "Duration of the detectors' periodic jobs (rescore, retrain).",
            ["job"],
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=registry,
        )
        self.detector_last_success = Gauge(
            "labormon_detector_last_success_timestamp",
            "Unix time of the last successful detector job, by job.",
            ["job"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "labormon_store_batch_seconds",
            "Time to validate and commit one batch of input records.",
            registry=registry,
        )
