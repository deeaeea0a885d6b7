"""Issue 19, finding 1: a line break in a company name must not silence an alert.

The name is cleaned at intake (and the cleaning recorded); every header and chat title is
built as one line anyway; a message that cannot be composed fails at once as an
operator's alarm instead of being retried for a day; one bad item of a batch does not
sink the others."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from sqlalchemy import select

from detectors.service import RESCORE
from ingest.pipeline import Envelope, IngestPipeline
from monitor.alerting.messages import render_html, render_markdown, render_text, subject_for
from monitor.alerting.metrics import alerting_metrics
from monitor.context import Context
from monitor.daemon import Daemon
from monitor.models import AlertEvent, Delivery, InformantReport, JobRun
from tests.alerting.conftest import COUNTY, Leader, Pipeline
from tests.support.daemon import eventually
from tests.support.mail import MailSink

HOSTILE_NAME = "恶意公司\r\n丁"


async def _unsent(ctx: Context) -> int:
    async with ctx.db.session() as session:
        rows = await session.scalars(select(Delivery).where(Delivery.status != "sent"))
        return len(rows.all())


async def _rescore_status(ctx: Context) -> str | None:
    async with ctx.db.session() as session:
        return await session.scalar(select(JobRun.status).where(JobRun.job == RESCORE))


def _report(report_id: str, **fields: Any) -> bytes:
    data = {
        "report_id": report_id,
        "informant_id": "zy-inf-1",
        "occurred_at": "2025-01-15T08:50:00+08:00",
        "region_code": COUNTY,
        "enterprise_name": HOSTILE_NAME,
        "event_type": "gathering",
        "category": "wage_arrears",
        "people_involved": 150,
        "description": "150名工人聚集讨薪\r\n现场有人拉横幅",
    } | fields
    return json.dumps(data, ensure_ascii=False).encode()


async def test_a_level_i_report_with_a_line_break_in_its_company_name_reaches_all_three_tiers(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    ctx = pipeline.ctx
    stop = asyncio.Event()
    daemon = Daemon(ctx, only=["ingest", "detectors", "alerting", "escalation", "outbox"])
    running = asyncio.create_task(daemon.run(stop))
    try:
        async with asyncio.timeout(15):
            await daemon.ready.wait()
        # The daemon is up once its start-up re-score (of an empty store here) is done.
        with contextlib.suppress(TimeoutError):
            await eventually(lambda: _rescore_status(ctx), lambda s: s == "done", 5)
        intake = next(s for s in daemon.services if isinstance(s, IngestPipeline))
        started = time.perf_counter()
        outcome = await intake.submit_and_wait(
            Envelope("http", "/api/v1/reports", "report", "zy-inf-1", _report("HR-1"))
        )
        assert outcome.status == "stored", outcome
        stored_after = time.perf_counter() - started
        received = await asyncio.to_thread(mail.wait_for, 3, 5)
        took = time.perf_counter() - started
        assert took < 1.0, (took, stored_after)
        assert {r for m in received for r in m.rcpt_tos} == {
            leaders["county"].email,
            leaders["city"].email,
            leaders["province"].email,
        }
        for message in received:
            assert "\r" not in message.subject and "\n" not in message.subject
            assert "恶意公司 丁" in message.subject
            assert "特别重大" in message.subject
        # A mail lands before its row says sent: wait for the rows, then stop.
        await eventually(lambda: _unsent(ctx), lambda n: n == 0, 10, what="rows marked sent")
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await running
    # Kept, not refused, with the cleaning recorded on the row.
    async with ctx.db.session() as session:
        row = await session.get(InformantReport, "HR-1")
        assert row is not None
        assert row.enterprise_name == "恶意公司 丁"
        assert row.description == "150名工人聚集讨薪\n现场有人拉横幅"
        assert row.extra == {"labormon_sanitised": ["enterprise_name", "description"]}
        pending = await session.scalars(select(Delivery).where(Delivery.status != "sent"))
        assert [(d.channel, d.status, d.address, d.last_error) for d in pending.all()] == []


async def test_an_id_with_a_control_character_is_refused_with_a_clear_error(
    pipeline: Pipeline,
) -> None:
    from ingest.pipeline import validate

    env = validate(Envelope("http", "/api/v1/reports", "report", None, _report("R-1\n")), 65536)
    assert env.record is None
    assert env.code == "invalid_field"
    assert [str(e) for e in env.errors] == [
        "report_id: must not contain control characters (found U+000A)"
    ]


async def test_a_title_stored_with_a_line_break_still_sends_on_every_channel(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    # A detector (or a row stored before intake cleaned names) may still hand over a
    # title with CR/LF: subjects and chat titles are single lines by construction.
    await pipeline.finding("I", title="【特别重大】恶意公司\r\n丁 聚集150人")
    await pipeline.run()
    received = await asyncio.to_thread(mail.wait_for, 3, 5)
    assert all("\n" not in m.subject and "恶意公司 丁" in m.subject for m in received)
    (delivery, *_) = await pipeline.deliveries(channel="email")
    for flavour in ("wecom", "dingtalk", "feishu"):
        first_line = render_markdown(delivery.body, flavour=flavour).split("\n", 1)[0]
        assert "恶意公司 丁" in first_line
    assert "\n" not in subject_for(delivery.body)


async def test_a_message_that_cannot_be_composed_fails_at_once_and_raises_an_alarm(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    await pipeline.finding("I")
    async with pipeline.ctx.db.session() as session:
        deliveries = (await session.scalars(select(Delivery))).all()
        assert deliveries == []
    await pipeline.alerting.run_once()
    async with pipeline.ctx.db.session() as session:
        delivery = (await session.scalars(select(Delivery).limit(1))).one()
        # A body no template can render (what a bug or a bad row would leave).
        delivery.body = {"kind": "alert", "items": "not a list"}
        broken = delivery.id
    await pipeline.sender.run_once()
    async with pipeline.ctx.db.session() as session:
        row = await session.get(Delivery, broken)
        assert row is not None
        assert (row.status, row.attempts) == ("failed", 1)
        assert "could not compose the message" in (row.last_error or "")
        events = (
            await session.scalars(
                select(AlertEvent).where(AlertEvent.event == "DeliveryComposeFailed")
            )
        ).all()
        assert [e.details["delivery_id"] for e in events] == [broken]  # type: ignore[index]
    metrics = alerting_metrics(pipeline.ctx.metrics)
    assert metrics.compose_errors.labels("email")._value.get() == 1
    # The other tiers' messages went out.
    assert len(await asyncio.to_thread(mail.wait_for, 2, 5)) == 2


def test_one_bad_item_cannot_sink_a_batch() -> None:
    from monitor.alerting.messages import unrenderable_item

    good = unrenderable_item({"alert_id": 7, "level": "III"}) | {
        "title": "资阳建工欠薪",
        "place": "益阳市 资阳区",
    }
    bad = {"alert_id": 8, "level": "IV", "title": "缺字段的条目"}
    body = {"kind": "alert", "items": [good, bad]}
    text = render_text(body, "d-1")
    assert "资阳建工欠薪" in text
    assert "预警#8（内容无法显示，请在控制台查看）" in text
    assert "资阳建工欠薪" in render_html(body, "d-1")
    assert "资阳建工欠薪" in render_markdown(body, flavour="wecom")


async def test_a_county_silence_holds_only_the_county_and_never_level_i(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    """Finding 7: a county leader's 90-day silence on their county held a level II work
    stoppage for the county and the city."""
    from datetime import timedelta

    pipeline.ctx.settings.alerting.silences_cover_level_i = True
    await pipeline.book.silence(
        scope="region",
        target=COUNTY,
        duration=timedelta(days=90),
        reason="已进入调解程序",
        actor=leaders["county"].id,
    )
    city_silence = await pipeline.book.silence(
        scope="region",
        target="430900",
        duration=timedelta(days=1),
        reason="市里已派工作组",
        actor=leaders["city"].id,
    )
    await pipeline.finding("II", key="event:WS", title="资阳某厂停工40人")
    await pipeline.finding("I", key="event:RB", title="资阳某工地堵路150人")
    await pipeline.run()
    ws = [m for m in mail.inbox if "停工" in m.subject]
    rb = [m for m in mail.inbox if "堵路" in m.subject]
    # II: held for the county (its own silence) and the city (the city's); I: a county's
    # or a city's silence never holds it, whatever the configuration.
    assert [r for m in ws for r in m.rcpt_tos] == []
    assert sorted(r for m in rb for r in m.rcpt_tos) == sorted(
        [leaders["county"].email, leaders["city"].email, leaders["province"].email]
    )
    await pipeline.book.end_silence(city_silence.id, actor=leaders["city"].id)
    await pipeline.run()
    ws = [m for m in mail.inbox if "停工" in m.subject]
    # The city's silence ended: the city is told, the county's own silence still holds.
    assert [r for m in ws for r in m.rcpt_tos] == [leaders["city"].email]
