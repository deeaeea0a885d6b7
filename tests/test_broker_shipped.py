"""The shipped broker configuration, run as an installation runs it: Debian's Mosquitto
started as root without `user root` (it drops to the `mosquitto` user), with
`deploy/mosquitto/labormon.conf` in its include directory, the site file's listener, and
the auth files that `labormon mqtt auth-files` wrote into a root-owned directory."""

from __future__ import annotations

import asyncio
import grp
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.mqtt import SESSION_MARK, MqttIngest
from monitor.context import Context
from monitor.daemon import Daemon
from monitor.models import Lease
from monitor.web.app import HttpService
from tests.conftest import SECRET
from tests.ingest_support import running, service
from tests.support.broker import DebianBroker
from tests.support.broker_runs import (
    Site,
    cli,
    expected,
    make_site,
    publish_points,
    stored,
    stored_ids,
)
from tests.support.daemon import eventually

pytestmark = [
    pytest.mark.parametrize("backend", ["sqlite"]),  # the broker is under test here
    pytest.mark.skipif(DebianBroker.available() is not None, reason=str(DebianBroker.available())),
]


@pytest.fixture
async def site(ctx: Context, db_url: str) -> AsyncIterator[Site]:
    made = await make_site(ctx, db_url, SECRET)
    try:
        yield made
    finally:
        made.broker.cleanup()


def _counter(ctx: Context, prefix: str):  # type: ignore[no-untyped-def]
    async def probe() -> int:
        return await stored(ctx, prefix)

    return probe


async def test_debian_mosquitto_with_the_shipped_files_serves_the_daemon(
    ctx: Context, site: Site
) -> None:
    # The command chose the broker's group, so the broker (no longer root) can read them.
    for name in ("password_file", "acl_file"):
        info = (site.broker.auth_dir / name).stat()
        assert info.st_uid == 0
        assert grp.getgrgid(info.st_gid).gr_name == "mosquitto"
        assert oct(info.st_mode & 0o777) == "0o640"
    assert (site.broker.auth_dir.stat().st_mode & 0o777) == 0o750
    # And it runs as the mosquitto user, not as root.
    pid = int(site.broker.pid_file.read_text())
    status = Path(f"/proc/{pid}/status").read_text()
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1] != "0"
    async with running(ctx) as daemon:
        mqtt = service(daemon, MqttIngest)
        assert isinstance(mqtt, MqttIngest) and mqtt.connected
        await publish_points(site, "deb", 10)
        await eventually(_counter(ctx, "deb"), lambda n: n >= 200, 60, what="200 stored")
    ids = await stored_ids(ctx, "deb")
    assert sorted(ids) == sorted(expected("deb", 10))


async def test_daemon_stopped_while_20_points_publish_5000_then_all_stored_once(
    ctx: Context, site: Site
) -> None:
    async with running(ctx):
        publishing = asyncio.create_task(publish_points(site, "out", 250))
        # Stopped mid-stream (SIGTERM's path: the stop event), with messages in flight.
        await eventually(_counter(ctx, "out"), lambda n: n >= 300, 120, what="first 300")
    before = await stored(ctx, "out")
    await publishing  # every one of the 5,000 acknowledged by the broker meanwhile
    assert await stored(ctx, "out") == before < 5000
    async with running(ctx):
        await eventually(_counter(ctx, "out"), lambda n: n >= 5000, 180, what="5000 stored")
        await asyncio.sleep(0.5)  # anything beyond would be a second copy: none may come
    ids = await stored_ids(ctx, "out")
    assert len(ids) == 5000
    assert set(ids) == expected("out", 250)
    assert Counter(ids).most_common(1)[0][1] == 1
    assert "dropped" not in site.broker.log()


async def test_broker_killed_and_restarted_while_the_daemon_is_down_loses_nothing_acked(
    ctx: Context, site: Site
) -> None:
    async with running(ctx):
        pass  # the daemon's persistent session now exists in the broker
    await publish_points(site, "kill", 100)  # 2,000 PUBACKed while the daemon is away
    site.broker.kill()  # SIGKILL right after the last PUBACK: no save on the way out
    site.broker.start()
    async with running(ctx) as daemon:
        mqtt = service(daemon, MqttIngest)
        assert isinstance(mqtt, MqttIngest)
        assert mqtt._main is not None and mqtt._main.session_present is True
        await eventually(_counter(ctx, "kill"), lambda n: n >= 2000, 120, what="2000 stored")
    assert sorted(await stored_ids(ctx, "kill")) == sorted(expected("kill", 100))


