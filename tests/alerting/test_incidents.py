"""One alert per incident (interfaces §5), from informants' reports through the detectors
and the alert book: a follow-up joins, a worse event within 72 h raises the level and
tells every tier again even after an acknowledgement, one months later is a new alert;
a risk alert is held back while an event alert of its enterprise is open."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from detectors.base import Factor, FindingDraft, risk_heading
from detectors.persist import latest_findings, write_risk_findings
from detectors.service import DetectorService
from monitor.records import parse_obj
from monitor.store import Submission
from tests.alerting.conftest import COUNTY, Leader, Pipeline, add_point
from tests.support.mail import MailSink


def report(rid: str, at: datetime, **fields: object) -> Submission:
    data = {
        "report_id": rid,
        "informant_id": "inf-9",
        "occurred_at": at.isoformat(),
        "region_code": COUNTY,
        "point_id": "P1",
        "event_type": "gathering",
        "category": "wage_arrears",
        "people_involved": 12,
        "description": "项目部门口十余名工人聚集讨要工资，联系人王五 13700001234",
    } | fields
    return Submission(parse_obj("report", data), "mqtt", "inf-9")


async def send(pipeline: Pipeline, *reports: Submission) -> None:
    result = await pipeline.ctx.store.store("report", list(reports))
    assert len(result.stored) == len(reports), result
    service = DetectorService(pipeline.ctx)
    while await service.check_new_records():
        pass
    await pipeline.run()


def inbox(mail: MailSink, leader: Leader) -> list[str]:
    return [m.subject for m in mail.to(leader.email)]


async def test_follow_up_joins_a_worse_event_re_notifies_and_months_later_is_new(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    await add_point(pipeline.ctx)
    t0 = pipeline.clock.now()
    first_at = t0 - timedelta(minutes=20)
    await send(pipeline, report("R1", first_at))
    [alert] = await pipeline.alerts()
    assert (alert.level, alert.occurred_at) == ("III", first_at)
    assert inbox(mail, leaders["county"]) == ["【III级·较大】资阳区 资阳建工 12人聚集讨薪"]
    # An informant's follow-up 6 hours later joins the open incident (level III: quiet).
    pipeline.clock.set(t0 + timedelta(hours=6))
    await send(
        pipeline,
        report(
            "R2",
            t0 + timedelta(hours=6) - timedelta(minutes=5),
            informant_id="inf-3",
            people_involved=15,
            follows="R1",
            description="人数增至15人，仍在项目部门口",
        ),
    )
    [alert] = await pipeline.alerts()
    assert alert.source_ids == ["R1", "R2"]
    assert alert.occurred_at == first_at
    await pipeline.book.acknowledge(alert.id, actor=leaders["county"].id)
    # The next day, after the acknowledgement: a road blocking at that enterprise.
    next_day = t0 + timedelta(days=1)
    pipeline.clock.set(next_day)
    before = {t: len(inbox(mail, leaders[t])) for t in ("county", "city", "province")}
    await send(
        pipeline,
        report(
            "R3",
            next_day - timedelta(minutes=10),
            event_type="road_blocking",
            people_involved=40,
            description="工人在国道上堵路讨薪",
        ),
    )
    [alert] = await pipeline.alerts()
    assert (alert.level, alert.status) == ("I", "triggered")
    assert alert.source_ids == ["R1", "R2", "R3"]
    after = {t: len(inbox(mail, leaders[t])) for t in ("county", "city", "province")}
    assert {t: after[t] - before[t] for t in after} == {"county": 1, "city": 1, "province": 1}
    raised = inbox(mail, leaders["province"])[-1]
    assert raised.startswith("【I级·特别重大·预警升级】资阳区 资阳建工 40人堵路讨薪")
    # The incident's time is its first event's; its latest event is the road blocking.
    assert alert.occurred_at == first_at
    assert alert.last_event_at == next_day - timedelta(minutes=10)
    await pipeline.book.resolve(alert.id, actor=leaders["county"].id, reason="已处置")
    # Three months later, another road blocking there: a new incident, a new alert.
    later = t0 + timedelta(days=92)
    pipeline.clock.set(later)
    await send(
        pipeline,
        report("R4", later - timedelta(hours=1), event_type="road_blocking", people_involved=21),
    )
    first, second = await pipeline.alerts()
    assert second.id != first.id
    assert second.source_ids == ["R4"]
    assert second.occurred_at == later - timedelta(hours=1)
    assert second.entity_key == first.entity_key == "point:P1:event"


async def test_an_open_event_holds_back_the_enterprises_risk_alert(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    await add_point(pipeline.ctx)
    t0 = pipeline.clock.now()
    await send(pipeline, report("R1", t0 - timedelta(minutes=5), people_involved=30))
    [event] = await pipeline.alerts()
    assert event.level == "II"
    assert event.score is None or event.score == 0
    cfg = pipeline.ctx.settings.detectors
    draft = FindingDraft(
        detector="combiner",
        kind="enterprise_risk",
        entity_type="point",
        entity_id="P1",
        region_code=COUNTY,
        score=80.0,
        level="II",
        title=f"{risk_heading('II')}资阳建工劳资冲突风险80分",
        factors=[Factor("wage_delay", "工资连续3个月推迟发放", 40.0)],
        point_id="P1",
    )
    for day in range(cfg.risk_open_after):
        pipeline.clock.set(t0 + timedelta(days=day, hours=1))
        async with pipeline.ctx.db.connect() as conn:
            previous = await latest_findings(conn, ["enterprise_risk"])
            await write_risk_findings(
                conn,
                [draft],
                previous,
                pipeline.clock.now(),
                open_after=cfg.risk_open_after,
                close_after=cfg.risk_close_after,
            )
        await pipeline.run()
    [event] = await pipeline.alerts()  # no risk alert of its own
    assert event.evidence is not None
    assert event.evidence["risk_factors"] == ["工资连续3个月推迟发放"]
    assert not [s for s in inbox(mail, leaders["county"]) if "风险提示" in s]


def test_a_report_that_follows_itself_is_refused_naming_the_field() -> None:
    from pydantic import ValidationError

    from monitor.records import field_errors

    data = {
        "report_id": "R1",
        "informant_id": "inf-9",
        "occurred_at": "2025-01-15T08:00:00+08:00",
        "region_code": COUNTY,
        "event_type": "gathering",
        "people_involved": 3,
        "follows": "R1",
    }
    with pytest.raises(ValidationError) as refused:
        parse_obj("report", data)
    assert [e.field for e in field_errors(refused.value)] == ["follows"]
    assert parse_obj("report", data | {"follows": "R0"}).follows == "R0"  # type: ignore[attr-defined]


async def test_a_level_i_email_says_what_when_where_who_how_many_and_what_is_required(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    await add_point(pipeline.ctx)
    wage = {
        "report_id": "W1",
        "point_id": "P1",
        "period": "2024-12",
        "headcount": 300,
        "frontline_headcount": 260,
        "avg_frontline_wage": 5200,
        "wages_paid_on": None,
        "arrears_amount": 450000,
        "arrears_workers": 260,
        "arrears_months": 3,
        "production_status": "reduced",
    }
    await pipeline.ctx.store.store("wage", [Submission(parse_obj("wage", wage), "file")])
    t0 = pipeline.clock.now()
    await send(
        pipeline,
        report(
            "R1",
            t0 - timedelta(minutes=15),
            event_type="road_blocking",
            people_involved=300,
            description="约300名工人在国道堵路讨薪，扬言跳楼，联系人王五 13700001234",
        ),
    )
    [email] = mail.to(leaders["province"].email)
    assert email.subject == "【I级·特别重大】资阳区 资阳建工 300人堵路讨薪"
    body = email.text()
    for expected in (
        "约300名工人在国道堵路讨薪",  # what happened, in the informant's words
        "137****1234",  # ... with personal data masked
        "发生时间：2025-01-15 08:45",  # the event's own time (China time)
        "地点：益阳市 资阳区  企业：资阳建工",
        "建筑业，职工300人；2024-12月报：拖欠工资3个月，45.0万元，涉及260人",
        "涉及人数：300 人",
        "定级依据：堵路（300人），不论人数定为特别重大",
        "处置要求：县总工会负责人1小时内到场，2小时内书面报告（2025-01-15 11:00前）",
        "以自伤、跳楼等极端方式相威胁",  # another reason, once
    ):
        assert expected in body, expected
    assert "13700001234" not in body
    assert "风险分" not in body
    for line in body.splitlines():
        assert body.count(line.strip()) == 1 or not line.strip() or len(line.strip()) < 8, line
