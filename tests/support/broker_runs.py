"""The broker's guarantees, run end to end: a Debian-started Mosquitto with the shipped
configuration (or Mosquitto's defaults), auth files written by `labormon mqtt
auth-files`, 20 monitoring points publishing from their own processes with their own
accounts, and the daemon's ingest services. Shared by tests/test_broker_shipped.py and
bench/broker_loss.py."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

from sqlalchemy import func, select

from monitor.context import Context
from monitor.models import WageReport
from tests.support import publisher
from tests.support.broker import DebianBroker
from tests.support.stream import REPO, import_points

POINTS = publisher.POINTS  # 20
DAEMON = "labormon-d"


@dataclass
class Site:
    """A broker as an installation has it, and the passwords of its accounts."""

    broker: DebianBroker
    passwords: dict[str, str] = field(default_factory=dict)

    def url(self, account: str) -> str:
        return self.broker.url_for(account, self.passwords[account])


def cli(*args: str, db_url: str, secret: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABORMON_")}
    env["LABORMON_SECRET_KEY"] = secret
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args, "--db", db_url],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def make_site(
    ctx: Context, db_url: str, secret: str, *, shipped: bool = True, client_id: str = "labormon-vm"
) -> Site:
    """Points and accounts in the store, auth files written by the command into a
    root-owned directory, the broker started, the daemon's settings pointed at it."""
    site = Site(DebianBroker(shipped=shipped))
    await import_points(ctx)
    new = await ctx.accounts.add(kind="daemon", account_id=DAEMON, region_code="430900")
    site.passwords[DAEMON] = new.mqtt_password
    for point in POINTS:
        new = await ctx.accounts.add(kind="point", account_id=point, region_code="430902")
        site.passwords[point] = new.mqtt_password
    made = cli("mqtt", "auth-files", str(site.broker.auth_dir), db_url=db_url, secret=secret)
    if made.returncode != 0:
        site.broker.cleanup()
        raise RuntimeError(f"labormon mqtt auth-files failed: {made.stderr}")
    site.broker.start()
    ctx.settings.mqtt.url = site.url(DAEMON)
    ctx.settings.mqtt.client_id = client_id
    return site


async def publish_points(site: Site, prefix: str, per_point: int, timeout: float = 300) -> None:
    """Every point publishes `per_point` wage reports from its own process, with its own
    account; returns when the broker has acknowledged (PUBACK) every one of them."""
    procs = []
    for point in POINTS:
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.support.publisher",
                "--url",
                site.url(point),
                "--client-id",
                f"pub-{prefix}-{point}",
                "--prefix",
                prefix,
                "--count",
                str(per_point),
                "--point",
                point,
                "--timeout",
                str(timeout),
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        )
    failures = []
    for proc in procs:
        out, err = await proc.communicate()
        if proc.returncode != 0:
            failures.append(err.decode(errors="replace")[-500:] or out.decode()[-500:])
        else:
            summary = json.loads(out.decode().strip().splitlines()[-1])
            assert summary["acknowledged"] == per_point
    if failures:
        raise RuntimeError("publishers failed:\n" + "\n".join(failures))


def expected(prefix: str, per_point: int) -> set[str]:
    return {
        publisher.point_message(prefix, point, i).record_id
        for point in POINTS
        for i in range(per_point)
    }


async def stored_ids(ctx: Context, prefix: str) -> list[str]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(WageReport.report_id).where(WageReport.report_id.like(f"{prefix}-%"))
        )
        return list(rows.all())


async def stored(ctx: Context, prefix: str) -> int:
    async with ctx.db.session() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(WageReport)
                .where(WageReport.report_id.like(f"{prefix}-%"))
            )
            or 0
        )
