"""Reading the stored rows into a `Panel` (the detectors read storage, never the faces).

`load_panel(db, as_of=...)` reads only what can matter on that day: reports from the
last 26 months up to the as-of month, petitions and informant reports from the last
400 days up to the as-of day (by their own dates). Which of them were *known* on the
day is then decided by `PanelView` from the ingest times (see `panel.py`), so the SQL
filter is an optimisation and never the only guard against leakage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from time import monotonic
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from detectors.panel import Panel, PanelBuilder
from monitor.clock import SHANGHAI, add_months
from monitor.config import HandlingConfig
from monitor.db import Database
from monitor.models import InformantReport, MonitoringPoint, Petition, WageReport
from monitor.reliability import informant_reliability

_HANDLING = HandlingConfig()
#: History the features need: 25 months of reports (a year back from a year back).
REPORT_MONTHS = 26
EVENT_DAYS = 400

POINT_COLUMNS = (
    MonitoringPoint.point_id,
    MonitoringPoint.name,
    MonitoringPoint.region_code,
    MonitoringPoint.industry,
    MonitoringPoint.headcount,
    MonitoringPoint.source,
    MonitoringPoint.created_at,
)
WAGE_COLUMNS = (
    WageReport.report_id,
    WageReport.point_id,
    WageReport.period,
    WageReport.headcount,
    WageReport.frontline_headcount,
    WageReport.avg_frontline_wage,
    WageReport.wages_paid_on,
    WageReport.arrears_amount,
    WageReport.arrears_workers,
    WageReport.arrears_months,
    WageReport.social_insurance_arrears_months,
    WageReport.layoffs_planned,
    WageReport.production_status,
    WageReport.overtime_hours_avg,
    WageReport.source,
    WageReport.ingested_at,
)
PETITION_COLUMNS = (
    Petition.petition_id,
    Petition.received_date,
    Petition.channel,
    Petition.region_code,
    Petition.point_id,
    Petition.enterprise_name,
    Petition.category,
    Petition.people_involved,
    Petition.summary,
    Petition.source,
    Petition.ingested_at,
)
REPORT_COLUMNS = (
    InformantReport.report_id,
    InformantReport.informant_id,
    InformantReport.occurred_date,
    InformantReport.region_code,
    InformantReport.point_id,
    InformantReport.enterprise_name,
    InformantReport.event_type,
    InformantReport.category,
    InformantReport.people_involved,
    InformantReport.description,
    InformantReport.source,
    InformantReport.ingested_at,
)


async def _rows(conn: AsyncConnection, stmt: Any) -> list[dict[str, Any]]:
    result = await conn.execute(stmt)
    return [dict(row) for row in result.mappings()]


class UnlinkedRecords:
    """Petitions and informant reports without a point_id inside the event window, kept
    from one wage check to the next.

    Every batch of new wage reports needs them (a record counts toward the enterprise
    its text names) and they are the same for every batch: at a province's size that was
    8,000 rows read and turned into dicts for each batch of 500 wage reports. Stored
    records never change (a correction is a new record), so the cache adds what was
    stored since it last looked and starts again when the window moves (a new day)."""

    #: Rows stored this long before the newest one seen are read again, so that a
    #: transaction that committed after a later-stamped one is not missed...
    OVERLAP = timedelta(minutes=5)
    #: ... and everything is read again this often (seconds), which bounds what a
    #: daemon whose clock is off by more than OVERLAP could hide from the others.
    REFRESH = 600.0

    def __init__(self) -> None:
        self._window: tuple[date, date] | None = None
        self._loaded = 0.0
        self._rows: dict[str, dict[str, dict[str, Any]]] = {"petition": {}, "report": {}}
        self._newest: dict[str, datetime | None] = {"petition": None, "report": None}
        self.reads = 0

    async def rows(
        self, conn: AsyncConnection, since: date, until: date
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The unlinked petitions and reports dated within [since, until], in id order."""
        if self._window != (since, until) or monotonic() - self._loaded > self.REFRESH:
            self._window = (since, until)
            self._loaded = monotonic()
            self._rows = {"petition": {}, "report": {}}
            self._newest = {"petition": None, "report": None}
        self.reads += 1
        specs = (
            ("petition", Petition, PETITION_COLUMNS, "petition_id", Petition.received_date),
            ("report", InformantReport, REPORT_COLUMNS, "report_id", InformantReport.occurred_date),
        )
        for kind, model, columns, key, day in specs:
            stmt = select(*columns).where(model.point_id.is_(None), day >= since, day <= until)
            newest = self._newest[kind]
            if newest is not None:
                stmt = stmt.where(model.ingested_at >= newest - self.OVERLAP)
            kept = self._rows[kind]
            for row in await _rows(conn, stmt):
                kept[row[key]] = row
                if newest is None or row["ingested_at"] > newest:
                    newest = row["ingested_at"]
            self._newest[kind] = newest
        return (
            [self._rows["petition"][k] for k in sorted(self._rows["petition"])],
            [self._rows["report"][k] for k in sorted(self._rows["report"])],
        )


