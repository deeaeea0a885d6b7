"""A real daemon process (`python -m monitor run`) killed with SIGKILL:
- after an alert is committed and before its emails go out: after a restart every
  email is sent, exactly once;
- in the middle of a send (the server has the message but has not answered): the email
  goes out again with the same Message-ID (the delivery id), so the receiver can drop
  the copy; nothing is lost either way."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from monitor.alerting.notifiers.email import message_id
from monitor.context import Context
from monitor.models import Alert, Delivery
from tests.alerting.conftest import Leader, Pipeline
from tests.conftest import SECRET
from tests.support.broker import Broker
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
MAIL_FROM = "labormon@union.example.org"


@dataclass
class HoldingHandler:
    """Accepts mail, or, while `hold` matches the subject, takes the whole message and
    never answers: a daemon killed now was in the middle of that send."""

    hold: str | None = None
    inbox: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.inbox.append(message)
        if self.hold and self.hold in str(message["Subject"]):
            await asyncio.Event().wait()  # until the connection or the server goes away
        return "250 Message accepted for delivery"

    def ids(self, text: str) -> Counter[str]:
        with self.lock:
            return Counter(str(m["Message-ID"]) for m in self.inbox if text in str(m["Subject"]))


class Daemon:
    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABORMON_")}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(self.config)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


async def until(
    check: Callable[[], Awaitable[bool]], what: str, daemon: Daemon, timeout: float = 20
) -> None:
    """Poll a condition under a deadline (the daemon is another process)."""
    async with asyncio.timeout(timeout):
        while not await check():
            if not daemon.alive():
                raise AssertionError(f"daemon died waiting for {what}:\n{daemon.log.read_text()}")
            await asyncio.sleep(0.05)


async def deliveries(ctx: Context, text: str) -> list[Delivery]:
    async with ctx.db.session() as session:
        rows = await session.scalars(select(Delivery).where(Delivery.subject.contains(text)))
        return list(rows.all())


@pytest.fixture
def stalled_smtp() -> Iterator[socket.socket]:
    """Accepts TCP connections (the kernel does) and never greets: mail cannot go out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", free_port()))
    sock.listen(64)
    yield sock
    sock.close()


async def test_killed_before_the_emails_and_in_the_middle_of_a_send(
    pipeline: Pipeline,
    leaders: dict[str, Leader],
    db_url: str,
    tmp_path: Path,
    broker: Broker,
    stalled_smtp: socket.socket,
) -> None:
    smtp_port = stalled_smtp.getsockname()[1]
    config = tmp_path / "labormon.toml"
    config.write_text(
        f"""
[database]
url = "{db_url}"
[http]
bind = "127.0.0.1:{free_port()}"
public_url = "https://labormon.example.org"
[smtp]
url = "smtp://127.0.0.1:{smtp_port}"
mail_from = "{MAIL_FROM}"
timeout = "60s"
[security]
secret_key = "{SECRET}"
[mqtt]
url = "{broker.url}"
client_id = "labormon-crash-{os.getpid()}"
[alerting]
mqtt_events = false
poll_interval = "1s"
[logging]
format = "json"
""",
        encoding="utf-8",
    )
    daemon = Daemon(config, tmp_path / "daemon.log")
    ctx = pipeline.ctx
    try:
        # 1. The alert is committed, its two emails claimed; the SMTP server never greets.
        await pipeline.finding("II", key="event:A", title="甲公司40名工人聚集讨薪")
        daemon.start()

        async def claimed() -> bool:
            rows = await deliveries(ctx, "甲公司")
            return len(rows) == 2 and all(d.attempts == 1 for d in rows)

        await until(claimed, "the first emails to be claimed", daemon)
        daemon.kill()
        (alert_a,) = await pipeline.alerts()
        assert alert_a.status == "triggered"
        assert {d.status for d in await deliveries(ctx, "甲公司")} == {"pending"}

        # 2. A restart sends them, exactly once. Then a second alert arrives and the daemon
        #    is killed while the server holds both of its messages, unanswered.
        stalled_smtp.close()
        handler = HoldingHandler(hold="乙公司")
        controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        try:
            daemon.start()

            async def first_sent() -> bool:
                rows = await deliveries(ctx, "甲公司")
                return {d.status for d in rows} == {"sent"}

            await until(first_sent, "the first emails to be sent after the restart", daemon)
            await pipeline.finding("II", key="event:B", title="乙公司60名工人堵门讨薪")

            async def held() -> bool:
                return sum(handler.ids("乙公司").values()) == 2

            await until(held, "the second emails to reach the server", daemon)
            daemon.kill()

            # 3. Restarted: the messages caught mid-send go out again, same Message-ID.
            handler.hold = None
            daemon.start()

            async def resent() -> bool:
                return sum(handler.ids("乙公司").values()) == 4

            await until(resent, "the interrupted emails to be sent again", daemon)
            daemon.stop()
        finally:
            controller.stop()
    finally:
        daemon.stop()

    first = handler.ids("甲公司")
    assert len(first) == 2
    assert set(first.values()) == {1}  # after the kill before sending: exactly once
    second = handler.ids("乙公司")
    b_deliveries = await deliveries(ctx, "乙公司")
    assert sorted(second) == sorted(message_id(d.id, MAIL_FROM) for d in b_deliveries)
    assert set(second.values()) == {2}  # a copy, with the same id to drop it by
    assert {d.status for d in b_deliveries} == {"sent"}
    async with ctx.db.session() as session:
        alerts = (await session.scalars(select(Alert).order_by(Alert.id))).all()
        all_deliveries = (await session.scalars(select(Delivery))).all()
    assert [a.entity_key for a in alerts] == ["event:A", "event:B"]
    assert len(all_deliveries) == 4  # nothing written twice by the restarts
    recipients = Counter(str(m["To"]) for m in handler.inbox)
    assert recipients == {leaders["county"].email: 3, leaders["city"].email: 3}
