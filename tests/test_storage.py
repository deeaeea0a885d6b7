"""Storage: idempotent inserts, conflicts, time zones and migrations, on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from monitor.context import Context
from monitor.models import Base, Petition, Region, WageReport
from monitor.records import parse_json, parse_row
from monitor.store import Submission

POINT = {
    "point_id": "P1",
    "name": "资阳建工",
    "region_code": "430902",
    "industry": "construction",
    "headcount": "300",
}


def wage(report_id: str = "W1", period: str = "2024-12", **changes: object) -> Submission:
    row = {
        "report_id": report_id,
        "point_id": "P1",
        "period": period,
        "headcount": 300,
        "frontline_headcount": 250,
        "avg_frontline_wage": 4300.0,
        "wages_paid_on": None,
        "arrears_amount": 0,
        "arrears_workers": 0,
        "arrears_months": 0,
        "production_status": "normal",
    } | changes
    return Submission(parse_row("wage", row), "mqtt", "P1")


def petition(pid: str = "Q1", **changes: object) -> Submission:
    data = {
        "petition_id": pid,
        "received_at": "2025-01-01T00:30:00+08:00",
        "channel": "hotline_12351",
        "region_code": "430903",
        "people_involved": 6,
        "summary": "公司拖欠工资两个月",
        "petitioner_name": "王五",
        "petitioner_phone": "13900001111",
    } | changes
    return Submission(parse_row("petition", data), "http", "src-1")


async def _with_point(ctx: Context) -> None:
    result = await ctx.store.store("point", [Submission(parse_row("point", POINT), "file")])
    assert result.stored == ["P1"]


async def test_same_record_twice_is_stored_once(ctx: Context) -> None:
    await _with_point(ctx)
    first = await ctx.store.store("wage", [wage()])
    again = await ctx.store.store("wage", [wage(), wage()])
    assert first.stored == ["W1"]
    assert again.stored == []
    assert again.duplicates == ["W1", "W1"]
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(WageReport)) == 1


async def test_same_id_other_contents_is_rejected(ctx: Context) -> None:
    await _with_point(ctx)
    await ctx.store.store("wage", [wage()])
    result = await ctx.store.store("wage", [wage(avg_frontline_wage=1.0)])
    assert result.rejected["W1"].field == "report_id"
    assert "different contents" in result.rejected["W1"].reason


async def test_second_report_for_a_month_is_rejected(ctx: Context) -> None:
    await _with_point(ctx)
    await ctx.store.store("wage", [wage("W1")])
    result = await ctx.store.store("wage", [wage("W2")])
    assert result.rejected["W2"].field == "period"
    assert "already has a report for 2024-12" in result.rejected["W2"].reason


async def test_unknown_point_region_and_future_period(ctx: Context) -> None:
    result = await ctx.store.store("wage", [wage()])
    assert result.rejected["W1"].reason == "unknown monitoring point P1"
    await _with_point(ctx)
    result = await ctx.store.store("wage", [wage(period="2025-02")])
    assert result.rejected["W1"].reason == "2025-02 is in the future"
    result = await ctx.store.store("petition", [petition(region_code="439999")])
    assert result.rejected["Q1"].field == "region_code"


async def test_petition_local_day_encryption_and_inferred_category(ctx: Context) -> None:
    result = await ctx.store.store("petition", [petition()])
    assert result.stored == ["Q1"]
    async with ctx.db.session() as s:
        row = (await s.scalars(select(Petition))).one()
    # 00:30 in China on Jan 1st is Dec 31st in UTC: the local day is what counts.
    assert row.received_at == datetime(2024, 12, 31, 16, 30, tzinfo=UTC)
    assert row.received_date == date(2025, 1, 1)
    assert row.category == "wage_arrears"
    assert row.category_inferred
    assert row.petitioner_name_enc is not None
    assert b"\xe7\x8e\x8b" not in row.petitioner_name_enc
    assert ctx.privacy.decrypt(row.petitioner_name_enc) == "王五"
    assert ctx.privacy.decrypt(row.petitioner_phone_enc) == "13900001111"


async def test_json_and_csv_forms_of_one_record_are_duplicates(ctx: Context) -> None:
    payload = (
        '{"petition_id": "Q1", "received_at": "2025-01-01T00:30:00+08:00", "channel": '
        '"hotline_12351", "region_code": "430903", "people_involved": 6, "summary": '
        '"公司拖欠工资两个月", "petitioner_name": "王五", '
        '"petitioner_phone": "13900001111", "x": 1}'
    )
    await ctx.store.store("petition", [Submission(parse_json("petition", payload), "mqtt")])
    result = await ctx.store.store("petition", [petition(people_involved="6")])
    assert result.duplicates == ["Q1"]


async def test_registry_update_and_regions(ctx: Context) -> None:
    await _with_point(ctx)
    changed = Submission(parse_row("point", POINT | {"headcount": "280"}), "file")
    result = await ctx.store.store("point", [changed])
    assert result.updated == ["P1"]
    result = await ctx.store.store(
        "region", [Submission(parse_row("region", {"code": "430100", "name": "长沙市"}), "file")]
    )
    assert result.stored == ["430100"]
    async with ctx.db.session() as s:
        region = await s.get(Region, "430100")
    assert region is not None
    assert region.tier == 2
    assert region.parent_code == "430000"


async def test_timestamps_round_trip_in_utc(ctx: Context) -> None:
    when = ctx.clock.now() - timedelta(hours=1)
    await ctx.store.store("petition", [petition(received_at=when.isoformat())])
    async with ctx.db.session() as s:
        row = (await s.scalars(select(Petition))).one()
    assert row.received_at == when
    assert row.received_at.tzinfo is not None
    assert row.ingested_at == ctx.clock.now()


async def test_migrations_match_the_models(ctx: Context) -> None:
    async with ctx.db.engine.connect() as conn:

        def diff(sync_conn):  # type: ignore[no-untyped-def]
            mc = MigrationContext.configure(sync_conn, opts={"compare_type": False})
            return compare_metadata(mc, Base.metadata)

        changes = await conn.run_sync(diff)
    assert changes == []


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_migrate_twice_is_harmless(ctx: Context) -> None:
    await ctx.db.migrate()
    await ctx.db.migrate()
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Region)) == 8


async def test_a_long_read_does_not_hold_up_a_write(ctx: Context) -> None:
    """Bulk loads read through `Database.read()`: a snapshot that leaves the write path
    free (on SQLite a second, read-only connection; the writer's one stays available)."""
    import asyncio

    await ctx.db.migrate()
    async with ctx.db.read() as reader:
        before = await reader.scalar(select(func.count()).select_from(Region))
        async with asyncio.timeout(10):
            async with ctx.db.session() as session:
                session.add(Region(code="430999", name="测试区", tier=3, parent_code="430900"))
        # The reader's snapshot is its own; the write is committed for everyone else.
        async with ctx.db.session() as session:
            assert await session.get(Region, "430999") is not None
        if ctx.db.dialect == "sqlite":
            from sqlalchemy.exc import OperationalError

            with pytest.raises(OperationalError, match=r"readonly|read-only|query_only"):
                await reader.exec_driver_sql("DELETE FROM regions WHERE code = '430999'")
    assert before is not None


def test_a_wage_report_in_json_keeps_its_payment_day() -> None:
    """Dates in JSON are text: the records' text cleaning (a model before-validator) must
    not make strict validation refuse them, and a malformed day names the format."""
    import json

    payload = {
        "report_id": "W-DAY-1",
        "point_id": "MP-1",
        "period": "2025-01",
        "headcount": 120,
        "frontline_headcount": 100,
        "avg_frontline_wage": 4200,
        "wages_paid_on": "2025-02-13",
        "production_status": "normal",
        "arrears_months": 0,
        "arrears_workers": 0,
        "arrears_amount": 0,
    }
    parsed = parse_json("wage", json.dumps(payload))
    assert parsed.wages_paid_on == date(2025, 2, 13)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="ISO 8601 date"):
        parse_json("wage", json.dumps(payload | {"wages_paid_on": "13/02/2025"}))
