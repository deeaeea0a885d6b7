"""Handling deadlines of an alert (interfaces §8): verification, follow-up reports, the
final report, answers to instructions. One `handling_deadlines` row per deadline.

An event alert gets its verification and first follow-up deadline when it opens (from
`[handling]`, by level); a raise of its level owes what the new level owes, counted from
the raise (`level_raised`); a follow-up report moves the next one on, or, when it says
nobody is there any more (`people_now` 0), ends the event and starts the final report's
deadline; an instruction brings its answer's. A deadline that passes unmet is claimed by
the escalation loop (`claim_missed`), which opens an alert of kind `overdue_handling`
whose policy (`handling_policy`) reminds the handler's tier at once and tells the tier
above later. Meeting the deadline resolves that alert. Claim and alert are one
transaction, so a second daemon or a restart neither doubles nor loses a reminder.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from monitor.config import HandlingConfig
from monitor.models import Alert, Finding, HandlingDeadline, HandlingRecord, Region

KIND = "overdue_handling"
DETECTOR = "handling"
#: What each deadline is for, as the console and the messages name it.
DEADLINE_NAMES = {"verify": "核实", "progress": "续报", "final": "终报", "answer": "答复批示"}
TIER_BY_NUMBER = {1: "province", 2: "city", 3: "county"}
#: Deadlines claimed per transaction.
BATCH = 50


def overdue_key(deadline_id: int) -> str:
    return f"{KIND}:{deadline_id}"


def _positive(value: timedelta | None) -> timedelta | None:
    return value if value is not None and value > timedelta(0) else None


def by_level(table: Mapping[Any, timedelta], level: str) -> timedelta | None:
    """The level's entry of a `[handling]` table; None for none or zero."""
    return _positive(next((v for k, v in table.items() if k == level), None))


def _open(query: Any) -> Any:
    return query.where(
        HandlingDeadline.met_at.is_(None),
        HandlingDeadline.cancelled_at.is_(None),
    )


async def open_for_alert(
    session: AsyncSession, alert: Alert, config: HandlingConfig, now: datetime
) -> None:
    """The deadlines of a new event alert (risk alerts are forecasts: nothing to handle)."""
    if alert.kind != "event":
        return
    await session.flush()
    verify = by_level(config.verify_within, alert.level)
    progress = by_level(config.progress_every, alert.level)
    if verify:
        session.add(_deadline(alert, "verify", alert.created_at + verify, now))
    if progress:
        session.add(_deadline(alert, "progress", alert.created_at + progress, now))


async def level_raised(
    session: AsyncSession,
    alert: Alert,
    config: HandlingConfig,
    now: datetime,
    *,
    level: str,
    postgres: bool = False,
) -> list[dict[str, str | None]]:
    """The deadlines of an event alert whose level was just raised to `level`:
    each open verification, follow-up or final report is due within the new level's
    time counted from the raise, unless it was due sooner; a verification or follow-up
    the old level did not ask for is added (unless already verified, or the event has
    ended). Returns the changes, `{kind, from, to}`, for the audit log."""
    if alert.kind != "event":
        return []
    await session.flush()
    open_now: dict[str, list[HandlingDeadline]] = {}
    for deadline in await pending(session, alert.id, postgres=postgres):
        open_now.setdefault(deadline.kind, []).append(deadline)
    tables = {
        "verify": config.verify_within,
        "progress": config.progress_every,
        "final": config.final_within,
    }
    changes: list[dict[str, str | None]] = []
    for kind, table in tables.items():
        within = by_level(table, level)
        if within is None:
            continue
        due = now + within
        for deadline in open_now.get(kind, []):
            if due < deadline.due_at:
                changes.append(
                    {"kind": kind, "from": deadline.due_at.isoformat(), "to": due.isoformat()}
                )
                deadline.due_at = due
        if open_now.get(kind) or kind == "final":
            continue  # a final report is owed only once the event has ended
        if kind == "verify" and await _verified(session, alert):
            continue
        if kind == "progress" and "final" in open_now:
            continue
        session.add(_deadline(alert, kind, due, now))
        changes.append({"kind": kind, "from": None, "to": due.isoformat()})
    return changes


async def _verified(session: AsyncSession, alert: Alert) -> bool:
    found = await session.scalar(
        select(HandlingRecord.id)
        .where(HandlingRecord.alert_id == alert.id, HandlingRecord.kind == "verify")
        .limit(1)
    )
    return found is not None


def _deadline(
    alert: Alert, kind: str, due: datetime, now: datetime, record_id: int | None = None
) -> HandlingDeadline:
    return HandlingDeadline(
        alert_id=alert.id, kind=kind, record_id=record_id, due_at=due, created_at=now
    )


async def pending(
    session: AsyncSession, alert_id: int, kind: str | None = None, *, postgres: bool = False
) -> list[HandlingDeadline]:
    query = _open(select(HandlingDeadline).where(HandlingDeadline.alert_id == alert_id))
    if kind is not None:
        query = query.where(HandlingDeadline.kind == kind)
    if postgres:
        query = query.with_for_update()
    return list((await session.scalars(query.order_by(HandlingDeadline.id))).all())


async def meet(
    session: AsyncSession,
    alert: Alert,
    kind: str,
    now: datetime,
    *,
    record_id: int | None = None,
    postgres: bool = False,
) -> list[HandlingDeadline]:
    """Mark the alert's open deadlines of `kind` met (for `answer`: the one of that
    instruction); returns them (their overdue alerts are to be resolved)."""
    met = []
    for deadline in await pending(session, alert.id, kind, postgres=postgres):
        if record_id is not None and deadline.record_id != record_id:
            continue
        deadline.met_at = now
        met.append(deadline)
    return met


