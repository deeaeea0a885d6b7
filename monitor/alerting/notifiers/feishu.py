"""Feishu (飞书) custom bot: an interactive card whose header takes the level's colour,
signed when the bot has 签名校验: `timestamp` (seconds) and `sign` = base64
HMAC-SHA256 keyed with "<timestamp>\\n<secret>" over an empty message.

The bot answers `{"code": 0, "msg": "success"}` (older bots: `{"StatusCode": 0}`), or a
code: 11232 (frequency limited) is retried; 19021 (signature or timestamp), 19022 (IP
not allowed), 19024 (keyword missing), 19001 (bad token) and the rest are permanent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from monitor.alerting.messages import render_markdown, subject_for
from monitor.alerting.notifiers.base import (
    NotifierEnv,
    check_http_status,
    composing,
    json_body,
    post_json,
)
from monitor.alerting.notifiers.groups import group_of, mention_all, vendor_error
from monitor.models import Delivery

CHANNEL = "feishu"
CARD_MAX_BYTES = 24000
TRANSIENT = {11232}
HEADER_COLOURS = {"I": "red", "II": "orange", "III": "yellow", "IV": "blue"}


def sign(secret: str, timestamp: int) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class FeishuNotifier:
    channel = CHANNEL

    def __init__(self, env: NotifierEnv) -> None:
        self.env = env

    def payload(self, delivery: Delivery) -> dict[str, object]:
        group = group_of(self.env, delivery)
        body = delivery.body
        items = body.get("items") or []
        level = items[0]["level"] if items else "IV"
        content = render_markdown(body, flavour="feishu", max_bytes=CARD_MAX_BYTES)
        # The card header repeats the subject; drop the markdown heading line.
        content = content.split("\n", 1)[1].strip() if content.startswith("### ") else content
        if mention_all(group, delivery):
            content = "<at id=all></at>\n" + content
        payload: dict[str, object] = {
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": True},
                "header": {
                    "template": HEADER_COLOURS.get(level, "blue"),
                    "title": {"tag": "plain_text", "content": subject_for(body)[:100]},
                },
                "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": content}}],
            },
        }
        if group is not None and group.secret:
            timestamp = int(self.env.clock.now().timestamp())
            payload = {"timestamp": str(timestamp), "sign": sign(group.secret, timestamp)} | payload
        return payload

    async def send(self, delivery: Delivery) -> None:
        with composing(CHANNEL):
            payload = self.payload(delivery)
        response = await post_json(self.env, delivery.address, payload, "Feishu")
        check_http_status(response, "Feishu")
        data = json_body(response, "Feishu")
        code = int(data.get("code", data.get("StatusCode", -1)))
        if code != 0:
            message = str(data.get("msg", data.get("StatusMessage", "")))
            raise vendor_error("Feishu", code, message, TRANSIENT)

    async def aclose(self) -> None:
        return None


def create(env: NotifierEnv) -> FeishuNotifier:
    return FeishuNotifier(env)
