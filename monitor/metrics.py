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
        # Ingest (MQTT and HTTP).
        self.ingest_lag = Histogram(
            "labormon_ingest_lag_seconds",
            "From a message's arrival at the daemon to the commit of its record or rejection.",
            ["channel"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.ingest_batch_size = Histogram(
            "labormon_ingest_batch_size",
            "Messages committed in one transaction.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=registry,
        )
        self.ingest_queue = Gauge(
            "labormon_ingest_queue_messages",
            "Messages received and not yet committed.",
            registry=registry,
        )
        self.ingest_db_retries = Counter(
            "labormon_ingest_db_retries",
            "Batches retried because the database was unreachable or busy.",
            registry=registry,
        )
        self.mqtt_connected = Gauge(
            "labormon_mqtt_connected",
            "1 while connected to the MQTT broker (every lane: events and wage reports).",
            registry=registry,
        )
        #: Each MQTT lane's connection state, behind labormon_mqtt_connected.
        self.mqtt_lanes: dict[str, bool] = {}
        self.mqtt_disconnects = Counter(
            "labormon_mqtt_disconnects",
            "Lost or failed connections to the MQTT broker (each followed by a reconnect).",
            registry=registry,
        )
        self.mqtt_connects = Counter(
            "labormon_mqtt_connects",
            "Successful connections to the MQTT broker.",
            registry=registry,
        )
        self.mqtt_error_notices = Counter(
            "labormon_mqtt_error_notices",
            "Rejection notices on labormon/v1/errors/{client_id}, by result.",
            ["result"],
            registry=registry,
        )
        self.mqtt_sessions_lost = Counter(
            "labormon_mqtt_sessions_lost",
            "Connections on which the broker no longer had this daemon's persistent session "
            "although it should have (messages it held for the daemon may be gone).",
            registry=registry,
        )
        self.database_retries = Counter(
            "labormon_database_retries",
            "Services started again (or the start-up waiting) because the database was "
            "unreachable, by service.",
            ["service"],
            registry=registry,
        )
        self.decrypt_failures = Counter(
            "labormon_decrypt_failures",
            "Personal data that did not decrypt with this daemon's key (wrong key, damage).",
            registry=registry,
        )
        self.mqtt_sessions_rescued = Counter(
            "labormon_mqtt_sessions_rescued",
            "Sessions of stopped peer daemons taken over and drained.",
            registry=registry,
        )
