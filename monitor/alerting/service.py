"""The alert stage's two loops: findings -> alerts (`AlertingLoop`) and due deadlines ->
escalation steps, ended silences and missed handling deadlines (`EscalationLoop`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from monitor import bus
from monitor.alerting import deadlines
from monitor.alerting.book import AlertBook
from monitor.alerting.contacts import region_covers
from monitor.alerting.dispatch import record_event
from monitor.alerting.escalation import BATCH, reached_tiers
from monitor.context import Context
from monitor.logging import get_logger
from monitor.loops import Waker, finish, seconds_until
from monitor.models import Alert, AlertEvent, HandlingRecord, Silence
from monitor.reliability import corroborate

log = get_logger("labormon.alerting")
#: How often the escalation loop looks for informants' reports that others confirm.
CORROBORATE_EVERY = timedelta(minutes=1)


class AlertingLoop:
    """The service: findings -> alerts, woken by the FINDINGS topic, polling as fallback."""

    name = "alerting"

    def __init__(self, ctx: Context, book: AlertBook | None = None) -> None:
        self.ctx = ctx
        self.book = book or AlertBook(ctx)

    @classmethod
    def create(cls, ctx: Context) -> AlertingLoop | None:
        return cls(ctx) if ctx.settings.alerting.enabled else None

    def health(self) -> dict[str, Any]:
        return {}

    async def run_once(self) -> int:
        total = 0
        while (n := await self.book.process_findings()) > 0:
            total += n
        return total

    async def run(self) -> None:
        # Findings do not depend on time: clock moves need not wake this loop.
        waker = Waker(self.ctx.bus, [bus.FINDINGS], None)
        poll = self.ctx.settings.alerting.poll_interval.total_seconds()
        while True:
            try:
                await self.run_once()
            except (DBAPIError, OSError) as exc:
                log.error("alerting: database unavailable, retrying", error=str(exc)[:300])
            await waker.wait(poll)


class EscalationLoop:
    """The service: wakes at the next deadline (or when the clock or an alert changes)."""

    name = "escalation"

    def __init__(self, ctx: Context, book: AlertBook | None = None) -> None:
        book = book or AlertBook(ctx)
        self.ctx = ctx
        self.book = book
        self.escalator = book.escalator
        self._corroborated_at: datetime | None = None

    @classmethod
    def create(cls, ctx: Context) -> EscalationLoop | None:
        return cls(ctx) if ctx.settings.alerting.enabled else None

    def health(self) -> dict[str, Any]:
        return {}

    async def run_once(self) -> datetime | None:
        """Do everything due now; returns the next deadline (None: nothing scheduled)."""
        return await finish(self._run_once())

    async def _run_once(self) -> datetime | None:
        now = self.ctx.clock.now()
        handled: set[int] = set()
        while True:
            async with self.ctx.db.session() as session:
                query = (
                    select(Alert)
                    .where(Alert.next_escalation_at <= now, Alert.status != "resolved")
                    .order_by(Alert.next_escalation_at, Alert.id)
                    .limit(BATCH)
                )
                if self.ctx.db.is_postgres:
                    query = query.with_for_update(skip_locked=True)
                rows = list((await session.scalars(query)).all())
                for alert in rows:
                    if alert.id in handled:
                        # A policy that set a deadline not after `now` would spin here.
                        log.error("deadline did not advance", alert=alert.id)
                        alert.next_escalation_at = now + self.ctx.settings.alerting.poll_interval
                        continue
                    handled.add(alert.id)
                    await self.escalator.run_due(session, alert, now)
            if rows:
                self.ctx.bus.notify(bus.DELIVERIES)
            if len(rows) < BATCH:
                break
        await self.end_silences(now)
        await self.handle_missed(now)
        await self.corroborate(now)
        return await self.next_deadline()

    async def corroborate(self, now: datetime) -> int:
        """Informants' reports confirmed by another source are no longer 待核实."""
        window = self.ctx.settings.handling.corroboration_window
        if window <= timedelta(0):
            return 0
        # A cheap pass, but not on every wake-up: once per CORROBORATE_EVERY.
        if self._corroborated_at is not None and now - self._corroborated_at < CORROBORATE_EVERY:
            return 0
        self._corroborated_at = now
        async with self.ctx.db.session() as session:
            settled = await corroborate(session, now, window)
        if settled:
            log.info("reports corroborated", reports=len(settled))
        return len(settled)

    async def handle_missed(self, now: datetime) -> int:
        """Missed handling deadlines: each opens its `overdue_handling` alert (whose first
        step reminds the handler) in the transaction that claims it."""
        total = 0
        while True:
            async with self.ctx.db.session() as session:
                missed = await deadlines.claim_missed(
                    session, now, postgres=self.ctx.db.is_postgres
                )
                for deadline in missed:
                    alert = await session.get(Alert, deadline.alert_id)
                    if alert is None or alert.status == "resolved":
                        deadline.cancelled_at = now
                        continue
                    issuer = None
                    if deadline.kind == "answer" and deadline.record_id is not None:
                        record = await session.get(HandlingRecord, deadline.record_id)
                        issuer = (record.fields or {}).get("author_tier") if record else None
                    finding = await deadlines.overdue_finding(
                        session,
                        deadline,
                        alert,
                        now,
                        self.ctx.settings.organisation.zone,
                        issuer_tier=issuer,
                    )
                    session.add(finding)
                    await session.flush()
                    await self.book.apply(session, finding, now)
                    log.info(
                        "handling deadline missed",
                        alert=alert.id,
                        deadline=deadline.kind,
                        due=deadline.due_at.isoformat(),
                    )
            total += len(missed)
            if missed:
                self.ctx.bus.notify(bus.DELIVERIES)
            if len(missed) < deadlines.BATCH:
                return total

    async def next_deadline(self) -> datetime | None:
        async with self.ctx.db.session() as session:
            alert_due = await session.scalar(
                select(func.min(Alert.next_escalation_at)).where(Alert.status != "resolved")
            )
            silence_due = await session.scalar(
                select(func.min(Silence.ends_at)).where(Silence.end_processed_at.is_(None))
            )
            handling_due = await deadlines.next_due(session)
        found = [d for d in (alert_due, silence_due, handling_due) if d is not None]
        return min(found) if found else None

    async def end_silences(self, now: datetime) -> int:
        """Log the end of each silence and send what it held back (once, across daemons)."""
        ended = 0
        async with self.ctx.db.session() as session:
            query = select(Silence).where(
                Silence.end_processed_at.is_(None), Silence.ends_at <= now
            )
            if self.ctx.db.is_postgres:
                query = query.with_for_update(skip_locked=True)
            for silence in (await session.scalars(query)).all():
                silence.end_processed_at = now
                ended += 1
                log.info(
                    "silence ended",
                    silence=silence.id,
                    scope=silence.scope,
                    target=silence.target,
                    cancelled=silence.cancelled_at is not None,
                )
                await self._release(session, silence, now)
        if ended:
            self.ctx.bus.notify(bus.DELIVERIES)
        return ended

    async def _release(self, session: AsyncSession, silence: Silence, now: datetime) -> None:
        held = await session.execute(
            select(Alert, AlertEvent.details)
            .join(AlertEvent, AlertEvent.alert_id == Alert.id)
            .where(AlertEvent.event == "NotificationsSuppressed", Alert.status == "triggered")
            .order_by(Alert.id)
        )
        alerts: dict[int, Alert] = {}
        tiers: dict[int, set[str]] = {}
        for alert, details in held:
            if (details or {}).get("silence_id") == silence.id:
                alerts[alert.id] = alert
                tiers.setdefault(alert.id, set()).update((details or {}).get("tiers") or [])
        for alert in alerts.values():
            if silence.scope == "region" and not await region_covers(
                session, silence.target, alert.region_code
            ):
                continue
            record_event(
                session,
                alert,
                "SilenceEnded",
                now,
                reason=silence.reason,
                details={"silence_id": silence.id},
                metrics=self.escalator.metrics,
            )
            # Only the tiers this silence held: the others were told at the time.
            await self.escalator.dispatcher.notify(
                session,
                alert,
                [t for t in reached_tiers(alert) if t in tiers[alert.id]],
                "silence_ended",
                now,
            )

    async def run(self) -> None:
        waker = Waker(self.ctx.bus, [bus.ALERTS], self.ctx.clock)
        poll = self.ctx.settings.alerting.poll_interval.total_seconds()
        while True:
            timeout = poll
            try:
                timeout = seconds_until(await self.run_once(), self.ctx.clock, poll)
            except (DBAPIError, OSError) as exc:
                log.error("escalation: database unavailable, retrying", error=str(exc)[:300])
            await waker.wait(timeout)
