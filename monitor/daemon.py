"""`labormon run`: the daemon wires the stages together and keeps them running.

Each stage is a `Service`: a long-running coroutine that reads what the stage before
wrote (rows) and writes what the next one reads. The daemon runs them side by side and
owns the APScheduler instance that only wakes loops and starts periodic jobs (deadlines
themselves live in database columns).

The database going away stops nothing: a service that fails because the database is
unreachable (`is_transient`) is started again after a back-off capped at
`database.retry_max`, and a daemon started while the database is down waits for it.
Any other failure stops the daemon, so that systemd restarts it and the log says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar, runtime_checkable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.clock import Clock
from monitor.config import Settings
from monitor.context import Context
from monitor.db import Database, is_transient
from monitor.keycheck import verify_key
from monitor.logging import get_logger

log = get_logger("labormon.daemon")

S = TypeVar("S")


def make_context(
    settings: Settings, *, clock: Clock | None = None, db: Database | None = None
) -> Context:
    """The context every command and the daemon share, with the detectors' category
    classifier as the store's inferrer for petitions that arrive without a category."""
    from detectors.category import infer_category
    from detectors.textrules import people_in_text

    return Context.build(
        settings, infer_category=infer_category, read_people=people_in_text, clock=clock, db=db
    )


@runtime_checkable
class Service(Protocol):
    """A stage of the pipeline that runs until cancelled."""

    name: str

    async def run(self) -> None: ...


@runtime_checkable
class Scheduled(Protocol):
    """A service that also has periodic jobs."""

    def schedule(self, scheduler: AsyncIOScheduler) -> None: ...


@runtime_checkable
class HasHealth(Protocol):
    def health(self) -> dict[str, Any]: ...


#: Builders of the daemon's services. Each takes the context and the daemon (whose
#: services built so far it may hand on, such as the ingest pipeline) and returns a
#: Service or None (None: switched off by configuration). This module alone wires the
#: stages together: each stage is given the context and the few collaborators it needs.
ServiceFactory = Callable[[Context, "Daemon"], Service | None]


def _ingest(ctx: Context, daemon: Daemon) -> Service:
    from ingest.pipeline import IngestPipeline

    return IngestPipeline(ctx)


def _mqtt(ctx: Context, daemon: Daemon) -> Service | None:
    from ingest.mqtt import MqttIngest
    from ingest.pipeline import IngestPipeline

    lane = "events" if ctx.settings.mqtt.wage_lane else "all"
    return MqttIngest.create(ctx, daemon.require(IngestPipeline), lane)


def _mqtt_wages(ctx: Context, daemon: Daemon) -> Service | None:
    """Wage reports on a connection of their own (ingest/mqtt.py, `mqtt.wage_lane`)."""
    from ingest.mqtt import MqttIngest
    from ingest.pipeline import IngestPipeline

    if not ctx.settings.mqtt.wage_lane:
        return None
    return MqttIngest.create(ctx, daemon.require(IngestPipeline), "wages")


def _http(ctx: Context, daemon: Daemon) -> Service:
    from ingest.pipeline import IngestPipeline
    from monitor.web.app import HttpService

    return HttpService(ctx, daemon.find(IngestPipeline), daemon.health)


def _detectors(ctx: Context, daemon: Daemon) -> Service | None:
    from detectors.service import DetectorService

    return DetectorService.create(ctx)


def _alerting(ctx: Context, daemon: Daemon) -> Service | None:
    from monitor.alerting.service import AlertingLoop

    return AlertingLoop.create(ctx)


def _escalation(ctx: Context, daemon: Daemon) -> Service | None:
    from monitor.alerting.service import EscalationLoop

    return EscalationLoop.create(ctx)


def _outbox(ctx: Context, daemon: Daemon) -> Service | None:
    from monitor.alerting.outbox import OutboxSender

    return OutboxSender.create(ctx)


def _overdue(ctx: Context, daemon: Daemon) -> Service | None:
    from monitor.alerting.overdue import OverdueCheck

    return OverdueCheck.create(ctx)


def _digest(ctx: Context, daemon: Daemon) -> Service | None:
    from monitor.alerting.digest import DailyDigest

    return DailyDigest.create(ctx)


def _report(ctx: Context, daemon: Daemon) -> Service | None:
    from monitor.report.service import ReportService

    return ReportService.create(ctx)


#: The services `labormon run` starts, by name, in the direction data flows. The ingest
#: pipeline comes before the MQTT service and the HTTP intake, which hand it their
#: messages.
SERVICES: dict[str, ServiceFactory] = {
    "ingest": _ingest,
    "mqtt": _mqtt,
    "mqtt-wages": _mqtt_wages,
    "http": _http,
    "detectors": _detectors,
    "alerting": _alerting,
    "escalation": _escalation,
    "outbox": _outbox,
    "overdue": _overdue,
    "digest": _digest,
    "report": _report,
}


