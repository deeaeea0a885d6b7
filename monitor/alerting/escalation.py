"""Escalation: the policy of each level (interfaces §5, configurable) and the loop that
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

from sqlalchemy.ext.asyncio import AsyncSession

from monitor.alerting.contacts import TIER_NUMBERS
from monitor.alerting.dispatch import Dispatcher, record_event
from monitor.alerting.metrics import AlertingMetrics
from monitor.config import LEVELS, LevelPolicyConfig, Settings
from monitor.logging import get_logger
from monitor.models import Alert

log = get_logger("labormon.escalation")

#: Forecasts, not events (interfaces §5).
RISK_KINDS = frozenset({"enterprise_risk", "county_risk", "petition_surge"})
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
        self.tell_above_after = settings.handling.tell_above_after
        overdue = settings.alerting.overdue
        # Overdue wage reports: the point itself first, its county after a further delay.
        self.overdue = EscalationPolicy(
            steps=(Step(timedelta(0), ("point",)), Step(overdue.county_after, ("county",))),
            repeat=0,
            repeat_interval=timedelta(0),
            remind_acknowledged_after=None,
            acknowledgement_timeout=None,
        )

        # Risk alerts are forecasts: the county at once, the city in the weekly risk
        # digest, the province never by themselves; no repeats, no re-escalation.
        self.risk_as_events = settings.alerting.risk.escalate_as_events
        self.risk = EscalationPolicy(
            steps=(Step(timedelta(0), tuple(settings.alerting.risk.notify)),),
            repeat=0,
            repeat_interval=timedelta(0),
            remind_acknowledged_after=None,
            acknowledgement_timeout=None,
        )

    def for_alert(self, alert: Alert) -> EscalationPolicy:
        if alert.kind == "overdue_report":
            return self.overdue
        if alert.kind == "overdue_handling":
            return self.handling(alert)
        if alert.kind in RISK_KINDS and not self.risk_as_events:
            return self.risk
        return self.levels[alert.level]

    def handling(self, alert: Alert) -> EscalationPolicy:
        """A missed handling deadline: the handler's tier at once, the tier above
        `tell_above_after` later; an unanswered instruction tells the instructing tier at
        once (it set the due time itself)."""
        evidence = alert.evidence or {}
        handler = str(evidence.get("handler_tier") or "county")
        above = str(evidence.get("above_tier") or "city")
        if evidence.get("deadline_kind") == "answer":
            steps: tuple[Step, ...] = (Step(timedelta(0), (handler, above)),)
        else:
            steps = (Step(timedelta(0), (handler,)), Step(self.tell_above_after, (above,)))
        return EscalationPolicy(
            steps=steps,
            repeat=0,
            repeat_interval=timedelta(0),
            remind_acknowledged_after=None,
            acknowledgement_timeout=None,
        )


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
