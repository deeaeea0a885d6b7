"""Alerts from findings: dedup, level rise, resolved keys, auto-resolve, the audit log,
silences and the batching of level III/IV messages."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from structlog.testing import capture_logs

from monitor.models import AlertEvent
from tests.alerting.conftest import Leader, Pipeline, add_point, minutes
from tests.support.mail import MailSink

S = timedelta(seconds=1)


def count(mail: MailSink, leader: Leader) -> int:
    return len(mail.to(leader.email))


async def test_the_same_finding_twice_opens_one_alert_and_sends_once(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    await pipeline.finding("II", sources=["R1"])
    await pipeline.run()
    await pipeline.finding("II", sources=["R1"])
    await pipeline.run()
    (alert,) = await pipeline.alerts()
    assert alert.source_ids == ["R1"]
    assert count(mail, leaders["county"]) == 1
    assert count(mail, leaders["city"]) == 1
    assert await pipeline.events(alert.id) == ["AlertTriggered", "AlertNotified", "AlertUpdated"]
    # A new report of the same incident at level II is news for all who know (续报).
    await pipeline.finding("II", sources=["R1", "R2"])
    await pipeline.run()
    (alert,) = await pipeline.alerts()
    assert alert.source_ids == ["R1", "R2"]
    assert count(mail, leaders["county"]) == 2
    assert count(mail, leaders["city"]) == 2
    assert "续报" in mail.to(leaders["city"].email)[-1].subject


async def test_a_level_rise_re_escalates_even_an_acknowledged_alert(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    await pipeline.finding("II")
    await pipeline.run()
    (alert,) = await pipeline.alerts()
    await pipeline.book.acknowledge(alert.id, actor=leaders["county"].id)
    await pipeline.at(t0 + minutes(10))
    await pipeline.finding("I", people=130, title="资阳建工130名农民工堵路讨薪")
    await pipeline.run()
    (alert,) = await pipeline.alerts()
    assert alert.level == "I"
    assert alert.status == "triggered"
    assert alert.acknowledged_at is None
    # Everyone hears at once: the province for the first time.
    assert [count(mail, leaders[t]) for t in ("county", "city", "province")] == [2, 2, 1]
    assert "预警升级" in mail.to(leaders["province"].email)[0].subject
    assert "130" in mail.to(leaders["province"].email)[0].text()
    await pipeline.at(t0 + minutes(25) - S)
    assert count(mail, leaders["province"]) == 1
    await pipeline.at(t0 + minutes(25))  # level I repeats every 15 minutes from the rise
    assert [count(mail, leaders[t]) for t in ("county", "city", "province")] == [3, 3, 2]
    events = await pipeline.events(alert.id)
    assert "AlertLevelRaised" in events


async def test_a_less_serious_finding_adds_its_sources_but_keeps_the_headline(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    await pipeline.finding("I", people=130, title="资阳建工130名农民工堵路讨薪", sources=["R1"])
    await pipeline.run()
    await pipeline.finding("III", people=12, title="资阳建工集体访（12人）", sources=["Q7"])
    await pipeline.run()
    (alert,) = await pipeline.alerts()
    assert alert.level == "I"
    assert alert.title == "资阳建工130名农民工堵路讨薪"
    assert alert.people_involved == 130
    assert alert.source_ids == ["R1", "Q7"]
    assert (await pipeline.events(alert.id))[-1] == "AlertUpdated"


async def test_a_finding_for_a_resolved_key_opens_a_new_alert(
    pipeline: Pipeline, leaders: dict[str, Leader]
) -> None:
    await pipeline.finding("III")
    await pipeline.run()
    (first,) = await pipeline.alerts()
    await pipeline.book.resolve(first.id, actor=leaders["county"].id, reason="已调解")
    await pipeline.finding("III")
    await pipeline.run()
    first, second = await pipeline.alerts()
    assert first.status == "resolved"
    assert second.status == "triggered"
    # One alert per incident: the same entity, a new incident's own key.
    assert second.entity_key == first.entity_key
    assert second.dedup_key != first.dedup_key


async def test_the_risk_clearing_resolves_the_alert_with_a_notice(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    risk = {"key": "point:P1:enterprise_risk", "kind": "enterprise_risk"}
    await pipeline.finding("II", **risk)  # type: ignore[arg-type]
    await pipeline.run()
    await pipeline.at(t0 + minutes(10))
    await pipeline.finding(None, title="资阳建工工资已足额发放", **risk)  # type: ignore[arg-type]
    await pipeline.run()
    (alert,) = await pipeline.alerts()
    assert alert.status == "resolved"
    assert alert.resolved_by == "system"
    assert alert.next_escalation_at is None
    # A risk alert was told to the county only (interfaces §5), and so is its end.
    assert count(mail, leaders["city"]) == 0
    resolved = mail.to(leaders["county"].email)[-1]
    assert "预警解除" in resolved.subject
    await pipeline.at(t0 + minutes(30))
    assert count(mail, leaders["province"]) == 0  # nothing escalates after resolution
    assert (await pipeline.events(alert.id))[-2:] == ["AlertResolved", "AlertNotified"]


async def test_the_audit_log_says_who_when_and_why(
    pipeline: Pipeline, leaders: dict[str, Leader]
) -> None:
    t0 = pipeline.clock.now()
    await pipeline.finding("II")
    await pipeline.run()
    (alert,) = await pipeline.alerts()
    pipeline.clock.set(t0 + minutes(3))
    await pipeline.book.acknowledge(alert.id, actor=leaders["city"].id, reason="已派员赶赴现场")
    pipeline.clock.set(t0 + minutes(50))
    await pipeline.book.resolve(alert.id, actor=leaders["county"].id, reason="工资已发放，人员已散")
    async with pipeline.ctx.db.session() as session:
        rows = (
            await session.scalars(
                select(AlertEvent).where(AlertEvent.alert_id == alert.id).order_by(AlertEvent.id)
            )
        ).all()
    by_event = {r.event: r for r in rows}
    assert by_event["AlertTriggered"].actor == "system"
    assert by_event["AlertTriggered"].at == t0
    ack = by_event["AlertAcknowledged"]
    assert (ack.actor, ack.at, ack.reason) == ("yy-duty", t0 + minutes(3), "已派员赶赴现场")
    resolved = by_event["AlertResolved"]
    assert (resolved.actor, resolved.at) == ("zy-duty", t0 + minutes(50))
    assert resolved.reason == "工资已发放，人员已散"


async def test_a_silence_holds_messages_back_and_its_end_sends_them(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    await add_point(pipeline.ctx)
    silence = await pipeline.book.silence(
        scope="point",
        target="P1",
        duration=timedelta(hours=3),
        reason="已进入调解程序",
        actor=leaders["county"].id,
    )
    # An event: it escalates (a risk alert would stay with the county, interfaces §5).
    await pipeline.finding("III", key="event:R8")
    await pipeline.finding("I", key="event:R9", title="资阳建工工人堵路")
    await pipeline.run()
    silenced, urgent = await pipeline.alerts()
    assert "NotificationsSuppressed" in await pipeline.events(silenced.id)
    # Recorded and shown, but not sent; level I goes out whatever the silence says.
    assert [m.subject for m in mail.inbox if "资阳建工项目部" in m.subject] == []
    assert count(mail, leaders["province"]) == 1
    await pipeline.at(t0 + timedelta(hours=2))
    # A county leader's silence holds the county only: the city step goes out.
    to_city = [m for m in mail.to(leaders["city"].email) if "资阳建工项目部" in m.subject]
    assert len(to_city) == 1
    assert all("资阳建工项目部" not in m.subject for m in mail.to(leaders["county"].email))
    with capture_logs() as logs:
        await pipeline.at(t0 + timedelta(hours=3))
    assert any(e["event"] == "silence ended" and e["silence"] == silence.id for e in logs)
    held = [m for m in mail.inbox if "静默结束" in m.subject]
    assert sorted(r for m in held for r in m.rcpt_tos) == [leaders["county"].email]
    assert "SilenceEnded" in await pipeline.events(silenced.id)
    assert urgent.level == "I"


async def test_level_iii_messages_to_one_contact_within_5_minutes_go_out_as_one(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    await pipeline.finding("III", key="event:A", title="甲公司拖欠工资")
    await pipeline.run()
    assert count(mail, leaders["county"]) == 1  # the first of a quiet period goes at once
    await pipeline.at(t0 + minutes(1))
    await pipeline.finding("III", key="event:B", title="乙公司停工")
    await pipeline.finding("II", key="event:C", title="丙公司40人聚集")
    await pipeline.run()
    # Level II never waits; the second level III is held for the window.
    assert [m.subject for m in mail.to(leaders["county"].email)][1].endswith("丙公司40人聚集")
    await pipeline.at(t0 + minutes(2))
    await pipeline.finding("IV", key="event:D", title="丁公司社保断缴")
    await pipeline.finding("III", key="event:E", title="戊公司裁员")
    await pipeline.run()
    assert count(mail, leaders["county"]) == 2
    await pipeline.at(t0 + minutes(5) - S)
    assert count(mail, leaders["county"]) == 2
    await pipeline.at(t0 + minutes(5))
    batch = mail.to(leaders["county"].email)[2]
    assert batch.subject.startswith("【较大预警汇总】共2条")
    text = batch.text()
    assert "乙公司停工" in text
    assert "戊公司裁员" in text
    assert "丁公司" not in text  # level IV reaches the county by the daily digest
    assert count(mail, leaders["county"]) == 3


async def test_a_tier_with_nobody_to_tell_is_recorded_not_skipped(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    await pipeline.finding("II", key="event:N1", region="430921")  # 南县: no leader there
    await pipeline.run()
    (alert,) = await pipeline.alerts()
    assert "NotificationUndeliverable" in await pipeline.events(alert.id)
    assert count(mail, leaders["city"]) == 1
    metrics = pipeline.book.metrics.undeliverable.labels("county")._value.get()
    assert metrics == 1


async def test_an_older_finding_applied_late_does_not_undo_a_newer_one(
    pipeline: Pipeline, leaders: dict[str, Leader]
) -> None:
    from sqlalchemy import update

    from monitor.models import Finding

    older_clear = await pipeline.finding(None, title="旧的消除结论")
    older_low = await pipeline.finding("III", title="旧的较大结论")
    newer = await pipeline.finding("II", title="新的重大结论")
    # A second daemon took the newest first (the older ones were locked by the first).
    async with pipeline.ctx.db.session() as session:
        await session.execute(
            update(Finding)
            .where(Finding.id.in_([older_clear, older_low]))
            .values(processed_at=pipeline.clock.now())
        )
    await pipeline.alerting.run_once()
    async with pipeline.ctx.db.session() as session:
        await session.execute(
            update(Finding)
            .where(Finding.id.in_([older_clear, older_low]))
            .values(processed_at=None)
        )
    await pipeline.alerting.run_once()
    (alert,) = await pipeline.alerts()
    assert alert.status == "triggered"
    assert alert.level == "II"
    assert alert.title == "新的重大结论"
    assert alert.last_finding_id == newer
