"""Corrections and withdrawals (interfaces §8) over the API and MQTT: accepted within the
window, refused after it with the reason (422 on HTTP, a notice on the sender's errors
topic over MQTT), on both databases, against a real broker."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import aiomqtt
import httpx

from monitor.clock import FrozenClock
from monitor.context import Context
from monitor.models import InformantReport
from tests.ingest_support import running
from tests.support import publisher
from tests.support.broker import Broker
from tests.support.daemon import eventually
from tests.support.ports import free_port
from tests.support.stream import prepare


def report(rid: str, informant: str, **changes: object) -> dict[str, object]:
    body = dict(publisher.message("c", 2, "reports").payload)
    return (
        body
        | {"report_id": rid, "informant_id": informant, "people_involved": 300}
        | {"region_code": "430902"}
        | changes
    )


async def test_over_the_api(ctx: Context, clock: FrozenClock) -> None:
    await prepare(ctx)
    token = await ctx.accounts.add(kind="informant", account_id="api-inf", region_code="430902")
    ctx.settings.http.bind = f"127.0.0.1:{free_port()}"
    headers = {"Authorization": f"Bearer {token.token}"}
    async with (
        running(ctx, mqtt=False, http=True),
        httpx.AsyncClient(base_url=ctx.settings.http.base_url, timeout=10) as client,
    ):
        sent = await client.post("/api/v1/reports", json=report("A1", "api-inf"), headers=headers)
        assert sent.status_code == 201
        clock.advance(minutes=29)
        fixed = report("A1-c", "api-inf", people_involved=30, corrects="A1")
        assert (
            await client.post("/api/v1/reports", json=fixed, headers=headers)
        ).status_code == 201
        clock.advance(minutes=1, seconds=1)
        late = await client.post(
            "/api/v1/reports",
            json={"report_id": "A1-w", "informant_id": "api-inf", "withdraws": "A1-c"},
            headers=headers,
        )
        assert late.status_code == 422
        body = late.json()
        assert body["code"] == "correction_refused"
        assert body["detail"][0]["loc"] == ["body", "withdraws"]
        assert "window" in body["detail"][0]["msg"]
    async with ctx.db.session() as session:
        stored = await session.get(InformantReport, "A1-c")
    assert stored is not None and (stored.corrects, stored.people_involved) == ("A1", 30)


async def test_over_mqtt(ctx: Context, clock: FrozenClock, broker: Broker, backend: str) -> None:
    topics = f"t-corrections-{backend}/labormon/v1"
    ctx.settings.mqtt.url = broker.url
    ctx.settings.mqtt.client_id = f"corrections-{backend}"
    ctx.settings.mqtt.topic_prefix = topics
    await prepare(ctx)
    informant = publisher.INFORMANTS[0]
    topic = f"{topics}/reports/{informant}"
    notices: list[dict[str, object]] = []
    async with (
        running(ctx),
        aiomqtt.Client(broker.host, broker.port, identifier=f"corr-watch-{backend}") as watcher,
        aiomqtt.Client(broker.host, broker.port, identifier=f"corr-pub-{backend}") as pub,
    ):
        await watcher.subscribe(f"{topics}/errors/#", qos=1)

        async def collect() -> None:
            async for message in watcher.messages:
                assert isinstance(message.payload, bytes)
                notices.append(json.loads(message.payload))
                return

        collector = asyncio.create_task(collect())
        await pub.publish(topic, json.dumps(report("M1", informant)), qos=1)

        async def stored(rid: str) -> InformantReport | None:
            async with ctx.db.session() as session:
                return await session.get(InformantReport, rid)

        await eventually(lambda: stored("M1"), lambda r: r is not None, 20, what="M1")
        clock.advance(minutes=10)
        withdrawal = {"report_id": "M1-w", "informant_id": informant, "withdraws": "M1"}
        await pub.publish(topic, json.dumps(withdrawal), qos=1)
        gone = await eventually(lambda: stored("M1-w"), lambda r: r is not None, 20, what="M1-w")
        assert gone is not None and gone.withdraws == "M1"
        clock.advance(timedelta(minutes=21))
        late = report("M1-c", informant, people_involved=30, corrects="M1")
        await pub.publish(topic, json.dumps(late), qos=1)
        await asyncio.wait_for(collector, 20)
    (notice,) = notices
    assert notice["code"] == "correction_refused"
    assert "更正" in str(notice["message"])
    assert "window" in json.dumps(notice["errors"])
