"""Silences: a leader holds back notifications for an enterprise or a region for a
stated time and reason. Silenced alerts are still recorded, escalated and shown; only
the messages are held, and when the silence ends what was held back is sent.

A silence holds only the tiers at or below the tier of whoever set it: a county
leader's silence holds the county's messages, never the city's or the province's (those
need a silence set at that tier). Level I (特别重大) alerts are never held below the
province, and not at all unless `alerting.silences_cover_level_i`: a mediation under way
does not make a road blockade less urgent. A silence set by an operator on the command
line (no account) counts as the province's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from monitor.models import Account, Alert, MonitoringPoint, Region, Silence
from monitor.regions import tier_of

SCOPES = ("point", "region")


class SilenceError(ValueError):
    """A silence request that cannot be carried out (the message says why)."""


async def _chain(session: AsyncSession, code: str) -> list[str]:
    chain: list[str] = []
    current: str | None = code
    while current and len(chain) < 4:
        chain.append(current)
        region = await session.get(Region, current)
        current = region.parent_code if region is not None else None
    return chain


async def setter_tier(session: AsyncSession, silence: Silence) -> int:
    """The tier (1 province .. 3 county) of whoever set the silence; an operator without
    an account counts as the province."""
    account = await session.get(Account, silence.created_by)
    if account is None:
        return 1
    return tier_of(account.region_code)


async def active_silences(
    session: AsyncSession, alert: Alert, now: datetime, *, cover_level_i: bool = False
) -> list[tuple[Silence, int]]:
    """The silences covering the alert now, each with its setter's tier, highest tier
    (smallest number) first. Level I: only the province's, and only if configured."""
    if alert.level == "I" and not cover_level_i:
        return []
    scope_match: ColumnElement[bool] = (Silence.scope == "region") & Silence.target.in_(
        await _chain(session, alert.region_code)
    )
    if alert.point_id:
        scope_match = or_(
            scope_match, (Silence.scope == "point") & (Silence.target == alert.point_id)
        )
    query = (
        select(Silence)
        .where(
            Silence.starts_at <= now,
            Silence.ends_at > now,
            Silence.cancelled_at.is_(None),
            scope_match,
        )
        .order_by(Silence.ends_at.desc(), Silence.id)
    )
    found = [(s, await setter_tier(session, s)) for s in (await session.scalars(query)).all()]
    if alert.level == "I":
        found = [(s, t) for s, t in found if t == 1]
    return sorted(found, key=lambda pair: pair[1])


def held_tiers(
    silences: list[tuple[Silence, int]], tiers: list[str], tier_numbers: dict[str, int]
) -> dict[str, Silence]:
    """Which of `tiers` a silence holds (tier -> the silence): those at or below the
    tier of whoever set it."""
    held: dict[str, Silence] = {}
    for tier in tiers:
        for silence, rank in silences:
            if tier_numbers[tier] >= rank:
                held[tier] = silence
                break
    return held


async def active_silence(
    session: AsyncSession, alert: Alert, now: datetime, *, cover_level_i: bool = False
) -> Silence | None:
    """The highest-tier silence covering the alert now, if any."""
    found = await active_silences(session, alert, now, cover_level_i=cover_level_i)
    return found[0][0] if found else None


async def resolve_target(session: AsyncSession, scope: str, target: str) -> str:
    """The region a silence lies in (for jurisdiction checks), or SilenceError."""
    if scope == "point":
        point = await session.get(MonitoringPoint, target)
        if point is None:
            raise SilenceError(f"no monitoring point {target}")
        return point.region_code
    if scope == "region":
        if await session.get(Region, target) is None:
            raise SilenceError(f"unknown region code {target}")
        return target
    raise SilenceError(f"scope must be one of {', '.join(SCOPES)}")


async def create_silence(
    session: AsyncSession,
    *,
    scope: str,
    target: str,
    ends_at: datetime,
    reason: str,
    actor: str,
    now: datetime,
) -> Silence:
    if not reason.strip():
        raise SilenceError("a silence needs a reason (e.g. 已进入调解程序)")
    if ends_at <= now:
        raise SilenceError("a silence must end in the future")
    region_code = await resolve_target(session, scope, target)
    silence = Silence(
        scope=scope,
        target=target,
        region_code=region_code,
        reason=reason.strip(),
        created_by=actor,
        created_at=now,
        starts_at=now,
        ends_at=ends_at,
    )
    session.add(silence)
    await session.flush()
    return silence


async def cancel_silence(
    session: AsyncSession, silence_id: int, *, actor: str, now: datetime
) -> Silence:
    silence = await session.get(Silence, silence_id, with_for_update=True)
    if silence is None:
        raise SilenceError(f"no silence {silence_id}")
    if silence.cancelled_at is not None or silence.ends_at <= now:
        raise SilenceError(f"silence {silence_id} has already ended")
    silence.cancelled_at = now
    silence.cancelled_by = actor
    # The end is processed (logged, held-back alerts sent) by the escalation loop.
    silence.ends_at = now
    return silence


async def list_silences(
    session: AsyncSession, now: datetime, *, include_ended: bool = False
) -> list[Silence]:
    query = select(Silence).order_by(Silence.ends_at.desc())
    if not include_ended:
        query = query.where(Silence.ends_at > now, Silence.cancelled_at.is_(None))
    return list((await session.scalars(query)).all())
