"""Escalation: the policy of each level (CONTRACT §5, configurable) and the loop that
carries alerts up the tiers county -> city -> province until someone acknowledges.

All state lives in the alert's columns: `escalation_started_at` (when this round began;
step offsets count from it), `escalation_step` (the next step), `repeats_done`,
`tier_reached` and `next_escalation_at` (the deadline). The loop claims due alerts with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (on SQLite every write transaction holds the
database's write lock from BEGIN), performs what is due and moves the deadline on, in
one transaction with the deliveries it writes. A restart or a second daemon therefore
neither loses nor doubles a step; after downtime, every step that fell due is done at
once and missed repeats collapse into one.

While an alert is acknowledged the same columns time the reminder to the acknowledger
(`escalation_step` 0) and then the acknowledgement's expiry (1), after which the alert is
triggered again and a new round starts (acknowledged alerts are not forgotten).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from monitor import bus
from monitor.alerting_metrics import AlertingMetrics
from monitor.config import LEVELS, LevelPolicyConfig, Settings
from monitor.contacts import TIER_NUMBERS, region_covers
from monitor.context import Context
from monitor.dispatch import Dispatcher, record_event
from monitor.logging import get_logger
from monitor.loops import Waker, finish, seconds_until
from monitor.models import Alert, AlertEvent, Silence

if TYPE_CHECKING:
    from monitor.alerting import AlertBook

log = get_logger("labormon.escalation")

#: `tier_reached` before anyone was told.
NOTHING_REACHED = 5
#: Alerts handled per transaction by the loop.
BATCH = 50


@dataclass(frozen=True)
class Step:
    after: timedelta
    tiers: tuple[str, ...]
    digest: bool = False


@dataclass(frozen=True)
class EscalationPolicy:
    steps: tuple[Step, ...]
    #: Re-notifications after the last step; None: until acknowledged.
    repeat: int | None
    repeat_interval: timedelta
    remind_acknowledged_after: timedelta | None
    acknowledgement_timeout: timedelta | None

    @classmethod
    def from_config(cls, config: LevelPolicyConfig) -> EscalationPolicy:
        def positive(value: timedelta) -> timedelta | None:
            return value if value > timedelta(0) else None

        return cls(
            steps=tuple(Step(s.after, tuple(s.notify), s.digest) for s in config.steps),
            repeat=None if config.repeat == "until_acknowledged" else int(config.repeat),
            repeat_interval=config.repeat_interval,
            remind_acknowledged_after=positive(config.remind_acknowledged_after),
            acknowledgement_timeout=positive(config.acknowledgement_timeout),
        )

    def may_repeat(self, done: int) -> bool:
        if self.repeat_interval <= timedelta(0):
            return False
        return self.repeat is None or done < self.repeat


class Policies:
    def __init__(self, settings: Settings) -> None:
        levels = settings.alerting.levels
        self.levels = {lv: EscalationPolicy.from_config(levels.for_level(lv)) for lv in LEVELS}
        overdue = settings.alerting.overdue
        # Overdue wage reports: the point itself first, its county after a further delay.
        self.overdue = EscalationPolicy(
            steps=(Step(timedelta(0), ("point",)), Step(overdue.county_after, ("county",))),
            repeat=0,
            repeat_interval=timedelta(0),
            remind_acknowledged_after=None,
            acknowledgement_timeout=None,
        )

    def for_alert(self, alert: Alert) -> EscalationPolicy:
        if alert.kind == "overdue_report":
            return self.overdue
        return self.levels[alert.level]


def reached_tiers(alert: Alert) -> list[str]:
    """The tiers told about this alert so far (point only for overdue reports)."""
    return [
        tier
        for tier, rank in TIER_NUMBERS.items()
        if rank >= alert.tier_reached and (tier != "point" or alert.kind == "overdue_report")
    ]


class Escalator:
    """The step logic, run inside the caller's transaction."""

    def __init__(
        self, policies: Policies, dispatcher: Dispatcher, metrics: AlertingMetrics
    ) -> None:
        self.policies = policies
        self.dispatcher = dispatcher
        self.metrics = metrics

    async def start_round(
        self,
        session: AsyncSession,
        alert: Alert,
        now: datetime,
        *,
        purpose: str = "alert",
        also: Iterable[str] = (),
    ) -> None:
        """(Re)start escalation at `now`: a new alert, a level rise, an expired
        acknowledgement. `also` are tiers told with the first step (those who already
        know of the alert hear that it got worse or came back)."""
        alert.escalation_started_at = now
        alert.escalation_step = 0
        alert.repeats_done = 0
        await self._advance(session, alert, now, first_purpose=purpose, also=set(also))

    async def run_due(self, session: AsyncSession, alert: Alert, now: datetime) -> None:
        if alert.status == "triggered":
            await self._advance(session, alert, now)
        elif alert.status == "acknowledged":
            await self._acknowledged_due(session, alert, now)
        else:
            alert.next_escalation_at = None

    def _mark(self, alert: Alert, tiers: Iterable[str]) -> None:
        for tier in tiers:
            alert.tier_reached = min(alert.tier_reached, TIER_NUMBERS[tier])

    async def _advance(
        self,
        session: AsyncSession,
        alert: Alert,
        now: datetime,
        *,
        first_purpose: str | None = None,
        also: set[str] | None = None,
    ) -> None:
        policy = self.policies.for_alert(alert)
        base = alert.escalation_started_at or alert.created_at
        pending = set(also or ())
        # 1. every step that is due, in order (several after downtime)
        while alert.escalation_step < len(policy.steps):
            index = alert.escalation_step
            step = policy.steps[index]
            if base + step.after > now:
                break
            alert.escalation_step = index + 1
            new = [t for t in step.tiers if TIER_NUMBERS[t] < alert.tier_reached]
            if index > 0 and not new:
                continue  # everyone in this step already knows (a restarted round)
            if step.digest:
                self._mark(alert, step.tiers)
                record_event(
                    session,
                    alert,
                    "AlertQueuedForDigest",
                    now,
                    details={"tiers": list(step.tiers)},
                    metrics=self.metrics,
                )
                continue
            tiers = set(step.tiers if index == 0 else new)
            purpose = (first_purpose or "alert") if index == 0 else "escalation"
            if index == 0:
                tiers |= pending
                pending = set()
            await self.dispatcher.notify(session, alert, tiers, purpose, now, step=index)
            if index > 0:
                record_event(
                    session,
                    alert,
                    "AlertEscalated",
                    now,
                    reason=f"not acknowledged {_duration(step.after)} after it was raised",
                    details={"step": index, "tiers": sorted(tiers)},
                    metrics=self.metrics,
                )
                await self.dispatcher.publish(
                    session, alert, "AlertEscalated", now, {"tiers": sorted(tiers)}
                )
            self._mark(alert, tiers)
        if pending:
            # The first step is not due yet: those who know hear of the change now.
            await self.dispatcher.notify(session, alert, pending, first_purpose or "alert", now)
        # 2. repeats after the last step; missed ones (downtime) collapse into one
        if alert.escalation_step >= len(policy.steps) and policy.may_repeat(alert.repeats_done):
            origin = base + policy.steps[-1].after
            due = int((now - origin) / policy.repeat_interval)
            if policy.repeat is not None:
                due = min(due, policy.repeat)
            if due > alert.repeats_done:
                alert.repeats_done = due
                await self.dispatcher.notify(session, alert, reached_tiers(alert), "repeat", now)
        # 3. the next deadline
        alert.next_escalation_at = self._next(alert, policy, base)

    @staticmethod
    def _next(alert: Alert, policy: EscalationPolicy, base: datetime) -> datetime | None:
        if alert.escalation_step < len(policy.steps):
            return base + policy.steps[alert.escalation_step].after
        if policy.may_repeat(alert.repeats_done):
            origin = base + policy.steps[-1].after
            return origin + policy.repeat_interval * (alert.repeats_done + 1)
        return None

    def on_acknowledged(self, alert: Alert, now: datetime) -> None:
        """Escalation stops; the reminder and the expiry of the acknowledgement start."""
        policy = self.policies.for_alert(alert)
        if policy.remind_acknowledged_after:
            alert.escalation_step = 0
            alert.next_escalation_at = now + policy.remind_acknowledged_after
        elif policy.acknowledgement_timeout:
            alert.escalation_step = 1
            alert.next_escalation_at = now + policy.acknowledgement_timeout
        else:
            alert.next_escalation_at = None

    async def _acknowledged_due(self, session: AsyncSession, alert: Alert, now: datetime) -> None:
        policy = self.policies.for_alert(alert)
        base = alert.acknowledged_at or now
        remind, timeout = policy.remind_acknowledged_after, policy.acknowledgement_timeout
        if alert.escalation_step == 0 and remind and base + remind <= now:
            alert.escalation_step = 1
            contacts = []
            if alert.acknowledged_by:
                contacts = await self.dispatcher.contacts.for_account(
                    session, alert.acknowledged_by, "county"
                )
            record_event(
                session,
                alert,
                "AcknowledgementReminded",
                now,
                reason=f"acknowledged {_duration(remind)} ago and not resolved",
                details={"contacts": len(contacts)},
                metrics=self.metrics,
            )
            if contacts:
                await self.dispatcher.notify_contacts(session, alert, contacts, "reminder", now)
        if alert.escalation_step == 0 and not remind:
            alert.escalation_step = 1
        if alert.escalation_step >= 1 and timeout and base + timeout <= now:
            record_event(
                session,
                alert,
                "AcknowledgementExpired",
                now,
                reason=f"acknowledged {_duration(timeout)} ago and still not resolved",
                details={"acknowledged_by": alert.acknowledged_by},
                metrics=self.metrics,
            )
            alert.status = "triggered"
            alert.acknowledged_at = None
            alert.acknowledged_by = None
            await self.dispatcher.publish(session, alert, "AcknowledgementExpired", now)
            await self.start_round(
                session, alert, now, purpose="reescalated", also=reached_tiers(alert)
            )
            return
        if alert.escalation_step == 0 and remind:
            alert.next_escalation_at = base + remind
        elif timeout:
            alert.next_escalation_at = base + timeout
        else:
            alert.next_escalation_at = None


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 86400 == 0 and seconds:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


class EscalationLoop:
    """The service: wakes at the next deadline (or when the clock or an alert changes)."""

    name = "escalation"

    def __init__(self, ctx: Context, book: AlertBook | None = None) -> None:
        if book is None:
            from monitor.alerting import AlertBook

            book = AlertBook(ctx)
        self.ctx = ctx
        self.book = book
        self.escalator = book.escalator

    @classmethod
    def create(cls, ctx: Context, daemon: Any) -> EscalationLoop | None:
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
        return await self.next_deadline()

    async def next_deadline(self) -> datetime | None:
        async with self.ctx.db.session() as session:
            alert_due = await session.scalar(
                select(func.min(Alert.next_escalation_at)).where(Alert.status != "resolved")
            )
            silence_due = await session.scalar(
                select(func.min(Silence.ends_at)).where(Silence.end_processed_at.is_(None))
            )
        found = [d for d in (alert_due, silence_due) if d is not None]
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
        for alert, details in held:
            if (details or {}).get("silence_id") == silence.id:
                alerts[alert.id] = alert
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
            await self.escalator.dispatcher.notify(
                session, alert, reached_tiers(alert), "silence_ended", now
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
