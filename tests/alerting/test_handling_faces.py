"""Handling records through the faces (interfaces §8): `POST /api/v1/alerts/{id}/records`
(201 / 422 with field errors / 403 outside the region), `GET /api/v1/alerts/{id}`,
`labormon alerts record|show|list --json`, and each record as an MQTT alert event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiomqtt
import httpx
import pytest

from monitor.models import AlertEvent
from monitor.web.app import create_app
from tests.alerting.conftest import COUNTY, Leader, Pipeline
from tests.alerting.test_api_cli import bearer, labormon
from tests.alerting.test_handling import alert_settings  # noqa: F401  (default deadlines)
from tests.support.broker import Broker


@pytest.fixture
async def client(pipeline: Pipeline) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(pipeline.ctx)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        yield http


async def one_alert(pipeline: Pipeline, level: str = "II") -> int:
    await pipeline.finding(level)
    await pipeline.run()
    (alert,) = await pipeline.alerts()
    return alert.id


async def test_records_over_http_with_field_errors_and_jurisdiction(
    pipeline: Pipeline, leaders: dict[str, Leader], client: httpx.AsyncClient
) -> None:
    alert_id = await one_alert(pipeline)
    url = f"/api/v1/alerts/{alert_id}/records"
    county, province = bearer(leaders["county"]), bearer(leaders["province"])
    made = await client.post(
        url, headers=county, json={"kind": "verify", "verdict": "true", "text": "现场核实"}
    )
    assert made.status_code == 201, made.text
    record = made.json()
    assert {"id", "kind", "author_id", "created_at", "text", "verdict"} <= set(record)
    assert (record["author_id"], record["verdict"]) == (leaders["county"].id, "true")
    bad = await client.post(url, headers=county, json={"kind": "verify", "verdict": "maybe"})
    assert bad.status_code == 422
    assert [e["loc"][-1] for e in bad.json()["detail"]] == ["verdict"]
    bad_final = await client.post(
        url, headers=county, json={"kind": "final", "wages_recovered": -5, "resolution": "x"}
    )
    assert bad_final.status_code == 422
    assert {e["loc"][-1] for e in bad_final.json()["detail"]} == {
        "wages_recovered",
        "workers_paid",
        "resolution",
    }
    wrong_answer = await client.post(
        url, headers=county, json={"kind": "answer", "answers": 999, "text": "已办"}
    )
    assert [e["loc"][-1] for e in wrong_answer.json()["detail"]] == ["answers"]
    next_door = await client.post(
        url, headers=bearer(leaders["other"]), json={"kind": "progress", "text": "x"}
    )
    assert next_door.status_code == 403
    assert (await client.post(url, json={"kind": "progress", "text": "x"})).status_code == 401
    instruction = await client.post(
        url, headers=province, json={"kind": "instruction", "text": "请督办", "due": "4h"}
    )
    assert instruction.status_code == 201, instruction.text
    assert instruction.json()["due_at"]
    shown = (await client.get(f"/api/v1/alerts/{alert_id}", headers=county)).json()
    assert [r["kind"] for r in shown["records"]] == ["verify", "instruction"]
    assert {d["kind"] for d in shown["deadlines"]} >= {"verify", "answer"}
    assert all({"kind", "due_at", "met_at"} <= set(d) for d in shown["deadlines"])
    assert shown["stage"] == "handling"
    listed = (await client.get("/api/v1/alerts", headers=county)).json()
    assert (listed[0]["stage"], listed[0]["overdue"]) == ("handling", [])
    # Every record is in the audit log with who and when.
    async with pipeline.ctx.db.session() as session:
        from sqlalchemy import select

        audit = (
            await session.scalars(select(AlertEvent).where(AlertEvent.event == "HandlingRecorded"))
        ).all()
    assert [(e.actor, e.details["kind"]) for e in audit] == [  # type: ignore[index]
        (leaders["county"].id, "verify"),
        (leaders["province"].id, "instruction"),
    ]


async def test_records_on_the_command_line(
    pipeline: Pipeline, leaders: dict[str, Leader], db_url: str
) -> None:
    alert_id = await one_alert(pipeline, "I")
    county = leaders["county"].id
    filed = await asyncio.to_thread(
        labormon, db_url, "alerts", "record", str(alert_id), "--kind", "progress",
        "--people", "80", "--text", "正在劝导疏散", "--as", county, "--json",
    )  # fmt: skip
    assert filed.returncode == 0, filed.stderr
    record = json.loads(filed.stdout)
    assert (record["kind"], record["people_now"], record["author_id"]) == ("progress", 80, county)
    bad = await asyncio.to_thread(
        labormon, db_url, "alerts", "record", str(alert_id), "--kind", "final",
        "--resolution", "paid", "--as", county,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "--resolution" in bad.stderr and "--wages-recovered: required" in bad.stderr
    final = await asyncio.to_thread(
        labormon, db_url, "alerts", "record", str(alert_id), "--kind", "final",
        "--wages-recovered", "1200000", "--workers-paid", "230", "--people", "230",
        "--resolution", "negotiated", "--text", "协商解决", "--as", county, "--json",
    )  # fmt: skip
    assert final.returncode == 0, final.stderr
    # Both only read: side by side (each command is mostly its ~2 s start-up).
    shown, listed = await asyncio.gather(
        asyncio.to_thread(labormon, db_url, "alerts", "show", str(alert_id), "--json"),
        asyncio.to_thread(labormon, db_url, "alerts", "list", "--json"),
    )
    data = json.loads(shown.stdout)
    assert [r["kind"] for r in data["records"]] == ["progress", "final"]
    assert (data["status"], data["stage"]) == ("resolved", "closed")
    assert {d["kind"] for d in data["deadlines"]} == {"verify", "progress"}
    (row,) = json.loads(listed.stdout)
    assert (row["stage"], row["overdue"]) == ("closed", [])


async def test_each_record_is_an_alert_event_on_mqtt(
    pipeline: Pipeline, leaders: dict[str, Leader], own_broker: Broker
) -> None:
    settings = pipeline.ctx.settings
    settings.mqtt.url = own_broker.url
    settings.alerting.mqtt_events = True
    topic = f"labormon/v1/alerts/{COUNTY}"
    from monitor.alerting.handling import Handling, RecordIn

    async with aiomqtt.Client(own_broker.host, own_broker.port, identifier="records-watch") as sub:
        await sub.subscribe(topic, qos=1)
        alert_id = await one_alert(pipeline)
        handling = Handling(pipeline.ctx, pipeline.book)
        await handling.add(
            alert_id,
            RecordIn(kind="verify", verdict="partly", text="部分属实"),
            author=leaders["county"].id,
            via="api",
        )
        await handling.add(
            alert_id,
            RecordIn(kind="progress", people_now=12, text="已约谈企业负责人"),
            author=leaders["county"].id,
            via="api",
        )
        await pipeline.run()
        events = []
        async with asyncio.timeout(10):
            async for message in sub.messages:
                events.append(json.loads(bytes(message.payload)))  # type: ignore[arg-type]
                if len(events) == 3:
                    break
    assert [e["event"] for e in events] == [
        "AlertTriggered",
        "HandlingRecorded",
        "HandlingRecorded",
    ]
    assert [e["record"]["kind"] for e in events[1:]] == ["verify", "progress"]
    assert events[2]["record"]["people_now"] == 12
    assert events[2]["record"]["text"] == "已约谈企业负责人"
    await pipeline.sender.aclose()
