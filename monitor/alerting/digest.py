"""The daily digest of level IV (一般, blue) alerts, one email per county contact.

Level IV alerts reach the county through this digest instead of a message each (interfaces
§5). At `alerting.digest.at` local time, each county's digest lists its level IV alerts
still open or raised in the last day. Exactly once across daemons: the daemon whose
`job_runs(job, key)` insert succeeds writes the county's deliveries in the same
transaction; the others find the row and skip. A daemon started after the digest time
sends that day's digest if nobody has.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import date, datetime, time, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import or_, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from monitor import bus
from monitor.alerting.book import AlertBook
from monitor.alerting.dispatch import record_event
from monitor.alerting.messages import subject_for
from monitor.alerting.outbox import priority_of
from monitor.context import Context
from monitor.logging import get_logger
from monitor.loops import Waker, finish
from monitor.models import Alert, JobRun, Region

log = get_logger("labormon.digest")

JOB = "level_iv_digest"


class DailyDigest:
    name = "digest"

    def __init__(self, ctx: Context, book: AlertBook | None = None) -> None:
        self.ctx = ctx
        self.book = book or AlertBook(ctx)
        self.zone = ctx.settings.organisation.zone
        hour, minute = (int(p) for p in ctx.settings.alerting.digest.at.split(":"))
        self.at = time(hour, minute)
        self.holder = f"{ctx.settings.mqtt.client_id}@{socket.gethostname()}"
        self._kick = asyncio.Event()

    @classmethod
    def create(cls, ctx: Context) -> DailyDigest | None:
        config = ctx.settings.alerting
        return cls(ctx) if config.enabled and config.digest.enabled else None

    def health(self) -> dict[str, Any]:
        return {}

    def due_day(self, now: datetime) -> date | None:
        """Today (local) once the digest time has passed, else None."""
        local = now.astimezone(self.zone)
        return local.date() if local.time() >= self.at else None

    async def run_once(self) -> int:
        """Write today's digests not yet written by anyone; returns the messages written."""
        return await finish(self._run_once())

    async def _run_once(self) -> int:
        now = self.ctx.clock.now()
        day = self.due_day(now)
        if day is None:
            return 0
        async with self.ctx.db.session() as session:
            counties = list(
                await session.scalars(
                    select(Region.code).where(Region.tier == 3).order_by(Region.code)
                )
            )
        written = 0
        for county in counties:
            written += await self._county(county, day, now)
        if written:
            self.ctx.bus.notify(bus.DELIVERIES)
        return written

    async def _county(self, county: str, day: date, now: datetime) -> int:
        key = f"{day.isoformat()}:{county}"
        since = datetime.combine(day, self.at, self.zone) - timedelta(days=1)
        async with self.ctx.db.session() as session:
            run = JobRun(job=JOB, key=key, holder=self.holder, started_at=now, status="running")
            try:
                async with session.begin_nested():
                    session.add(run)
            except IntegrityError:
                return 0  # another daemon has this county's digest for the day
            alerts = list(
                await session.scalars(
                    select(Alert)
                    .where(
                        Alert.region_code == county,
                        Alert.level == "IV",
                        Alert.kind != "overdue_report",
                        or_(Alert.status != "resolved", Alert.created_at >= since),
                    )
                    .order_by(Alert.created_at, Alert.id)
                )
            )
            written = 0
            if alerts:
                dispatcher = self.book.dispatcher
                contacts = [
                    c
                    for c in await dispatcher.contacts.for_region(session, county, "county")
                    if c.channel == "email" and "IV" in c.levels
                ]
                items = [await dispatcher.messages.item(session, a, "digest", now) for a in alerts]
                body = {
                    "kind": "digest",
                    "region_code": county,
                    "region_name": await dispatcher.messages.region_name(session, county),
                    "date": day.isoformat(),
                    "items": items,
                }
                for contact in contacts:
                    await self.book.outbox.enqueue(
                        session,
                        channel="email",
                        recipient=contact.recipient,
                        address=contact.address,
                        subject=subject_for(body),
                        body=body,
                        purpose="digest",
                        now=now,
                        priority=priority_of("IV"),
                    )
                    written += 1
                for alert in alerts:
                    record_event(
                        session,
                        alert,
                        "IncludedInDigest",
                        now,
                        details={"date": day.isoformat(), "messages": written},
                        metrics=self.book.metrics,
                    )
                if not contacts:
                    log.warning("no email contact for the county digest", county=county)
            run.status = "done"
            run.finished_at = now
            run.details = {"alerts": len(alerts), "messages": written}
        return written

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        scheduler.add_job(
            self._kick.set,
            CronTrigger(hour=self.at.hour, minute=self.at.minute, timezone=self.zone),
            id="labormon-digest",
            replace_existing=True,
        )

    async def run(self) -> None:
        waker = Waker(self.ctx.bus, [], None, extra=self._kick)
        while True:
            try:
                await self.run_once()
            except (DBAPIError, OSError) as exc:
                log.error("digest: database unavailable", error=str(exc)[:300])
            # The scheduler wakes us at the digest time; the hourly look is a fallback.
            await waker.wait(3600)
