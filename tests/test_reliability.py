"""Informants' reliability (interfaces §8): a report is 待核实 until a verify record settles
it; 不实 resolves its alert as false and lowers the informant's reliability, and a later
precursor from that informant then weighs less in the enterprise's risk score than the
same precursor from an informant with a good record (both databases)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from detectors.load import load_panel
from detectors.scoring import score
from detectors.service import DetectorService
from monitor.alerting.book import AlertBook
from monitor.alerting.handling import Handling, RecordIn, records_of, stage_of
from monitor.clock import FrozenClock
from monitor.context import Context
from monitor.models import Alert, InformantReport
from monitor.records import parse_obj
from monitor.reliability import corroborate, informant_reliability, shrunk
from monitor.store import Submission

COUNTY = "430903"


def point(pid: str, name: str) -> Submission:
    data = {
        "point_id": pid,
        "name": name,
        "region_code": COUNTY,
        "industry": "construction",
        "headcount": 120,
    }
    return Submission(parse_obj("point", data), "file")


def report(rid: str, informant: str, pid: str, **fields: object) -> Submission:
    data = {
        "report_id": rid,
        "informant_id": informant,
        "occurred_at": "2025-01-15T08:30:00+08:00",
        "region_code": COUNTY,
        "point_id": pid,
        "event_type": "work_stoppage",
        "people_involved": 35,
        "description": "工人停工讨要工资",
    } | fields
    return Submission(parse_obj("report", data), "mqtt", informant)


def test_shrinkage_toward_the_prior() -> None:
    assert shrunk(0, 0, 0.7, 4) == pytest.approx(0.7)
    assert shrunk(0, 1, 0.7, 4) == pytest.approx(0.56)  # one 不实
    assert shrunk(2, 2, 0.7, 4) == pytest.approx(0.8)  # two 属实
    assert shrunk(90, 100, 0.7, 4) == pytest.approx(0.892, abs=1e-3)


async def alert_of(ctx: Context, report_id: str) -> Alert:
    async with ctx.db.session() as session:
        for alert in (await session.scalars(select(Alert))).all():
            if report_id in (alert.source_ids or []):
                return alert
    raise AssertionError(f"no alert for {report_id}")


async def test_untrue_lowers_reliability_and_the_informants_precursors_weigh_less(
    ctx: Context, clock: FrozenClock
) -> None:
    await ctx.store.store(
        "point",
        [point("P1", "赫山甲建筑公司"), point("P2", "赫山乙建筑公司"), point("P3", "赫山丙公司")],
    )
    leader = "hs-duty"
    await ctx.accounts.add(kind="leader", account_id=leader, region_code=COUNTY)
    await ctx.store.store(
        "report",
        [
            # P1 and P2 have the same history: one work stoppage each.
            report("B1", "inf-bad", "P1"),
            report("X1", "inf-other", "P2"),
            # The good informant's record is at a third enterprise.
            report("G1", "inf-good", "P3"),
            report("G2", "inf-good", "P3", event_type="gathering", people_involved=12),
        ],
    )
    detectors = DetectorService(ctx)
    await detectors.check_new_records()
    book = AlertBook(ctx)
    await book.process_findings()
    handling = Handling(ctx, book)
    untrue = await alert_of(ctx, "B1")
    await handling.add(
        untrue.id,
        RecordIn(kind="verify", verdict="false", text="经核实，企业正常生产，无停工"),
        author=leader,
        via="api",
    )
    await handling.add(
        (await alert_of(ctx, "G1")).id,
        RecordIn(kind="verify", verdict="true", text="属实"),
        author=leader,
        via="api",
    )
    async with ctx.db.session() as session:
        closed = await session.get(Alert, untrue.id)
        assert closed is not None
        assert closed.status == "resolved"
        assert stage_of(closed, (await records_of(session, [untrue.id]))[untrue.id]) == "false"
        verdicts = {
            r.report_id: r.verification
            for r in (await session.scalars(select(InformantReport))).all()
        }
        assert verdicts == {"B1": "false", "X1": None, "G1": "true", "G2": "true"}
        reliable = await informant_reliability(session, prior=0.7, prior_weight=4.0)
    assert reliable["inf-bad"].value == pytest.approx(0.56)
    assert reliable["inf-good"].value == pytest.approx(0.8)

    # The same precursor from each, at two otherwise identical enterprises.
    precursor = {
        "event_type": "precursor",
        "people_involved": 0,
        "description": "听说工资要推迟发放，工人议论纷纷",
        "occurred_at": "2025-01-15T08:50:00+08:00",
    }
    await ctx.store.store(
        "report",
        [report("B2", "inf-bad", "P1", **precursor), report("G3", "inf-good", "P2", **precursor)],
    )
    panel = await load_panel(ctx.db, as_of=date(2025, 1, 15))
    table = score(panel.view(date(2025, 1, 15)))
    scores = dict(zip(table.point_ids, table.score, strict=True))
    weights = dict(zip(panel.ev_ids, panel.event_weights(), strict=True))
    assert weights["B2"] == pytest.approx(0.8)  # 0.56 / 0.7
    assert weights["G3"] == pytest.approx(0.8 / 0.7)
    print("risk scores with the same precursor:", scores)
    assert scores["P2"] - scores["P1"] >= 1.0  # 12.6 vs 11.0 when measured


async def test_a_second_informant_or_a_petition_corroborates_a_lone_report_stays_unsettled(
    ctx: Context,
) -> None:
    await ctx.store.store(
        "point",
        [point("P1", "赫山甲建筑公司"), point("P2", "赫山乙建筑公司"), point("P3", "赫山丙公司")],
    )
    precursor = {"event_type": "precursor", "people_involved": 0, "description": "工资推迟发放"}
    await ctx.store.store(
        "report",
        [
            report("A1", "inf-a", "P1", **precursor),
            report("B1", "inf-b", "P1", **precursor, occurred_at="2025-01-13T10:00:00+08:00"),
            report("C1", "inf-c", "P2", **precursor),
            report("C2", "inf-c", "P2", **precursor, occurred_at="2025-01-14T10:00:00+08:00"),
            report("D1", "inf-d", "P3", **precursor),
        ],
    )
    petition = {
        "petition_id": "Q1",
        "received_at": "2025-01-10T09:00:00+08:00",
        "channel": "hotline_12351",
        "region_code": COUNTY,
        "point_id": "P3",
        "people_involved": 3,
        "summary": "反映丙公司拖欠工资",
    }
    await ctx.store.store("petition", [Submission(parse_obj("petition", petition), "http", "s")])
    async with ctx.db.session() as session:
        settled = await corroborate(session, ctx.clock.now(), timedelta(days=7))
    # The same informant twice is no corroboration; another informant or a petition is.
    assert sorted(settled) == ["A1", "B1", "D1"]
    async with ctx.db.session() as session:
        again = await corroborate(session, ctx.clock.now(), timedelta(days=7))
        reliable = await informant_reliability(session, prior=0.7, prior_weight=4.0)
    assert again == []
    assert reliable["inf-a"].value == pytest.approx(0.76)
    assert reliable["inf-c"].value == pytest.approx(0.7)
