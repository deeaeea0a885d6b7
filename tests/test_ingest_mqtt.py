"""MQTT intake under load and faults, with a real Mosquitto and both databases.

Every stream is published by another process (tests/support/publisher.py) with QoS 1;
message i is always the same record, so the test knows exactly which ids must be stored.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ingest.mqtt import MqttIngest
from ingest.pipeline import IngestPipeline
from monitor.context import Context
from monitor.daemon import make_context
from monitor.models import InformantReport, WageReport
from tests.conftest import SECRET
from tests.ingest_support import running, service
from tests.support import publisher
from tests.support.broker import Broker
from tests.support.daemon import REPO, DaemonProcess, eventually
from tests.support.database import SqliteTemplate
from tests.support.stream import (
    assert_exactly_once,
    prepare,
    publisher_command,
    rejected_count,
    stored_count,
    stored_ids,
)

pytestmark = pytest.mark.slow


async def finish(proc: asyncio.subprocess.Process, timeout: float = 120) -> dict[str, object]:
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, out
    return json.loads(out.decode().strip().splitlines()[-1])


async def spawn(command: list[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


async def test_10000_messages_from_another_process_are_stored_exactly_once(
    ctx: Context, broker: Broker, backend: str
) -> None:
    topics = f"t-exactly-once-{backend}/labormon/v1"
    ctx.settings.mqtt.url = broker.url
    ctx.settings.mqtt.client_id = f"eo-{backend}"
    ctx.settings.mqtt.topic_prefix = topics
    await prepare(ctx)
    async with running(ctx) as daemon:
        proc = await spawn(
            publisher_command(broker.url, f"eo-pub-{backend}", "eo", 10_000, topic_prefix=topics)
        )
        await finish(proc)
        await eventually(lambda: stored_count(ctx.db), lambda n: n >= 10_000, 60, what="stored")
        pipeline = service(daemon, IngestPipeline)
        assert isinstance(pipeline, IngestPipeline)
    assert_exactly_once(await stored_ids(ctx.db), publisher.expected_ids("eo", 0, 10_000))
    assert await rejected_count(ctx.db) == 0
    stored = ctx.metrics.registry.get_sample_value
    total = sum(
        stored("labormon_records_stored_total", {"channel": "mqtt", "kind": k}) or 0
        for k in ("wage", "petition", "report")
    )
    assert total == 10_000
    # Every message was acknowledged after its commit: a restart under the same client
    # id gets nothing redelivered before a marker published now.
    async with running(ctx) as daemon:
        marker = await spawn(
            publisher_command(
                broker.url, f"eo-pub-{backend}", "eo", 1, start=10_000, topic_prefix=topics
            )
        )
        await finish(marker)
        await eventually(lambda: stored_count(ctx.db), lambda n: n == 10_001, 20, what="marker")
    redelivered = sum(
        stored("labormon_records_duplicate_total", {"channel": "mqtt", "kind": k}) or 0
        for k in ("wage", "petition", "report")
    )
    assert redelivered == 0


async def test_sigkill_mid_stream_loses_nothing_and_stores_nothing_twice(
    ctx: Context, own_broker: Broker, tmp_path: Path, backend: str
) -> None:
    await prepare(ctx)
    daemon = DaemonProcess(
        tmp_path / "daemon",
        db_url=ctx.settings.database.url,
        mqtt_url=own_broker.url,
        client_id=f"kill-{backend}",
        secret=SECRET,
    )
    daemon.start()
    try:
        await daemon.wait_ready()
        # Paced, so that the stream is still flowing when the daemon dies.
        proc = await spawn(publisher_command(own_broker.url, "kill-pub", "k", 10_000, rate=2500))
        at_kill = await eventually(
            lambda: stored_count(ctx.db), lambda n: n >= 3000, 60, what="3000 stored"
        )
        daemon.kill()
        at_kill = await stored_count(ctx.db)
        assert at_kill < 10_000, "the stream ended before the kill; the test proves nothing"
        daemon.start()
        await daemon.wait_ready()
        await finish(proc)
        await eventually(lambda: stored_count(ctx.db), lambda n: n >= 10_000, 60, what="stored")
        redelivered = await daemon.metric_sum("labormon_records_duplicate_total")
    finally:
        daemon.stop()
    assert_exactly_once(await stored_ids(ctx.db), publisher.expected_ids("k", 0, 10_000))
    assert await rejected_count(ctx.db) == 0
    print(f"killed at {at_kill} stored; {redelivered:.0f} redeliveries absorbed as duplicates")


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_broker_outage_of_10_seconds_loses_nothing(
    ctx: Context, own_broker: Broker, tmp_path: Path, sqlite_template: SqliteTemplate
) -> None:
    """Two daemons, one on PostgreSQL and one on SQLite, each with its own subscription,
    live through the same 10 s outage while two publishers go on publishing."""
    assert isinstance(sqlite_template, SqliteTemplate)
    sqlite_url = sqlite_template.copy_to(tmp_path)
    sqlite_settings = ctx.settings.model_copy(deep=True)
    sqlite_settings.database.url = sqlite_url
    sqlite_ctx = make_context(sqlite_settings, clock=ctx.clock)
    await prepare(ctx)
    await prepare(sqlite_ctx)
    daemons = [
        DaemonProcess(
            tmp_path / name,
            db_url=url,
            mqtt_url=own_broker.url,
            client_id=f"outage-{name}",
            secret=SECRET,
            extra={"mqtt": {"shared_group": ""}},
        )
        for name, url in (("pg", ctx.settings.database.url), ("sqlite", sqlite_url))
    ]
    try:
        for d in daemons:
            d.start()
        for d in daemons:
            await d.wait_ready()
        publishers = [
            await spawn(
                publisher_command(
                    own_broker.url, f"outage-pub-{n}", "o", 2500, start=n * 2500, rate=200
                )
            )
            for n in range(2)
        ]
        await eventually(lambda: stored_count(ctx.db), lambda n: n >= 300, 30, what="flowing")
        own_broker.stop()
        stopped_at = asyncio.get_running_loop().time()
        # The outage is the subject of the test, not a timer it waits for: 10 s of no broker.
        await asyncio.sleep(10)
        own_broker.start()
        outage = asyncio.get_running_loop().time() - stopped_at
        for proc in publishers:
            summary = await finish(proc)
            assert summary["reconnects"] >= 1
        for db in (ctx.db, sqlite_ctx.db):
            await eventually(lambda db=db: stored_count(db), lambda n: n >= 5000, 60, what="all")
        for d in daemons:
            assert await d.metric_sum("labormon_mqtt_disconnects_total") >= 1
            assert await d.metric_sum("labormon_mqtt_connected") == 1
            messages = [e["event"] for e in d.events()]
            assert "mqtt connection lost; reconnecting" in messages
            assert messages.count("mqtt connected") >= 2
        expected = publisher.expected_ids("o", 0, 5000)
        for db in (ctx.db, sqlite_ctx.db):
            assert_exactly_once(await stored_ids(db), expected)
    finally:
        for d in daemons:
            d.stop()
        await sqlite_ctx.close()
    assert outage >= 10


async def test_service_starts_without_broker_and_connects_when_it_comes(
    ctx: Context, tmp_path: Path
) -> None:
    """A daemon started before its broker keeps retrying and says so."""
    late = Broker(tmp_path / "late")
    ctx.settings.mqtt.url = late.url
    ctx.settings.mqtt.client_id = "late-daemon"
    ctx.settings.mqtt.reconnect_min = ctx.settings.mqtt.reconnect_min / 5
    ctx.settings.mqtt.reconnect_max = ctx.settings.mqtt.reconnect_min * 4
    pipeline = IngestPipeline(ctx)
    mqtt = MqttIngest(ctx, pipeline)
    # Tasks of their own, each awaited to its end below: a gather() that is cancelled
    # returns as soon as one child is, and the test's teardown then closed the database
    # under the MQTT service's last write and hung for ever (3 full runs of 6).
    tasks = [asyncio.create_task(pipeline.run()), asyncio.create_task(mqtt.run())]

    async def failures() -> float:
        return ctx.metrics.registry.get_sample_value("labormon_mqtt_disconnects_total") or 0

    try:
        await eventually(failures, lambda n: n >= 2, 10, what="retries")
        assert not mqtt.connected
        late.start()
        await asyncio.wait_for(mqtt.wait_connected(), 10)
        assert ctx.metrics.registry.get_sample_value("labormon_mqtt_connected") == 1
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        assert all(isinstance(r, asyncio.CancelledError) for r in results), results
        late.stop()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_two_daemons_share_the_input_and_lose_nothing_when_one_is_killed(
    ctx: Context, own_broker: Broker, tmp_path: Path
) -> None:
    """A shared subscription splits the stream; the survivor takes over the killed
    daemon's session (the broker would otherwise keep routing half the input to it)."""
    await prepare(ctx)
    a, b = (
        DaemonProcess(
            tmp_path / name,
            db_url=ctx.settings.database.url,
            mqtt_url=own_broker.url,
            client_id=f"share-{name}",
            secret=SECRET,
            extra={"mqtt": {"shared_group": "labormon", "session_lease": "2s"}},
        )
        for name in ("a", "b")
    )
    try:
        a.start()
        b.start()
        await a.wait_ready()
        await b.wait_ready()
        proc = await spawn(publisher_command(own_broker.url, "share-pub", "s", 10_000, rate=2000))
        await eventually(lambda: stored_count(ctx.db), lambda n: n >= 4000, 60, what="4000")
        b_stored = await b.metric_sum("labormon_records_stored_total")
        b.kill()
        killed_at = await stored_count(ctx.db)
        assert killed_at < 10_000, "the stream ended before the kill; the test proves nothing"
        await finish(proc)
        await eventually(lambda: stored_count(ctx.db), lambda n: n >= 10_000, 60, what="10000")
        # The killed daemon's session was unsubscribed: all that comes now reaches A.
        more = await spawn(publisher_command(own_broker.url, "share-pub", "s", 200, start=10_000))
        await finish(more)
        await eventually(lambda: stored_count(ctx.db), lambda n: n >= 10_200, 30, what="10200")
        a_stored = await a.metric_sum("labormon_records_stored_total")
        # The takeovers end once the sessions have been quiet for a while: B had two,
        # one per lane (events, and wage reports on `share-b-wages`).
        await eventually(
            lambda: a.metric_sum("labormon_mqtt_sessions_rescued_total"),
            lambda n: n == 2,
            20,
            what="rescue finished",
        )
        events = [e["event"] for e in a.events()]
        assert "taking over the mqtt session of a daemon whose lease ran out" in events
        assert "session of a stopped daemon drained and unsubscribed" in events
    finally:
        a.stop()
        b.kill()
    assert_exactly_once(await stored_ids(ctx.db), publisher.expected_ids("s", 0, 10_200))
    assert await rejected_count(ctx.db) == 0
    assert b_stored > 0
    assert a_stored > 0
    print(f"B stored {b_stored:.0f} before it was killed at {killed_at}; A stored {a_stored:.0f}")


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_mqtt_3_1_1_session_keeps_what_was_published_while_away(
    ctx: Context, broker: Broker
) -> None:
    topics = "t-v311/labormon/v1"
    ctx.settings.mqtt.url = broker.url
    ctx.settings.mqtt.client_id = "v311-daemon"
    ctx.settings.mqtt.topic_prefix = topics
    ctx.settings.mqtt.protocol = "3.1.1"
    await prepare(ctx)
    async with running(ctx):
        pass  # the first connection creates the session and its subscriptions
    away = await spawn(publisher_command(broker.url, "v311-pub", "v3", 200, topic_prefix=topics))
    await finish(away)
    async with running(ctx):
        await eventually(lambda: stored_count(ctx.db), lambda n: n == 200, 20, what="stored")
    assert_exactly_once(await stored_ids(ctx.db), publisher.expected_ids("v3", 0, 200))


