"""Alert events on MQTT: `{topic_prefix}/alerts/{region_code}`, QoS 1, not retained.

One connection per daemon, opened on first use and dropped on any error (the outbox
retries the event). The payload carries `delivery_id`, so a subscriber drops the copy
of an event re-published after a crash.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt

from monitor.alerting.notifiers.base import DeliveryError, NotifierEnv, composing
from monitor.models import Delivery

CHANNEL = "mqtt"


class MqttNotifier:
    channel = CHANNEL

    def __init__(self, env: NotifierEnv) -> None:
        self.env = env
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> aiomqtt.Client:
        if self._client is None:
            mqtt = self.env.settings.mqtt
            client = aiomqtt.Client(
                mqtt.host,
                mqtt.port,
                username=mqtt.username,
                password=mqtt.password,
                identifier=f"{mqtt.client_id}-alerts",
                keepalive=mqtt.keepalive,
                timeout=self.env.settings.alerting.outbox.http_timeout.total_seconds(),
            )
            await client.__aenter__()
            self._client = client
        return self._client

    async def send(self, delivery: Delivery) -> None:
        with composing(CHANNEL):
            payload: dict[str, Any] = dict(delivery.body) | {"delivery_id": delivery.id}
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        timeout = self.env.settings.alerting.outbox.http_timeout.total_seconds()
        async with self._lock:
            try:
                async with asyncio.timeout(timeout):
                    client = await self._connected()
                    await client.publish(delivery.address, data, qos=1, retain=False)
            except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
                await self._drop()
                raise DeliveryError(f"MQTT: {exc.__class__.__name__}: {exc}") from exc

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.__aexit__(None, None, None)
            except (aiomqtt.MqttError, OSError, TimeoutError):
                pass  # already broken: nothing more to close

    async def aclose(self) -> None:
        await self._drop()


def create(env: NotifierEnv) -> MqttNotifier:
    return MqttNotifier(env)
