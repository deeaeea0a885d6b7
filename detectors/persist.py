"""What the detectors write: findings, risk scores, fitted models, job runs; and how they
claim work (records not yet checked) so that several daemons never do it twice.

Claims are conditional updates of the NULL marker column (`severity_checked_at`,
`checked_at`), with `FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite the write
transaction (BEGIN IMMEDIATE) already serialises them. A claim and the findings it
produces commit together, so a crash in between leaves the records unclaimed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from detectors.base import RANK, FindingDraft
from detectors.forecast import MODEL_NAME, Forecaster
from detectors.scoring import ScoreTable
from monitor.models import (
    DetectorModel,
    Finding,
    InformantReport,
    JobRun,
    Petition,
    RiskScore,
    RiskStreak,
    WageReport,
)
from monitor.season import day_number, from_day_number

#: A risk finding at an unchanged level is repeated after this long, so that the open
#: alert's evidence stays current without a new row every night.
REFRESH = timedelta(days=7)


# --------------------------------------------------------------------------- claims


def _skip_locked(conn: AsyncConnection, stmt: Any) -> Any:
    return stmt.with_for_update(skip_locked=True) if conn.dialect.name == "postgresql" else stmt


async def claim_events(
    conn: AsyncConnection, kind: str, now: datetime, limit: int
) -> list[dict[str, Any]]:
    """Claim up to `limit` unchecked petitions or informant reports, oldest first."""
    model: Any = Petition if kind == "petition" else InformantReport
    pk = model.petition_id if kind == "petition" else model.report_id
    ids_stmt = _skip_locked(
        conn,
        select(pk)
        .where(model.severity_checked_at.is_(None))
        .order_by(model.ingested_at)
        .limit(limit),
    )
    ids = [row[0] for row in await conn.execute(ids_stmt)]
    if not ids:
        return []
    await conn.execute(
        update(model)
        .where(pk.in_(ids), model.severity_checked_at.is_(None))
        .values(severity_checked_at=now)
    )
    columns = [
        pk,
        model.region_code,
        model.point_id,
        model.enterprise_name,
        model.category,
        model.people_involved,
    ]
    if kind == "petition":
        columns += [
            Petition.summary,
            Petition.channel,
            Petition.over_level,
            Petition.received_at,
        ]
    else:
        columns += [
            InformantReport.event_type,
            InformantReport.description,
            InformantReport.occurred_at,
            InformantReport.follows,
            InformantReport.corrects,
            InformantReport.withdraws,
        ]
    rows = await conn.execute(select(*columns).where(pk.in_(ids)))
    return [dict(row) for row in rows.mappings()]


async def petitions_about(
    conn: AsyncConnection,
    *,
    point_id: str | None,
    name: str | None,
    region_code: str,
    since: datetime,
    until: datetime,
) -> list[tuple[str, datetime]]:
    """Distinct petitions about one enterprise (its point, or the name it was petitioned
    under in its county) received in [since, until], oldest first."""
    about = []
    if point_id:
        about.append(Petition.point_id == point_id)
    if name:
        about.append(and_(Petition.enterprise_name == name, Petition.region_code == region_code))
    if not about:
        return []
    rows = await conn.execute(
        select(Petition.petition_id, Petition.received_at)
        .where(or_(*about), Petition.received_at >= since, Petition.received_at <= until)
        .order_by(Petition.received_at, Petition.petition_id)
    )
    return [(str(pid), at) for pid, at in rows]


async def unchecked_wage_reports(conn: AsyncConnection, limit: int) -> list[dict[str, Any]]:
    """The oldest wage reports not yet checked (a peek: nothing is claimed)."""
    stmt = (
        select(WageReport.report_id, WageReport.point_id)
        .where(WageReport.checked_at.is_(None))
        .order_by(WageReport.ingested_at)
        .limit(limit)
    )
    return [dict(row) for row in (await conn.execute(stmt)).mappings()]


async def claim_wage_reports(
    conn: AsyncConnection, report_ids: Sequence[str], now: datetime
) -> list[str]:
    """Claim those of `report_ids` no other daemon has claimed meanwhile."""
    if not report_ids:
        return []
    result = await conn.execute(
        update(WageReport)
        .where(WageReport.report_id.in_(list(report_ids)), WageReport.checked_at.is_(None))
        .values(checked_at=now)
        .returning(WageReport.report_id)
    )
    return [row[0] for row in result]


# --------------------------------------------------------------------------- findings


def finding_row(draft: FindingDraft, now: datetime, as_of: datetime) -> dict[str, Any]:
    return {
        "detector": draft.detector,
        "kind": draft.kind,
        "entity_type": draft.entity_type,
        "entity_id": draft.entity_id[:128],
        "dedup_key": draft.dedup_key[:200],
        "region_code": draft.region_code,
        "point_id": draft.point_id,
        "score": float(draft.score),
        "level": draft.level,
        "title": draft.title,
        "evidence": draft.evidence(),
        "as_of": as_of,
        "created_at": now,
        "processed_at": None,
    }


async def latest_findings(
    conn: AsyncConnection, kinds: Sequence[str], keys: Sequence[str] | None = None
) -> dict[str, tuple[str | None, datetime]]:
    """The latest finding's (level, created_at) per dedup key, for the given kinds (and
    only these `keys`: a wage check needs its few points, not a province's 10,000)."""
    if keys is not None and not keys:
        return {}
    wanted: ColumnElement[bool] = Finding.kind.in_(list(kinds))
    if keys is not None:
        wanted = and_(wanted, Finding.dedup_key.in_(sorted(set(keys))))
    latest = (
        select(Finding.dedup_key, func.max(Finding.id).label("id"))
        .where(wanted)
        .group_by(Finding.dedup_key)
        .subquery()
    )
    rows = await conn.execute(
        select(Finding.dedup_key, Finding.level, Finding.created_at).join(
            latest, and_(Finding.id == latest.c.id)
        )
    )
    return {key: (level, created) for key, level, created in rows}


