"""Overdue monthly wage reports: a heartbeat check on the monitoring points.

Last month's report is due by the end of `alerting.overdue.due_day` (default the 15th).
From `remind_at` (09:00 local) the next day, each point that was registered before the
month ended and has not filed gets an `overdue_report` alert, whose policy reminds the
point on its own channel at once and tells its county `county_after` later (default 5
days) if the report is still missing. A report filed in the meantime resolves the alert.

The check writes findings (detector "overdue") and the alerting loop does the rest, so
overdue reports go through the same dedup, audit log, outbox and console as every
other alert. One alert per point and period, ever: a leader who resolves one by hand
(a point that closed down) is not reminded again by the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date, datetime, time
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import and_, exists, select
from sqlalchemy.exc import DBAPIError

from monitor import bus
from monitor.clock import add_months
from monitor.context import Context
from monitor.logging import get_logger
from monitor.loops import Waker, finish
from monitor.models import Alert, Finding, MonitoringPoint, WageReport

log = get_logger("labormon.overdue")

KIND = "overdue_report"
DETECTOR = "overdue"
#: Clearing passes triggered by incoming records are at least this far apart (seconds).
CLEAR_SPACING = 2.0


def dedup_key(point_id: str, period: date) -> str:
    return f"{KIND}:{point_id}:{period:%Y-%m}"


class OverdueCheck:
    name = "overdue"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.config = ctx.settings.alerting.overdue
        self.zone = ctx.settings.organisation.zone
        hour, minute = (int(p) for p in self.config.remind_at.split(":"))
        self.remind_time = time(hour, minute)
        self._kick = asyncio.Event()
        self._full_due = True

    @classmethod
    def create(cls, ctx: Context) -> OverdueCheck | None:
        config = ctx.settings.alerting
        return cls(ctx) if config.enabled and config.overdue.enabled else None

    def health(self) -> dict[str, Any]:
        return {}

    def due(self, now: datetime) -> tuple[date, date]:
        """(the latest period whose reminders have started, its due date) at `now`."""
        local = now.astimezone(self.zone)
        this_month = local.date().replace(day=1)
        start = datetime.combine(
            this_month.replace(day=self.config.due_day + 1), self.remind_time, self.zone
        )
        month = this_month if local >= start else add_months(this_month, -1)
        return add_months(month, -1), month.replace(day=self.config.due_day)

    async def run_once(self) -> tuple[int, int]:
        """(reminders started, alerts cleared by a filed report)."""
        return await finish(self._run_once())

    async def _run_once(self) -> tuple[int, int]:
        now = self.ctx.clock.now()
        started = await self._remind(now)
        cleared = await self._clear(now)
        if started or cleared:
            self.ctx.bus.notify(bus.FINDINGS)
        return started, cleared

    async def _remind(self, now: datetime) -> int:
        period, due_date = self.due(now)
        # Points registered after the month ended owe nothing for it.
        registered_by = datetime.combine(add_months(period, 1), time(0), self.zone)
        async with self.ctx.db.session() as session:
            filed = exists().where(
                and_(WageReport.point_id == MonitoringPoint.point_id, WageReport.period == period)
            )
            missing = (
                await session.scalars(
                    select(MonitoringPoint)
                    .where(MonitoringPoint.created_at < registered_by, ~filed)
                    .order_by(MonitoringPoint.point_id)
                )
            ).all()
            if not missing:
                return 0
            keys = {dedup_key(p.point_id, period) for p in missing}
            known = set(
                await session.scalars(select(Alert.dedup_key).where(Alert.dedup_key.in_(keys)))
            ) | set(
                await session.scalars(
                    select(Finding.dedup_key).where(
                        Finding.dedup_key.in_(keys), Finding.processed_at.is_(None)
                    )
                )
            )
            started = 0
            for point in missing:
                key = dedup_key(point.point_id, period)
                if key in known:
                    continue
                session.add(self._finding(point, period, due_date, now))
                started += 1
        if started:
            log.info("monthly reports overdue", period=f"{period:%Y-%m}", points=started)
        return started

    def _finding(
        self, point: MonitoringPoint, period: date, due_date: date, now: datetime
    ) -> Finding:
        text = f"{period:%Y年%m月}月度报告应于{due_date:%m月%d日}前报送，至今未报"
        return Finding(
            detector=DETECTOR,
            kind=KIND,
            entity_type="point",
            entity_id=point.point_id,
            dedup_key=dedup_key(point.point_id, period),
            region_code=point.region_code,
            point_id=point.point_id,
            score=0.0,
            level="IV",
            title=f"{point.name} {period:%Y-%m} 月度报告逾期未报",
            evidence={
                "factors": [{"code": "report_overdue", "text": text, "weight": 1.0}],
                "source_ids": [],
                "enterprise_name": point.name,
                "period": f"{period:%Y-%m}",
                "due": due_date.isoformat(),
            },
            as_of=now,
            created_at=now,
        )

    async def _clear(self, now: datetime) -> int:
        cleared = 0
        async with self.ctx.db.session() as session:
            open_alerts = (
                await session.scalars(
                    select(Alert).where(Alert.kind == KIND, Alert.status != "resolved")
                )
            ).all()
            for alert in open_alerts:
                period_text = (alert.evidence or {}).get("period")
                if not alert.point_id or not period_text:
                    continue
                period = date.fromisoformat(f"{period_text}-01")
                report = await session.scalar(
                    select(WageReport.report_id).where(
                        WageReport.point_id == alert.point_id, WageReport.period == period
                    )
                )
                if report is None:
                    continue
                pending = await session.scalar(
                    select(Finding.id).where(
                        Finding.dedup_key == alert.dedup_key,
                        Finding.processed_at.is_(None),
                        Finding.level.is_(None),
                    )
                )
                if pending is not None:
                    continue
                session.add(
                    Finding(
                        detector=DETECTOR,
                        kind=KIND,
                        entity_type="point",
                        entity_id=alert.point_id,
                        dedup_key=alert.dedup_key,
                        region_code=alert.region_code,
                        point_id=alert.point_id,
                        score=0.0,
                        level=None,
                        title=f"{alert.title}（已报送）",
                        evidence={"factors": [], "source_ids": [report], "period": period_text},
                        as_of=now,
                        created_at=now,
                    )
                )
                cleared += 1
        return cleared

    def _full_check(self) -> None:
        self._full_due = True
        self._kick.set()

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        # APScheduler only wakes the loop: at the reminder time, and for a periodic check.
        scheduler.add_job(
            self._full_check,
            CronTrigger(
                hour=self.remind_time.hour, minute=self.remind_time.minute, timezone=self.zone
            ),
            id="labormon-overdue-daily",
            replace_existing=True,
        )
        scheduler.add_job(
            self._full_check,
            IntervalTrigger(seconds=self.config.check_interval.total_seconds()),
            id="labormon-overdue-interval",
            replace_existing=True,
        )

    async def run(self) -> None:
        # New records (RECORDS) only trigger the cheap part, clearing reminders of points
        # that have now filed, at most once per CLEAR_SPACING; the full check runs at
        # start, at the reminder time and every check_interval.
        waker = Waker(self.ctx.bus, [bus.RECORDS], None, extra=self._kick)
        self._full_due = True
        while True:
            try:
                if self._full_due:
                    self._full_due = False
                    await self.run_once()
                elif await finish(self._clear(self.ctx.clock.now())):
                    self.ctx.bus.notify(bus.FINDINGS)
            except (DBAPIError, OSError) as exc:
                log.error("overdue check: database unavailable", error=str(exc)[:300])
            await waker.wait(self.config.check_interval.total_seconds())
            if not self._full_due:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation
                # that comes in the turn the event is set, and the loop would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLEAR_SPACING):
                        await self._kick.wait()
