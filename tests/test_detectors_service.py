"""The detectors in the daemon, on both databases: event severity at once, rules on new
reports, the nightly re-score exactly once across daemons, clearing, the stored model,
and the whole loop woken by the bus and the clock (never by sleeping)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update

from detectors.base import FindingDraft
from detectors.persist import latest_model, write_findings
from detectors.service import DetectorService
from ingest.files import FileImporter
from monitor import bus
from monitor.clock import FrozenClock
from monitor.context import Context
from monitor.daemon import Daemon
from monitor.models import (
    DetectorModel,
    Finding,
    InformantReport,
    JobRun,
    MonitoringPoint,
    Petition,
    RiskScore,
)
from monitor.records import parse_obj
from monitor.regions import DEMO_REGIONS
from monitor.store import Submission

POINT = {
    "point_id": "P1",
    "name": "赫山鑫达建筑工程有限公司",
    "region_code": "430903",
    "industry": "construction",
    "headcount": 120,
}


def report(rid: str, **fields: object) -> Submission:
    data = {
        "report_id": rid,
        "informant_id": "inf-7",
        "occurred_at": "2025-01-15T08:30:00+08:00",
        "region_code": "430903",
        "point_id": "P1",
        "event_type": "gathering",
        "people_involved": 3,
        "description": "工人在门口聚集",
    } | fields
    return Submission(parse_obj("report", data), "mqtt", "inf-7")


def petition(pid: str, **fields: object) -> Submission:
    data = {
        "petition_id": pid,
        "received_at": "2025-01-15T08:45:00+08:00",
        "channel": "visit",
        "region_code": "430903",
        "point_id": "P1",
        "people_involved": 1,
        "summary": "拖欠工资两个月，张三 13900001111 反映",
        "petitioner_name": "张三",
        "petitioner_phone": "13900001111",
    } | fields
    return Submission(parse_obj("petition", data), "http", "src-1")


async def _findings(ctx: Context, kind: str | None = None) -> list[Finding]:
    async with ctx.db.session() as s:
        stmt = select(Finding).order_by(Finding.id)
        if kind:
            stmt = stmt.where(Finding.kind == kind)
        return list((await s.scalars(stmt)).all())


async def test_event_severity_at_once(ctx: Context) -> None:
    await ctx.store.store("point", [Submission(parse_obj("point", POINT), "file")])
    await ctx.store.store(
        "report",
        [
            report("R1", event_type="road_blocking", people_involved=3),
            report(
                "R2",
                event_type="precursor",
                people_involved=0,
                description="听说老板跑路了，工人找不到人",
            ),
            report("R3", event_type="other", people_involved=0, description="食堂饭菜一般"),
            report(
                "R4",
                point_id=None,
                enterprise_name="某物流公司",
                event_type="work_stoppage",
                people_involved=45,
                region_code="430921",
            ),
        ],
    )
    await ctx.store.store(
        "petition", [petition("Q1"), petition("Q2", people_involved=12, channel="visit")]
    )
    service = DetectorService(ctx)
    assert await service.check_new_records() == 6
    assert ctx.bus._events[bus.FINDINGS].is_set()
    found = {f.evidence["source_ids"][0]: f for f in await _findings(ctx, "event")}
    # One worker's petition is no event (interfaces §5: counted in the digest, used by the
    # detectors); a remark on the canteen that involves nobody is none either.
    assert set(found) == {"R1", "R2", "R4", "Q2"}
    assert found["R1"].level == "I"
    assert found["R1"].title == "赫山鑫达建筑工程有限公司 3人堵路"
    assert found["R1"].score == 0  # events carry no risk score
    assert found["R1"].dedup_key == "point:P1:event"
    assert found["R2"].level == "II"  # owner absconding: immediate on-site response
    assert found["R4"].level == "II"
    assert found["R4"].entity_type == "firm"
    assert found["R4"].dedup_key == "firm:430921:某物流公司:event"
    assert found["Q2"].level == "III"
    assert found["Q2"].evidence["people_involved"] == 12
    for finding in found.values():
        text = json.dumps(finding.evidence, ensure_ascii=False) + finding.title
        assert "张三" not in text
        assert "13900001111" not in text
        assert "inf-7" not in text
        assert all(
            any("\u4e00" <= c <= "\u9fff" for c in f["text"]) for f in finding.evidence["factors"]
        )
        assert finding.processed_at is None
    assert "赫山鑫达建筑工程有限公司" in found["R1"].title
    async with ctx.db.session() as s:
        unchecked = await s.scalar(
            select(func.count()).select_from(Petition).where(Petition.severity_checked_at.is_(None))
        )
    assert unchecked == 0
    assert await service.check_new_records() == 0


async def test_two_daemons_never_check_a_record_twice(ctx: Context) -> None:
    await ctx.store.store("point", [Submission(parse_obj("point", POINT), "file")])
    await ctx.store.store("report", [report(f"R{k}", people_involved=10 + k) for k in range(60)])
    a, b = DetectorService(ctx), DetectorService(ctx)
    a.cfg = b.cfg = a.cfg.model_copy(update={"batch_size": 7})
    while sum(await asyncio.gather(a.check_new_records(), b.check_new_records())):
        pass
    findings = await _findings(ctx, "event")
    assert sorted(f.evidence["source_ids"][0] for f in findings) == sorted(
        f"R{k}" for k in range(60)
    )


async def test_rules_on_a_new_wage_report(ctx: Context) -> None:
    await ctx.store.store("point", [Submission(parse_obj("point", POINT), "file")])
    wage = {
        "report_id": "W1",
        "point_id": "P1",
        "period": "2024-12",
        "headcount": 120,
        "frontline_headcount": 100,
        "avg_frontline_wage": 3000,
        "arrears_amount": 600000,
        "arrears_workers": 100,
        "arrears_months": 2,
        "production_status": "halted",
    }
    await ctx.store.store("wage", [Submission(parse_obj("wage", wage), "mqtt", "P1")])
    service = DetectorService(ctx)
    await service.check_new_records()
    [finding] = await _findings(ctx, "enterprise_risk")
    assert finding.level == "II"
    assert finding.dedup_key == "point:P1:enterprise_risk"
    assert finding.evidence["source_ids"] == ["W1"]
    assert "停产且工资未发" in finding.evidence["factors"][0]["text"]
    # The same situation reported again is no news.
    await ctx.store.store(
        "wage",
        [Submission(parse_obj("wage", wage | {"report_id": "W2", "period": "2024-11"}), "mqtt")],
    )
    await service.check_new_records()
    assert len(await _findings(ctx, "enterprise_risk")) == 1


def _local(clock: FrozenClock, text: str) -> None:
    clock.set(datetime.fromisoformat(text).astimezone(UTC))


async def test_nightly_rescore_once_across_daemons_and_clearing(
    ctx: Context, sim_dir: Path, clock: FrozenClock
) -> None:
    await FileImporter(ctx.store).run(sim_dir)
    a, b = DetectorService(ctx, holder="a"), DetectorService(ctx, holder="b")
    for service in (a, b):
        # One scoring opens or clears here: the hysteresis has its own test
        # (tests/alerting/test_risk_alerts.py).
        service.cfg = service.cfg.model_copy(
            update={"min_history_incidents": 10, "risk_open_after": 1, "risk_close_after": 1}
        )
    _local(clock, "2024-01-20T02:29:00+08:00")
    await asyncio.gather(a.run_due_jobs(), b.run_due_jobs())
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(RiskScore)) == 0
    _local(clock, "2024-01-20T02:30:00+08:00")
    await asyncio.gather(a.run_due_jobs(), b.run_due_jobs())
    async with ctx.db.session() as s:
        runs = (await s.scalars(select(JobRun))).all()
        scores = await s.scalar(select(func.count()).select_from(RiskScore))
        points = await s.scalar(select(func.count()).select_from(MonitoringPoint))
    assert [(r.job, r.key, r.status) for r in runs] == [("detectors.rescore", "2024-01-20", "done")]
    assert scores == points + 6  # every point and every county, once
    risk = await _findings(ctx, "enterprise_risk")
    assert risk
    assert all(f.level in {"I", "II", "III", "IV"} for f in risk)
    assert all(f.evidence["factors"] for f in risk)
    # A county's finding names the county: leaders read the title first.
    names = {code: name for code, name, _ in DEMO_REGIONS}
    counties = await _findings(ctx, "county_risk")
    assert counties
    for county in counties:
        assert names[county.entity_id] in county.title
    # The forecaster is retrained at 03:30, once, and stored for every daemon.
    _local(clock, "2024-01-20T03:30:00+08:00")
    await asyncio.gather(a.run_due_jobs(), b.run_due_jobs())
    async with ctx.db.session() as s:
        models = (await s.scalars(select(DetectorModel))).all()
    assert len(models) == 1
    assert models[0].format == "skops"
    from sklearn import __version__ as sklearn_version

    assert models[0].sklearn_version == sklearn_version
    # A point whose last finding had a level and is now quiet gets a clearing finding.
    quiet = await _quiet_point(ctx)
    await _pretend_alerted(ctx, quiet, clock.now())
    _local(clock, "2024-01-21T02:30:00+08:00")
    await asyncio.gather(a.run_due_jobs(), b.run_due_jobs())
    cleared = [f for f in await _findings(ctx, "enterprise_risk") if f.entity_id == quiet]
    assert [f.level for f in cleared] == ["II", None]
    # The second night scores with the stored model, whichever daemon runs it.
    async with ctx.db.session() as s:
        second = await s.scalar(select(JobRun).where(JobRun.key == "2024-01-21"))
    assert second is not None
    assert second.details is not None
    assert second.details["method"] == "forecaster"


async def _quiet_point(ctx: Context) -> str:
    async with ctx.db.session() as s:
        latest = await s.scalar(select(func.max(RiskScore.scored_at)))
        row = await s.scalar(
            select(RiskScore.entity_id)
            .where(
                RiskScore.entity_type == "point",
                RiskScore.level.is_(None),
                RiskScore.scored_at == latest,
            )
            .limit(1)
        )
    assert row is not None
    return str(row)


async def _pretend_alerted(ctx: Context, point_id: str, now: datetime) -> None:
    draft = FindingDraft(
        "combiner", "enterprise_risk", "point", point_id, "430903", 75.0, "II", "t"
    )
    async with ctx.db.connect() as conn:
        await write_findings(conn, [draft], now, now)


async def test_a_model_from_another_scikit_learn_is_not_used(
    ctx: Context, sim_dir: Path, clock: FrozenClock
) -> None:
    await FileImporter(ctx.store).run(sim_dir)
    _local(clock, "2024-01-20T04:00:00+08:00")
    trainer = DetectorService(ctx)
    trainer.cfg = trainer.cfg.model_copy(update={"min_history_incidents": 10})
    details = await trainer.retrain()
    assert details["trained"]
    other = DetectorService(ctx)
    await other._refresh_model()
    assert other.model is not None
    assert other.model_id == trainer.model_id
    x = np.zeros((3, len(other.model.feature_names)))
    np.testing.assert_allclose(other.model.predict(x), trainer.model.predict(x))  # type: ignore[union-attr]
    # A daemon that restarts asks whether the model is old on every pass: the first
    # answer keeps the model it read, so later passes do not read and unpickle it again.
    restarted = DetectorService(ctx)
    assert not await restarted._model_is_old(clock.now())
    assert restarted.model_id == trainer.model_id
    assert restarted.model is not None
    async with ctx.db.read() as conn:
        assert (await latest_model(conn, known_id=restarted.model_id)).forecaster is None  # type: ignore[union-attr]
    async with ctx.db.connect() as conn:
        await conn.execute(update(DetectorModel).values(sklearn_version="0.0"))
    third = DetectorService(ctx)
    await third._refresh_model()
    assert third.model is None  # falls back to the rules until retrained
    assert await third._model_is_old(clock.now())


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_daemon_loop_is_woken_by_the_bus_and_the_clock(
    ctx: Context, sim_dir: Path, clock: FrozenClock
) -> None:
    await FileImporter(ctx.store).run(sim_dir)
    async with ctx.db.connect() as conn:  # history needs no event findings here
        await conn.execute(update(InformantReport).values(severity_checked_at=clock.now()))
        await conn.execute(update(Petition).values(severity_checked_at=clock.now()))
    _local(clock, "2024-02-01T01:00:00+08:00")
    # The first scoring writes risk findings (the hysteresis has its own test).
    ctx.settings.detectors.risk_open_after = 1
    daemon = Daemon(ctx, only=["detectors"])
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        await ctx.store.store("point", [Submission(parse_obj("point", POINT), "file")])
        await ctx.store.store(
            "report",
            [
                report(
                    "LIVE",
                    event_type="extreme_act",
                    people_involved=1,
                    occurred_at="2024-02-01T00:50:00+08:00",
                )
            ],
        )
        ctx.bus.notify(bus.RECORDS)
        ctx.bus.notify(bus.EVENTS)
        assert await ctx.bus.wait(bus.FINDINGS, 30)
        [event] = await _findings(ctx, "event")
        assert event.level == "I"
        async with ctx.db.session() as s:
            assert await s.scalar(select(func.count()).select_from(RiskScore)) == 0
        _local(clock, "2024-02-01T02:30:00+08:00")  # the nightly re-score is due
        assert await ctx.bus.wait(bus.FINDINGS, 60)
        async with ctx.db.session() as s:
            assert await s.scalar(select(func.count()).select_from(RiskScore)) > 0
        assert daemon.health()["detectors"]["detectors.rescore"]["key"] == "2024-02-01"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
