"""MQTT intake: how fast labormon stores durably, against a bare subscriber, on one broker.

    .venv/bin/python bench/ingest_throughput.py [--messages 20000] [--backends sqlite,postgresql]

1. Throughput. The same N informant reports are queued in the broker for a persistent
   session (published by another process while the consumer is away), then the consumer
   connects and drains them. Baseline: a bare aiomqtt subscriber that only counts
   (automatic acknowledgement). labormon: the daemon's ingest services, validating,
   committing in batches and acknowledging each message after its commit. The baseline
   is measured right before each labormon run, so both see the same machine load.
   Target: labormon / baseline >= 0.5.
2. Latency. A publisher in another process sends 1,000 messages/s for 10 s, each stamped
   with its send time; labormon reports, for each record, the time from publish to the
   commit of its transaction. Target: p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiomqtt  # noqa: E402
import asyncpg  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from ingest.mqtt import MqttIngest  # noqa: E402
from ingest.pipeline import Envelope, IngestPipeline, Outcome  # noqa: E402
from monitor.config import load_settings  # noqa: E402
from monitor.context import Context  # noqa: E402
from monitor.daemon import make_context  # noqa: E402
from monitor.logging import configure  # noqa: E402
from tests.support import publisher  # noqa: E402
from tests.support.broker import Broker  # noqa: E402
from tests.support.database import pg_admin_url  # noqa: E402

SECRET = "bench-secret-0123456789abcdef0123456789abcdef"


def publish(
    url: str, topic_prefix: str, prefix: str, count: int, *, rate: float = 0, stamp: bool = False
) -> None:
    """Publish from another process (so that the consumer has the CPU to itself)."""
    command = [
        sys.executable,
        "-m",
        "tests.support.publisher",
        "--url",
        url,
        "--client-id",
        f"bench-pub-{prefix}",
        "--prefix",
        prefix,
        "--count",
        str(count),
        "--mix",
        "reports",
        "--topic-prefix",
        topic_prefix,
        "--rate",
        str(rate),
        "--timeout",
        "600",
    ]
    if stamp:
        command.append("--stamp")
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def _session() -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    return props


async def bare_rate(broker: Broker, count: int, tag: str) -> float:
    """Messages/s of a subscriber that only counts, draining a queue of `count`."""
    topics = f"bench/bare-{tag}/labormon/v1"

    def client() -> aiomqtt.Client:
        return aiomqtt.Client(
            broker.host,
            broker.port,
            identifier=f"bench-bare-{tag}",
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=_session(),
        )

    async with client() as c:
        await c.subscribe(f"{topics}/reports/+", qos=1)
    publish(broker.url, topics, f"bare-{tag}", count)
    seen = 0
    started = time.perf_counter()
    async with client() as c:
        async for _message in c.messages:
            seen += 1
            if seen == count:
                break
    return count / (time.perf_counter() - started)


class Labormon:
    """The daemon's ingest services on one database, started and stopped at will."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.done = 0
        self.target = 0
        self.reached = asyncio.Event()
        self.latencies: list[float] = []
        self._tasks: list[asyncio.Task[None]] = []

    def _committed(self, batch: Sequence[Envelope], outcomes: Sequence[Outcome]) -> None:
        now = time.time()
        for env, out in zip(batch, outcomes, strict=True):
            if out.status == "rejected":
                raise RuntimeError(f"benchmark message rejected: {out.reason}")
            sent = env.record.extra.get("sent_at") if env.record and env.record.extra else None
            if isinstance(sent, float):
                self.latencies.append(now - sent)
        self.done += len(batch)
        if self.done >= self.target:
            self.reached.set()

    async def start(self) -> None:
        pipeline = IngestPipeline(self.ctx)
        pipeline.add_listener(self._committed)
        mqtt = MqttIngest(self.ctx, pipeline)
        self._tasks = [asyncio.create_task(pipeline.run()), asyncio.create_task(mqtt.run())]
        await asyncio.wait_for(mqtt.wait_connected(), 10)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def expect(self, count: int) -> None:
        self.done, self.target = 0, count
        self.reached.clear()
        self.latencies.clear()


async def run_backend(broker: Broker, backend: str, url: str, count: int) -> dict[str, float]:
    topics = f"bench/lm-{backend}/labormon/v1"
    settings = load_settings(
        overrides={
            "database": {"url": url},
            "security": {"secret_key": SECRET},
            "mqtt": {"url": broker.url, "client_id": f"bench-lm-{backend}", "topic_prefix": topics},
        }
    )
    ctx = make_context(settings)
    try:
        await ctx.db.migrate()
        for informant in publisher.INFORMANTS:
            await ctx.accounts.add(kind="informant", account_id=informant, region_code="430900")
        lm = Labormon(ctx)
        await lm.start()  # creates the persistent session and its subscription
        await lm.stop()

        baseline = await bare_rate(broker, count, backend)
        publish(broker.url, topics, f"tp-{backend}", count)
        lm.expect(count)
        started = time.perf_counter()
        await lm.start()
        await asyncio.wait_for(lm.reached.wait(), 600)
        rate = count / (time.perf_counter() - started)

        lm.expect(10_000)
        await asyncio.to_thread(
            publish, broker.url, topics, f"lat-{backend}", 10_000, rate=1000, stamp=True
        )
        await asyncio.wait_for(lm.reached.wait(), 120)
        await lm.stop()
        lat = sorted(lm.latencies)
        return {
            "baseline": baseline,
            "labormon": rate,
            "ratio": rate / baseline,
            "p50_ms": 1000 * statistics.median(lat),
            "p95_ms": 1000 * lat[int(0.95 * (len(lat) - 1))],
            "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
            "max_ms": 1000 * lat[-1],
        }
    finally:
        await ctx.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    configure("warning", "console")
    results: dict[str, dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="labormon-bench-") as tmp,
        Broker(Path(tmp) / "mqtt") as broker,
    ):
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite:///{tmp}/bench.db"
                results[backend] = await run_backend(broker, backend, url, args.messages)
            else:
                admin = make_url(pg_admin_url())
                dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
                conn = await asyncpg.connect(dsn)
                try:
                    await conn.execute("DROP DATABASE IF EXISTS labormon_bench WITH (FORCE)")
                    await conn.execute("CREATE DATABASE labormon_bench")
                    url = admin.set(database="labormon_bench").render_as_string(hide_password=False)
                    results[backend] = await run_backend(broker, backend, url, args.messages)
                finally:
                    await conn.execute("DROP DATABASE IF EXISTS labormon_bench WITH (FORCE)")
                    await conn.close()
    print(f"MQTT intake, {args.messages} queued informant reports, one Mosquitto")
    print(
        f"{'backend':<11} {'bare msg/s':>10} {'labormon msg/s':>15} {'ratio':>6}   "
        "publish->commit at 1000 msg/s: p50 / p95 / p99 / max (ms)"
    )
    ok = True
    for backend, r in results.items():
        print(
            f"{backend:<11} {r['baseline']:>10.0f} {r['labormon']:>15.0f} {r['ratio']:>6.2f}   "
            f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} / {r['p99_ms']:.1f} / {r['max_ms']:.1f}"
        )
        ok = ok and r["ratio"] >= 0.5 and r["p99_ms"] < 100
    print("targets (ratio >= 0.5, p99 < 100 ms):", "met" if ok else "NOT met")


if __name__ == "__main__":
    asyncio.run(main())
