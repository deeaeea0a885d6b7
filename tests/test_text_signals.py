"""Issue 16: signals read from free text -- people counts given in words (filled in at
intake only when the field is missing or 0, and recorded as inferred), the enterprise a
petition names linked to its monitoring point, and a writer's own threat against a
rumour of someone else's. Texts are real messages from tests/data/real_petitions.csv
where the set has them."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import signal
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from detectors.service import DetectorService
from detectors.severity import SeverityPolicy, assess
from detectors.textrules import EnterpriseIndex, people_counts, people_in_text
from detectors.wagecheck import WageRequest, WorkerFailed
from monitor import bus
from monitor.context import Context
from monitor.db import is_transient
from monitor.models import Finding, InformantReport, Petition
from monitor.records import parse_obj
from monitor.store import Submission
from tests.support.daemon import eventually
from tests.test_detector_sources import _wage

REAL = Path(__file__).parent / "data" / "real_petitions.csv"


def real(message_id: str) -> str:
    with REAL.open(encoding="utf-8") as fh:
        [text] = [r["text"] for r in csv.DictReader(fh) if r["message_id"] == message_id]
    return text


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("上百名农民工聚集在项目部门口", 100, 999),
        ("三四十人围在厂门口讨薪", 30, 40),
        ("近千名员工的工资没有着落", 900, 1000),
        ("我们二三十个工人", 20, 30),
        ("数十人到镇政府反映", 20, 90),
        ("两百多名工人", 200, 299),
        ("百余人", 100, 199),
        ("一两百人", 100, 200),
    ],
)
def test_people_counts_in_words(text: str, low: int, high: int) -> None:
    [count] = people_counts(text)
    assert (count.low, count.high) == (low, high)
    assert people_in_text(text) == low


def test_people_counts_in_real_messages() -> None:
    assert people_in_text(real("198973")) == 50  # 涉及员工达50多人
    assert people_in_text("请有关政府部门为我们这91位直销员做主") == 91
    assert people_in_text("拖欠三个月工资，两年了也讨不回") is None  # months, not people
    assert people_in_text("") is None


def _petition(pid: str, summary: str, **kw: object) -> Submission:
    body: dict[str, object] = {
        "petition_id": pid,
        "received_at": "2025-01-14T09:00:00+08:00",
        "channel": "online",
        "region_code": "430903",
        "summary": summary,
    }
    body.update(kw)
    return Submission(parse_obj("petition", body), "file")


async def test_intake_fills_people_only_when_missing_or_zero(ctx: Context) -> None:
    text = real("198973")
    await ctx.store.store(
        "petition",
        [
            _petition("PT-MISSING", text),
            _petition("PT-ZERO", text, people_involved=0),
            _petition("PT-GIVEN", text, people_involved=3),
            _petition("PT-NONE", "咨询一下医保怎么转移"),
        ],
    )
    report = {
        "report_id": "R-WORDS",
        "informant_id": "inf-7",
        "occurred_at": "2025-01-14T08:30:00+08:00",
        "region_code": "430903",
        "event_type": "gathering",
        "people_involved": 0,
        "description": "上百名农民工聚集在项目部门口讨薪",
    }
    await ctx.store.store("report", [Submission(parse_obj("report", report), "mqtt", "inf-7")])
    async with ctx.db.session() as s:
        rows = {
            p.petition_id: (p.people_involved, p.people_inferred)
            for p in await s.scalars(select(Petition))
        }
        [informant] = (await s.scalars(select(InformantReport))).all()
    assert rows == {
        "PT-MISSING": (50, True),
        "PT-ZERO": (50, True),
        "PT-GIVEN": (3, False),
        "PT-NONE": (1, False),  # a petition is at least its petitioner
    }
    assert (informant.people_involved, informant.people_inferred) == (100, True)


def test_enterprise_index_matches_the_names_petitioners_use() -> None:
    index = EnterpriseIndex()
    index.add("西地省鑫庆医药有限公司", 0)
    index.add("益阳市银城建筑工程有限公司", 1)
    assert index.find(real("259103")) == 0  # 我是西地省鑫庆医药有限公司（原…华源鑫庆医药…）
    assert index.find("银城建筑工程公司拖欠我们工资") == 1
    assert index.find("另一家建筑公司拖欠工资") == -1
    assert index.find("鑫庆医药公司和银城建筑工程公司都欠薪") == -1  # two: not guessed


async def _register_xq(ctx: Context) -> None:
    """The point whose name real message 259103 gives only in its text."""
    point = {
        "point_id": "P-XQ",
        "name": "西地省鑫庆医药有限公司",
        "region_code": "430903",
        "industry": "manufacturing",
        "headcount": 60,
    }
    await ctx.store.store("point", [Submission(parse_obj("point", point), "file")])


async def test_a_petition_naming_a_registered_enterprise_counts_in_its_risk(
    ctx: Context,
) -> None:
    await _register_xq(ctx)
    wage = _wage("P-XQ", "2024-12", arrears_months=1, arrears_workers=50, arrears_amount=2e5)
    wage["report_id"] = "W-XQ"
    await ctx.store.store("wage", [Submission(parse_obj("wage", wage), "mqtt", "P-XQ")])
    # The real message names the enterprise only in its text: no point_id, no name field.
    await ctx.store.store("petition", [_petition("PT-XQ", real("259103"), people_involved=1)])
    await DetectorService(ctx).check_new_records()
    async with ctx.db.session() as s:
        findings = (await s.scalars(select(Finding).where(Finding.kind == "enterprise_risk"))).all()
    [finding] = [f for f in findings if f.point_id == "P-XQ"]
    # 法定代表人已跑路 in the petition's text: the owner-gone factor and its record.
    assert "PT-XQ" in finding.evidence["source_ids"]
    assert finding.level == "I"


async def test_the_wage_check_sees_a_naming_petition_stored_after_its_last_pass(
    ctx: Context,
) -> None:
    """The wage check keeps the records without a point_id between its passes (issue 17:
    re-reading 8,000 of them for every batch of wage reports held up level I alerts); a
    petition stored after a pass still counts in the next one."""
    await _register_xq(ctx)
    # Another enterprise's petition, without a point_id: the cache has it after a pass.
    await ctx.store.store(
        "petition", [_petition("PT-OTHER", "某建筑工地拖欠工资", people_involved=1)]
    )
    service = DetectorService(ctx)
    quiet = _wage("P-XQ", "2024-11")
    quiet["report_id"] = "W-XQ-11"
    await ctx.store.store("wage", [Submission(parse_obj("wage", quiet), "mqtt", "P-XQ")])
    await service.check_new_records()
    ctx.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    # Only the text names the enterprise; it arrives after the first pass.
    await ctx.store.store("petition", [_petition("PT-XQ", real("259103"), people_involved=1)])
    wage = _wage("P-XQ", "2024-12", arrears_months=1, arrears_workers=50, arrears_amount=2e5)
    wage["report_id"] = "W-XQ"
    await ctx.store.store("wage", [Submission(parse_obj("wage", wage), "mqtt", "P-XQ")])
    await service.check_new_records()
    assert service._wages.unlinked.reads == 2
    async with ctx.db.session() as s:
        findings = (await s.scalars(select(Finding).where(Finding.kind == "enterprise_risk"))).all()
    [finding] = [f for f in findings if f.point_id == "P-XQ"]
    assert "PT-XQ" in finding.evidence["source_ids"]
    assert "PT-OTHER" not in finding.evidence["source_ids"]
    assert finding.level == "I"


async def test_a_big_batch_is_checked_in_the_worker_process_with_the_same_findings(
    ctx: Context,
) -> None:
    """Issue 17: a batch of at least `wage_worker_min` wage reports is read and evaluated
    in a worker process at a lower CPU priority; its findings are those of the daemon's
    own process (the previous test)."""
    ctx.settings.detectors.wage_worker = True
    ctx.settings.detectors.wage_worker_min = 1
    await _register_xq(ctx)
    await ctx.store.store("petition", [_petition("PT-XQ", real("259103"), people_involved=1)])
    wage = _wage("P-XQ", "2024-12", arrears_months=1, arrears_workers=50, arrears_amount=2e5)
    wage["report_id"] = "W-XQ"
    await ctx.store.store("wage", [Submission(parse_obj("wage", wage), "mqtt", "P-XQ")])
    service = DetectorService(ctx)
    try:
        assert await service.check_new_records() == 2
        assert service._wages.in_worker == 1
        [pid] = list(service._wages._pool._processes)  # type: ignore[union-attr]
        assert pid != os.getpid()
        # A worker that dies fails its batch as a transient error (the daemon restarts
        # the service after a pause); the next batch gets a new worker.
        request = WageRequest(
            ["P-XQ"], date(2025, 1, 15), ctx.settings.organisation.zone, False, 0.7, 4.0
        )
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerFailed) as failed:
            await service._wages.check(request)
        assert is_transient(failed.value)
        again = await service._wages.check(request)
        assert again.floored == {0: "I"} and service._wages.in_worker == 2
    finally:
        service._wages.close()
    async with ctx.db.session() as s:
        findings = (await s.scalars(select(Finding).where(Finding.kind == "enterprise_risk"))).all()
    [finding] = [f for f in findings if f.point_id == "P-XQ"]
    assert finding.evidence["source_ids"][:2] == ["W-XQ", "PT-XQ"]
    assert finding.level == "I"


POLICY = SeverityPolicy()


def level(text: str, people: int = 1) -> str | None:
    return assess(
        event_type=None,
        people=people,
        category="wage_arrears",
        text=text,
        is_petition=True,
        policy=POLICY,
    ).level


def test_a_first_person_threat_is_level_one_and_a_rumour_is_three() -> None:
    own = "尊敬的领导：公司拖欠我们半年工资，年底再不给钱，我就去跳楼"
    rumour = "尊敬的领导：公司拖欠工资半年，听说有工人要去跳楼，请领导关注"
    assert level(own) == "I"
    assert level(rumour) == "III"
    assert level("不给钱我们就去堵路") == "I"
    assert level("网传有人要去堵路讨薪") == "III"
    # Reported as seen (not hearsay) stays the act: I.
    assert level("一名工人爬上塔吊扬言跳楼讨薪") == "I"
    factors = assess(
        event_type=None, people=1, category=None, text=rumour, is_petition=True, policy=POLICY
    ).reasons
    assert "self_harm_rumour" in {f.code for f in factors}


async def test_a_failing_wage_check_does_not_stop_the_events_loop(ctx: Context) -> None:
    """The wage loop retries a failed pass (a worker that died) by itself: a level I
    report arriving meanwhile is still found at once."""
    await _register_xq(ctx)
    service = DetectorService(ctx)
    calls = 0
    check = service._wages.check

    async def failing(request: WageRequest) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise WorkerFailed("the wage check worker died: test")
        return await check(request)

    service._wages.check = failing  # type: ignore[method-assign, assignment]
    wage = _wage("P-XQ", "2024-12", arrears_months=1, arrears_workers=50, arrears_amount=2e5)
    wage["report_id"] = "W-XQ"
    await ctx.store.store("wage", [Submission(parse_obj("wage", wage), "mqtt", "P-XQ")])
    task = asyncio.create_task(service.run())
    try:
        await ctx.store.store("petition", [_petition("PT-FIRE", "工人爬上塔吊以死相逼讨薪")])
        ctx.bus.notify(bus.EVENTS)

        async def event_findings() -> int:
            async with ctx.db.session() as s:
                rows = await s.scalars(select(Finding).where(Finding.kind != "enterprise_risk"))
                return len(rows.all())

        await eventually(event_findings, lambda n: n >= 1, 10, what="the event's finding")
        await eventually(lambda: _n(calls), lambda n: n >= 2, 10, what="the retried pass")
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _n(value: int) -> int:
    return value
