"""The daemon outlives its database: PostgreSQL gone for 30 s under a stream, and a start
while it is down. PostgreSQL is reached through a TCP proxy the test cuts (what clients
see of a stopped server); the machine's shared server keeps running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from ingest.mqtt import MqttIngest
from monitor.clock import FrozenClock
from monitor.config import Settings
from monitor.context import Context
from monitor.daemon import Daemon, make_context
from monitor.web.app import HttpService
from tests.ingest_support import service
from tests.support import publisher
from tests.support.broker import Broker
from tests.support.daemon import REPO, eventually
from tests.support.stream import (
    assert_exactly_once,
    prepare,
    publisher_command,
    stored_count,
    stored_ids,
)
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


@pytest.fixture
async def proxy(db_url: str) -> AsyncIterator[TcpProxy]:
    url = make_url(db_url)
    p = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await p.start()
    yield p
    await p.close()


@pytest.fixture
async def pctx(
    settings: Settings, clock: FrozenClock, db_url: str, proxy: TcpProxy
) -> AsyncIterator[Context]:
    """The daemon's context, with the database behind the proxy."""
    settings.database.url = make_url(db_url).set(port=proxy.port).render_as_string(False)
    settings.database.retry_min = timedelta(seconds=0.2)
    settings.database.retry_max = timedelta(seconds=2)
    settings.ingest.retry_max = timedelta(seconds=1)
    context = make_context(settings, clock=clock)
    yield context
    await context.close()


async def healthz(daemon: Daemon) -> tuple[int, dict[str, Any]]:
    http = service(daemon, HttpService)
    assert isinstance(http, HttpService)
    transport = httpx.ASGITransport(app=http.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://daemon") as client:
        response = await client.get("/healthz", timeout=10)
    return response.status_code, response.json()


async def test_postgresql_gone_30s_under_a_stream_of_1000_then_all_stored_once(
    pctx: Context, proxy: TcpProxy, own_broker: Broker
) -> None:
    ctx = pctx
    ctx.settings.mqtt.enabled = True
    ctx.settings.mqtt.url = own_broker.url
    ctx.settings.mqtt.client_id = "outage-daemon"
    await prepare(ctx)
    clerk = await ctx.accounts.add(kind="informant", account_id="inf-http", region_code="430902")
    daemon = Daemon(ctx)  # every service: intake, detectors, alerting, outbox, ...
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        async with asyncio.timeout(30):
            await daemon.ready.wait()
            mqtt = service(daemon, MqttIngest)
            assert isinstance(mqtt, MqttIngest)
            await mqtt.wait_connected()
        assert (await healthz(daemon))[0] == 200
        # 1,000 mixed messages over ~40 s from another process.
        pub = await asyncio.create_subprocess_exec(
            *publisher_command(own_broker.url, "outage-pub", "out", 1000, rate=25),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        await eventually(lambda: stored_count(ctx.db), lambda n: n >= 100, 60, what="100")
        await proxy.cut()  # PostgreSQL "stops" for 30 s
        cut_at = asyncio.get_running_loop().time()
        seen_503 = None
        while asyncio.get_running_loop().time() - cut_at < 30:
            status, body = await healthz(daemon)
            if status == 503:
                seen_503 = body
            assert not task.done(), "the daemon stopped during the outage"
            await asyncio.sleep(2)
        # HTTP intake says so at once rather than hanging until its timeout.
        body_http = dict(publisher.message("http", 2, "reports").payload)
        body_http["informant_id"] = "inf-http"
        started = asyncio.get_running_loop().time()
        answer = await _post(daemon, "/api/v1/reports", body_http, clerk.token)
        assert answer.status_code == 503, answer.text
        assert "database" in answer.json()["detail"]
        assert asyncio.get_running_loop().time() - started < 5
        assert seen_503 is not None
        assert seen_503["status"] == "error"
        assert any("database (PostgreSQL) unreachable" in r for r in seen_503["reasons"])
        await proxy.restore()
        out, _ = await asyncio.wait_for(pub.communicate(), 120)
        assert pub.returncode == 0, out.decode()
        await eventually(lambda: stored_count(ctx.db), lambda n: n >= 1000, 120, what="1000")
        assert not task.done()
        await eventually(lambda: healthz(daemon), lambda h: h[0] == 200, 30, what="healthy again")
        retried = ctx.metrics.registry.get_sample_value
        assert (retried("labormon_ingest_db_retries_total") or 0) > 0
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert_exactly_once(await stored_ids(ctx.db), publisher.expected_ids("out", 0, 1000))


async def test_started_while_the_database_is_down_it_waits_then_runs(
    pctx: Context, proxy: TcpProxy
) -> None:
    ctx = pctx
    await proxy.cut()
    daemon = Daemon(ctx, only=["ingest", "http"])
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:

        async def waiting() -> float:
            if task.done():
                task.result()  # raises what stopped it
                raise AssertionError("the daemon ended while the database was down")
            return (
                ctx.metrics.registry.get_sample_value(
                    "labormon_database_retries_total", {"service": "start"}
                )
                or 0.0
            )

        await eventually(waiting, lambda n: n >= 3, 30, what="retrying at start")
        assert not daemon.ready.is_set()
        await proxy.restore()
        async with asyncio.timeout(30):
            await daemon.ready.wait()
        await prepare(ctx)
        http = service(daemon, HttpService)
        assert isinstance(http, HttpService)
        status, body = await healthz(daemon)
        assert status == 200 and body["database"] == "ok" and "reasons" not in body
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _post(daemon: Daemon, path: str, body: dict[str, Any], token: str) -> httpx.Response:
    http = service(daemon, HttpService)
    assert isinstance(http, HttpService)
    transport = httpx.ASGITransport(app=http.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://daemon") as client:
        return await client.post(
            path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
