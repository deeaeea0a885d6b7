"""The outbox under failure: the SMTP server down, webhooks answering 500 and 400, leases
of dead senders, two senders at once. Real SMTP server, local HTTP receivers."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from monitor.alerting.notifiers.email import message_id
from monitor.alerting.outbox import OutboxSender, backoff
from monitor.config import GroupConfig
from monitor.context import Context
from monitor.daemon import make_context
from monitor.models import ChannelHealth, Delivery, DeliveryAttempt
from monitor.web.app import create_app
from tests.alerting.conftest import COUNTY, Leader, Pipeline
from tests.alerting.fakes import ChatServer
from tests.conftest import SECRET
from tests.support.mail import MailSink

ROOT = Path(__file__).resolve().parents[2]
S = timedelta(seconds=1)


@pytest.fixture
def chat(pipeline: Pipeline) -> Iterator[ChatServer]:
    server = ChatServer(now=pipeline.ctx.clock.now).start()
    yield server
    server.stop()


def use_group(pipeline: Pipeline, **group: object) -> None:
    # Contacts and notifiers read the (shared) settings object when they need a group.
    pipeline.ctx.settings.alerting.groups.append(GroupConfig.model_validate(group))


async def attempts(ctx: Context, delivery_id: str) -> list[DeliveryAttempt]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        )
        return list(rows.all())


async def test_smtp_down_for_10_minutes_every_email_arrives_after_it_returns(
    pipeline: Pipeline, leaders: dict[str, Leader]
) -> None:
    sink = MailSink()  # our own server, to take down
    pipeline.ctx.settings.smtp.url = sink.url
    t0 = pipeline.clock.now()
    await pipeline.finding("II", key="event:A")
    await pipeline.finding("III", key="event:B", title="乙公司拖欠工资")
    await pipeline.run()
    emails = await pipeline.deliveries(channel="email")
    assert len(emails) == 3  # II to county and city, III to county
    for second in range(30, 601, 30):  # ten minutes down, looking every 30 s
        await pipeline.at(t0 + timedelta(seconds=second))
    for delivery in await pipeline.deliveries(channel="email"):
        assert delivery.status == "pending"
        assert delivery.last_error is not None
        assert "SMTP" in delivery.last_error
    urgent = next(d for d in emails if d.priority == 1)
    level_ii = await attempts(pipeline.ctx, urgent.id)
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(level_ii)]
    assert gaps[:2] == sorted(gaps[:2])  # backing off ...
    assert max(gaps) <= 60  # ... but a level II message never waits more than a minute
    sink.start()
    try:
        for second in range(610, 700, 10):
            await pipeline.at(t0 + timedelta(seconds=second))
            if len(sink.inbox) == 3:
                break
        assert pipeline.clock.now() - t0 <= timedelta(seconds=670)
        ids = Counter(m.message_id for m in sink.inbox)
        assert sorted(ids) == sorted(message_id(d.id, "labormon@union.example.org") for d in emails)
        assert set(ids.values()) == {1}
        assert all(d.status == "sent" for d in await pipeline.deliveries(channel="email"))
    finally:
        sink.stop()


async def test_a_webhook_answering_500_is_retried_with_backoff(
    pipeline: Pipeline, chat: ChatServer
) -> None:
    use_group(pipeline, id="zy-hook", region=COUNTY, kind="webhook", url=f"{chat.base}/hook/zy")
    chat.hook_statuses["zy"] = [500, 500, 503]
    t0 = pipeline.clock.now()
    await pipeline.finding("III")
    await pipeline.run()
    (delivery,) = await pipeline.deliveries(channel="webhook")
    config = pipeline.ctx.settings.alerting.outbox
    due = t0
    for attempt in (1, 2, 3):
        due += backoff(
            attempt, initial=config.backoff_initial, cap=config.backoff_max, delivery_id=delivery.id
        )
        await pipeline.at(due - S)
        assert len(chat.to("/hook/zy")) == attempt
        await pipeline.at(due)
        assert len(chat.to("/hook/zy")) == attempt + 1
    tries = await attempts(pipeline.ctx, delivery.id)
    assert [t.ok for t in tries] == [False, False, False, True]
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(tries)]
    assert gaps[1] == pytest.approx(2 * gaps[0], abs=1)
    assert gaps[2] == pytest.approx(2 * gaps[1], abs=1)
    # Every try carries the same id, so the receiver can drop repeats.
    keys = {r.headers["idempotency-key"] for r in chat.to("/hook/zy")}
    assert keys == {delivery.id}


async def test_a_webhook_answering_400_fails_the_channel_visibly(
    pipeline: Pipeline, chat: ChatServer, db_url: str
) -> None:
    use_group(pipeline, id="zy-hook", region=COUNTY, kind="webhook", url=f"{chat.base}/hook/zy")
    chat.hook_statuses["zy"] = [400]
    await pipeline.finding("II")
    await pipeline.run()
    (delivery,) = await pipeline.deliveries(channel="webhook")
    assert delivery.status == "failed"
    assert delivery.last_error is not None
    assert "HTTP 400" in delivery.last_error
    # /metrics
    app = create_app(pipeline.ctx)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        metrics = (await client.get("/metrics")).text
    assert 'labormon_channel_failed{channel="webhook",recipient="group:zy-hook"} 1.0' in metrics
    assert 'labormon_deliveries_total{channel="webhook",outcome="failed"} 1.0' in metrics
    # `labormon alerts` (a separate process, as an operator runs it)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABORMON_")}
    env["LABORMON_SECURITY__SECRET_KEY"] = SECRET
    shown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "monitor", "alerts", "list", "--db", db_url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "FAILED   webhook -> group:zy-hook: webhook answered HTTP 400" in shown.stderr
    # The channel recovers with its next success.
    await pipeline.finding("II", key="event:R2")
    await pipeline.run()
    async with pipeline.ctx.db.session() as session:
        health = await session.get(ChannelHealth, "webhook:group:zy-hook")
    assert health is not None
    assert health.status == "ok"


async def test_a_dead_senders_lease_runs_out_and_a_restarted_sender_takes_its_own_back(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    t0 = pipeline.clock.now()
    await pipeline.finding("II")
    await pipeline.alerting.run_once()
    lease = pipeline.ctx.settings.alerting.outbox.lease
    async with pipeline.ctx.db.session() as session:
        # As left by a daemon on another host that died mid-send.
        await session.execute(
            update(Delivery).values(
                claimed_by="other-host/1a2b3c4d", claimed_until=t0 + lease, attempts=1
            )
        )
    await pipeline.at(t0 + lease - S)
    assert mail.inbox == []
    await pipeline.at(t0 + lease)
    assert len(mail.inbox) == 2
    # Our own node's claims from before a restart are known dead: taken back at once.
    await pipeline.finding("II", key="event:R2")
    await pipeline.alerting.run_once()
    async with pipeline.ctx.db.session() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.status == "pending")
            .values(claimed_by="test-node/deadbeef", claimed_until=t0 + lease * 10)
        )
    restarted = OutboxSender(pipeline.ctx, node="test-node")
    try:
        assert await restarted.run_once() == 2
    finally:
        await restarted.aclose()
    assert len(mail.inbox) == 4


async def test_two_senders_send_each_message_once(
    actx: Context, pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    for n in range(15):
        await pipeline.finding("II", key=f"event:R{n}")
    await pipeline.alerting.run_once()
    other = make_context(actx.settings, clock=actx.clock)
    first = OutboxSender(actx, node="host-a")
    second = OutboxSender(other, node="host-b")
    try:
        await asyncio.gather(first.run_once(), second.run_once(), first.run_once())
    finally:
        await first.aclose()
        await second.aclose()
        await other.close()
    ids = Counter(m.message_id for m in mail.inbox)
    assert len(ids) == 30
    assert set(ids.values()) == {1}
    async with actx.db.session() as session:
        assert (await session.scalars(select(Delivery.status).distinct())).all() == ["sent"]
