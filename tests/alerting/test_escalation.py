"""The four-tier escalation, timed with the injected clock at exact boundaries, with a
real SMTP server receiving the mail (interfaces §5 defaults)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from monitor.alerting.book import AlertBook
from monitor.alerting.service import EscalationLoop
from monitor.context import Context
from monitor.daemon import make_context
from monitor.models import Alert, Delivery
from tests.alerting.conftest import Leader, Pipeline, minutes
from tests.support.mail import MailSink

S = timedelta(seconds=1)


def inboxes(mail: MailSink, leaders: dict[str, Leader]) -> dict[str, int]:
    return {tier: len(mail.to(leader.email)) for tier, leader in leaders.items()}


async def test_level_ii_county_and_city_at_once_province_at_30_minutes(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    await pipeline.finding("II")
    await pipeline.run()
    assert inboxes(mail, leaders) == {"county": 1, "city": 1, "province": 0, "other": 0}
    first = mail.to(leaders["county"].email)[0]
    assert first.subject.startswith("【II级·重大】资阳区 ")
    assert "确认收到" in first.html()
    assert "/ack/" in first.text()

    await pipeline.at(t0 + minutes(30) - S)  # 29:59
    assert inboxes(mail, leaders)["province"] == 0
    await pipeline.at(t0 + minutes(30))  # 30:00
    assert inboxes(mail, leaders) == {"county": 1, "city": 1, "province": 1, "other": 0}
    assert mail.to(leaders["province"].email)[0].subject.startswith("【II级·重大·升级通报】资阳区 ")
    (alert,) = await pipeline.alerts()
    assert alert.tier_reached == 1
    assert alert.next_escalation_at is None


async def test_level_ii_acknowledged_at_29_59_never_reaches_the_province(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    await pipeline.finding("II")
    await pipeline.run()
    (alert,) = await pipeline.alerts()
    pipeline.clock.set(t0 + minutes(30) - S)
    await pipeline.book.acknowledge(alert.id, actor=leaders["county"].id, via="api")
    # Past the province step, past the reminder to the acknowledger, up to the
    # acknowledgement's expiry (8 h for level II): the province hears nothing.
    for at in (minutes(30), minutes(31), timedelta(hours=2, minutes=30), timedelta(hours=8) - S):
        await pipeline.at(t0 + minutes(30) - S + at)
        assert inboxes(mail, leaders)["province"] == 0, at
    # The one message after the acknowledgement is the reminder to whoever acknowledged.
    assert inboxes(mail, leaders) == {"county": 2, "city": 1, "province": 0, "other": 0}
    assert "待处置提醒" in mail.to(leaders["county"].email)[1].subject


async def test_level_i_all_tiers_at_once_and_every_15_minutes_until_acknowledged(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    await pipeline.finding("I", people=120, title="资阳建工120名农民工堵路讨薪")
    await pipeline.run()
    assert inboxes(mail, leaders) == {"county": 1, "city": 1, "province": 1, "other": 0}
    for n, at in enumerate((15, 30), start=1):
        await pipeline.at(t0 + minutes(at) - S)
        assert inboxes(mail, leaders)["province"] == n
        await pipeline.at(t0 + minutes(at))
        assert inboxes(mail, leaders) == {
            "county": n + 1,
            "city": n + 1,
            "province": n + 1,
            "other": 0,
        }
    assert "再次提醒" in mail.to(leaders["city"].email)[-1].subject
    (alert,) = await pipeline.alerts()
    await pipeline.at(t0 + minutes(44))
    await pipeline.book.acknowledge(alert.id, actor=leaders["city"].id, via="api")
    for at in (45, 60, 75, 90):
        await pipeline.at(t0 + minutes(at))
    assert inboxes(mail, leaders) == {"county": 3, "city": 3, "province": 3, "other": 0}


async def test_level_iii_county_then_city_at_2h_then_province_at_6h(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    await pipeline.finding("III", people=15)
    await pipeline.run()
    assert inboxes(mail, leaders) == {"county": 1, "city": 0, "province": 0, "other": 0}
    await pipeline.at(t0 + timedelta(hours=2) - S)
    assert inboxes(mail, leaders)["city"] == 0
    await pipeline.at(t0 + timedelta(hours=2))
    assert inboxes(mail, leaders) == {"county": 1, "city": 1, "province": 0, "other": 0}
    await pipeline.at(t0 + timedelta(hours=6) - S)
    assert inboxes(mail, leaders)["province"] == 0
    await pipeline.at(t0 + timedelta(hours=6))
    assert inboxes(mail, leaders) == {"county": 1, "city": 1, "province": 1, "other": 0}


async def test_level_iv_goes_to_the_county_digest_and_to_the_city_after_24h(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    from monitor.alerting.digest import DailyDigest

    t0 = pipeline.clock.now()  # 09:00 China time
    await pipeline.finding("IV", people=6)
    await pipeline.run()
    assert inboxes(mail, leaders)["county"] == 0  # no message of its own
    digest = DailyDigest(pipeline.ctx, pipeline.book)
    await pipeline.at(t0 + timedelta(hours=23) - S)  # 07:59:59 next day
    assert await digest.run_once() == 0
    pipeline.clock.set(t0 + timedelta(hours=23))  # 08:00
    assert await digest.run_once() == 1
    await pipeline.run()
    (message,) = mail.to(leaders["county"].email)
    assert message.subject.startswith("【一般预警日报】资阳区")
    assert "资阳建工" in message.text()
    await pipeline.at(t0 + timedelta(hours=24) - S)
    assert inboxes(mail, leaders)["city"] == 0
    await pipeline.at(t0 + timedelta(hours=24))
    assert inboxes(mail, leaders) == {"county": 1, "city": 1, "province": 0, "other": 0}


async def test_an_acknowledged_alert_reminds_and_then_escalates_again(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    await pipeline.finding("II")
    await pipeline.run()
    (alert,) = await pipeline.alerts()
    await pipeline.at(t0 + minutes(5))
    await pipeline.book.acknowledge(alert.id, actor=leaders["county"].id, via="api")
    ack = t0 + minutes(5)
    await pipeline.at(ack + timedelta(hours=2) - S)
    assert inboxes(mail, leaders) == {"county": 1, "city": 1, "province": 0, "other": 0}
    await pipeline.at(ack + timedelta(hours=2))  # reminder, to the acknowledger only
    assert inboxes(mail, leaders) == {"county": 2, "city": 1, "province": 0, "other": 0}
    await pipeline.at(ack + timedelta(hours=8) - S)
    assert inboxes(mail, leaders) == {"county": 2, "city": 1, "province": 0, "other": 0}
    await pipeline.at(ack + timedelta(hours=8))  # the acknowledgement expired
    assert inboxes(mail, leaders) == {"county": 3, "city": 2, "province": 0, "other": 0}
    assert "确认超时" in mail.to(leaders["city"].email)[-1].subject
    (alert,) = await pipeline.alerts()
    assert alert.status == "triggered"
    assert alert.acknowledged_at is None
    await pipeline.at(ack + timedelta(hours=8, minutes=30))  # and climbs on
    assert inboxes(mail, leaders) == {"county": 3, "city": 2, "province": 1, "other": 0}
    events = await pipeline.events(alert.id)
    assert events.index("AcknowledgementReminded") < events.index("AcknowledgementExpired")


async def test_after_downtime_every_due_step_is_done_once_and_missed_repeats_collapse(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    await pipeline.finding("III", key="event:A")
    await pipeline.finding("I", key="event:B")
    await pipeline.run()
    assert inboxes(mail, leaders) == {"county": 2, "city": 1, "province": 1, "other": 0}
    # Seven hours without a daemon: III owes city and province; I owes 28 repeats.
    await pipeline.at(t0 + timedelta(hours=7))
    # III: +city +province; I: one repeat to each tier (not 28).
    assert inboxes(mail, leaders) == {"county": 3, "city": 3, "province": 3, "other": 0}
    level_i = next(a for a in await pipeline.alerts() if a.level == "I")
    assert level_i.repeats_done == 28
    assert level_i.next_escalation_at == t0 + minutes(15 * 29)


async def test_two_daemons_neither_lose_nor_double_a_step(
    actx: Context, pipeline: Pipeline, leaders: dict[str, Leader]
) -> None:
    t0 = pipeline.clock.now()
    for n in range(24):
        await pipeline.finding("II", key=f"event:R{n}", sources=[f"R{n}"])
    await pipeline.alerting.run_once()
    pipeline.clock.set(t0 + minutes(30))
    # A second daemon: its own context (engine, connections) on the same database.
    other = make_context(actx.settings, clock=actx.clock)
    try:
        first, second = EscalationLoop(actx), EscalationLoop(other, AlertBook(other))
        await asyncio.gather(first.run_once(), second.run_once(), first.run_once())
    finally:
        await other.close()
    async with actx.db.session() as session:
        per_alert = (
            await session.execute(
                select(Delivery.alert_id, func.count())
                .where(Delivery.recipient == leaders["province"].id)
                .group_by(Delivery.alert_id)
            )
        ).all()
        left = await session.scalar(
            select(func.count()).select_from(Alert).where(Alert.next_escalation_at.is_not(None))
        )
    assert len(per_alert) == 24
    assert {n for _, n in per_alert} == {1}
    assert left == 0