async def test_an_informant_report_does_not_wait_behind_a_month_of_wage_reports(
    ctx: Context, broker: Broker, backend: str
) -> None:
    """Issue 17: 4,000 wage reports wait at the broker, then an informant's report. With
    one session the report would be stored after all of them; on its own lane (and first
    in the writer's queue) it is stored before most of them."""
    import aiomqtt

    topics = f"t-lanes-{backend}/labormon/v1"
    ctx.settings.mqtt.url = broker.url
    ctx.settings.mqtt.client_id = f"lanes-{backend}"
    ctx.settings.mqtt.topic_prefix = topics
    await prepare(ctx)
    async with running(ctx):
        pass  # both lanes' sessions and subscriptions exist
    wages = [
        publisher.point_message("ln", point, i, topic_prefix=topics)
        for i in range(200)
        for point in publisher.POINTS
    ]
    report = publisher.message("ln", 9, topic_prefix=topics)
    assert report.kind == "report"
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"lanes-pub-{backend}") as pub:
        for m in [*wages, report]:
            await pub.publish(m.topic, json.dumps(m.payload), qos=1)

    async def count(table: type, *where: object) -> int:
        async with ctx.db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(table).where(*where)))

    async with running(ctx) as daemon:
        await eventually(
            lambda: count(InformantReport, InformantReport.report_id == report.record_id),
            lambda n: n == 1,
            60,
            what="the informant's report stored",
            interval=0.02,
        )
        # At most this many were stored before it (counted just after).
        before = await count(WageReport)
        await eventually(
            lambda: count(WageReport), lambda n: n == len(wages), 60, what="all wages stored"
        )
    lanes = [s for s in daemon.services if isinstance(s, MqttIngest)]
    assert sorted(s.client_id for s in lanes) == [f"lanes-{backend}", f"lanes-{backend}-wages"]
    print(f"wage reports stored before the informant's report: {before} of {len(wages)}")
    assert before < len(wages) // 2


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_daemon_without_lanes_rescues_a_wage_session_left_behind(
    ctx: Context, broker: Broker, backend: str
) -> None:
    """`mqtt.wage_lane` turned off (or a peer without it): the `-wages` session of the
    lanes stays in the share group and the broker keeps routing wage reports to it; the
    daemon without lanes takes it over when its lease runs out, as it does any peer's."""
    import aiomqtt

    topics = f"t-nolanes-{backend}/labormon/v1"
    ctx.settings.mqtt.url = broker.url
    ctx.settings.mqtt.topic_prefix = topics
    ctx.settings.mqtt.session_lease = ctx.settings.mqtt.session_lease / 30  # 1 s
    await prepare(ctx)
    ctx.settings.mqtt.client_id = "lanes-before"
    async with running(ctx):
        pass  # the two lanes' sessions, subscribed in the share group
    wages = [
        publisher.point_message("nl", point, i, topic_prefix=topics)
        for i in range(10)
        for point in publisher.POINTS
    ]
    ctx.settings.mqtt.client_id = "no-lanes"
    ctx.settings.mqtt.wage_lane = False
    async with running(ctx) as daemon:
        [lane] = [s for s in daemon.services if isinstance(s, MqttIngest)]
        assert lane.lane == "all"
        async with aiomqtt.Client(broker.host, broker.port, identifier="nolanes-pub") as pub:
            for m in wages:
                await pub.publish(m.topic, json.dumps(m.payload), qos=1)
        # The share half went to the departed `lanes-before-wages` session.
        ctx.clock.advance(timedelta(seconds=5))  # type: ignore[attr-defined]
        await eventually(lambda: stored_count(ctx.db), lambda n: n == len(wages), 30, what="all")
    assert ctx.metrics.registry.get_sample_value("labormon_mqtt_sessions_rescued_total") >= 1
