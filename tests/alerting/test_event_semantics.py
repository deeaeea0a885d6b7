"""What is an event (interfaces §5), through the detectors and the alert book: ordinary
petitions raise no alert and are counted in the county's digest; collective and
over-level petitions are events; three petitions about one enterprise within 30 days are
one cluster alert listing them."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from detectors.service import DetectorService
from monitor.alerting.digest import JOB, DailyDigest
from monitor.models import Finding, JobRun
from monitor.records import parse_obj
from monitor.regions import DEMO_REGIONS
from monitor.store import Submission
from tests.alerting.conftest import COUNTY, Pipeline, add_point

CHINA = ZoneInfo("Asia/Shanghai")


def petition(pid: str, at: datetime, **fields: object) -> Submission:
    data = {
        "petition_id": pid,
        "received_at": at.isoformat(),
        "channel": "hotline_12351",
        "region_code": COUNTY,
        "people_involved": 1,
        "category": "wage_arrears",
        "summary": "反映工地拖欠工资",
        "petitioner_name": "李四",
        "petitioner_phone": "13900002222",
    } | fields
    return Submission(parse_obj("petition", data), "http", "src-1")


async def detect(pipeline: Pipeline) -> None:
    service = DetectorService(pipeline.ctx)
    while await service.check_new_records():
        pass
    await pipeline.run()


async def event_findings(pipeline: Pipeline) -> list[Finding]:
    async with pipeline.ctx.db.session() as session:
        rows = await session.scalars(
            select(Finding).where(Finding.kind == "event").order_by(Finding.id)
        )
        return list(rows.all())


async def test_a_thousand_ordinary_petitions_raise_nothing_and_are_counted_in_the_digests(
    pipeline: Pipeline,
) -> None:
    counties = [code for code, _, parent in DEMO_REGIONS if parent == "430900"]
    assert len(counties) == 6
    end = pipeline.clock.now()
    start = end - timedelta(days=90)
    subs = []
    for i in range(1000):
        at = start + timedelta(days=90) * (i / 1000)
        fields: dict[str, object] = {"region_code": counties[i % 6]}
        if i % 2:
            # Enterprises named twice, 45 days apart: no cluster of three.
            fields["enterprise_name"] = f"企业{i % 500}"
        subs.append(petition(f"Q{i:04d}", at, **fields))
    result = await pipeline.ctx.store.store("petition", subs)
    assert len(result.stored) == 1000
    await detect(pipeline)
    assert await event_findings(pipeline) == []
    assert await pipeline.alerts() == []
    # Every day's 08:00 digest counts the day before's petitions of each county.
    digest = DailyDigest(pipeline.ctx, pipeline.book)
    first = start.astimezone(CHINA).date() + timedelta(days=1)
    last = end.astimezone(CHINA).date() + timedelta(days=1)
    day = first
    while day <= last:
        pipeline.clock.set(datetime(day.year, day.month, day.day, 8, 0, tzinfo=CHINA))
        await digest.run_once()
        day += timedelta(days=1)
    async with pipeline.ctx.db.session() as session:
        runs = (await session.scalars(select(JobRun).where(JobRun.job == JOB))).all()
    counted = sum(int((r.details or {}).get("petitions", 0)) for r in runs)
    assert counted == 1000
    assert {r.key.split(":")[1] for r in runs if (r.details or {}).get("petitions")} == set(
        counties
    )


async def test_collective_over_level_and_cluster_petitions_are_events(
    pipeline: Pipeline,
) -> None:
    await add_point(pipeline.ctx)
    await add_point(pipeline.ctx, "P2", name="资阳纺织")
    now = pipeline.clock.now()
    await pipeline.ctx.store.store(
        "petition",
        [
            petition("C12", now - timedelta(hours=1), point_id="P1", people_involved=12),
            petition("OL2", now - timedelta(hours=1), people_involved=2, over_level="province"),
            petition("K1", now - timedelta(days=25), point_id="P2"),
            petition("K2", now - timedelta(days=10), point_id="P2"),
        ],
    )
    await detect(pipeline)
    alerts = await pipeline.alerts()
    by_source = {a.source_ids[0]: a for a in alerts}
    assert set(by_source) == {"C12", "OL2"}  # two petitions about P2 are no event yet
    collective = by_source["C12"]
    assert (collective.kind, collective.level) == ("event", "III")
    assert collective.title == "资阳建工 12人集体访讨薪"
    assert by_source["OL2"].kind == "event"
    # The third distinct petition about P2 within 30 days: one cluster alert listing all.
    await pipeline.ctx.store.store("petition", [petition("K3", now, point_id="P2")])
    await detect(pipeline)
    [cluster] = [a for a in await pipeline.alerts() if a.point_id == "P2"]
    assert cluster.kind == "event"
    assert cluster.source_ids == ["K1", "K2", "K3"]
    assert "30天内信访3件" in cluster.title
    # A fourth joins it instead of opening another.
    await pipeline.ctx.store.store(
        "petition", [petition("K4", now + timedelta(hours=2), point_id="P2")]
    )
    pipeline.clock.advance(timedelta(hours=3))
    await detect(pipeline)
    [cluster] = [a for a in await pipeline.alerts() if a.point_id == "P2"]
    assert cluster.source_ids == ["K1", "K2", "K3", "K4"]