async def _health(daemon: Daemon) -> tuple[int, dict[str, Any]]:
    http = service(daemon, HttpService)
    assert isinstance(http, HttpService)
    transport = httpx.ASGITransport(app=http.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://daemon") as client:
        response = await client.get("/healthz", timeout=10)
    return response.status_code, response.json()


async def test_healthz_is_not_ok_while_the_broker_refuses_then_auth_files_reload(
    ctx: Context, site: Site, db_url: str
) -> None:
    # An account the broker does not know yet: its files were written before it existed.
    late = await ctx.accounts.add(kind="daemon", account_id="labormon-late", region_code="430900")
    ctx.settings.mqtt.url = site.broker.url_for("labormon-late", late.mqtt_password)
    ctx.settings.mqtt.enabled = True
    ctx.settings.mqtt.reconnect_min = timedelta(seconds=0.2)
    ctx.settings.mqtt.reconnect_max = timedelta(seconds=0.5)
    daemon = Daemon(ctx, only=["ingest", "mqtt", "http"])
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)

        async def health() -> tuple[int, dict[str, Any]]:
            return await _health(daemon)

        status, body = await eventually(
            health,
            lambda h: "not authori" in json.dumps(h[1]).lower(),
            30,
            what="refusal seen",
        )
        assert status == 503
        assert body["status"] == "degraded"
        assert any("mqtt broker" in r for r in body["reasons"])
        # Files rewritten with the new account, and the running broker told (SIGHUP).
        made = cli(
            "mqtt",
            "auth-files",
            str(site.broker.auth_dir),
            "--reload",
            str(site.broker.pid_file),
            db_url=db_url,
            secret=SECRET,
        )
        assert made.returncode == 0, made.stderr
        assert "sent SIGHUP" in made.stderr
        assert "labormon-late:" in (site.broker.auth_dir / "password_file").read_text()
        status, body = await eventually(health, lambda h: h[0] == 200, 30, what="connected")
        assert body["status"] == "ok" and "reasons" not in body
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_auth_files_reload_names_a_missing_broker(
    ctx: Context, db_url: str, tmp_path: Path
) -> None:
    pidfile = tmp_path / "mosquitto.pid"
    pidfile.write_text("999999999\n")
    made = cli(
        "mqtt",
        "auth-files",
        str(tmp_path / "auth"),
        "--reload",
        str(pidfile),
        db_url=db_url,
        secret=SECRET,
    )
    assert made.returncode == 1
    assert "is Mosquitto running?" in made.stderr
    # The files were written all the same, for the broker's group, and nothing else.
    assert oct((tmp_path / "auth" / "password_file").stat().st_mode & 0o777) == "0o640"
    assert sorted(p.name for p in (tmp_path / "auth").iterdir()) == ["acl_file", "password_file"]
    bad = cli(
        "mqtt",
        "auth-files",
        str(tmp_path / "a2"),
        "--group",
        "no-such-group-x",
        db_url=db_url,
        secret=SECRET,
    )
    assert bad.returncode == 2
    assert "no group 'no-such-group-x'" in bad.stderr


async def test_a_lost_broker_session_is_counted_and_logged(ctx: Context, db_url: str) -> None:
    # Mosquitto's defaults: persistence saved every 30 minutes, so a SIGKILL loses the
    # daemon's session along with what it held.
    plain = await make_site(ctx, db_url, SECRET, shipped=False, client_id="labormon-lost")
    try:
        async with running(ctx):
            # The daemon notes that the broker now holds its session.
            await eventually(_session_mark(ctx), bool, 10, what="session noted")
        plain.broker.kill()
        plain.broker.start()
        async with running(ctx) as daemon:
            mqtt = service(daemon, MqttIngest)
            assert isinstance(mqtt, MqttIngest)
            assert mqtt._main is not None and mqtt._main.session_present is False

            async def lost() -> float:
                return (
                    ctx.metrics.registry.get_sample_value("labormon_mqtt_sessions_lost_total")
                    or 0.0
                )

            await eventually(lost, lambda n: n == 1, 10, what="session loss counted")
            assert mqtt.health()["sessions_lost"] == 1
        # A broker that keeps it: nothing counted on the next start.
        async with running(ctx) as daemon:
            mqtt = service(daemon, MqttIngest)
            assert isinstance(mqtt, MqttIngest)
            assert mqtt._main is not None and mqtt._main.session_present is True
            await asyncio.sleep(0.2)
            assert ctx.metrics.registry.get_sample_value("labormon_mqtt_sessions_lost_total") == 1
    finally:
        plain.broker.cleanup()


def _session_mark(ctx: Context):  # type: ignore[no-untyped-def]
    async def probe() -> bool:
        async with ctx.db.session() as session:
            return await session.get(Lease, SESSION_MARK + ctx.settings.mqtt.client_id) is not None

    return probe
