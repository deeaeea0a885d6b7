"""Turning "tell these tiers about this alert" into deliveries, in the caller's transaction.

Finds the tiers' contacts, holds the messages back when a silence covers the alert,
builds the message (with a signed acknowledge link for each leader's email), and writes
one delivery per contact and channel. A tier with nobody to tell is recorded on the
alert and counted, never silently skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from monitor.alerting.acklinks import AckLinks
from monitor.alerting.contacts import TIER_NUMBERS, Contact, Contacts
from monitor.alerting.messages import (
    LEVEL_COLOURS,
    LEVEL_NAMES,
    RISK_KINDS,
    MessageBuilder,
    scrub,
)
from monitor.alerting.metrics import AlertingMetrics
from monitor.alerting.outbox import Outbox, priority_of
from monitor.alerting.silences import active_silences, held_tiers
from monitor.config import Settings
from monitor.logging import get_logger
from monitor.models import Alert, AlertEvent
from monitor.safetext import one_line

log = get_logger("labormon.dispatch")

#: Tiers in the order they are told.
TIER_ORDER = ("point", "county", "city", "province")


def record_event(
    session: AsyncSession,
    alert: Alert,
    event: str,
    now: datetime,
    *,
    actor: str = "system",
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    metrics: AlertingMetrics | None = None,
) -> None:
    """Append to the audit log (who, when, why) in the caller's transaction."""
    session.add(
        AlertEvent(
            alert_id=alert.id, at=now, event=event, actor=actor, reason=reason, details=details
        )
    )
    if metrics is not None:
        metrics.alert_events.labels(event).inc()


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        links: AckLinks,
        metrics: AlertingMetrics,
    ) -> None:
        self.settings = settings
        self.config = settings.alerting
        self.contacts = Contacts(settings.alerting)
        self.messages = MessageBuilder(
            settings.organisation.zone, settings.http.base_url, settings.alerting.requirements
        )
        self.outbox = outbox
        self.links = links
        self.metrics = metrics

    async def notify(
        self,
        session: AsyncSession,
        alert: Alert,
        tiers: Iterable[str],
        purpose: str,
        now: datetime,
        *,
        step: int | None = None,
    ) -> int:
        """Tell the contacts of `tiers` about `alert`; returns the deliveries written."""
        wanted = [t for t in TIER_ORDER if t in set(tiers)]
        if not wanted:
            return 0
        await session.flush()  # the alert needs its id, and the item reads its events
        silences = await active_silences(
            session, alert, now, cover_level_i=self.config.silences_cover_level_i
        )
        held = held_tiers(silences, wanted, TIER_NUMBERS)
        for silence in {id(s): s for s in held.values()}.values():
            tiers_held = [t for t in wanted if held.get(t) is silence]
            record_event(
                session,
                alert,
                "NotificationsSuppressed",
                now,
                reason=f"silence {silence.id}",
                details={"silence_id": silence.id, "tiers": tiers_held, "purpose": purpose},
                metrics=self.metrics,
            )
        wanted = [t for t in wanted if t not in held]
        if not wanted:
            return 0
        contacts: list[Contact] = []
        empty: list[str] = []
        for tier in wanted:
            found = [
                c
                for c in await self.contacts.for_tier(session, alert, tier)
                if alert.level in c.levels
            ]
            if not found:
                empty.append(tier)
            contacts += found
        if empty:
            for tier in empty:
                self.metrics.undeliverable.labels(tier).inc()
            record_event(
                session,
                alert,
                "NotificationUndeliverable",
                now,
                reason="no contact configured for " + ", ".join(empty),
                details={"tiers": empty, "purpose": purpose},
                metrics=self.metrics,
            )
            log.warning(
                "no contact for tier", alert=alert.id, tiers=empty, region=alert.region_code
            )
        record_event(
            session,
            alert,
            "AlertNotified",
            now,
            details={"tiers": wanted, "purpose": purpose, "step": step, "contacts": len(contacts)},
            metrics=self.metrics,
        )
        return await self._write(session, alert, contacts, purpose, now)

    async def notify_contacts(
        self,
        session: AsyncSession,
        alert: Alert,
        contacts: list[Contact],
        purpose: str,
        now: datetime,
    ) -> int:
        """Tell given contacts (the leader who acknowledged) about `alert`."""
        await session.flush()
        return await self._write(session, alert, contacts, purpose, now)

    async def _write(
        self,
        session: AsyncSession,
        alert: Alert,
        contacts: list[Contact],
        purpose: str,
        now: datetime,
    ) -> int:
        written = 0
        seen: set[tuple[str, str]] = set()
        base_item = await self.messages.item(session, alert, purpose, now)
        for contact in contacts:
            if (contact.channel, contact.address) in seen:
                continue  # a duty room listed both as a contact and a group, say
            seen.add((contact.channel, contact.address))
            item = dict(base_item)
            link = None
            if (
                contact.account_id
                and contact.channel == "email"
                and alert.status == "triggered"
                and purpose not in ("resolved", "acknowledged")
            ):
                item["ack_url"], link = await self.links.issue(
                    session, alert.id, contact.account_id
                )
            delivery = await self.outbox.enqueue_alert(
                session, contact=contact, alert=alert, item=item, purpose=purpose, now=now
            )
            if link is not None:
                link.delivery_id = delivery.id
            written += 1
        return written

    async def publish(
        self,
        session: AsyncSession,
        alert: Alert,
        event: str,
        now: datetime,
        details: dict[str, Any] | None = None,
    ) -> None:
        """An alert event on MQTT (`labormon/v1/alerts/{region_code}`), via the outbox."""
        if not self.config.mqtt_events:
            return
        await session.flush()
        payload = {
            "event": event,
            "alert_id": alert.id,
            "kind": alert.kind,
            "level": alert.level,
            "level_name": (
                f"{LEVEL_COLOURS[alert.level][0]}风险提示"
                if alert.kind in RISK_KINDS and alert.level in LEVEL_COLOURS
                else LEVEL_NAMES.get(alert.level, alert.level)
            ),
            "status": alert.status,
            "region_code": alert.region_code,
            "point_id": alert.point_id,
            "title": one_line(scrub(alert.title, 200)),
            "people_involved": alert.people_involved,
            "tier_reached": alert.tier_reached,
            "at": now.isoformat(),
        } | (details or {})
        topic = f"{self.settings.mqtt.topic_prefix}/alerts/{alert.region_code}"
        await self.outbox.enqueue(
            session,
            channel="mqtt",
            recipient="broker",
            address=topic,
            subject=event,
            body=payload,
            purpose="event",
            now=now,
            priority=priority_of(alert.level),
            alert_id=alert.id,
        )