@dataclass
class WriteSummary:
    written: int = 0
    raised: int = 0
    cleared: int = 0

    def as_dict(self) -> dict[str, int]:
        return vars(self).copy()


def changes(
    drafts: Iterable[FindingDraft],
    previous: dict[str, tuple[str | None, datetime]],
    now: datetime,
    *,
    min_level: str = "IV",
) -> tuple[list[FindingDraft], WriteSummary]:
    """The drafts worth writing: a level at or above `min_level` that is new, changed
    or due for a refresh, and a clearing (level None) where the last finding had a
    level. Everything else would only repeat what the alert already says."""
    summary = WriteSummary()
    out = []
    for draft in drafts:
        level = draft.level if RANK[draft.level] >= RANK[min_level] else None
        before = previous.get(draft.dedup_key)
        before_level = before[0] if before else None
        if level is None:
            if before_level is not None:
                draft.level = None
                out.append(draft)
                summary.cleared += 1
            continue
        if before_level != level or before is None or now - before[1] >= REFRESH:
            draft.level = level
            out.append(draft)
            if RANK[level] > RANK[before_level]:
                summary.raised += 1
    summary.written = len(out)
    return out, summary


@dataclass
class Streak:
    direction: int
    count: int
    level: str | None


async def load_streaks(conn: AsyncConnection) -> dict[str, Streak]:
    rows = await conn.execute(
        select(RiskStreak.dedup_key, RiskStreak.direction, RiskStreak.count, RiskStreak.level)
    )
    return {key: Streak(direction, count, level) for key, direction, count, level in rows}


def _retitle(draft: FindingDraft, level: str | None) -> None:
    """Give a draft whose band the hysteresis changed the heading of that band."""
    from detectors.base import risk_heading

    if draft.level and level and draft.title.startswith(risk_heading(draft.level)):
        draft.title = risk_heading(level) + draft.title[len(risk_heading(draft.level)) :]
    draft.level = level


