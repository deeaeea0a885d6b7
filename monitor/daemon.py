"""`labormon run`: the daemon wires the stages together and keeps them running.

Each stage is a `Service`: a long-running coroutine that reads what the stage before
wrote (rows) and writes what the next one reads. The daemon runs them side by side,
restarts none of them silently (a crashed service stops the daemon, so that systemd
restarts it and the log says why), and owns the APScheduler instance that only wakes
loops and starts periodic jobs (deadlines themselves live in database columns).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.context import Context
from monitor.logging import get_logger

log = get_logger("labormon.daemon")


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


#: Builders of the daemon's services, in start order. Each takes the context and the
#: daemon (for shared things such as the health registry) and returns a Service or None
#: (None: switched off by configuration).
ServiceFactory = Callable[[Context, "Daemon"], Service | None]


def default_factories() -> list[ServiceFactory]:
    from detectors.service import DetectorService
    from ingest.mqtt import MqttIngest
    from ingest.pipeline import IngestPipeline
    from monitor.alerting import AlertingLoop
    from monitor.api import HttpService
    from monitor.digest import DailyDigest
    from monitor.escalation import EscalationLoop
    from monitor.outbox import OutboxSender
    from monitor.overdue import OverdueCheck
    from monitor.report.service import ReportService

    # Stages in the direction data flows; the ingest pipeline comes before the MQTT
    # service and the HTTP intake, which hand it their messages.
    return [
        IngestPipeline.create,
        MqttIngest.create,
        HttpService.create,
        DetectorService.create,
        AlertingLoop.create,
        EscalationLoop.create,
        OutboxSender.create,
        OverdueCheck.create,
        DailyDigest.create,
        ReportService.create,
    ]


class Daemon:
    def __init__(self, ctx: Context, factories: list[ServiceFactory] | None = None) -> None:
        self.ctx = ctx
        self.scheduler = AsyncIOScheduler(timezone=ctx.settings.organisation.zone)
        self.services: list[Service] = []
        self.ready = asyncio.Event()
        self._factories = factories if factories is not None else default_factories()

    def health(self) -> dict[str, Any]:
        parts: dict[str, Any] = {}
        for service in self.services:
            if isinstance(service, HasHealth):
                parts[service.name] = service.health()
        return parts

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run every service until `stop` is set (or SIGINT/SIGTERM when `stop` is None)."""
        stop = stop or self._signal_event()
        await self.ctx.db.migrate()
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
                tasks = [group.create_task(s.run(), name=s.name) for s in self.services]
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

    @staticmethod
    def _signal_event() -> asyncio.Event:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return stop
