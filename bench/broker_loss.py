"""What the broker loses while the daemon is away: the shipped configuration against
Mosquitto's defaults, on the same runs.

    .venv/bin/python bench/broker_loss.py [--per-point 250]   (as root: Mosquitto drops to
                                                              its own user, as on Debian)

Both runs use Debian's way of starting Mosquitto (tests/support/broker.py DebianBroker)
with the site file's listener and auth files written by `labormon mqtt auth-files`;
"shipped" adds deploy/mosquitto/labormon.conf to the include directory, "defaults" does
not. 20 monitoring points publish from their own processes with their own accounts.

1. Daemon stopped: the daemon's session exists, the daemon is stopped, the points
   publish 20 x N wage reports (each acknowledged by the broker), the daemon returns.
   Lost = acknowledged but never stored.
2. Broker killed: as 1 with 20 x N/2.5, then the broker is SIGKILLed and restarted
   before the daemon returns.
The publish time of run 1 shows what saving on every change costs the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor.config import load_settings  # noqa: E402
from monitor.context import Context  # noqa: E402
from monitor.daemon import make_context  # noqa: E402
from monitor.logging import configure  # noqa: E402
from tests.ingest_support import running  # noqa: E402
from tests.support.broker import DebianBroker  # noqa: E402
from tests.support.broker_runs import make_site, publish_points, stored  # noqa: E402

SECRET = "bench-secret-0123456789abcdef0123456789abcdef"


async def settle(ctx: Context, prefix: str, want: int, quiet: float = 5.0) -> int:
    """Stored count once it reaches `want` or stops growing for `quiet` seconds."""
    last, since = -1, time.monotonic()
    while True:
        n = await stored(ctx, prefix)
        if n >= want:
            return n
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since > quiet:
            return n
        await asyncio.sleep(0.2)


async def one_run(shipped: bool, scenario: str, per_point: int, workdir: Path) -> dict[str, float]:
    for name in list(os.environ):
        if name.startswith("LABORMON_"):
            del os.environ[name]
    db_url = f"sqlite:///{workdir}/{scenario}-{'shipped' if shipped else 'defaults'}.db"
    settings = load_settings(
        overrides={
            "database": {"url": db_url},
            "security": {"secret_key": SECRET},
            "http": {"bind": "127.0.0.1:0"},
            "logging": {"level": "warning"},
        }
    )
    ctx = make_context(settings)
    await ctx.db.migrate()
    site = await make_site(ctx, db_url, SECRET, shipped=shipped)
    try:
        async with running(ctx):
            pass  # the daemon's persistent session
        began = time.monotonic()
        await publish_points(site, scenario, per_point, timeout=600)
        publish_seconds = time.monotonic() - began
        if scenario == "kill":
            site.broker.kill()
            site.broker.start()
        async with running(ctx):
            got = await settle(ctx, scenario, 20 * per_point)
        sent = 20 * per_point
        return {
            "acknowledged": sent,
            "stored": got,
            "lost": sent - got,
            "publish_s": publish_seconds,
            "msg_per_s": sent / publish_seconds,
        }
    finally:
        site.broker.cleanup()
        await ctx.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-point", type=int, default=250, help="messages per point (x20)")
    args = parser.parse_args()
    why = DebianBroker.available()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    configure("warning", "console")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scenario, per_point in (
            ("outage", args.per_point),
            ("kill", max(1, int(args.per_point / 2.5))),
        ):
            for shipped in (True, False):
                result = await one_run(shipped, scenario, per_point, Path(tmp))
                rows.append((scenario, "shipped" if shipped else "defaults", result))
    print()
    print("| run | broker configuration | PUBACKed | stored | lost | publish s | msg/s |")
    print("|---|---|---|---|---|---|---|")
    names = {
        "outage": "daemon stopped, points publish",
        "kill": "broker SIGKILLed while the daemon is down",
    }
    for scenario, config, r in rows:
        print(
            f"| {names[scenario]} | {config} | {int(r['acknowledged'])} | {int(r['stored'])} "
            f"| **{int(r['lost'])}** | {r['publish_s']:.1f} | {r['msg_per_s']:.0f} |"
        )
    shipped_lost = sum(r["lost"] for _, c, r in rows if c == "shipped")
    return 0 if shipped_lost == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