async def add(
    session: AsyncSession,
    alert: Alert,
    kind: str,
    due: datetime,
    now: datetime,
    record_id: int | None = None,
) -> HandlingDeadline:
    deadline = _deadline(alert, kind, due, now, record_id)
    session.add(deadline)
    await session.flush()
    return deadline


async def cancel_all(
    session: AsyncSession, alert: Alert, now: datetime, *, postgres: bool = False
) -> list[HandlingDeadline]:
    """Nothing more is owed on a closed alert (a final report, 不实, resolved by hand)."""
    cancelled = await pending(session, alert.id, postgres=postgres)
    for deadline in cancelled:
        deadline.cancelled_at = now
    return cancelled


async def overdue_alerts(session: AsyncSession, deadlines: list[HandlingDeadline]) -> list[Alert]:
    """The open `overdue_handling` alerts of these deadlines."""
    missed = [overdue_key(d.id) for d in deadlines if d.missed_at is not None]
    if not missed:
        return []
    rows = await session.scalars(
        select(Alert).where(Alert.dedup_key.in_(missed), Alert.status != "resolved")
    )
    return list(rows.all())


async def claim_missed(
    session: AsyncSession, now: datetime, *, postgres: bool = False
) -> list[HandlingDeadline]:
    """Deadlines that passed unmet and have not been acted on; marked missed in the
    caller's transaction (SKIP LOCKED on PostgreSQL: another daemon takes the others)."""
    query = (
        _open(select(HandlingDeadline))
        .where(HandlingDeadline.missed_at.is_(None), HandlingDeadline.due_at <= now)
        .order_by(HandlingDeadline.due_at, HandlingDeadline.id)
        .limit(BATCH)
    )
    if postgres:
        query = query.with_for_update(skip_locked=True)
    found = list((await session.scalars(query)).all())
    for deadline in found:
        deadline.missed_at = now
    return found


async def next_due(session: AsyncSession) -> datetime | None:
    from sqlalchemy import func

    return await session.scalar(
        _open(select(func.min(HandlingDeadline.due_at))).where(HandlingDeadline.missed_at.is_(None))
    )


async def handler_and_above(session: AsyncSession, region_code: str) -> tuple[str, str]:
    """The tier that handles an alert of this region, and the tier above it."""
    region = await session.get(Region, region_code)
    tier = region.tier if region is not None else 3
    handler = TIER_BY_NUMBER.get(tier, "county")
    above = TIER_BY_NUMBER.get(max(tier - 1, 1), "province")
    return handler, above


async def overdue_finding(
    session: AsyncSession,
    deadline: HandlingDeadline,
    alert: Alert,
    now: datetime,
    zone: Any,
    *,
    issuer_tier: str | None = None,
) -> Finding:
    """The finding that opens the `overdue_handling` alert of a missed deadline."""
    handler, above = await handler_and_above(session, alert.region_code)
    if deadline.kind == "answer" and issuer_tier:
        above = issuer_tier
    name = DEADLINE_NAMES.get(deadline.kind, deadline.kind)
    due_text = deadline.due_at.astimezone(zone).strftime("%m月%d日%H:%M")
    text = f"预警{alert.id}应于{due_text}前{name}，至今未{name}"
    return Finding(
        detector=DETECTOR,
        kind=KIND,
        entity_type="event",
        entity_id=str(deadline.id),
        dedup_key=overdue_key(deadline.id),
        region_code=alert.region_code,
        point_id=alert.point_id,
        score=0.0,
        level=alert.level,
        title=f"{alert.title}：{name}逾期",
        evidence={
            "factors": [{"code": f"overdue_{deadline.kind}", "text": text, "weight": 1.0}],
            "source_ids": [],
            "enterprise_name": (alert.evidence or {}).get("enterprise_name"),
            "due": deadline.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            "deadline_kind": deadline.kind,
            "handler_tier": handler,
            "above_tier": above,
            "parent_alert_id": alert.id,
        },
        as_of=now,
        created_at=now,
    )


def deadline_json(deadline: HandlingDeadline) -> dict[str, Any]:
    return {
        "kind": deadline.kind,
        "due_at": deadline.due_at.isoformat(),
        "met_at": deadline.met_at.isoformat() if deadline.met_at else None,
        "record_id": deadline.record_id,
        "missed_at": deadline.missed_at.isoformat() if deadline.missed_at else None,
        "cancelled_at": deadline.cancelled_at.isoformat() if deadline.cancelled_at else None,
    }


async def progress_filed(
    session: AsyncSession,
    alert: Alert,
    people_now: int | None,
    now: datetime,
    config: HandlingConfig,
    *,
    postgres: bool = False,
) -> list[HandlingDeadline]:
    """A follow-up report meets the one due and sets the next; one that reports nobody
    left (`people_now` 0) ends the event: the final report is due next. Returns the
    deadlines met (their overdue alerts are to be resolved)."""
    ended = await meet(session, alert, "progress", now, postgres=postgres)
    if alert.kind != "event":
        return ended
    final_pending = await pending(session, alert.id, "final", postgres=postgres)
    if people_now == 0:
        within = by_level(config.final_within, alert.level)
        if within and not final_pending:
            await add(session, alert, "final", now + within, now)
        return ended
    every = by_level(config.progress_every, alert.level)
    if every and not final_pending:
        await add(session, alert, "progress", now + every, now)
    return ended
