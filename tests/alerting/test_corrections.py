"""An informant corrects or withdraws their own report (interfaces §8), end to end through
the store, the event detector, the alert book, escalation and a real SMTP server, on
both databases, timed at the window's exact boundary with the injected clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from detectors.service import DetectorService
from monitor.models import Alert, AlertEvent, HandlingDeadline, InformantReport
from monitor.records import parse_obj
from monitor.store import StoreResult, Submission
from tests.alerting.conftest import COUNTY, Leader, Pipeline, minutes
from tests.support.mail import MailSink

S = timedelta(seconds=1)
HOUR = timedelta(hours=1)
TEXT = "工地三十多名农民工在项目部门口聚集，讨要拖欠的工资"


def report(report_id: str, informant: str = "inf-1", **fields: Any) -> dict[str, Any]:
    return {
        "report_id": report_id,
        "informant_id": informant,
        "occurred_at": "2025-01-15T08:30:00+08:00",
        "region_code": COUNTY,
        "enterprise_name": "资阳某建筑工地",
        "event_type": "gathering",
        "category": "wage_arrears",
        "people_involved": 300,
        "description": TEXT,
    } | fields


async def send(pipeline: Pipeline, data: dict[str, Any]) -> StoreResult:
    """What the MQTT, HTTP and console intakes do: validate, store, then the daemon's
    stages run (event severity, alerts, escalation, sending)."""
    record = parse_obj("report", data)
    result = await pipeline.ctx.store.store(
        "report", [Submission(record, "http", data["informant_id"])]
    )
    await DetectorService(pipeline.ctx).check_new_records()
    await pipeline.run()
    return result


def inboxes(mail: MailSink, leaders: dict[str, Leader]) -> dict[str, int]:
    return {tier: len(mail.to(leader.email)) for tier, leader in leaders.items()}


async def test_a_correction_lowers_the_level_tells_the_province_and_escalation_follows(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    ctx = pipeline.ctx
    for informant in ("inf-1", "inf-2"):
        await ctx.accounts.add(kind="informant", account_id=informant, region_code=COUNTY)
    t0 = pipeline.clock.now()
    assert (await send(pipeline, report("R1"))).stored == ["R1"]
    (alert,) = await pipeline.alerts()
    assert (alert.level, alert.people_involved) == ("I", 300)
    assert inboxes(mail, leaders) == {"county": 1, "city": 1, "province": 1, "other": 0}

    # Someone else cannot correct it.
    foreign = await send(pipeline, report("R1-x", informant="inf-2", corrects="R1"))
    assert foreign.rejected["R1-x"].field == "corrects"
    assert "only its sender" in foreign.rejected["R1-x"].reason

    # Five minutes later the informant corrects 300 to 30: level II.
    pipeline.clock.set(t0 + minutes(5))
    fixed = await send(pipeline, report("R1-c", people_involved=30, corrects="R1"))
    assert fixed.stored == ["R1-c"]
    (alert,) = await pipeline.alerts()
    assert (alert.level, alert.people_involved, alert.status) == ("II", 30, "triggered")
    assert "R1-c" in alert.source_ids
    # Everyone told at level I hears of it, the province included.
    assert inboxes(mail, leaders) == {"county": 2, "city": 2, "province": 2, "other": 0}
    notice = mail.to(leaders["province"].email)[-1]
    assert "更正" in notice.subject
    assert "更正：涉及人数 300 → 30，等级 I → II" in notice.text()
    assert "更正：涉及人数 300 → 30，等级 I → II" in notice.html()
    # The original stays in the audit log.
    async with ctx.db.session() as session:
        corrected = (
            await session.scalars(
                select(AlertEvent).where(
                    AlertEvent.alert_id == alert.id, AlertEvent.event == "AlertCorrected"
                )
            )
        ).one()
        original = await session.get(InformantReport, "R1")
    assert corrected.details["original"]["people_involved"] == 300
    assert corrected.details["original"]["description"] == TEXT
    assert original is not None and original.people_involved == 300

    # Escalation follows level II: level I would re-notify every 15 minutes until
    # acknowledged; level II has told everyone it would (the province after 30 minutes
    # is already told), so nobody hears more.
    for at in (minutes(15), minutes(30), minutes(45), minutes(60)):
        await pipeline.at(t0 + at)
    assert inboxes(mail, leaders) == {"county": 2, "city": 2, "province": 2, "other": 0}

    # The window (30 minutes from the first report) ends: 29:59 is in, 30:01 is out.
    pipeline.clock.set(t0 + minutes(30) - S)
    # A report already corrected cannot be corrected a second time: correct the latest.
    again = await send(pipeline, report("R1-f", people_involved=33, corrects="R1"))
    assert "already corrected by report R1-c" in again.rejected["R1-f"].reason
    assert (await send(pipeline, report("R1-d", people_involved=31, corrects="R1-c"))).stored
    pipeline.clock.set(t0 + minutes(30) + S)
    late = await send(pipeline, report("R1-e", people_involved=32, corrects="R1-d"))
    assert late.rejected["R1-e"].field == "corrects"
    assert "30-minute window" in late.rejected["R1-e"].reason
    assert "ended at 2025-01-15 09:30 local time" in late.rejected["R1-e"].reason


async def test_a_correction_that_raises_the_level_escalates_at_once(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    await pipeline.ctx.accounts.add(kind="informant", account_id="inf-1", region_code=COUNTY)
    await send(pipeline, report("R3", people_involved=30, description="三十名工人聚集"))
    (alert,) = await pipeline.alerts()
    assert alert.level == "II"
    assert inboxes(mail, leaders)["province"] == 0
    pipeline.clock.set(pipeline.clock.now() + minutes(3))
    await send(
        pipeline, report("R3-c", people_involved=120, description="120名工人聚集", corrects="R3")
    )
    (alert,) = await pipeline.alerts()
    assert alert.level == "I"
    assert inboxes(mail, leaders)["province"] == 1
    assert "等级 II → I" in mail.to(leaders["province"].email)[0].text()


async def test_a_correction_that_raises_the_level_owes_the_new_levels_verification(
    pipeline: Pipeline, leaders: dict[str, Leader]
) -> None:
    handling = pipeline.ctx.settings.handling
    handling.verify_within = {"I": timedelta(hours=1), "II": timedelta(hours=2)}
    await pipeline.ctx.accounts.add(kind="informant", account_id="inf-1", region_code=COUNTY)
    t0 = pipeline.clock.now()
    await send(pipeline, report("R3", people_involved=30, description="三十名工人聚集"))
    (alert,) = await pipeline.alerts()
    assert [d.due_at for d in await open_deadlines(pipeline, alert.id)] == [t0 + 2 * HOUR]
    pipeline.clock.set(t0 + minutes(3))
    await send(
        pipeline, report("R3-c", people_involved=120, description="120名工人聚集", corrects="R3")
    )
    assert [d.due_at for d in await open_deadlines(pipeline, alert.id)] == [t0 + minutes(3) + HOUR]
    async with pipeline.ctx.db.session() as session:
        corrected = (
            await session.scalars(
                select(AlertEvent).where(
                    AlertEvent.alert_id == alert.id, AlertEvent.event == "AlertCorrected"
                )
            )
        ).one()
    assert corrected.details["deadlines"] == [
        {
            "kind": "verify",
            "from": (t0 + 2 * HOUR).isoformat(),
            "to": (t0 + minutes(3) + HOUR).isoformat(),
        }
    ]


async def open_deadlines(pipeline: Pipeline, alert_id: int) -> list[HandlingDeadline]:
    async with pipeline.ctx.db.session() as session:
        rows = await session.scalars(
            select(HandlingDeadline).where(
                HandlingDeadline.alert_id == alert_id, HandlingDeadline.met_at.is_(None)
            )
        )
        return list(rows.all())


async def test_a_withdrawal_resolves_the_alert_as_withdrawn_with_notices(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    ctx = pipeline.ctx
    await ctx.accounts.add(kind="informant", account_id="inf-1", region_code=COUNTY)
    t0 = pipeline.clock.now()
    await send(pipeline, report("R2", event_type="road_blocking", people_involved=40))
    (alert,) = await pipeline.alerts()
    assert alert.level == "I"
    pipeline.clock.set(t0 + minutes(10))
    # The content fields may be left out of a withdrawal.
    gone = await send(pipeline, {"report_id": "R2-w", "informant_id": "inf-1", "withdraws": "R2"})
    assert gone.stored == ["R2-w"]
    async with ctx.db.session() as session:
        alert = await session.get(Alert, alert.id)
        stored = await session.get(InformantReport, "R2-w")
    assert alert is not None and alert.status == "resolved"
    assert stored is not None and (stored.withdraws, stored.people_involved) == ("R2", 40)
    events = await pipeline.events(alert.id)
    assert events[-3:] == ["ReportWithdrawn", "AlertResolved", "AlertNotified"]
    assert inboxes(mail, leaders) == {"county": 2, "city": 2, "province": 2, "other": 0}
    assert "撤回" in mail.to(leaders["province"].email)[-1].subject
    # It cannot be withdrawn twice, and nothing more goes out for it.
    twice = await send(pipeline, {"report_id": "R2-w2", "informant_id": "inf-1", "withdraws": "R2"})
    assert "already withdrawn by report R2-w" in twice.rejected["R2-w2"].reason
    await pipeline.at(t0 + minutes(45))
    assert inboxes(mail, leaders)["province"] == 2
    # The same withdrawal sent again is a duplicate, even after the window.
    pipeline.clock.set(t0 + minutes(40))
    resent = await send(pipeline, {"report_id": "R2-w", "informant_id": "inf-1", "withdraws": "R2"})
    assert resent.duplicates == ["R2-w"]