def retry_delay(failures: int, low: float, high: float) -> float:
    """Back-off after `failures` failures in a row: doubles from `low`, capped at `high`
    (the exponent is capped before the power is taken)."""
    return min(high, low * 2 ** min(max(failures - 1, 0), 30))


def default_factories() -> list[ServiceFactory]:
    return list(SERVICES.values())


def factories_of(names: Iterable[str]) -> list[ServiceFactory]:
    """The factories of some services by name (tests, the demo, benchmarks), in start order."""
    wanted = set(names)
    if "mqtt" in wanted:
        wanted.add("mqtt-wages")  # one intake, two lanes (`mqtt.wage_lane`)
    unknown = wanted - SERVICES.keys()
    if unknown:
        raise ValueError(f"unknown services: {sorted(unknown)}")
    return [factory for name, factory in SERVICES.items() if name in wanted]


class Daemon:
    def __init__(
        self,
        ctx: Context,
        factories: list[ServiceFactory] | None = None,
        *,
        only: Iterable[str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.scheduler = AsyncIOScheduler(timezone=ctx.settings.organisation.zone)
        self.services: list[Service] = []
        self.ready = asyncio.Event()
        if factories is None:
            factories = factories_of(only) if only is not None else default_factories()
        self._factories = factories

    def find(self, kind: type[S]) -> S | None:
        """The service of that class among those built so far."""
        for service in self.services:
            if isinstance(service, kind):
                return service
        return None

    def require(self, kind: type[S]) -> S:
        found = self.find(kind)
        if found is None:
            raise RuntimeError(f"{kind.__name__} must be started before the services using it")
        return found

    def health(self) -> dict[str, Any]:
        parts: dict[str, Any] = {}
        for service in self.services:
            if isinstance(service, HasHealth):
                parts[service.name] = service.health()
        return parts

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run every service until `stop` is set (or SIGINT/SIGTERM when `stop` is None)."""
        stop = stop or self._signal_event()
        if not await self._wait_for_database(stop):
            return
        # One store, one key: refuse (KeyMismatch) rather than write unreadable data.
        await verify_key(self.ctx.db, self.ctx.privacy, self.ctx.clock)
        for factory in self._factories:
            service = factory(self.ctx, self)
            if service is not None:
                self.services.append(service)
        for service in self.services:
            if isinstance(service, Scheduled):
                service.schedule(self.scheduler)
        self.scheduler.start()
        self.ctx.metrics.up.set(1)
        log.info("daemon started", services=[s.name for s in self.services])
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._supervise(s), name=s.name) for s in self.services]
                self.ready.set()
                stopper = group.create_task(stop.wait(), name="stop")
                done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not stopper and task.exception() is None:
                        log.error("service ended unexpectedly", service=task.get_name())
                for task in [*tasks, stopper]:
                    task.cancel()
        finally:
            self.ctx.metrics.up.set(0)
            with contextlib.suppress(Exception):
                self.scheduler.shutdown(wait=False)
            log.info("daemon stopped")

    def _retry(self, failures: int) -> float:
        cfg = self.ctx.settings.database
        return retry_delay(failures, cfg.retry_min.total_seconds(), cfg.retry_max.total_seconds())

    async def _wait_for_database(self, stop: asyncio.Event) -> bool:
        """Migrate, waiting for a database that is not up yet; False if stopped meanwhile."""
        failures = 0
        while True:
            try:
                await self.ctx.db.migrate()
                if failures:
                    log.info("database reachable; starting", attempts=failures + 1)
                return True
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                delay = self._retry(failures)
                self.ctx.metrics.database_retries.labels("start").inc()
                log.warning(
                    "database unavailable at start; waiting for it",
                    error=exc.__class__.__name__,
                    detail=str(exc).splitlines()[0][:200] if str(exc) else "",
                    attempt=failures,
                    retry_in=round(delay, 2),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return False

    async def _supervise(self, service: Service) -> None:
        """Run a service; start it again when it failed because the database is away."""
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await service.run()
                return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # A service that ran a while before failing starts a new series.
                if (
                    time.monotonic() - started
                    > self.ctx.settings.database.retry_max.total_seconds()
                ):
                    failures = 0
                failures += 1
                delay = self._retry(failures)
                self.ctx.metrics.database_retries.labels(service.name).inc()
                log.warning(
                    "database unavailable; service restarts after a pause",
                    service=service.name,
                    error=exc.__class__.__name__,
                    detail=str(exc).splitlines()[0][:200] if str(exc) else "",
                    attempt=failures,
                    retry_in=round(delay, 2),
                )
                await asyncio.sleep(delay)

    @staticmethod
    def _signal_event() -> asyncio.Event:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return stop
