"""Issue 19, finding 4: titles and company names went into the robots' markdown
unescaped; a link "【已处置，点此确认】", a remote image and a <font> tag rendered live.
Every notifier is sent a hostile name, through the local fake of each vendor."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from monitor.config import GroupConfig
from tests.alerting.conftest import COUNTY, Leader, Pipeline
from tests.alerting.fakes import ChatServer
from tests.support.mail import MailSink

HOSTILE = (
    "恶意公司[【已处置，点此确认】](http://evil.example/ack) ![x](http://evil.example/p.png)"
    ' <font color="info">已解除</font> <at id=all></at> **粗** `code` # 标题'
)
#: Markup that must not reach a robot from untrusted text.
LIVE = [
    re.compile(r"\[[^\]]*\]\("),  # a link or an image
    re.compile(r'<font color="info"', re.I),  # ours colour the level only
    re.compile(r"<at id=all></at>.*恶意", re.S),  # an @all that the name itself carries
    re.compile(r"https?://"),
    re.compile(r"\*\*粗\*\*"),
]


@pytest.fixture
def chat(pipeline: Pipeline) -> Iterator[ChatServer]:
    server = ChatServer(now=pipeline.ctx.clock.now).start()
    yield server
    server.stop()


async def test_every_notifier_sends_a_hostile_name_inert(
    pipeline: Pipeline, chat: ChatServer, leaders: dict[str, Leader], mail: MailSink
) -> None:
    chat.wecom_keys.add("wk-h")
    chat.dingtalk_secrets["dt-h"] = "SEC0123456789abcdef"
    chat.feishu_secrets["fs-h"] = "feishu-secret"
    groups = [
        {"id": "h-wecom", "kind": "wecom", "url": f"{chat.base}/cgi-bin/webhook/send?key=wk-h"},
        {
            "id": "h-ding",
            "kind": "dingtalk",
            "url": f"{chat.base}/robot/send?access_token=dt-h",
            "secret": "SEC0123456789abcdef",
        },
        {
            "id": "h-feishu",
            "kind": "feishu",
            "url": f"{chat.base}/open-apis/bot/v2/hook/fs-h",
            "secret": "feishu-secret",
        },
        {"id": "h-hook", "kind": "webhook", "url": f"{chat.base}/hook/h"},
    ]
    for group in groups:
        pipeline.ctx.settings.alerting.groups.append(
            GroupConfig.model_validate({"region": COUNTY, "mention_all": []} | group)
        )
    await pipeline.finding(
        "II", title=f"【重大】{HOSTILE}聚集40人", evidence={"enterprise_name": HOSTILE}
    )
    await pipeline.run()
    deliveries = await pipeline.deliveries()
    assert {d.status for d in deliveries} == {"sent"}
    assert {d.channel for d in deliveries} >= {"wecom", "dingtalk", "feishu", "webhook", "email"}
    markdown = [r.json["markdown"]["content"] for r in chat.to("/cgi-bin/webhook/send")]
    markdown += [r.json["markdown"]["text"] for r in chat.to("/robot/send")]
    markdown += [
        r.json["card"]["elements"][0]["text"]["content"]
        for r in chat.to("/open-apis/bot/v2/hook/fs-h")
    ]
    assert len(markdown) == 3
    for text in markdown:
        assert "恶意公司" in text
        for pattern in LIVE:
            assert not pattern.search(text), (pattern.pattern, text)
    # The webhook carries the data as JSON (its receiver escapes) and a plain text.
    (hook,) = chat.to("/hook/h")
    assert json.loads(hook.body)["message"]["items"][0]["enterprise"] == HOSTILE
    # Email: the HTML part escapes it, the subject is one line.
    received = await __import__("asyncio").to_thread(mail.wait_for, 2, 5)
    for message in received:
        assert '<font color="info">' not in message.html()
        assert "&lt;font" in message.html()
        assert "\n" not in message.subject
