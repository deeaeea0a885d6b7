"""Every finding names the records behind its factors (interfaces §4 `source_ids`): the
wage reports behind a point's arrears, the petitions and informant reports behind its
other factors, the petitions of a county's surge and the records of its riskiest points
-- real record ids only, most relevant first, never personal data."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from detectors import scoring
from detectors.base import FindingDraft
from detectors.panel import Panel, PanelBuilder, PanelView
from detectors.service import DetectorService
from ingest.files import FileImporter
from monitor.clock import FrozenClock
from monitor.context import Context
from monitor.models import Finding, InformantReport, MonitoringPoint, Petition, WageReport
from monitor.records import parse_obj
from monitor.season import day_number
from monitor.store import Submission

AS_OF = date(2024, 12, 20)
PERSONAL = ("张三", "13900001111", "inf-7")
#: Factors that rest on no record of the entity (a missing report, the calendar, the
#: county around it): a finding made of these alone may name nothing.
RECORDLESS = {"reporting", "season", "county"}


def _wage(point: str, period: str, **kw: object) -> dict[str, object]:
    return {
        "report_id": f"W-{point}-{period.replace('-', '')}",
        "point_id": point,
        "period": period,
        "headcount": 120,
        "frontline_headcount": 100,
        "avg_frontline_wage": 4200.0,
        "wages_paid_on": None,
        "arrears_amount": 0.0,
        "arrears_workers": 0,
        "arrears_months": 0,
        "production_status": "normal",
    } | kw


def _paid(period: str) -> str:
    year, month = map(int, period.split("-"))
    return (date(year + month // 12, month % 12 + 1, 10)).isoformat()


def _periods(first: str, count: int) -> list[str]:
    year, month = map(int, first.split("-"))
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _petition(pid: str, day: date, region: str, point: str | None) -> dict[str, object]:
    return {
        "petition_id": pid,
        "received_date": day,
        "channel": "hotline_12351",
        "region_code": region,
        "point_id": point,
        "category": "wage_arrears",
        "people_involved": 2,
        "summary": "拖欠工资三个月，张三 13900001111 反映",
        "petitioner_name": "张三",
        "petitioner_phone": "13900001111",
        "source": "file",
    }


def _region() -> Panel:
    """Two counties: 430902 with a point three months in arrears (P1) beside quiet ones;
    430903 with quiet points and a petition surge in the last 28 days."""
    builder = PanelBuilder()
    points = [("P1", "430902"), ("P2", "430902"), ("P3", "430902")]
    points += [(f"Q{k}", "430903") for k in range(1, 6)]
    builder.add_points(
        {
            "point_id": pid,
            "name": f"益阳测试{pid}有限公司",
            "region_code": region,
            "industry": "manufacturing",
            "headcount": 120,
        }
        for pid, region in points
    )
    periods = _periods("2023-09", 15)  # 2023-09 .. 2024-11
    wages = []
    for pid, _ in points:
        for period in periods:
            wages.append(_wage(pid, period, wages_paid_on=_paid(period)))
    # P1: wages unpaid since 2024-09, arrears growing month by month.
    owed = {"2024-09": 1, "2024-10": 2, "2024-11": 3}
    wages = [
        w
        if w["point_id"] != "P1" or w["period"] not in owed
        else w
        | {
            "wages_paid_on": None,
            "arrears_months": owed[str(w["period"])],
            "arrears_workers": 100,
            "arrears_amount": 420_000.0 * owed[str(w["period"])],
        }
        for w in wages
    ]
    builder.add_wages(wages)
    petitions = [_petition("PT-P1-1", AS_OF - timedelta(days=20), "430902", "P1")]
    # 430903: about one petition a fortnight for months, then 24 in the last 28 days.
    for k in range(8):
        petitions.append(_petition(f"PT-B{k}", AS_OF - timedelta(days=40 + 14 * k), "430903", None))
    for k in range(24):
        petitions.append(_petition(f"PT-S{k}", AS_OF - timedelta(days=k), "430903", None))
    builder.add_petitions(petitions)
    builder.add_reports(
        [
            {
                "report_id": "IR-P1-1",
                "informant_id": "inf-7",
                "occurred_date": AS_OF - timedelta(days=5),
                "region_code": "430902",
                "point_id": "P1",
                "event_type": "precursor",
                "people_involved": 0,
                "description": "工人商量集体讨薪",
                "source": "file",
            }
        ]
    )
    return builder.build()


def _by_key(drafts: list[FindingDraft]) -> dict[str, FindingDraft]:
    return {d.dedup_key: d for d in drafts}


def _no_personal_data(drafts: list[FindingDraft]) -> None:
    text = json.dumps([d.evidence() for d in drafts], ensure_ascii=False)
    for value in PERSONAL:
        assert value not in text


def test_a_point_in_arrears_names_its_wage_reports_first() -> None:
    table = scoring.score(PanelView(_region(), day_number(AS_OF)))
    drafts = table.point_findings()
    p1 = _by_key(drafts)["point:P1:enterprise_risk"]
    assert p1.level is not None
    assert p1.factors[0].code == "arrears"
    ids = p1.evidence()["source_ids"]
    # The latest report (3 months owed) first, then the months the arrears grew in.
    assert ids[:3] == ["W-P1-202411", "W-P1-202410", "W-P1-202409"]
    # Paid months are no evidence of arrears; the point's petition and report are.
    assert "W-P1-202408" not in ids
    assert {"PT-P1-1", "IR-P1-1"} <= set(ids)
    # Nothing about other points or counties.
    assert all(x.startswith(("W-P1-", "PT-P1-", "IR-P1-")) for x in ids)
    _no_personal_data(drafts)


def test_a_county_surge_and_its_county_risk_name_the_petitions() -> None:
    panel = _region()
    table = scoring.score(PanelView(panel, day_number(AS_OF)))
    drafts = _by_key(table.county_findings() + table.surges)
    surge = drafts["county:430903:petition_surge"]
    risk = drafts["county:430903:county_risk"]
    assert risk.level is not None
    assert "county_petition_surge" in {f.code for f in risk.factors}
    surge_ids = [f"PT-S{k}" for k in range(24)]
    # Newest first, and only the petitions of the window.
    assert surge.evidence()["source_ids"] == surge_ids
    ids = risk.evidence()["source_ids"]
    assert ids
    assert set(surge_ids) <= set(ids)
    county_petitions = {f"PT-S{k}" for k in range(24)} | {f"PT-B{k}" for k in range(8)}
    assert set(ids) <= county_petitions
    _no_personal_data(list(drafts.values()))


def test_a_county_at_risk_from_its_points_names_their_records() -> None:
    table = scoring.score(PanelView(_region(), day_number(AS_OF)))
    risk = _by_key(table.county_findings())["county:430902:county_risk"]
    assert risk.level is not None
    assert {f.code for f in risk.factors} & {"county_mean_risk", "county_high_risk_points"}
    ids = risk.evidence()["source_ids"]
    assert ids[0] == "W-P1-202411"
    assert {"W-P1-202410", "PT-P1-1", "IR-P1-1"} <= set(ids)
    assert all(x.split("-")[1] in {"P1", "P2", "P3"} for x in ids)


@pytest.mark.parametrize("day", [date(2023, 1, 18), date(2023, 6, 16), date(2023, 12, 20)])
def test_every_finding_names_real_records_of_its_own_entity(sim_panel: Panel, day: date) -> None:
    panel = sim_panel
    table = scoring.score(PanelView(panel, day_number(day)))
    wage_owner = {
        str(rid): i for (i, _), rid in np.ndenumerate(panel.report_ids) if rid is not None
    }
    event_point = {str(e): int(p) for e, p in zip(panel.ev_ids, panel.ev_point, strict=True)}
    event_county = {str(e): int(c) for e, c in zip(panel.ev_ids, panel.ev_county, strict=True)}
    index = {pid: i for i, pid in enumerate(panel.point_ids)}
    risky = [d for d in table.point_findings() if d.level is not None]
    assert risky
    with_arrears = 0
    for d in risky:
        i = index[d.entity_id]
        ids = d.evidence()["source_ids"]
        assert ids or {f.code for f in d.factors} <= RECORDLESS, d.entity_id
        assert len(ids) <= 50
        for x in ids:
            assert wage_owner.get(x, event_point.get(x)) == i, (d.entity_id, x)
        codes = [f.code for f in d.factors]
        if "arrears" in codes and int(table.features.last_col[i]) >= 0:
            with_arrears += 1
            latest = panel.report_ids[i, int(table.features.last_col[i])]
            assert latest in ids, (d.entity_id, ids)
    assert with_arrears
    counties = [d for d in table.county_findings() if d.level is not None]
    for d in counties:
        j = panel.counties.index(d.entity_id)
        ids = d.evidence()["source_ids"]
        assert ids, d.entity_id
        for x in ids:
            if x in wage_owner:
                assert panel.county[wage_owner[x]] == j
            else:
                assert event_county[x] == j, (d.entity_id, x)


async def test_findings_in_the_database_name_stored_records(
    ctx: Context, sim_dir: Path, clock: FrozenClock
) -> None:
    from datetime import UTC, datetime

    await FileImporter(ctx.store).run(sim_dir)
    clock.set(datetime.fromisoformat("2023-12-20T02:30:00+08:00").astimezone(UTC))
    # A risk band opens only after it held for `risk_open_after` scorings (hysteresis).
    service = DetectorService(ctx)
    for _ in range(ctx.settings.detectors.risk_open_after):
        await service.rescore()
    async with ctx.db.session() as s:
        findings = (
            await s.scalars(
                select(Finding).where(Finding.kind.in_(("enterprise_risk", "county_risk")))
            )
        ).all()
        wages = dict((await s.execute(select(WageReport.report_id, WageReport.point_id))).all())
        region = dict(
            (await s.execute(select(MonitoringPoint.point_id, MonitoringPoint.region_code))).all()
        )
        events = dict((await s.execute(select(Petition.petition_id, Petition.region_code))).all())
        events |= dict(
            (await s.execute(select(InformantReport.report_id, InformantReport.region_code))).all()
        )
    leveled = [f for f in findings if f.level is not None]
    assert {f.kind for f in leveled} == {"enterprise_risk", "county_risk"}
    named_wages = 0
    for f in leveled:
        ids = f.evidence["source_ids"]
        assert ids or {x["code"] for x in f.evidence["factors"]} <= RECORDLESS, f.dedup_key
        for x in ids:
            assert x in wages or x in events, x
            if x in wages:
                named_wages += 1
                if f.kind == "enterprise_risk":
                    assert wages[x] == f.point_id
                assert region[wages[x]] == f.region_code
            else:
                assert events[x] == f.region_code
    assert named_wages


async def test_a_rules_finding_names_the_report_that_the_owner_is_gone(ctx: Context) -> None:
    point = {
        "point_id": "P1",
        "name": "赫山鑫达建筑工程有限公司",
        "region_code": "430903",
        "industry": "construction",
        "headcount": 120,
    }
    await ctx.store.store("point", [Submission(parse_obj("point", point), "file")])
    report = {
        "report_id": "R-GONE",
        "informant_id": "inf-7",
        "occurred_at": "2025-01-14T08:30:00+08:00",
        "region_code": "430903",
        "point_id": "P1",
        "event_type": "precursor",
        "people_involved": 0,
        "description": "老板联系不上，电话关机，疑似跑路",
    }
    await ctx.store.store("report", [Submission(parse_obj("report", report), "mqtt", "inf-7")])
    wage = _wage("P1", "2024-12", arrears_months=1, arrears_workers=100, arrears_amount=4e5)
    wage["report_id"] = "W1"
    await ctx.store.store("wage", [Submission(parse_obj("wage", wage), "mqtt", "P1")])
    await DetectorService(ctx).check_new_records()
    async with ctx.db.session() as s:
        [finding] = (
            await s.scalars(select(Finding).where(Finding.kind == "enterprise_risk"))
        ).all()
    assert finding.level == "I"
    assert finding.evidence["source_ids"] == ["W1", "R-GONE"]
    assert "inf-7" not in json.dumps(finding.evidence, ensure_ascii=False)
