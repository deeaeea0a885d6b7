"""Each notifier against a receiver that behaves like the real one: group robots (WeCom,
DingTalk, Feishu) with their signatures and errcodes, email over STARTTLS and TLS with
attachments, alert events on a real MQTT broker."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from monitor.config import GroupConfig
from monitor.models import Document
from tests.alerting.conftest import COUNTY, Leader, Pipeline
from tests.alerting.fakes import ChatServer
from tests.support.broker import Broker
from tests.support.mail import MailSink, _Handler
from tests.support.ports import free_port


@pytest.fixture
def chat(pipeline: Pipeline) -> Iterator[ChatServer]:
    server = ChatServer(now=pipeline.ctx.clock.now).start()
    yield server
    server.stop()


def add_group(pipeline: Pipeline, **group: object) -> None:
    pipeline.ctx.settings.alerting.groups.append(
        GroupConfig.model_validate({"region": COUNTY} | group)
    )


async def statuses(pipeline: Pipeline, channel: str) -> list[str]:
    return [d.status for d in await pipeline.deliveries(channel=channel)]


async def test_wecom_dingtalk_and_feishu_robots_get_their_own_signed_formats(
    pipeline: Pipeline, chat: ChatServer
) -> None:
    chat.wecom_keys.add("wk-1")
    chat.dingtalk_secrets["dt-1"] = "SEC0123456789abcdef"
    chat.feishu_secrets["fs-1"] = "feishu-secret"
    add_group(
        pipeline, id="zy-wecom", kind="wecom", url=f"{chat.base}/cgi-bin/webhook/send?key=wk-1"
    )
    add_group(
        pipeline,
        id="zy-ding",
        kind="dingtalk",
        url=f"{chat.base}/robot/send?access_token=dt-1",
        secret="SEC0123456789abcdef",
    )
    add_group(
        pipeline,
        id="zy-feishu",
        kind="feishu",
        url=f"{chat.base}/open-apis/bot/v2/hook/fs-1",
        secret="feishu-secret",
    )
    await pipeline.finding("I", people=150, title="资阳建工150名农民工堵路讨薪")
    await pipeline.finding("III", key="event:R2", title="乙公司拖欠工资")
    await pipeline.run()
    for channel in ("wecom", "dingtalk", "feishu"):
        assert await statuses(pipeline, channel) == ["sent", "sent"], channel
    wecom = [r.json for r in chat.to("/cgi-bin/webhook/send")]
    # Level I @s everyone (WeCom markdown cannot, so it goes as text); level III is markdown.
    urgent = next(m for m in wecom if m["msgtype"] == "text")
    assert urgent["text"]["mentioned_list"] == ["@all"]
    assert "150" in urgent["text"]["content"]
    other = next(m for m in wecom if m["msgtype"] == "markdown")
    assert '<font color="comment">较大（黄色）</font>' in other["markdown"]["content"]
    ding = [r.json for r in chat.to("/robot/send")]
    assert {d["at"]["isAtAll"] for d in ding} == {True, False}
    assert all(d["markdown"]["title"].startswith("【") for d in ding)
    cards = [r.json for r in chat.to("/open-apis/bot/v2/hook/fs-1")]
    assert {c["card"]["header"]["template"] for c in cards} == {"red", "yellow"}
    assert any("<at id=all></at>" in c["card"]["elements"][0]["text"]["content"] for c in cards)


async def test_robot_errcodes_are_permanent_or_retried_as_the_vendor_means_them(
    pipeline: Pipeline, chat: ChatServer
) -> None:
    chat.wecom_keys.add("wk-busy")
    chat.rate_limited.update({"wk-busy", "fs-busy"})
    chat.dingtalk_secrets["dt-1"] = "right-secret"
    chat.feishu_secrets["fs-busy"] = ""
    add_group(
        pipeline, id="bad-key", kind="wecom", url=f"{chat.base}/cgi-bin/webhook/send?key=gone"
    )
    add_group(
        pipeline, id="busy", kind="wecom", url=f"{chat.base}/cgi-bin/webhook/send?key=wk-busy"
    )
    add_group(
        pipeline,
        id="bad-sign",
        kind="dingtalk",
        url=f"{chat.base}/robot/send?access_token=dt-1",
        secret="wrong-secret",
    )
    add_group(
        pipeline, id="fs-busy", kind="feishu", url=f"{chat.base}/open-apis/bot/v2/hook/fs-busy"
    )
    await pipeline.finding("II")
    await pipeline.run()
    by_recipient = {d.recipient: d for d in await pipeline.deliveries()}
    assert by_recipient["group:bad-key"].status == "failed"
    assert "errcode 93000" in (by_recipient["group:bad-key"].last_error or "")
    assert by_recipient["group:bad-sign"].status == "failed"
    assert "errcode 310000" in (by_recipient["group:bad-sign"].last_error or "")
    assert by_recipient["group:busy"].status == "pending"  # 45009: more than 20 a minute
    assert by_recipient["group:fs-busy"].status == "pending"  # 11232: frequency limited
    chat.rate_limited.clear()
    await pipeline.at(by_recipient["group:busy"].next_attempt_at)
    await pipeline.at(by_recipient["group:fs-busy"].next_attempt_at)
    by_recipient = {d.recipient: d for d in await pipeline.deliveries()}
    assert by_recipient["group:busy"].status == "sent"
    assert by_recipient["group:fs-busy"].status == "sent"


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_email_over_starttls_and_tls_with_an_attachment(
    pipeline: Pipeline,
    leaders: dict[str, Leader],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert, key = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    # A private CA is trusted the standard OpenSSL way.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    async with pipeline.ctx.db.session() as session:
        document = Document(
            kind="monthly_report",
            key="2024-12",
            filename="信访定量分析月报-2024-12.pdf",
            content_type="application/pdf",
            data=b"%PDF-1.7 test",
            created_at=pipeline.clock.now(),
        )
        session.add(document)
        await session.flush()
        document_id = document.id

    async def send_report() -> None:
        async with pipeline.ctx.db.session() as session:
            await pipeline.book.outbox.enqueue(
                session,
                channel="email",
                recipient=leaders["city"].id,
                address=leaders["city"].email,
                subject="益阳市2024年12月信访定量分析月报",
                body={
                    "text": "月报见附件。",
                    "html": "<p>月报见附件。</p>",
                    "attachments": [{"document_id": document_id}],
                },
                purpose="report",
                now=pipeline.clock.now(),
            )
        assert await pipeline.sender.run_once() == 1

    smtp = pipeline.ctx.settings.smtp
    starttls, implicit = _Handler(), _Handler()
    starttls_port, tls_port = free_port(), free_port()
    controllers = [
        Controller(
            starttls,
            hostname="127.0.0.1",
            port=starttls_port,
            tls_context=server_tls,
            require_starttls=True,
        ),
        Controller(implicit, hostname="127.0.0.1", port=tls_port, ssl_context=server_tls),
    ]
    for controller in controllers:
        controller.start()
    try:
        smtp.url = f"smtp://127.0.0.1:{starttls_port}?starttls=true"
        await send_report()
        smtp.url = f"smtps://127.0.0.1:{tls_port}"
        await send_report()
    finally:
        for controller in controllers:
            controller.stop()
    for handler in (starttls, implicit):
        (received,) = handler.inbox
        (attachment,) = list(received.message.iter_attachments())
        assert attachment.get_filename() == "信访定量分析月报-2024-12.pdf"
        assert attachment.get_content() == b"%PDF-1.7 test"
        assert received.message["Subject"] == "益阳市2024年12月信访定量分析月报"
    assert await statuses(pipeline, "email") == ["sent", "sent"]


async def test_alert_events_are_published_on_mqtt_not_retained(
    pipeline: Pipeline, leaders: dict[str, Leader], own_broker: Broker, mail: MailSink
) -> None:
    settings = pipeline.ctx.settings
    settings.mqtt.url = own_broker.url
    settings.alerting.mqtt_events = True
    topic = f"labormon/v1/alerts/{COUNTY}"
    async with aiomqtt.Client(own_broker.host, own_broker.port, identifier="alert-watcher") as sub:
        await sub.subscribe(topic, qos=1)
        await pipeline.finding("II")
        await pipeline.run()
        (alert,) = await pipeline.alerts()
        await pipeline.book.acknowledge(alert.id, actor=leaders["county"].id)
        await pipeline.run()
        received = []
        async with asyncio.timeout(10):
            async for message in sub.messages:
                received.append(message)
                if len(received) == 2:
                    break
    events = [json.loads(bytes(m.payload)) for m in received]  # type: ignore[arg-type]
    assert [e["event"] for e in events] == ["AlertTriggered", "AlertAcknowledged"]
    assert {str(m.topic) for m in received} == {topic}
    assert not any(m.retain for m in received)
    assert events[0]["level"] == "II"
    assert events[0]["delivery_id"] != events[1]["delivery_id"]
    # Nothing retained: a late subscriber gets no stale alert.
    async with aiomqtt.Client(own_broker.host, own_broker.port, identifier="late") as late:
        await late.subscribe(topic, qos=1)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await anext(aiter(late.messages))
    assert len(mail.inbox) == 2
    # Disconnect while the broker is still up (it stops first at teardown).
    await pipeline.sender.aclose()