async def load_panel(
    db: Database,
    *,
    as_of: date | None = None,
    point_ids: Sequence[str] | None = None,
    zone: tzinfo = SHANGHAI,
    trust_record_dates: bool = False,
    reliability_prior: float = _HANDLING.reliability_prior,
    reliability_prior_weight: float = _HANDLING.reliability_prior_weight,
    unlinked: UnlinkedRecords | None = None,
) -> Panel:
    """The panel of every point (or of `point_ids`), with the history scoring needs at
    `as_of` (None: everything stored, for backtests). `unlinked` keeps the records
    without a point_id between calls for the same points' day (the wage check)."""
    # The rows are read here; the panel is built in a worker thread, so that scoring
    # thousands of points does not stall the event loop that carries level I alerts
    # (the interpreter switches threads every few milliseconds).
    builder = PanelBuilder(zone, trust_record_dates=trust_record_dates)
    async with db.read() as conn:  # a snapshot that does not hold up writers
        points = select(*POINT_COLUMNS).order_by(MonitoringPoint.point_id)
        if point_ids is not None:
            points = points.where(MonitoringPoint.point_id.in_(list(point_ids)))
        point_rows = await _rows(conn, points)
        wages = select(*WAGE_COLUMNS)
        petitions = select(*PETITION_COLUMNS)
        reports = select(*REPORT_COLUMNS)
        first_month = last_month = None
        if as_of is not None:
            last_month = as_of.replace(day=1)
            first_month = add_months(last_month, -REPORT_MONTHS)
            since = as_of - timedelta(days=EVENT_DAYS)
            wages = wages.where(WageReport.period >= first_month, WageReport.period <= last_month)
            petitions = petitions.where(
                Petition.received_date >= since, Petition.received_date <= as_of
            )
            reports = reports.where(
                InformantReport.occurred_date >= since, InformantReport.occurred_date <= as_of
            )
        cached = unlinked is not None and point_ids is not None and as_of is not None
        if point_ids is not None:
            ids = list(point_ids)
            wages = wages.where(WageReport.point_id.in_(ids))
            # Records without a point_id count toward a point their text or enterprise
            # name names (issue 16): read them too, keep those that name one of these.
            if cached:
                petitions = petitions.where(Petition.point_id.in_(ids))
                reports = reports.where(InformantReport.point_id.in_(ids))
            else:
                petitions = petitions.where(
                    Petition.point_id.in_(ids) | Petition.point_id.is_(None)
                )
                reports = reports.where(
                    InformantReport.point_id.in_(ids) | InformantReport.point_id.is_(None)
                )
        wage_rows = await _rows(conn, wages.order_by(WageReport.point_id, WageReport.period))
        petition_rows = await _rows(conn, petitions.order_by(Petition.petition_id))
        report_rows = await _rows(conn, reports.order_by(InformantReport.report_id))
        if cached:
            assert unlinked is not None and as_of is not None
            more_petitions, more_reports = await unlinked.rows(
                conn, as_of - timedelta(days=EVENT_DAYS), as_of
            )
            # In id order, as one query would have given them.
            petition_rows = sorted(
                petition_rows + more_petitions, key=lambda r: str(r["petition_id"])
            )
            report_rows = sorted(report_rows + more_reports, key=lambda r: str(r["report_id"]))

        def points_and_wages() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            builder.add_points(point_rows)
            builder.add_wages(wage_rows)
            if point_ids is None:
                return petition_rows, report_rows
            return (
                [r for r in petition_rows if _named(builder, r, "summary")],
                [r for r in report_rows if _named(builder, r, "description")],
            )

        petition_rows, report_rows = await asyncio.to_thread(points_and_wages)
        # Each report weighs as much as its informant is reliable, counting only what
        # was settled by the as-of day.
        until = (
            datetime.combine(as_of + timedelta(days=1), time(0), zone)
            if as_of is not None
            else None
        )
        reliable = (
            {}
            if not report_rows
            else await informant_reliability(
                conn,
                prior=reliability_prior,
                prior_weight=reliability_prior_weight,
                until=until,
            )
        )

    def events_and_build() -> Panel:
        for row in report_rows:
            found = reliable.get(str(row["informant_id"]))
            row["weight"] = found.weight(reliability_prior) if found is not None else 1.0
        builder.add_petitions(petition_rows)
        builder.add_reports(report_rows)
        return builder.build(first_month=first_month, last_month=last_month)

    return await asyncio.to_thread(events_and_build)


def _named(builder: PanelBuilder, row: dict[str, Any], text_field: str) -> bool:
    """A record of one of the builder's points: by id, or (no id) by the name it gives."""
    if row.get("point_id"):
        return True
    return builder.point_of(None, row.get("enterprise_name"), row.get(text_field)) >= 0
