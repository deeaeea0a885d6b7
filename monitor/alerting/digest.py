"""The daily digest of level IV (一般, blue) alerts and of yesterday's petitions, one email
per county contact; and the city's weekly risk digest (风险提示周报).

Level IV alerts reach the county through this digest instead of a message each (interfaces
§5). At `alerting.digest.at` local time, each county's digest lists its level IV alerts
still open or raised in the last day. Exactly once across daemons: the daemon whose
`job_runs(job, key)` insert succeeds writes the county's deliveries in the same
transaction; the others find the row and skip. A daemon started after the digest time
sends that day's digest if nobody has.

Ordinary petitions raise no alert of their own (interfaces §5): the county reads how many
came in yesterday (and how many people, how many collective) in this digest. Risk alerts
(forecasts) reach the county at once and the city once a week: on
`alerting.risk.digest_weekday` at `digest_at`, each city's contacts get one message
ranking the risk alerts open in its counties, exactly once per city and week.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import date, datetime, time, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from monitor import bus
from monitor.alerting.book import AlertBook
from monitor.alerting.dispatch import record_event
from monitor.alerting.messages import subject_for
from monitor.alerting.outbox import priority_of
from monitor.context import Context
from monitor.logging import get_logger
from monitor.loops import Waker, finish
from monitor.models import Alert, JobRun, Petition, Region

log = get_logger("labormon.digest")

JOB = "level_iv_digest"
RISK_JOB = "risk_weekly_digest"
RISK_KINDS = ("enterprise_risk", "county_risk", "petition_surge")
LEVEL_ORDER = {"I": 0, "II": 1, "III": 2, "IV": 3}


class DailyDigest:
    name = "digest"

    def __init__(self, ctx: Context, book: AlertBook | None = None) -> None:
        self.ctx = ctx
        self.book = book or AlertBook(ctx)
        self.zone = ctx.settings.organisation.zone
        hour, minute = (int(p) for p in ctx.settings.alerting.digest.at.split(":"))
        self.at = time(hour, minute)
        risk = ctx.settings.alerting.risk
        hour, minute = (int(p) for p in risk.digest_at.split(":"))
        self.risk_at = time(hour, minute)
        self.risk_weekday = risk.digest_weekday
        self.risk_enabled = risk.digest_enabled
        self.holder = f"{ctx.settings.mqtt.client_id}@{socket.gethostname()}"
        self._kick = asyncio.Event()
        self.collective = ctx.settings.detectors.collective_people

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

    def risk_due_week(self, now: datetime) -> date | None:
        """The Monday of this week once this week's risk digest time has passed."""
        local = now.astimezone(self.zone)
        if not self.risk_enabled or local.weekday() != self.risk_weekday:
            return None
        if local.time() < self.risk_at:
            return None
        return local.date() - timedelta(days=local.weekday())

    async def _run_once(self) -> int:
        now = self.ctx.clock.now()
        day = self.due_day(now)
        week = self.risk_due_week(now)
        if day is None and week is None:
            return 0
        async with self.ctx.db.session() as session:
            regions = (
                await session.execute(
                    select(Region.code, Region.tier).where(Region.tier.in_([2, 3]))
                )
            ).all()
        written = 0
        if day is not None:
            for county in sorted(c for c, tier in regions if tier == 3):
                written += await self._county(county, day, now)
        if week is not None:
            for city in sorted(c for c, tier in regions if tier == 2):
                written += await self._city_risk(city, week, now)
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
                        # Events only: forecasts have their own (weekly) digest.
                        Alert.kind.notin_(["overdue_report", *RISK_KINDS]),
                        or_(Alert.status != "resolved", Alert.created_at >= since),
                    )
                    .order_by(Alert.created_at, Alert.id)
                )
            )
            petitions = await self._petitions(session, county, day - timedelta(days=1))
            written = 0
            if alerts or petitions["count"]:
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
                    "petitions": petitions,
                }
                written = await self._send(
                    session,
                    contacts,
                    body,
                    alerts,
                    "IncludedInDigest",
                    {"date": day.isoformat()},
                    now,
                )
                if not contacts:
                    log.warning("no email contact for the county digest", county=county)
            run.status = "done"
            run.finished_at = now
            run.details = {
                "alerts": len(alerts),
                "messages": written,
                "petitions": petitions["count"],
            }
        return written

    async def _petitions(self, session: Any, county: str, day: date) -> dict[str, Any]:
        """Yesterday's petitions of the county: they raise no alert of their own."""
        row = (
            await session.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(Petition.people_involved), 0),
                    func.coalesce(
                        func.sum(case((Petition.people_involved >= self.collective, 1), else_=0)),
                        0,
                    ),
                ).where(Petition.region_code == county, Petition.received_date == day)
            )
        ).one()
        return {
            "date": day.isoformat(),
            "count": int(row[0]),
            "people": int(row[1]),
            "collective": int(row[2]),
        }

    async def _city_risk(self, city: str, week: date, now: datetime) -> int:
        """The city's weekly risk digest: the risk alerts open in its counties, worst
        band first (interfaces §5: risk reaches the city weekly, not at once)."""
        key = f"{week.isoformat()}:{city}"
        async with self.ctx.db.session() as session:
            run = JobRun(
                job=RISK_JOB, key=key, holder=self.holder, started_at=now, status="running"
            )
            try:
                async with session.begin_nested():
                    session.add(run)
            except IntegrityError:
                return 0
            counties = list(
                await session.scalars(select(Region.code).where(Region.parent_code == city))
            )
            alerts = list(
                await session.scalars(
                    select(Alert).where(
                        Alert.region_code.in_([city, *counties]),
                        Alert.kind.in_(RISK_KINDS),
                        Alert.status != "resolved",
                    )
                )
            )
            alerts.sort(key=lambda a: (LEVEL_ORDER.get(a.level, 9), -(a.score or 0), a.id))
            written = 0
            if alerts:
                dispatcher = self.book.dispatcher
                contacts = [
                    c
                    for c in await dispatcher.contacts.for_region(session, city, "city")
                    if c.channel == "email"
                ]
                items = [await dispatcher.messages.item(session, a, "digest", now) for a in alerts]
                body = {
                    "kind": "risk_digest",
                    "region_code": city,
                    "region_name": await dispatcher.messages.region_name(session, city),
                    "date": local_day(now, self.zone),
                    "week": week.isoformat(),
                    "items": items,
                }
                written = await self._send(
                    session,
                    contacts,
                    body,
                    alerts,
                    "IncludedInRiskDigest",
                    {"week": week.isoformat()},
                    now,
                )
            run.status = "done"
            run.finished_at = now
            run.details = {"alerts": len(alerts), "messages": written}
        return written

    async def _send(
        self,
        session: Any,
        contacts: list[Any],
        body: dict[str, Any],
        alerts: list[Any],
        event: str,
        details: dict[str, Any],
        now: datetime,
    ) -> int:
        """Queue one digest email per contact and note on each alert that it went out in
        it; returns the messages queued."""
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
        for alert in alerts:
            record_event(
                session,
                alert,
                event,
                now,
                details=details | {"messages": len(contacts)},
                metrics=self.book.metrics,
            )
        return len(contacts)

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        scheduler.add_job(
            self._kick.set,
            CronTrigger(hour=self.at.hour, minute=self.at.minute, timezone=self.zone),
            id="labormon-digest",
            replace_existing=True,
        )
        scheduler.add_job(
            self._kick.set,
            CronTrigger(
                day_of_week=self.risk_weekday,
                hour=self.risk_at.hour,
                minute=self.risk_at.minute,
                timezone=self.zone,
            ),
            id="labormon-risk-digest",
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


def local_day(now: datetime, zone: Any) -> str:
    return now.astimezone(zone).date().isoformat()
