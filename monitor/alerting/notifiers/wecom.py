"""WeCom (企业微信) group robot: POST {msgtype, markdown|text} to the robot's webhook URL.

The robot answers HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`, or an errcode: 45009
(more than 20 messages a minute) and -1 (busy) are retried; 93000 (invalid webhook
key), 40008 (bad message type), 44004 (empty content) and the rest are permanent.
Markdown cannot @ people, so levels configured to @all go out as text with
`mentioned_list: ["@all"]`.
"""

from __future__ import annotations

from monitor.alerting.messages import render_markdown, render_text
from monitor.alerting.notifiers.base import (
    NotifierEnv,
    check_http_status,
    composing,
    json_body,
    post_json,
)
from monitor.alerting.notifiers.groups import group_of, mention_all, vendor_error
from monitor.models import Delivery

CHANNEL = "wecom"
MARKDOWN_MAX_BYTES = 4096
TEXT_MAX_BYTES = 2048
TRANSIENT = {-1, 45009}


class WeComNotifier:
    channel = CHANNEL

    def __init__(self, env: NotifierEnv) -> None:
        self.env = env

    def payload(self, delivery: Delivery) -> dict[str, object]:
        group = group_of(self.env, delivery)
        if mention_all(group, delivery):
            text = render_text(delivery.body, delivery.id, max_bytes=TEXT_MAX_BYTES)
            return {"msgtype": "text", "text": {"content": text, "mentioned_list": ["@all"]}}
        content = render_markdown(delivery.body, flavour="wecom", max_bytes=MARKDOWN_MAX_BYTES)
        return {"msgtype": "markdown", "markdown": {"content": content}}

    async def send(self, delivery: Delivery) -> None:
        with composing(CHANNEL):
            payload = self.payload(delivery)
        response = await post_json(self.env, delivery.address, payload, "WeCom")
        check_http_status(response, "WeCom")
        data = json_body(response, "WeCom")
        code = int(data.get("errcode", -1))
        if code != 0:
            raise vendor_error("WeCom", code, str(data.get("errmsg", "")), TRANSIENT)

    async def aclose(self) -> None:
        return None


def create(env: NotifierEnv) -> WeComNotifier:
    return WeComNotifier(env)
