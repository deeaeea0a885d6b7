"""Handling after the alert (interfaces §8): records, deadlines per level claimed like
escalation steps, instructions down the tiers. Timed at exact boundaries with the
injected clock; the mail goes to a real SMTP server."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from monitor.alerting.handling import Handling, RecordIn, handling_json
from monitor.config import Settings
from monitor.models import Alert, HandlingDeadline
from monitor.report import make_document, render
from tests.alerting.conftest import PUBLIC_URL, Leader, Pipeline
from tests.support.mail import MailSink

S = timedelta(seconds=1)


@pytest.fixture
def alert_settings(settings: Settings, mail: MailSink) -> Settings:
    """The alerting tests' settings with the default handling deadlines."""
    settings.smtp.url = mail.url
    settings.smtp.mail_from = "labormon@union.example.org"
    settings.http.public_url = PUBLIC_URL
    settings.alerting.mqtt_events = False
    return settings


H = timedelta(hours=1)
OVERDUE = "处置逾期"


def overdue_mail(mail: MailSink, leader: Leader) -> list[str]:
    return [m.subject for m in mail.to(leader.email) if OVERDUE in m.subject]


async def stoppage(pipeline: Pipeline, level: str = "II", people: int = 45) -> Alert:
    await pipeline.finding(
        level,
        people=people,
        title=f"资阳建工{people}名工人停工讨薪",
        evidence={"event_type": "work_stoppage"},
    )
    await pipeline.run()
    (alert,) = await pipeline.alerts()
    return alert


async def road_blocking(pipeline: Pipeline) -> None:
    """120 workers block the road at the enterprise of `stoppage`: the incident rises to I."""
    await pipeline.finding(
        "I",
        people=120,
        title="资阳建工120名工人堵路讨薪",
        sources=["R2"],
        evidence={"event_type": "road_blocking"},
    )
    await pipeline.run()


async def file(pipeline: Pipeline, alert_id: int, author: str, **fields: object) -> int:
    record = await Handling(pipeline.ctx, pipeline.book).add(
        alert_id,
        RecordIn(**fields),
        author=author,
        via="api",  # type: ignore[arg-type]
    )
    return record.id


async def detail(pipeline: Pipeline, alert_id: int) -> dict[str, object]:
    async with pipeline.ctx.db.session() as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        found = await handling_json(session, [alert], pipeline.clock.now(), full=True)
    return found[alert_id] | {"status": alert.status}


