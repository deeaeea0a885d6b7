"""The analyst views (interfaces §6): the same rows on SQLite and PostgreSQL, the rules they
encode, and no personal data in them (interfaces §7)."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, text
from sqlalchemy import inspect as sa_inspect

from monitor.context import Context
from monitor.db import Database, alembic_config
from monitor.models import Alert, AlertEvent, RiskScore
from monitor.records import parse_row
from monitor.store import Submission
from tests.dashboards.conftest import AnalystYear

VIEW_KEYS: dict[str, tuple[str, ...]] = {
    "v_regions": ("region_code",),
    "v_wage_monthly": ("period", "region_code"),
    "v_petitions_daily": ("day", "region_code", "channel", "category"),
    "v_risk_latest": ("point_id",),
    "v_alerts": ("alert_id",),
}
#: The time column of each view (interfaces §6: every view has one, and region_code).
TIME_COLUMNS = {
    "v_wage_monthly": "period",
    "v_petitions_daily": "day",
    "v_risk_latest": "scored_at",
    "v_alerts": "created_at",
}
SQLITE_INSTANT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")


async def select_all(url: str, view: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            result = await conn.execute(text(f"SELECT * FROM {view}"))
            return list(result.keys()), [tuple(r) for r in result.all()]
    finally:
        await db.dispose()


def normal(value: Any) -> Any:
    """One comparable form for what either driver returns (instants as stored text)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return bool(a == b)


@pytest.mark.parametrize("view", list(VIEW_KEYS))
async def test_views_mean_the_same_on_sqlite_and_postgresql(
    analyst_year: AnalystYear, view: str
) -> None:
    pg_columns, pg_rows = await select_all(analyst_year.pg_url, view)
    lite_columns, lite_rows = await select_all(analyst_year.sqlite_url, view)
    assert pg_columns == lite_columns
    assert "region_code" in pg_columns
    assert len(pg_rows) == len(lite_rows) > 0

    keys = [pg_columns.index(k) for k in VIEW_KEYS[view]]

    def ordered(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
        normalised = [[normal(v) for v in row] for row in rows]
        return sorted(normalised, key=lambda r: [str(r[k]) for k in keys])

    mismatches = [
        (column, pg[i], lite[i])
        for pg, lite in zip(ordered(pg_rows), ordered(lite_rows), strict=True)
        for i, column in enumerate(pg_columns)
        if not same(pg[i], lite[i])
    ]
    assert mismatches[:5] == []

    if view in TIME_COLUMNS:
        # SQLite's instants are in the storage format, so they compare with stored ones.
        index = lite_columns.index(TIME_COLUMNS[view])
        assert all(SQLITE_INSTANT.fullmatch(row[index]) for row in lite_rows)


async def test_time_columns_are_instants_on_postgresql(analyst_year: AnalystYear) -> None:
    db = Database(analyst_year.pg_url)
    try:
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT table_name, column_name, data_type "
                        "FROM information_schema.columns WHERE table_name LIKE 'v\\_%'"
                    )
                )
            ).all()
    finally:
        await db.dispose()
    types = {(t, c): d for t, c, d in rows}
    for view, column in TIME_COLUMNS.items():
        assert types[(view, column)] == "timestamp with time zone"
    assert types[("v_alerts", "seconds_to_acknowledge")] == "numeric"


PERSONAL_COLUMNS = {
    "petitioner_name",
    "petitioner_phone",
    "petitioner_name_enc",
    "petitioner_phone_enc",
    "informant_id",
    "account_id",
    "acknowledged_by",
    "resolved_by",
    "summary",
    "description",
    "name_enc",
    "phone_enc",
}


async def test_views_hold_no_personal_data(analyst_year: AnalystYear) -> None:
    """The generated petitions carry names and phones, the reports informant ids, the
    alerts who acknowledged them: none of it reaches a view."""
    suspicious = re.compile(r"^inf-\d{6}-\d{3}$|^leader-|^1[3-9]\d{9}$|张某|讨要未果|工人议论")
    for view in VIEW_KEYS:
        columns, rows = await select_all(analyst_year.pg_url, view)
        assert PERSONAL_COLUMNS.isdisjoint(columns), view
        leaked = {v for row in rows for v in row if isinstance(v, str) and suspicious.search(v)}
        assert leaked == set(), view


# --------------------------------------------------------------------------- the rules


