"""The duty view (值班台): what needs action now, in the viewer's regions.

Needs action: every alert nobody has acknowledged, and every acknowledged one whose
handling is overdue. Overdue for acknowledgement means past the first escalation of its
level's policy (the moment escalation would tell the next tier, or repeat for level I);
overdue for handling means past the reminder to the acknowledger. Both come from the
same configured policies the escalation loop runs on, so the view and the loop agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from monitor.alerting.escalation import EscalationPolicy, Policies
from monitor.context import Context
from monitor.models import Account, Alert, Region, ShiftHandover

RANK = {"I": 1, "II": 2, "III": 3, "IV": 4}
#: Alerts looked at for one view (newest first); far more than a shift can handle.
LIMIT = 5000


@dataclass
class DutyRow:
    alert: Alert
    #: "ack" (not acknowledged in time), "handling" (acknowledged, not handled in time)
    overdue: str | None
    due_at: datetime | None


@dataclass
class Contact:
    region_code: str
    account_id: str
    role: str
    name: str | None
    phone: str | None


def ack_due(policy: EscalationPolicy, alert: Alert) -> datetime | None:
    """When an unacknowledged alert is overdue: its first escalation after the start."""
    base = alert.created_at
    later = [s.after for s in policy.steps if s.after.total_seconds() > 0]
    if later:
        return base + min(later)
    if policy.may_repeat(0):
        return base + policy.repeat_interval
    return None


def handling_due(policy: EscalationPolicy, alert: Alert) -> datetime | None:
    if alert.acknowledged_at is None:
        return None
    wait = policy.remind_acknowledged_after or policy.acknowledgement_timeout
    return alert.acknowledged_at + wait if wait else None


async def duty_rows(
    ctx: Context,
    regions: Iterable[str],
    *,
    status: str = "needs",
    county: str = "",
    kind: str = "",
    level: str = "",
) -> list[DutyRow]:
    """The alerts of the view, overdue first, then by level and recency."""
    codes = list(regions)
    if county:
        codes = [c for c in codes if c == county]
    if not codes:
        return []
    query = select(Alert).where(Alert.region_code.in_(codes))
    if status == "needs":
        query = query.where(Alert.status != "resolved")
    elif status in ("triggered", "acknowledged", "resolved"):
        query = query.where(Alert.status == status)
    if kind:
        query = query.where(Alert.kind == kind)
    if level:
        query = query.where(Alert.level == level)
    async with ctx.db.session() as session:
        alerts = (await session.scalars(query.order_by(Alert.created_at.desc()).limit(LIMIT))).all()
    policies = Policies(ctx.settings)
    now = ctx.clock.now()
    rows = []
    for alert in alerts:
        policy = policies.for_alert(alert)
        overdue, due = None, None
        if alert.status == "triggered":
            due = ack_due(policy, alert)
            overdue = "ack" if due is not None and now >= due else None
        elif alert.status == "acknowledged":
            due = handling_due(policy, alert)
            overdue = "handling" if due is not None and now >= due else None
        if status == "needs" and alert.status == "acknowledged" and overdue is None:
            continue
        rows.append(DutyRow(alert, overdue, due))
    rows.sort(
        key=lambda r: (
            r.overdue is None,
            RANK.get(r.alert.level, 9),
            -r.alert.created_at.timestamp(),
        )
    )
    return rows


async def contacts(ctx: Context, regions: Iterable[str], *, phones: bool) -> list[Contact]:
    """The leaders and duty officers of the regions, with phone numbers if `phones`."""
    codes = list(regions)
    async with ctx.db.session() as session:
        accounts = (
            await session.scalars(
                select(Account)
                .where(
                    Account.region_code.in_(codes),
                    Account.kind == "leader",
                    Account.status == "active",
                )
                .order_by(Account.region_code, Account.id)
            )
        ).all()
    found = []
    for account in accounts:
        found.append(
            Contact(
                region_code=account.region_code,
                account_id=account.id,
                role=account.role,
                name=ctx.privacy.decrypt(account.name_enc) if phones else None,
                phone=ctx.privacy.decrypt(account.phone_enc) if phones else None,
            )
        )
    return found


async def handovers(ctx: Context, regions: Iterable[str], limit: int = 5) -> list[ShiftHandover]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(ShiftHandover)
            .where(ShiftHandover.region_code.in_(list(regions)))
            .order_by(ShiftHandover.created_at.desc(), ShiftHandover.id.desc())
            .limit(limit)
        )
        return list(rows.all())


async def hand_over(ctx: Context, account: Account, text: str) -> ShiftHandover:
    async with ctx.db.session() as session:
        note = ShiftHandover(
            region_code=account.region_code,
            author_id=account.id,
            created_at=ctx.clock.now(),
            text=text,
        )
        session.add(note)
        await session.flush()
        return note


async def counties(ctx: Context, regions: Iterable[str]) -> list[tuple[str, str]]:
    codes = [c for c in regions if len(c) == 6 and not c.endswith("00")]
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(Region.code, Region.name).where(Region.code.in_(codes)).order_by(Region.code)
        )
        return [(code, name) for code, name in rows]