async def test_level_ii_verified_at_1_59_is_never_reminded(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    alert = await stoppage(pipeline)
    # The first report is 待核实 on every channel until someone verifies it.
    first = mail.to(leaders["county"].email)[0]
    assert "核实：待核实" in first.text() and "待核实" in first.html()
    await pipeline.at(t0 + 2 * H - 61 * S)  # 1:58:59
    await pipeline.at(t0 + 2 * H - 60 * S)  # 1:59
    await file(pipeline, alert.id, leaders["county"].id, kind="verify", verdict="true", text="属实")
    for at in (2 * H, 2 * H + 30 * 60 * S, 3 * H):
        await pipeline.at(t0 + at)
    assert overdue_mail(mail, leaders["county"]) == []
    assert overdue_mail(mail, leaders["city"]) == []
    shown = await detail(pipeline, alert.id)
    assert shown["stage"] == "verified"
    assert shown["overdue"] == []
    verify = [d for d in shown["deadlines"] if d["kind"] == "verify"]  # type: ignore[attr-defined]
    assert verify[0]["met_at"] is not None


async def test_level_ii_unverified_reminds_the_county_at_2h_and_tells_the_city_at_2h30(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    alert = await stoppage(pipeline)
    await pipeline.at(t0 + 2 * H - S)  # 1:59:59
    assert overdue_mail(mail, leaders["county"]) == []
    await pipeline.at(t0 + 2 * H)  # 2:00
    assert len(overdue_mail(mail, leaders["county"])) == 1
    assert "处置逾期提醒" in overdue_mail(mail, leaders["county"])[0]
    assert "核实逾期" in overdue_mail(mail, leaders["county"])[0]
    assert overdue_mail(mail, leaders["city"]) == []
    assert (await detail(pipeline, alert.id))["overdue"] == ["verify"]
    await pipeline.at(t0 + 2 * H + 30 * 60 * S - S)  # 2:29:59
    assert overdue_mail(mail, leaders["city"]) == []
    await pipeline.at(t0 + 2 * H + 30 * 60 * S)  # 2:30
    assert len(overdue_mail(mail, leaders["city"])) == 1
    assert "处置逾期通报" in overdue_mail(mail, leaders["city"])[0]
    assert len(overdue_mail(mail, leaders["county"])) == 1  # not reminded twice
    assert overdue_mail(mail, leaders["province"]) == []
    overdue = [a for a in await pipeline.alerts() if a.kind == "overdue_handling"]
    assert [(a.level, a.status) for a in overdue] == [("II", "triggered")]
    # The verification, late, closes the reminder.
    await file(pipeline, alert.id, leaders["county"].id, kind="verify", verdict="partly")
    await pipeline.run()
    overdue = [a for a in await pipeline.alerts() if a.kind == "overdue_handling"]
    assert [a.status for a in overdue] == ["resolved"]
    assert (await detail(pipeline, alert.id))["overdue"] == []


def due(shown: dict[str, object]) -> dict[str, list[datetime]]:
    """The open deadlines of an alert by kind."""
    found: dict[str, list[datetime]] = {}
    for d in shown["deadlines"]:  # type: ignore[attr-defined]
        if d["met_at"] is None and d["cancelled_at"] is None:
            found.setdefault(d["kind"], []).append(datetime.fromisoformat(d["due_at"]))
    return found


async def test_a_level_raised_to_i_owes_level_i_handling_counted_from_the_raise(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    alert = await stoppage(pipeline, level="III", people=15)
    assert due(await detail(pipeline, alert.id)) == {"verify": [t0 + 24 * H]}
    # Three hours later a road blocking at the same enterprise: level I. It must be
    # verified within the hour and reported on every 2 h from now, not in 24 h.
    raised_at = t0 + 3 * H
    await pipeline.at(raised_at)
    await road_blocking(pipeline)
    [alert] = await pipeline.alerts()
    assert alert.level == "I"
    assert due(await detail(pipeline, alert.id)) == {
        "verify": [raised_at + H],
        "progress": [raised_at + 2 * H],
    }
    await pipeline.at(raised_at + H - S)
    assert overdue_mail(mail, leaders["county"]) == []
    await pipeline.at(raised_at + H)
    [reminder] = overdue_mail(mail, leaders["county"])
    assert "核实逾期" in reminder
    events = await pipeline.events(alert.id)
    assert "AlertLevelRaised" in events


async def test_a_raise_keeps_a_deadline_that_was_due_sooner(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    alert = await stoppage(pipeline)  # II: verify within 2 h, a follow-up every 12 h
    await pipeline.at(t0 + 90 * 60 * S)
    await road_blocking(pipeline)
    # Level I would give the verification until 2:30; the 2:00 of level II stands.
    assert due(await detail(pipeline, alert.id)) == {
        "verify": [t0 + 2 * H],
        "progress": [t0 + 90 * 60 * S + 2 * H],
    }
    await pipeline.at(t0 + 2 * H)
    assert len(overdue_mail(mail, leaders["county"])) == 1


async def test_a_raise_after_verification_asks_no_second_one(
    pipeline: Pipeline, leaders: dict[str, Leader]
) -> None:
    t0 = pipeline.clock.now()
    alert = await stoppage(pipeline, level="III", people=15)
    await file(pipeline, alert.id, leaders["county"].id, kind="verify", verdict="true")
    await pipeline.at(t0 + 3 * H)
    await road_blocking(pipeline)
    assert due(await detail(pipeline, alert.id)) == {"progress": [t0 + 5 * H]}


async def test_level_i_follow_ups_every_2h_and_a_final_report_resolves(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    await pipeline.finding(
        "I",
        people=150,
        title="资阳建工150名农民工堵路讨薪",
        evidence={"event_type": "road_blocking"},
    )
    await pipeline.run()
    (alert,) = await pipeline.alerts()
    county = leaders["county"].id
    await pipeline.at(t0 + 30 * 60 * S)
    await pipeline.book.acknowledge(alert.id, actor=county)
    await file(pipeline, alert.id, county, kind="verify", verdict="true", text="现场核实属实")
    await pipeline.at(t0 + 2 * H - S)
    assert overdue_mail(mail, leaders["county"]) == []
    await pipeline.at(t0 + 2 * H)  # no follow-up report by 2:00
    assert len(overdue_mail(mail, leaders["county"])) == 1
    assert "续报逾期" in overdue_mail(mail, leaders["county"])[0]
    # Two follow-up reports: each moves the next one 2 h on; the reminders stop.
    await pipeline.at(t0 + 2 * H + 10 * 60 * S)
    await file(pipeline, alert.id, county, kind="progress", people_now=80, text="劝导疏散中")
    await pipeline.at(t0 + 4 * H)
    await file(pipeline, alert.id, county, kind="progress", people_now=20, text="道路恢复通行")
    for at in (4 * H + 10 * 60 * S, 5 * H, 6 * H - S):
        await pipeline.at(t0 + at)
    assert len(overdue_mail(mail, leaders["county"])) == 1
    assert (await detail(pipeline, alert.id))["stage"] == "handling"
    await pipeline.at(t0 + 5 * H + 30 * 60 * S)
    await file(
        pipeline,
        alert.id,
        county,
        kind="final",
        text="欠薪全部兑付",
        people_final=230,
        wages_recovered=1_200_000,
        workers_paid=230,
        resolution="labor_inspection",
    )
    for at in (6 * H, 8 * H, 30 * H):
        await pipeline.at(t0 + at)
    assert len(overdue_mail(mail, leaders["county"])) == 1
    shown = await detail(pipeline, alert.id)
    assert (shown["status"], shown["stage"]) == ("resolved", "closed")
    final = [r for r in shown["records"] if r["kind"] == "final"]  # type: ignore[attr-defined]
    assert (final[0]["wages_recovered"], final[0]["workers_paid"]) == (1_200_000, 230)
    assert [a.status for a in await pipeline.alerts() if a.kind == "overdue_handling"] == [
        "resolved"
    ]
    # The month's report: 处置情况 with the final report's totals.
    doc = await make_document(
        pipeline.ctx.db, pipeline.ctx.settings, date(2025, 1, 1), pipeline.clock.now()
    )
    tables = {t.id: t for t in doc.tables()}
    assert tables["t-final"].rows == [["1", "1,200,000", "230"]]
    level_i = tables["t-disposal"].rows[0]
    assert level_i == ["Ⅰ级（特别重大）", "1", "1", "0", "0", "0.5", "5.5"]
    assert tables["t-late"].rows == [["资阳区", "0", "1", "0", "0", "1"]]
    html = render(doc, "html").decode()
    assert "突发事件处置情况" in html and "1,200,000" in html


async def test_a_province_instruction_goes_down_at_once_and_up_when_unanswered(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    alert = await stoppage(pipeline)
    await file(pipeline, alert.id, leaders["county"].id, kind="verify", verdict="true")
    before = len(mail.to(leaders["county"].email))
    instruction = await file(
        pipeline,
        alert.id,
        leaders["province"].id,
        kind="instruction",
        text="请迅速核查欠薪总额，督促企业当日兑付，结果报省总",
        due="4h",
    )
    await pipeline.run()
    got = mail.to(leaders["county"].email)[before:]
    assert len(got) == 1
    assert "上级批示" in got[0].subject
    assert "请迅速核查欠薪总额" in got[0].text()
    assert "湖南省批示" in got[0].text()
    await pipeline.at(t0 + 4 * H - S)
    assert overdue_mail(mail, leaders["province"]) == []
    await pipeline.at(t0 + 4 * H)  # due, unanswered: the province duty officer is told
    assert len(overdue_mail(mail, leaders["province"])) == 1
    assert "答复批示逾期" in overdue_mail(mail, leaders["province"])[0]
    assert (await detail(pipeline, alert.id))["overdue"] == ["answer"]
    await file(
        pipeline,
        alert.id,
        leaders["county"].id,
        kind="answer",
        answers=instruction,
        text="已核实欠薪86万元，企业承诺今日兑付",
    )
    await pipeline.at(t0 + 5 * H)
    shown = await detail(pipeline, alert.id)
    assert shown["overdue"] == []
    answer = [d for d in shown["deadlines"] if d["kind"] == "answer"]  # type: ignore[attr-defined]
    assert answer[0]["met_at"] is not None
    overdue = [a for a in await pipeline.alerts() if a.kind == "overdue_handling"]
    assert [a.status for a in overdue] == ["resolved"]
    assert len(overdue_mail(mail, leaders["province"])) == 1


async def test_untrue_resolves_as_false_and_marks_the_source_report(
    pipeline: Pipeline, leaders: dict[str, Leader]
) -> None:
    alert = await stoppage(pipeline, level="III", people=12)
    await file(
        pipeline, alert.id, leaders["county"].id, kind="verify", verdict="false", text="不实"
    )
    shown = await detail(pipeline, alert.id)
    assert (shown["status"], shown["stage"]) == ("resolved", "false")
    async with pipeline.ctx.db.session() as session:
        left = await session.scalars(
            select(HandlingDeadline).where(
                HandlingDeadline.met_at.is_(None), HandlingDeadline.cancelled_at.is_(None)
            )
        )
        assert list(left) == []
