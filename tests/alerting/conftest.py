"""Fixtures of the alerting tests: leaders at the three tiers, the alerting stages wired
to the session's real SMTP server, and helpers to write findings the way detectors do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.alerting.book import AlertBook
from monitor.alerting.outbox import OutboxSender
from monitor.alerting.service import AlertingLoop, EscalationLoop
from monitor.clock import FrozenClock
from monitor.config import Settings
from monitor.context import Context
from monitor.daemon import make_context
from monitor.models import Alert, AlertEvent, Delivery, Finding
from tests.support.mail import MailSink

COUNTY, CITY, PROVINCE, OTHER_COUNTY = "430902", "430900", "430000", "430903"
PUBLIC_URL = "https://labormon.example.org"


@dataclass
class Leader:
    id: str
    region: str
    email: str
    token: str = ""


LEADERS = {
    "county": Leader("zy-duty", COUNTY, "duty@ziyang.example.org"),
    "city": Leader("yy-duty", CITY, "duty@yiyang.example.org"),
    "province": Leader("hn-duty", PROVINCE, "duty@hunan.example.org"),
    "other": Leader("hs-duty", OTHER_COUNTY, "duty@heshan.example.org"),
}


@pytest.fixture
def alert_settings(settings: Settings, mail: MailSink) -> Settings:
    settings.smtp.url = mail.url
    settings.smtp.mail_from = "labormon@union.example.org"
    settings.http.public_url = PUBLIC_URL
    # MQTT events have their own test against a real broker.
    settings.alerting.mqtt_events = False
    # Handling deadlines (verify within 1 h for level I, ...) have their own tests
    # (test_handling.py); here they would add reminders to every escalation count.
    settings.handling.verify_within = {}
    settings.handling.progress_every = {}
    return settings


@pytest.fixture
async def actx(alert_settings: Settings, clock: FrozenClock) -> AsyncIterator[Context]:
    context = make_context(alert_settings, clock=clock)
    yield context
    await context.close()


@pytest.fixture
async def leaders(actx: Context) -> dict[str, Leader]:
    made = {}
    for tier, leader in LEADERS.items():
        new = await actx.accounts.add(
            kind="leader",
            account_id=leader.id,
            region_code=leader.region,
            email=leader.email,
            name="张书记",
            phone="13800138000",
        )
        made[tier] = Leader(leader.id, leader.region, leader.email, new.token)
    return made


@dataclass
class Pipeline:
    """The alerting stages of one daemon, driven step by step."""

    ctx: Context
    book: AlertBook
    alerting: AlertingLoop
    escalation: EscalationLoop
    sender: OutboxSender
    next_id: list[int] = field(default_factory=lambda: [0])

    @property
    def clock(self) -> FrozenClock:
        assert isinstance(self.ctx.clock, FrozenClock)
        return self.ctx.clock

    async def run(self) -> None:
        """What the daemon does after a wake-up: findings, due steps, then sending."""
        await self.alerting.run_once()
        await self.escalation.run_once()
        await self.sender.run_once()

    async def at(self, when: datetime) -> None:
        self.clock.set(when)
        await self.run()

    async def finding(
        self,
        level: str | None,
        *,
        key: str = "event:R1",
        kind: str = "event",
        region: str = COUNTY,
        point: str | None = "P1",
        people: int = 40,
        title: str = "资阳建工项目部40余名农民工聚集讨薪",
        sources: list[str] | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> int:
        """A finding as a detector writes it (DEVELOPING.md conventions)."""
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            row = Finding(
                detector="event_severity",
                kind=kind,
                entity_type="event" if kind == "event" else "point",
                entity_id=key.split(":", 1)[-1],
                dedup_key=key,
                region_code=region,
                point_id=point,
                score=80.0,
                level=level,
                title=title,
                evidence={
                    "factors": [
                        {"code": "people", "text": f"涉及{people}人，达到重大标准", "weight": 0.6},
                        {"code": "arrears", "text": "拖欠工资3个月", "weight": 0.3},
                        {"code": "season", "text": "春节前欠薪高发期", "weight": 0.1},
                    ],
                    "source_ids": sources or ["R1"],
                    "people_involved": people,
                    "enterprise_name": "资阳建工",
                    "event_type": "gathering",
                    "category": "wage_arrears",
                }
                | (evidence or {}),
                as_of=now,
                created_at=now,
            )
            session.add(row)
            await session.flush()
            return row.id

    async def alerts(self) -> list[Alert]:
        async with self.ctx.db.session() as session:
            return list((await session.scalars(select(Alert).order_by(Alert.id))).all())

    async def events(self, alert_id: int) -> list[str]:
        async with self.ctx.db.session() as session:
            rows = await session.scalars(
                select(AlertEvent.event)
                .where(AlertEvent.alert_id == alert_id)
                .order_by(AlertEvent.at, AlertEvent.id)
            )
            return list(rows.all())

    async def deliveries(self, **where: Any) -> list[Delivery]:
        async with self.ctx.db.session() as session:
            query = select(Delivery).order_by(Delivery.created_at, Delivery.id)
            for column, value in where.items():
                query = query.where(getattr(Delivery, column) == value)
            return list((await session.scalars(query)).all())

    async def count(self, model: Any) -> int:
        async with self.ctx.db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
async def pipeline(actx: Context) -> AsyncIterator[Pipeline]:
    book = AlertBook(actx)
    sender = OutboxSender(actx, node="test-node")
    yield Pipeline(actx, book, AlertingLoop(actx, book), EscalationLoop(actx, book), sender)
    await sender.aclose()


def minutes(m: float) -> timedelta:
    return timedelta(minutes=m)


async def add_point(
    ctx: Context, point_id: str = "P1", region: str = COUNTY, name: str = "资阳建工"
) -> None:
    from monitor.records import parse_row
    from monitor.store import Submission

    row = {
        "point_id": point_id,
        "name": name,
        "region_code": region,
        "industry": "construction",
        "headcount": "300",
    }
    result = await ctx.store.store("point", [Submission(parse_row("point", row), "file")])
    assert result.stored == [point_id] or result.updated == [point_id]
