"""Generic JSON webhook: the structured message plus a plain-text rendering.

Headers: `Idempotency-Key` and `X-Labormon-Delivery` carry the delivery id (receivers
drop re-sends on it); with a secret (groups of kind `webhook`), `X-Labormon-Timestamp`
and `X-Labormon-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
2xx is success; 408, 425, 429 and 5xx are retried (honouring Retry-After); other 4xx
are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from monitor.alerting.messages import render_text, subject_for
from monitor.alerting.notifiers.base import NotifierEnv, check_http_status, composing, post_json
from monitor.alerting.notifiers.groups import group_of
from monitor.models import Delivery

CHANNEL = "webhook"


class WebhookNotifier:
    channel = CHANNEL

    def __init__(self, env: NotifierEnv) -> None:
        self.env = env

    def request(self, delivery: Delivery) -> tuple[bytes, dict[str, str]]:
        body = delivery.body
        payload = {
            "delivery_id": delivery.id,
            "purpose": delivery.purpose,
            "subject": subject_for(body) if body.get("items") else delivery.subject,
            "text": render_text(body, delivery.id) if body.get("items") else body.get("text"),
            "message": body,
        }
        raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": delivery.id,
            "X-Labormon-Delivery": delivery.id,
        }
        group = group_of(self.env, delivery)
        if group is not None and group.secret:
            timestamp = str(int(self.env.clock.now().timestamp()))
            mac = hmac.new(group.secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
            headers["X-Labormon-Timestamp"] = timestamp
            headers["X-Labormon-Signature"] = "sha256=" + mac.hexdigest()
        return raw, headers

    async def send(self, delivery: Delivery) -> None:
        with composing(CHANNEL):
            raw, headers = self.request(delivery)
        response = await post_json(
            self.env, delivery.address, {}, "webhook", headers=headers, content=raw
        )
        check_http_status(response, "webhook")

    async def aclose(self) -> None:
        return None


def create(env: NotifierEnv) -> WebhookNotifier:
    return WebhookNotifier(env)
