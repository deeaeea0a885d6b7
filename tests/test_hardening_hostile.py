"""Issue 19: a generator of hostile payloads (control characters, markdown and HTML,
formulas, personal data in every JSON type and in broken JSON) sent through MQTT, HTTP
and file import into one running daemon with real Mosquitto, real SMTP and the database
under test. Afterwards: no personal value in clear in the database, the logs, the emails
or the report's CSV; no delivery left pending; the daemon still up."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
from sqlalchemy import func, select, text
from structlog.testing import capture_logs

from ingest.files import FileImporter
from ingest.mqtt import MqttIngest
from monitor import bus
from monitor.context import Context
from monitor.daemon import Daemon
from monitor.models import Base, Delivery
from monitor.report.export import render_csv
from monitor.report.figures import ReportOptions, collect_figures
from tests.support.broker import Broker
from tests.support.daemon import eventually
from tests.support.mail import MailSink
from tests.support.ports import free_port

COUNTIES = ["430902", "430903", "430921"]
HOSTILE_TEXT = [
    "恶意公司\r\n丁",
    "公司\x00名\x1b[31m",
    "[【已处置，点此确认】](http://evil.example/a)",
    "![x](http://evil.example/p.png)",
    '<font color="info">已解除</font>',
    "<at id=all></at>",
    "<script>alert(1)</script>",
    '=HYPERLINK("http://evil.example","点此")',
    "+SUM(1+1)",
    "@cmd",
    "**粗体** `code` # 标题 | 表格 |",
    "公司\u2028名\u2029",
]
SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张"


@dataclass(frozen=True)
class Hostile:
    channel: str  # mqtt | http | file
    kind: str  # petition | report
    body: bytes
    #: Personal values this payload carries: none may be found in clear afterwards.
    secrets: tuple[str, ...]


def _name(i: int) -> str:
    return f"{SURNAMES[i % len(SURNAMES)]}秘{chr(0x4E00 + 300 + i)}{chr(0x4E00 + 900 + i)}"


def _phone(i: int) -> str:
    return f"139{i:08d}"


def generate(prefix: str, n: int) -> Iterator[Hostile]:
    rng = random.Random(19)
    for i in range(n):
        channel = ("mqtt", "http", "file")[i % 3]
        kind = rng.choice(["petition", "report"])
        name, phone = _name(i), _phone(i)
        hostile = rng.choice(HOSTILE_TEXT)
        county = COUNTIES[i % len(COUNTIES)]
        if kind == "petition":
            data: dict[str, Any] = {
                "petition_id": f"{prefix}-Q{i}",
                "received_at": "2025-01-10T10:00:00+08:00",
                "channel": "visit",
                "region_code": county,
                "enterprise_name": hostile,
                "category": "wage_arrears",
                "people_involved": rng.choice([1, 6, 40, 150]),
                "summary": f"拖欠工资{hostile}",
                "petitioner_name": name,
                "petitioner_phone": phone,
            }
        else:
            data = {
                "report_id": f"{prefix}-R{i}",
                "informant_id": "inf-h",
                "occurred_at": "2025-01-15T08:30:00+08:00",
                "region_code": county,
                "enterprise_name": hostile,
                "event_type": rng.choice(["gathering", "work_stoppage", "road_blocking"]),
                "category": "wage_arrears",
                "people_involved": rng.choice([3, 12, 40, 150]),
                "description": f"工人聚集{hostile}",
                # Personal data where it does not belong: kept masked as an unknown field.
                "app": {"informant_name": name, "informant_phone": phone},
            }
        variant = rng.randrange(6)
        if kind == "petition" and variant == 1:
            data["petitioner_phone"] = int(phone)  # a number: refused, masked
        elif kind == "petition" and variant == 3:
            data["petitioner_name"] = [name, {"alias": name}]  # a list, an object
        elif variant == 5:
            data["people_involved"] = "很多"  # refused for another field
        raw = json.dumps(data, ensure_ascii=False)
        if variant == 4:
            raw = raw[:-1] + ",}"  # broken JSON (a trailing comma)
        yield Hostile(channel, kind, raw.encode(), (name, phone))


async def _accounts(ctx: Context, mail: MailSink) -> dict[str, str]:
    tokens = {}
    for kind, account_id, region, email in [
        ("informant", "inf-h", "430900", None),
        ("source", "src-h", "430900", None),
        ("leader", "lead-county", "430902", "county@h.example"),
        ("leader", "lead-county-2", "430903", "county2@h.example"),
        ("leader", "lead-county-3", "430921", "county3@h.example"),
        ("leader", "lead-city", "430900", "city@h.example"),
        ("leader", "lead-province", "430000", "province@h.example"),
    ]:
        new = await ctx.accounts.add(
            kind=kind, account_id=account_id, region_code=region, email=email
        )
        tokens[account_id] = new.token
    return tokens


async def test_200_hostile_payloads_through_mqtt_http_and_files(
    ctx: Context, broker: Broker, mail: MailSink, tmp_path: Path, backend: str
) -> None:
    prefix = f"hx-{backend}"
    topics = f"t-{prefix}/labormon/v1"
    settings = ctx.settings
    settings.mqtt.url = broker.url
    settings.mqtt.enabled = True
    settings.mqtt.client_id = f"hostile-{backend}"
    settings.mqtt.topic_prefix = topics
    settings.http.bind = f"127.0.0.1:{free_port()}"
    settings.smtp.url = mail.url
    settings.alerting.mqtt_events = False
    settings.alerting.batch_window = timedelta(0)
    tokens = await _accounts(ctx, mail)
    payloads = list(generate(prefix, 240))
    secrets = {s for p in payloads for s in p.secrets}
    for channel in ("mqtt", "http", "file"):
        assert sum(p.channel == channel for p in payloads) == 80

    services = ["ingest", "mqtt", "http", "detectors", "alerting", "escalation", "outbox"]
    daemon = Daemon(ctx, only=services)
    stop = asyncio.Event()
    with capture_logs() as logs:
        running = asyncio.create_task(daemon.run(stop))
        try:
            async with asyncio.timeout(20):
                await daemon.ready.wait()
                for service in daemon.services:
                    if isinstance(service, MqttIngest):
                        await service.wait_connected()
            await _send(ctx, payloads, tokens, broker, topics, tmp_path)
            sent = len(payloads)
            await eventually(
                lambda: _answered(ctx), lambda n: n >= sent, 60, what="every payload answered"
            )
            ctx.bus.notify(bus.RECORDS)
            ctx.bus.notify(bus.EVENTS)
            await eventually(
                lambda: _pending(ctx), lambda n: n == 0, 60, what="no delivery pending"
            )
            assert not running.done(), "the daemon stopped"
        finally:
            stop.set()
            async with asyncio.timeout(15):
                await running

    # Deliveries: none stuck, none failed.
    async with ctx.db.session() as session:
        counted = await session.execute(
            select(Delivery.status, func.count()).group_by(Delivery.status)
        )
        statuses = {status: n for status, n in counted.all()}
    assert statuses.get("sent", 0) > 0, statuses
    assert set(statuses) == {"sent"}, statuses
    # The database: every text of every table.
    dump = await _dump(ctx)
    _assert_clean("database", dump, secrets)
    # The logs.
    _assert_clean("logs", json.dumps(logs, ensure_ascii=False, default=str), secrets)
    # The notifications (every email as it went over the wire).
    assert mail.inbox
    wire = "\n".join(m.message.as_string() for m in mail.inbox)
    wire += "\n".join(m.text() + m.html() for m in mail.inbox)
    _assert_clean("emails", wire, secrets)
    assert all("\n" not in m.subject and "\r" not in m.subject for m in mail.inbox)
    # The exports: the monthly report's CSV.
    figures = await collect_figures(
        ctx.db,
        date(2025, 1, 1),
        options=ReportOptions(zone=settings.organisation.zone),
        now=ctx.clock.now() + timedelta(days=20),
    )
    csv_text = render_csv(figures).decode("utf-8-sig")
    _assert_clean("report CSV", csv_text, secrets)
    for line in csv_text.splitlines():
        for cell in line.split(","):
            assert not cell.startswith(("=", "+", "@")), line


async def _send(
    ctx: Context,
    payloads: list[Hostile],
    tokens: dict[str, str],
    broker: Broker,
    topics: str,
    tmp_path: Path,
) -> None:
    sender = {"petition": "src-h", "report": "inf-h"}
    plural = {"petition": "petitions", "report": "reports"}
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"pub-{topics}") as client:
        for p in payloads:
            if p.channel == "mqtt":
                topic = f"{topics}/{plural[p.kind]}/{sender[p.kind]}"
                await client.publish(topic, p.body, qos=1)
    async with httpx.AsyncClient(base_url=ctx.settings.http.base_url, timeout=20) as http:
        for p in payloads:
            if p.channel == "http":
                response = await http.post(
                    f"/api/v1/{plural[p.kind]}",
                    content=p.body,
                    headers={
                        "Authorization": f"Bearer {tokens[sender[p.kind]]}",
                        "Content-Type": "application/json",
                    },
                )
                assert response.status_code in (200, 201, 403, 422), response.text
    files = tmp_path / "import"
    files.mkdir()
    lines = {"petition": [], "report": []}  # type: dict[str, list[bytes]]
    for p in payloads:
        if p.channel == "file":
            lines[p.kind].append(p.body)
    (files / "petitions.jsonl").write_bytes(b"\n".join(lines["petition"]) + b"\n")
    (files / "reports.jsonl").write_bytes(b"\n".join(lines["report"]) + b"\n")
    report = await FileImporter(ctx.store).run(files / "reports.jsonl", kind="report")
    report2 = await FileImporter(ctx.store).run(files / "petitions.jsonl", kind="petition")
    assert report.kinds and report2.kinds
    ctx.bus.notify(bus.RECORDS)
    ctx.bus.notify(bus.EVENTS)


async def _answered(ctx: Context) -> int:
    async with ctx.db.session() as session:
        total = 0
        for table in ("petitions", "informant_reports", "rejected_messages"):
            total += int(await session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
        return total


async def _pending(ctx: Context) -> int:
    async with ctx.db.session() as session:
        unchecked = 0
        for table in ("petitions", "informant_reports"):
            unchecked += int(
                await session.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE severity_checked_at IS NULL")
                )
                or 0
            )
        unprocessed = int(
            await session.scalar(text("SELECT count(*) FROM findings WHERE processed_at IS NULL"))
            or 0
        )
        pending = int(
            await session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.status == "pending")
            )
            or 0
        )
    return unchecked + unprocessed + pending


async def _dump(ctx: Context) -> str:
    parts = []
    async with ctx.db.session() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            for row in rows:
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        parts.append(bytes(value).decode("utf-8", errors="replace"))
                    else:
                        parts.append(json.dumps(value, ensure_ascii=False, default=str))
    return "\n".join(parts)


def _assert_clean(where: str, haystack: str, secrets: set[str]) -> None:
    found = sorted(s for s in secrets if s in haystack)
    assert not found, f"{where} holds personal data in clear: {found[:5]}"
