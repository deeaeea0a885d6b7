"""DingTalk (钉钉) custom robot with 加签: `&timestamp=<ms>&sign=<urlencoded base64
HMAC-SHA256(secret, "<timestamp>\\n<secret>")>` on the webhook URL.

The robot answers HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`, or an errcode: 130101
(more than 20 messages a minute) and -1 (busy) are retried; 310000 (signature,
keyword or IP rule not met), 300001 (bad token) and the rest are permanent. The
timestamp comes from the injected clock: DingTalk refuses one more than an hour off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus

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

CHANNEL = "dingtalk"
MARKDOWN_MAX_BYTES = 18000
TRANSIENT = {-1, 130101}


def sign(secret: str, timestamp_ms: int) -> str:
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


class DingTalkNotifier:
    channel = CHANNEL

    def __init__(self, env: NotifierEnv) -> None:
        self.env = env

    def url(self, delivery: Delivery) -> str:
        group = group_of(self.env, delivery)
        if group is None or not group.secret:
            return delivery.address
        timestamp = int(self.env.clock.now().timestamp() * 1000)
        sep = "&" if "?" in delivery.address else "?"
        return f"{delivery.address}{sep}timestamp={timestamp}&sign={sign(group.secret, timestamp)}"

    def payload(self, delivery: Delivery) -> dict[str, object]:
        text = render_markdown(delivery.body, flavour="dingtalk", max_bytes=MARKDOWN_MAX_BYTES)
        return {
            "msgtype": "markdown",
            "markdown": {"title": subject_for(delivery.body)[:60], "text": text},
            "at": {"isAtAll": mention_all(group_of(self.env, delivery), delivery)},
        }

    async def send(self, delivery: Delivery) -> None:
        with composing(CHANNEL):
            payload = self.payload(delivery)
        response = await post_json(self.env, self.url(delivery), payload, "DingTalk")
        check_http_status(response, "DingTalk")
        data = json_body(response, "DingTalk")
        code = int(data.get("errcode", -1))
        if code != 0:
            raise vendor_error("DingTalk", code, str(data.get("errmsg", "")), TRANSIENT)

    async def aclose(self) -> None:
        return None


def create(env: NotifierEnv) -> DingTalkNotifier:
    return DingTalkNotifier(env)