def point(point_id: str, county: str) -> Submission:
    row = {
        "point_id": point_id,
        "name": f"{point_id}公司",
        "region_code": county,
        "industry": "construction",
        "headcount": 500,
    }
    return Submission(parse_row("point", row), "file")


def wage(point_id: str, period: str, frontline: int, pay: float, arrears: int = 0) -> Submission:
    row = {
        "report_id": f"W-{point_id}-{period}",
        "point_id": point_id,
        "period": period,
        "headcount": 500,
        "frontline_headcount": frontline,
        "avg_frontline_wage": pay,
        "wages_paid_on": None,
        "arrears_amount": 1000.5 * arrears,
        "arrears_workers": arrears,
        "arrears_months": 1 if arrears else 0,
        "production_status": "normal",
    }
    return Submission(parse_row("wage", row), "mqtt", point_id)


def petition(pid: str, received_at: str, people: int, **extra: object) -> Submission:
    row = {
        "petition_id": pid,
        "received_at": received_at,
        "channel": "visit",
        "region_code": "430902",
        "category": "wage_arrears",
        "people_involved": people,
        "summary": "拖欠工资",
        "petitioner_name": "李四",
        "petitioner_phone": "13900001111",
    } | extra
    return Submission(parse_row("petition", row), "http", "src")


async def view(ctx: Context, name: str, order: str) -> list[dict[str, Any]]:
    async with ctx.db.engine.connect() as conn:
        result = await conn.execute(text(f"SELECT * FROM {name} ORDER BY {order}"))
        return [{k: normal(v) for k, v in row._mapping.items()} for row in result]


async def test_wage_view_expects_reports_from_the_month_a_point_joined(ctx: Context) -> None:
    points = [point("P1", "430902"), point("P4", "430902"), point("P3", "430903")]
    points.append(point("P2", "430902"))  # registered now, never reported
    assert len((await ctx.store.store("point", points)).stored) == 4
    result = await ctx.store.store(
        "wage",
        [
            wage("P1", "2024-11", 100, 4000),
            wage("P1", "2024-12", 100, 4000, arrears=3),
            wage("P4", "2024-11", 300, 6000),
            wage("P4", "2024-12", 300, 6000),
            wage("P3", "2024-11", 50, 3000),  # then falls silent
        ],
    )
    assert len(result.stored) == 5
    rows = await view(ctx, "v_wage_monthly", "period, region_code")
    got = [
        (
            r["period"],
            r["month"],
            r["county"],
            r["points_expected"],
            r["points_reporting"],
            r["points_not_reporting"],
            r["avg_frontline_wage"],
            r["arrears_workers"],
        )
        for r in rows
    ]
    assert got == [
        # November 1st, 00:00 in China is October 31st, 16:00 UTC.
        ("2024-10-31 16:00:00.000000", "2024-11", "资阳区", 2, 2, 0, 5500.0, 0),
        ("2024-10-31 16:00:00.000000", "2024-11", "赫山区", 1, 1, 0, 3000.0, 0),
        ("2024-11-30 16:00:00.000000", "2024-12", "资阳区", 2, 2, 0, 5500.0, 3),
        ("2024-11-30 16:00:00.000000", "2024-12", "赫山区", 1, 0, 1, None, 0),
    ]
    assert rows[2]["arrears_points"] == 1
    assert same(rows[2]["arrears_amount"], 3001.5)
    assert rows[3]["frontline_workers"] == 0


async def test_petition_view_counts_local_days_and_collective_petitions(ctx: Context) -> None:
    result = await ctx.store.store(
        "petition",
        [
            # 00:30 on January 1st in China is still December 31st in UTC.
            petition("Q1", "2025-01-01T00:30:00+08:00", 5, over_level="city"),
            petition("Q2", "2025-01-01T23:59:00+08:00", 4),
            petition("Q3", "2024-12-31T23:59:00+08:00", 1),
        ],
    )
    assert result.stored == ["Q1", "Q2", "Q3"]
    rows = await view(ctx, "v_petitions_daily", "day")
    assert [
        (
            r["day"],
            r["local_date"],
            r["petitions"],
            r["people"],
            r["collective_petitions"],
            r["collective_people"],
            r["over_level_petitions"],
        )
        for r in rows
    ] == [
        ("2024-12-30 16:00:00.000000", "2024-12-31", 1, 1, 0, 0, 0),
        ("2024-12-31 16:00:00.000000", "2025-01-01", 2, 9, 1, 5, 1),
    ]
    assert set(rows[0]) >= {"region_code", "county", "channel", "category"}


