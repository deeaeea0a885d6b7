"""An informant's follow-up report over MQTT that names the first report (`follows`)
is attached to that report's alert as a `progress` record (interfaces §8), meets the
follow-up deadline, and is published with the alert's other records; the informant's
id is not its author."""

from __future__ import annotations

import json
from datetime import timedelta

import aiomqtt
from sqlalchemy import func, select

from detectors.service import DetectorService
from monitor.alerting.handling import handling_json
from monitor.models import Alert, InformantReport
from tests.alerting.conftest import COUNTY, Leader, Pipeline, add_point
from tests.alerting.test_handling import alert_settings  # noqa: F401  (default deadlines)
from tests.ingest_support import running
from tests.support.broker import Broker
from tests.support.daemon import eventually


def report(rid: str, informant: str, at: str, **fields: object) -> dict[str, object]:
    return {
        "report_id": rid,
        "informant_id": informant,
        "occurred_at": at,
        "region_code": COUNTY,
        "point_id": "P1",
        "event_type": "road_blocking",
        "category": "wage_arrears",
        "people_involved": 120,
        "description": "120余名农民工在国道堵路讨薪",
    } | fields


async def test_a_follow_up_over_mqtt_naming_the_first_report_is_progress_on_its_alert(
    pipeline: Pipeline, leaders: dict[str, Leader], broker: Broker, backend: str
) -> None:
    ctx = pipeline.ctx
    prefix = f"t-follow-{backend}/labormon/v1"
    ctx.settings.mqtt.url = broker.url
    ctx.settings.mqtt.client_id = f"follow-{backend}"
    ctx.settings.mqtt.topic_prefix = prefix
    await add_point(ctx)
    for informant in ("inf-1", "inf-2"):
        await ctx.accounts.add(kind="informant", account_id=informant, region_code=COUNTY)
    detectors = DetectorService(ctx)
    t0 = pipeline.clock.now()

    async def stored() -> int:
        async with ctx.db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(InformantReport)) or 0)

    async with (
        running(ctx),
        aiomqtt.Client(broker.host, broker.port, identifier=f"inf-pub-{backend}") as client,
    ):
        first = report("R1", "inf-1", "2025-01-15T08:50:00+08:00")
        await client.publish(f"{prefix}/reports/inf-1", json.dumps(first), qos=1)
        await eventually(stored, lambda n: n == 1, 15, what="the first report stored")
        await detectors.check_new_records()
        await pipeline.run()
        (alert,) = await pipeline.alerts()
        assert alert.level == "I"
        # 1:30 later another informant reports: fewer people, naming the first report.
        pipeline.clock.set(t0 + timedelta(minutes=90))
        later = report(
            "R2",
            "inf-2",
            "2025-01-15T10:25:00+08:00",
            follows="R1",
            people_involved=60,
            description="部分工人已离开，仍有约60人在路边",
        )
        await client.publish(f"{prefix}/reports/inf-2", json.dumps(later), qos=1)
        await eventually(stored, lambda n: n == 2, 15, what="the follow-up stored")
        await detectors.check_new_records()
        await pipeline.run()

    alerts = await pipeline.alerts()
    assert [a.id for a in alerts if a.kind == "event"] == [alert.id]  # no new event alert
    async with ctx.db.session() as session:
        joined = await session.get(Alert, alert.id)
        assert joined is not None
        shown = (await handling_json(session, [joined], pipeline.clock.now(), full=True))[alert.id]
    (progress,) = shown["records"]
    assert progress["kind"] == "progress"
    assert progress["people_now"] == 60
    assert progress["report_id"] == "R2"
    assert progress["author_id"] == "informant"  # not the informant's id
    assert "inf-2" not in json.dumps(progress, ensure_ascii=False)
    assert shown["stage"] == "handling"
    # It met the first follow-up deadline (2 h for level I): the next is 2 h after it.
    progress_due = [d for d in shown["deadlines"] if d["kind"] == "progress"]
    assert progress_due[0]["met_at"] is not None
    assert progress_due[1]["met_at"] is None
    assert progress_due[1]["due_at"] == (t0 + timedelta(minutes=210)).isoformat()