def hysteresis(
    drafts: Iterable[FindingDraft],
    previous: dict[str, tuple[str | None, datetime]],
    streaks: dict[str, Streak],
    *,
    open_after: int,
    close_after: int,
    min_level: str = "IV",
) -> tuple[list[FindingDraft], dict[str, Streak | None]]:
    """Risk findings that keep their band for several scorings (no flapping).

    A draft whose band differs from the last finding's counts one scoring towards the
    change: above it for `open_after` consecutive scorings, the change is kept at the
    mildest band it held throughout; below it for `close_after`, at the worst band it
    held (None: closed). Until then the draft is held back. A scoring back in the last
    band ends the streak. Returns the drafts to pass on (with their levels settled) and
    the streaks to store (None: delete)."""
    out: list[FindingDraft] = []
    updates: dict[str, Streak | None] = {}
    seen: set[str] = set()
    for draft in drafts:
        key = draft.dedup_key
        seen.add(key)
        level = draft.level if RANK[draft.level] >= RANK[min_level] else None
        stable = previous[key][0] if key in previous else None
        streak = streaks.get(key)
        if RANK[level] == RANK[stable]:
            if streak is not None:
                updates[key] = None
            out.append(draft)
            continue
        direction = 1 if RANK[level] > RANK[stable] else -1
        if streak is not None and streak.direction == direction:
            held = streak.level
            if direction == 1:
                held = level if RANK[level] < RANK[held] else held
            else:
                held = level if RANK[level] > RANK[held] else held
            streak = Streak(direction, streak.count + 1, held)
        else:
            streak = Streak(direction, 1, level)
        needed = open_after if direction == 1 else close_after
        if streak.count >= needed:
            _retitle(draft, streak.level)
            out.append(draft)
            if key in streaks:
                updates[key] = None
        else:
            updates[key] = streak
    # A rise that did not show today (a surge is a draft only while it lasts) is over.
    for key, streak in streaks.items():
        if key not in seen and streak.direction == 1:
            updates[key] = None
    return out, updates


async def save_streaks(
    conn: AsyncConnection, updates: dict[str, Streak | None], now: datetime
) -> None:
    if not updates:
        return
    keys = list(updates)
    for start in range(0, len(keys), 500):
        await conn.execute(
            delete(RiskStreak).where(RiskStreak.dedup_key.in_(keys[start : start + 500]))
        )
    rows = [
        {
            "dedup_key": key,
            "direction": s.direction,
            "count": s.count,
            "level": s.level,
            "updated_at": now,
        }
        for key, s in updates.items()
        if s is not None
    ]
    for start in range(0, len(rows), 1000):
        await conn.execute(insert(RiskStreak), rows[start : start + 1000])


async def write_risk_findings(
    conn: AsyncConnection,
    drafts: list[FindingDraft],
    previous: dict[str, tuple[str | None, datetime]],
    now: datetime,
    *,
    open_after: int,
    close_after: int,
    min_level: str = "IV",
) -> tuple[list[FindingDraft], WriteSummary]:
    """One scoring's risk findings: through the hysteresis, then only what changed."""
    steady, streaks = hysteresis(
        drafts,
        previous,
        await load_streaks(conn),
        open_after=open_after,
        close_after=close_after,
        min_level=min_level,
    )
    await save_streaks(conn, streaks, now)
    chosen, summary = changes(steady, previous, now, min_level=min_level)
    await write_findings(conn, chosen, now, now)
    return chosen, summary


async def write_findings(
    conn: AsyncConnection, drafts: Sequence[FindingDraft], now: datetime, as_of: datetime
) -> int:
    rows = [finding_row(d, now, as_of) for d in drafts]
    for start in range(0, len(rows), 1000):
        await conn.execute(insert(Finding), rows[start : start + 1000])
    return len(rows)


async def write_scores(
    conn: AsyncConnection, table: ScoreTable, now: datetime, as_of: datetime
) -> int:
    rows: list[dict[str, Any]] = []
    for i, point_id in enumerate(table.point_ids):
        rows.append(
            {
                "entity_type": "point",
                "entity_id": point_id,
                "region_code": table.point_region[i],
                "score": float(table.score[i]),
                "level": table.level(i),
                "factors": [f.as_dict() for f in table.factors[i]],
                "as_of": as_of,
                "scored_at": now,
            }
        )
    for j, code in enumerate(table.counties):
        rows.append(
            {
                "entity_type": "county",
                "entity_id": code,
                "region_code": code,
                "score": float(table.county_score[j]),
                "level": table.county_level(j),
                "factors": [f.as_dict() for f in table.county_factors[j]],
                "as_of": as_of,
                "scored_at": now,
            }
        )
    for start in range(0, len(rows), 2000):
        await conn.execute(insert(RiskScore), rows[start : start + 2000])
    return len(rows)


