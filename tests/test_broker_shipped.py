"""The shipped broker configuration, run as an installation runs it: Debian's Mosquitto
started as root without `user root` (it drops to the `mosquitto` user), with
`deploy/mosquitto/labormon.conf` in its include directory, the site file's listener, and
the auth files that `labormon mqtt auth-files` wrote into a root-owned directory."""

from __future__ import annotations

import asyncio
import grp
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ingest.mqtt import MqttIngest
from monitor.context import Context
from tests.conftest import SECRET
from tests.ingest_support import running, service
from tests.support.broker import DebianBroker
from tests.support.broker_runs import (
    Site,
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
