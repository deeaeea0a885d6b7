"""Handling deadlines in real daemon processes (`python -m monitor run`): one daemon is
killed with SIGKILL as it claims the missed deadlines, then two daemons run on the same
store. Nothing is lost (records, deadlines, the reminders) and no reminder is doubled."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from monitor.alerting.handling import Handling, RecordIn
from monitor.models import Alert, Delivery, HandlingDeadline, HandlingRecord
from tests.alerting.conftest import Leader, Pipeline
from tests.alerting.test_crash import MAIL_FROM, Daemon, until
from tests.alerting.test_handling import alert_settings  # noqa: F401  (default deadlines)
from tests.conftest import SECRET
from tests.support.broker import Broker
from tests.support.mail import MailSink
from tests.support.ports import free_port


def config_for(tmp_path: Path, name: str, db_url: str, mail: MailSink, broker: Broker) -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text(
        f"""
[database]
url = "{db_url}"
[http]
bind = "127.0.0.1:{free_port()}"
public_url = "https://labormon.example.org"
[smtp]
url = "{mail.url}"
mail_from = "{MAIL_FROM}"
[security]
secret_key = "{SECRET}"
[mqtt]
url = "{broker.url}"
client_id = "labormon-{name}-{os.getpid()}"
[alerting]
mqtt_events = false
poll_interval = "1s"
[alerting.outbox]
lease = "5s"
[handling]
tell_above_after = "2s"
[logging]
format = "json"
""",
        encoding="utf-8",
    )
    return config


async def test_killed_while_claiming_and_two_daemons_after_no_reminder_lost_or_doubled(
    pipeline: Pipeline,
    leaders: dict[str, Leader],
    db_url: str,
    tmp_path: Path,
    broker: Broker,
    mail: MailSink,
) -> None:
    ctx = pipeline.ctx
    # An alert of long ago (the test's clock is behind the daemons' real one): its
    # verification and follow-up deadlines have passed; so has a province instruction's
    # answer.
    await pipeline.finding("II", title="甲公司45名工人停工讨薪")
    await pipeline.alerting.run_once()
    (alert,) = await pipeline.alerts()
    handling = Handling(ctx, pipeline.book)
    await handling.add(
        alert.id,
        RecordIn(kind="progress", people_now=45, text="工会已到场"),
        author=leaders["county"].id,
        via="api",
    )
    await handling.add(
        alert.id,
        RecordIn(kind="instruction", text="请尽快核实并答复", due="1h"),
        author=leaders["province"].id,
        via="api",
    )
    mail.clear()

    async def count(model: object, *where: object) -> int:
        async with ctx.db.session() as session:
            query = select(func.count()).select_from(model)  # type: ignore[arg-type]
            for clause in where:
                query = query.where(clause)  # type: ignore[arg-type]
            return int(await session.scalar(query) or 0)

    async def overdue_alerts() -> list[Alert]:
        async with ctx.db.session() as session:
            rows = await session.scalars(select(Alert).where(Alert.kind == "overdue_handling"))
            return list(rows.all())

    first = Daemon(config_for(tmp_path, "a", db_url, mail, broker), tmp_path / "a.log")
    second = Daemon(config_for(tmp_path, "b", db_url, mail, broker), tmp_path / "b.log")
    third = Daemon(config_for(tmp_path, "c", db_url, mail, broker), tmp_path / "c.log")
    try:
        first.start()

        async def claimed() -> bool:
            return await count(HandlingDeadline, HandlingDeadline.missed_at.is_not(None)) > 0

        await until(claimed, "a missed deadline to be claimed", first, timeout=60)
        first.kill()
        second.start()
        third.start()

        def overdue_mail(leader: Leader) -> Counter[str]:
            return Counter(m.message_id for m in mail.to(leader.email) if "处置逾期" in m.subject)

        async def everyone_told() -> bool:
            return (
                len(overdue_mail(leaders["county"])) == 3  # verify, progress, answer
                and len(overdue_mail(leaders["city"])) == 2  # verify, progress, 2 s later
                and len(overdue_mail(leaders["province"])) == 1  # answer, at once
                and await count(Delivery, Delivery.status == "pending") == 0
            )

        await until(everyone_told, "the reminders of both deadlines", second, timeout=60)
        assert third.alive()
        second.stop()
        third.stop()
    finally:
        for daemon in (first, second, third):
            daemon.stop()

    kinds = sorted((a.evidence or {}).get("deadline_kind") for a in await overdue_alerts())
    assert kinds == ["answer", "progress", "verify"]  # one alert per missed deadline
    for tier, expected in (("county", 3), ("city", 2), ("province", 1)):
        got = Counter(m.message_id for m in mail.to(leaders[tier].email) if "处置逾期" in m.subject)
        # One message per missed deadline and tier. The same message (same Message-ID)
        # may come twice when the killed daemon had sent it but not yet recorded it:
        # its lease runs out and a peer sends it again (the outbox is at least once; a
        # mail client shows one). A second, different reminder would be a new id.
        assert len(got) == expected, tier
        assert set(got.values()) <= {1, 2}, tier
    assert await count(HandlingRecord) == 2
    assert await count(HandlingDeadline, HandlingDeadline.kind == "answer") == 1
    assert await count(HandlingDeadline, HandlingDeadline.missed_at.is_not(None)) == 3