# --------------------------------------------------------------------------- models


async def save_model(conn: AsyncConnection, forecaster: Forecaster, now: datetime) -> int:
    result = await conn.execute(
        insert(DetectorModel)
        .values(
            name=MODEL_NAME,
            format="skops",
            sklearn_version=forecaster.sklearn_version,
            feature_names=forecaster.feature_names,
            trained_until=from_day_number(forecaster.trained_until),
            metrics=forecaster.metrics | {"base_rate": forecaster.base_rate},
            data=forecaster.to_bytes(),
            created_at=now,
        )
        .returning(DetectorModel.id)
    )
    return int(result.scalar_one())


@dataclass
class StoredModel:
    id: int
    created_at: datetime
    forecaster: Forecaster | None
    error: str | None = None


async def latest_model(
    conn: AsyncConnection, known_id: int | None = None, trained_by: date | None = None
) -> StoredModel | None:
    """The newest stored forecaster (None: none stored), or the newest trained on
    history up to `trained_by` (a model trained later has seen what came after). When
    its id is `known_id`, the bytes are not read again and `forecaster` is None."""
    stmt = select(DetectorModel.id, DetectorModel.created_at).where(
        DetectorModel.name == MODEL_NAME
    )
    if trained_by is not None:
        stmt = stmt.where(DetectorModel.trained_until <= trained_by)
    head = (
        await conn.execute(
            stmt.order_by(DetectorModel.created_at.desc(), DetectorModel.id.desc()).limit(1)
        )
    ).first()
    if head is None:
        return None
    if head.id == known_id:
        return StoredModel(head.id, head.created_at, None)
    record = (
        await conn.execute(
            select(
                DetectorModel.id,
                DetectorModel.created_at,
                DetectorModel.data,
                DetectorModel.feature_names,
                DetectorModel.metrics,
                DetectorModel.trained_until,
                DetectorModel.sklearn_version,
            ).where(DetectorModel.id == head.id)
        )
    ).one()
    try:
        # Unpickling a large model takes a second or two: off the event loop.
        forecaster = await asyncio.to_thread(
            Forecaster.from_bytes,
            record.data,
            feature_names=list(record.feature_names),
            base_rate=float(record.metrics.get("base_rate", 0.02)),
            trained_until=day_number(record.trained_until),
            metrics=dict(record.metrics),
            sklearn_version=record.sklearn_version,
        )
    except Exception as exc:  # an unusable model is reported and replaced, never trusted
        return StoredModel(record.id, record.created_at, None, error=str(exc))
    return StoredModel(record.id, record.created_at, forecaster)


# --------------------------------------------------------------------------- job runs


async def claim_job(
    conn: AsyncConnection,
    job: str,
    key: str,
    holder: str,
    now: datetime,
    stale_after: timedelta,
) -> bool:
    """True when this daemon runs (job, key): its insert won, or the run holding it has
    been 'running' for longer than `stale_after` (its daemon died)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = await conn.execute(
        dialect.insert(JobRun)
        .values(job=job, key=key, holder=holder, started_at=now, status="running")
        .on_conflict_do_nothing()
        .returning(JobRun.id)
    )
    if inserted.first() is not None:
        return True
    taken = await conn.execute(
        update(JobRun)
        .where(
            JobRun.job == job,
            JobRun.key == key,
            JobRun.status.in_(["running", "failed"]),
            JobRun.started_at < now - stale_after,
        )
        .values(holder=holder, started_at=now, status="running", finished_at=None)
    )
    return bool(taken.rowcount)


async def finish_job(
    conn: AsyncConnection,
    job: str,
    key: str,
    holder: str,
    now: datetime,
    status: str,
    details: dict[str, Any],
) -> None:
    await conn.execute(
        update(JobRun)
        .where(JobRun.job == job, JobRun.key == key, JobRun.holder == holder)
        .values(status=status, finished_at=now, details=details)
    )


async def job_done(conn: AsyncConnection, job: str, key: str) -> bool:
    row = (
        await conn.execute(select(JobRun.status).where(JobRun.job == job, JobRun.key == key))
    ).first()
    return row is not None and row[0] == "done"


def to_datetime(day: date, zone: Any) -> datetime:
    """The end of a local day as an aware instant (the as-of of a scoring run)."""
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=zone)