async def test_risk_view_takes_the_newest_point_score_and_its_strongest_factors(
    ctx: Context,
) -> None:
    await ctx.store.store("point", [point("P1", "430902")])
    now = ctx.clock.now()

    def score(entity_type: str, value: float, level: str, at: datetime, factors: Any) -> dict:
        return {
            "entity_type": entity_type,
            "entity_id": "P1" if entity_type == "point" else "430902",
            "region_code": "430902",
            "score": value,
            "level": level,
            "factors": factors,
            "as_of": at,
            "scored_at": at,
        }

    factors = [
        {"code": "a", "text": "工资推迟", "weight": 0.2},
        {"code": "b", "text": "欠薪", "weight": 0.9},
        {"code": "c", "text": "停缴社保", "weight": 0.5},
        {"code": "d", "text": "月报未报", "weight": 0.1},
    ]
    async with ctx.db.connect() as conn:
        await conn.execute(
            insert(RiskScore),
            [
                score("point", 80, "II", now - timedelta(days=30), []),
                score("point", 30.5, "IV", now - timedelta(days=1), factors),
                score("county", 99, "I", now, []),
            ],
        )
    rows = await view(ctx, "v_risk_latest", "point_id")
    assert len(rows) == 1
    row = rows[0]
    assert (row["point_id"], row["name"], row["county"], row["industry"]) == (
        "P1",
        "P1公司",
        "资阳区",
        "construction",
    )
    assert (row["score"], row["level"]) == (30.5, "IV")
    assert row["top_factors"] == "欠薪；停缴社保；工资推迟"


async def test_alert_view_times_acknowledgement_and_counts_escalations(ctx: Context) -> None:
    created = datetime(2025, 1, 10, 2, 0, 0, 250_000, tzinfo=UTC)
    common = {
        "kind": "event",
        "region_code": "430903",
        "title": "某公司 30人集体讨薪",
        "created_at": created,
        "updated_at": created,
        "tier_reached": 2,
        "escalation_step": 0,
        "repeats_done": 0,
    }
    async with ctx.db.connect() as conn:
        await conn.execute(
            insert(Alert),
            [
                common
                | {
                    "id": 1,
                    "dedup_key": "a",
                    "level": "III",
                    "status": "resolved",
                    "acknowledged_at": created + timedelta(hours=2, seconds=90.5),
                    "acknowledged_by": "leader-1",
                    "resolved_at": created + timedelta(days=1),
                },
                common
                | {
                    "id": 2,
                    "dedup_key": "b",
                    "level": "II",
                    "status": "triggered",
                    "acknowledged_at": None,
                    "acknowledged_by": None,
                    "resolved_at": None,
                },
            ],
        )
        await conn.execute(
            insert(AlertEvent),
            [
                {"alert_id": 1, "at": created, "event": "AlertTriggered", "actor": "system"},
                {
                    "alert_id": 1,
                    "at": created + timedelta(hours=2),
                    "event": "AlertEscalated",
                    "actor": "system",
                },
                {
                    "alert_id": 1,
                    "at": created + timedelta(hours=6),
                    "event": "AlertEscalated",
                    "actor": "system",
                },
            ],
        )
    rows = await view(ctx, "v_alerts", "alert_id")
    first, second = rows
    assert (first["county"], first["level"], first["status"], first["tier_reached"]) == (
        "赫山区",
        "III",
        "resolved",
        2,
    )
    assert same(first["seconds_to_acknowledge"], 2 * 3600 + 90.5)
    assert same(first["seconds_to_resolve"], 86400)
    assert (first["escalations"], first["last_escalated_at"]) == (
        2,
        "2025-01-10 08:00:00.250000",
    )
    assert second["seconds_to_acknowledge"] is None
    assert second["escalations"] == 0
    assert "acknowledged_by" not in first


async def test_the_views_come_and_go_with_their_migration(ctx: Context) -> None:
    def views(sync_conn: Any) -> set[str]:
        return set(sa_inspect(sync_conn).get_view_names())

    async with ctx.db.engine.begin() as conn:
        assert await conn.run_sync(views) >= set(VIEW_KEYS)
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0001"))
        assert await conn.run_sync(views) == set()
    await ctx.db.migrate()
    async with ctx.db.engine.connect() as conn:
        assert await conn.run_sync(views) == set(VIEW_KEYS)
