"""The stages wired into the daemon: the bus wakes the alerting loop and the sender at
once, and moving the injected clock wakes the escalation loop (nobody sleeps)."""

from __future__ import annotations

import asyncio
import time

from monitor import bus
from monitor.daemon import Daemon
from tests.alerting.conftest import Leader, Pipeline, minutes
from tests.support.mail import MailSink


async def test_the_daemon_alerts_at_once_and_escalates_when_the_clock_moves(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    ctx = pipeline.ctx
    t0 = pipeline.clock.now()
    stop = asyncio.Event()
    daemon = Daemon(ctx)
    running = asyncio.create_task(daemon.run(stop))
    try:
        async with asyncio.timeout(10):
            await daemon.ready.wait()
        assert {s.name for s in daemon.services} >= {"alerting", "escalation", "outbox"}
        started = time.perf_counter()
        await pipeline.finding("II")
        ctx.bus.notify(bus.FINDINGS)  # what a detector does after committing
        await asyncio.to_thread(mail.wait_for, 2, 10)
        took = time.perf_counter() - started
        assert took < 2, took  # woken, not polled (the poll interval is 10 s)
        assert {r for m in mail.inbox for r in m.rcpt_tos} == {
            leaders["county"].email,
            leaders["city"].email,
        }
        pipeline.clock.set(t0 + minutes(30))
        (province,) = (await asyncio.to_thread(mail.wait_for, 3, 10))[2:]
        assert province.rcpt_tos == [leaders["province"].email]
    finally:
        stop.set()
        async with asyncio.timeout(5):  # a prompt, clean shutdown
            await running
