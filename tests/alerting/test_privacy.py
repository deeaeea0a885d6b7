"""Personal data (interfaces §7) never reaches a notification, a link page or a log line:
petitioners' names and phones, informants' identities, leaders' names and phones."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from structlog.testing import capture_logs

from monitor.config import GroupConfig
from monitor.records import parse_row
from monitor.store import Submission
from monitor.web.app import create_app
from tests.alerting.conftest import COUNTY, Leader, Pipeline
from tests.alerting.fakes import ChatServer
from tests.support.mail import MailSink

PERSONAL = ("王五", "13900001111", "inf-wangwu", "李四", "13712345678", "张书记", "13800138000")
#: Whatever a detector writes in free-text fields the notifications never show.
HIDDEN = ("李四说老板跑路了",)


def gathering(report_id: str, informant_id: str, description: str) -> dict[str, object]:
    """An informant's report of 120 workers gathering at 资阳建工."""
    return {
        "report_id": report_id,
        "informant_id": informant_id,
        "occurred_at": "2025-01-15T08:40:00+08:00",
        "region_code": COUNTY,
        "enterprise_name": "资阳建工",
        "event_type": "gathering",
        "category": "wage_arrears",
        "people_involved": 120,
        "description": description,
    }


@pytest.fixture
def chat(pipeline: Pipeline) -> Iterator[ChatServer]:
    server = ChatServer(now=pipeline.ctx.clock.now).start()
    yield server
    server.stop()


async def test_no_personal_data_in_notifications_pages_or_logs(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink, chat: ChatServer
) -> None:
    ctx = pipeline.ctx
    chat.wecom_keys.add("k")
    for group in (
        {"id": "zy-wecom", "kind": "wecom", "url": f"{chat.base}/cgi-bin/webhook/send?key=k"},
        {"id": "zy-hook", "kind": "webhook", "url": f"{chat.base}/hook/zy"},
    ):
        ctx.settings.alerting.groups.append(GroupConfig.model_validate({"region": COUNTY} | group))
    petition = {
        "petition_id": "Q1",
        "received_at": "2025-01-15T08:30:00+08:00",
        "channel": "visit",
        "region_code": COUNTY,
        "people_involved": 120,
        "summary": "资阳建工拖欠120名农民工工资，联系人王五13900001111",
        "petitioner_name": "王五",
        "petitioner_phone": "13900001111",
    }
    await ctx.store.store("petition", [Submission(parse_row("petition", petition), "http")])
    report = gathering("R7", "inf-wangwu", "李四说老板跑路了，工人聚集在项目部")
    stored = await ctx.store.store(
        "report", [Submission(parse_row("report", report), "mqtt", "inf-wangwu")]
    )
    assert stored.stored == ["R7"]
    with capture_logs() as logs:
        # A careless detector: free text, an informant id and a phone in the evidence.
        await pipeline.finding(
            "I",
            # Known values behind the sources (Q1's petitioner, R7's informant) are
            # replaced; numbers are masked whatever they are.
            title="资阳建工120人集体上访（王五反映，信息员inf-wangwu核实，电话13712345678）",
            sources=["Q1", "R7"],
            evidence={
                "informant_id": "inf-wangwu",
                "description": "李四说老板跑路了",
                "petitioner_name": "王五",
                "summary": petition["summary"],
            },
        )
        await pipeline.run()
        (alert,) = await pipeline.alerts()
        app = create_app(ctx)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            link = re.search(r"/ack/[\w\-.]+", mail.to(leaders["county"].email)[0].text())
            assert link is not None
            page = (await client.get(link.group(0))).text
            done = (await client.post(link.group(0))).text
        await pipeline.book.resolve(alert.id, actor=leaders["city"].id, reason="已处置")
        await pipeline.run()
    seen = {
        "email": "\n".join(m.subject + m.text() + m.html() for m in mail.inbox),
        "robots": "\n".join(r.body.decode() for r in chat.requests),
        "pages": page + done,
        "logs": json.dumps(logs, ensure_ascii=False, default=str),
        "outbox": json.dumps(
            [d.body for d in await pipeline.deliveries()], ensure_ascii=False, default=str
        ),
    }
    assert len(mail.inbox) >= 3
    assert len(chat.requests) >= 4
    assert "资阳建工" in seen["email"]  # the message itself is there
    assert "王某反映" in seen["email"]  # the petitioner's name, replaced
    assert "某信息员核实" in seen["email"]
    assert "137****5678" in seen["email"]  # the phone, masked
    for where, text in seen.items():
        for value in PERSONAL + HIDDEN:
            assert value not in text, f"{value} in {where}"


async def test_names_in_free_text_are_masked_in_notifications(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink, chat: ChatServer
) -> None:
    """The people a summary or a description names that are none of the record's own
    personal fields (a contact, a reporter named in the text) are masked too, and the
    enterprise and the place stay readable."""
    ctx = pipeline.ctx
    chat.wecom_keys.add("k")
    ctx.settings.alerting.groups.append(
        GroupConfig.model_validate(
            {"region": COUNTY, "id": "zy-hook", "kind": "webhook", "url": f"{chat.base}/hook/zy"}
        )
    )
    report = gathering(
        "R9",
        "inf-9",
        "资阳建工项目部120名农民工在资阳区政府门口聚集，"
        "反映人：张三，电话13812345678，联系人王小明称老板已失联",
    )
    petition = {
        "petition_id": "Q9",
        "received_at": "2025-01-15T09:30:00+08:00",
        "channel": "visit",
        "region_code": COUNTY,
        "people_involved": 30,
        "summary": "反映人称公司拖欠三个月工资，投诉人李大伟，身份证430902199001011234",
        "petitioner_name": "赵六",
    }
    await ctx.store.store("report", [Submission(parse_row("report", report), "mqtt", "inf-9")])
    await ctx.store.store("petition", [Submission(parse_row("petition", petition), "http")])
    await pipeline.finding("I", key="event:R9", sources=["R9"])
    await pipeline.finding(
        "II", key="event:Q9", point=None, sources=["Q9"], evidence={"record_kind": "petition"}
    )
    await pipeline.run()
    alerts = await pipeline.alerts()
    assert len(alerts) == 2
    seen = {
        "email": "\n".join(m.subject + m.text() + m.html() for m in mail.inbox),
        "robots": "\n".join(r.body.decode() for r in chat.requests),
        "outbox": json.dumps(
            [d.body for d in await pipeline.deliveries()], ensure_ascii=False, default=str
        ),
        "alerts": json.dumps([a.evidence for a in alerts], ensure_ascii=False),
    }
    for where, text in seen.items():
        for value in ("张三", "王小明", "李大伟", "13812345678", "430902199001011234"):
            assert value not in text, f"{value} in {where}"
    email = seen["email"]
    assert "反映人：张某，电话138****5678，联系人王某称老板已失联" in email
    assert "投诉人李某" in email
    # Not a name: the verb after 反映人, the enterprise, the place.
    assert "反映人称公司拖欠三个月工资" in email
    assert "资阳建工项目部120名农民工在资阳区政府门口聚集" in email
