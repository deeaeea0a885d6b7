"""How fast a level I report reaches the leaders' mailboxes while wage reports pour in.

Two paths, each beside a baseline measured in the same run (a bare aiosmtplib send of a
message of the same size to the same SMTP server):

  --path owned   finding committed -> email accepted by the SMTP server, for the three
                 tiers of a level I alert (the alerting stages: alerting loop, escalation,
                 outbox, email notifier), with a background load of wage-report rows
                 written at --wage-rate rows/s.
  --path full    informant report published on MQTT -> email accepted: the whole daemon
                 (MQTT ingest, detectors, alerting), with wage reports published on MQTT
                 at --wage-rate messages/s. Needs the ingest and detector services in
                 `monitor.daemon.SERVICES` and a mosquitto binary.

Latency is counted to the LAST of the three emails (county, city, province) of a report.
Target: p99 under 1 s; Alertmanager's default group_wait alone is 30 s.

    python bench/alert_latency.py                      # owned path, SQLite, 200 reports
    python bench/alert_latency.py --db postgresql://postgres@127.0.0.1/labormon_bench
    python bench/alert_latency.py --path full
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import bus
from monitor.clock import add_months
from monitor.config import Settings, load_settings
from monitor.context import Context
from monitor.daemon import SERVICES, Daemon, make_context
from monitor.logging import configure
from monitor.models import Finding
from monitor.records import parse_row
from monitor.store import Submission

COUNTIES = ["430902", "430903", "430921", "430922", "430923", "430981"]
LEADERS = [("bench-county", "430902"), ("bench-city", "430900"), ("bench-province", "430000")]


class Sink:
    """An SMTP server that notes when each message was accepted, with its text."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, float]] = []
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.perf_counter()
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(preferencelist=("plain",))
        text = str(message["Subject"]) + "\n" + (body.get_content() if body else "")
        with self.changed:
            self.arrivals.append((text, now))
            self.changed.notify_all()
        return "250 OK"

    def times(self, marker: str) -> list[float]:
        """When the messages mentioning `marker` (subject or body) were accepted."""
        with self.lock:
            return [t for text, t in self.arrivals if marker in text]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{name:<44} n={len(ms):<4} p50={percentile(ms, 50):8.1f} ms  "
        f"p99={percentile(ms, 99):8.1f} ms  max={max(ms):8.1f} ms"
    )


async def baseline(port: int, sink: Sink, n: int) -> list[float]:
    """A bare aiosmtplib send of a similar message, one after the other."""
    result = []
    body = "资阳建工150名农民工堵路讨薪。" * 40
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = "labormon@bench.example.org"
        msg["To"] = "duty@bench.example.org"
        msg["Subject"] = f"baseline-{i}"
        msg.set_content(body)
        msg.add_alternative(f"<p>{body}</p>", subtype="html")
        started = time.perf_counter()
        await aiosmtplib.send(msg, hostname="127.0.0.1", port=port, timeout=30)
        result.append(time.perf_counter() - started)
    return result


def settings_for(db_url: str, smtp_port: int, mqtt_url: str) -> Settings:
    for name in list(os.environ):
        if name.startswith("LABORMON_"):
            del os.environ[name]
    return load_settings(
        overrides={
            "database": {"url": db_url},
            "security": {"secret_key": "bench-secret-0123456789abcdef0123456789abcdef"},
            "http": {"bind": "127.0.0.1:0", "public_url": "https://labormon.example.org"},
            "smtp": {"url": f"smtp://127.0.0.1:{smtp_port}", "mail_from": "labormon@bench.org"},
            "mqtt": {"url": mqtt_url, "client_id": f"labormon-bench-{os.getpid()}"},
            "alerting": {"mqtt_events": False},
            "logging": {"level": "warning"},
        }
    )


async def seed(ctx: Context, points: int) -> list[str]:
    rows = [
        {
            "point_id": f"BP{i:05d}",
            "name": f"益阳基准企业{i}",
            "region_code": COUNTIES[i % len(COUNTIES)],
            "industry": "construction",
            "headcount": "200",
        }
        for i in range(points)
    ]
    await ctx.store.store("point", [Submission(parse_row("point", r), "file") for r in rows])
    for account_id, region in LEADERS:
        await ctx.accounts.add(
            kind="leader",
            account_id=account_id,
            region_code=region,
            email=f"{account_id}@bench.example.org",
        )
    return [r["point_id"] for r in rows]


def wage_rows(point_ids: list[str], months: int) -> list[dict[str, Any]]:
    start = date(2020, 1, 1)
    rows = []
    for m in range(months):
        period = add_months(start, m).strftime("%Y-%m")
        for point in point_ids:
            rows.append(
                {
                    "report_id": f"BW-{point}-{period}",
                    "point_id": point,
                    "period": period,
                    "headcount": 200,
                    "frontline_headcount": 150,
                    "avg_frontline_wage": round(random.uniform(3000, 7000), 2),
                    "arrears_amount": 0,
                    "arrears_workers": 0,
                    "arrears_months": 0,
                    "production_status": "normal",
                }
            )
    return rows


async def wage_load_via_store(
    ctx: Context, rows: list[dict[str, Any]], rate: int, stop: asyncio.Event
) -> int:
    """Store `rate` wage rows a second in batches of rate/10, as the ingest does."""
    batch = max(1, rate // 10)
    written = 0
    started = time.perf_counter()
    while not stop.is_set() and written < len(rows):
        chunk = rows[written : written + batch]
        subs = [Submission(parse_row("wage", r), "mqtt", r["point_id"]) for r in chunk]
        await ctx.store.store("wage", subs)
        ctx.bus.notify(bus.RECORDS)
        written += len(chunk)
        # Pace to the target rate (a load generator keeps time; nothing here is a test).
        ahead = written / rate - (time.perf_counter() - started)
        if ahead > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ahead)
    return written


async def wait_for(sink: Sink, marker: str, count: int, timeout: float) -> list[float]:
    deadline = time.monotonic() + timeout

    def ready() -> bool:
        return len(sink.times(marker)) >= count

    def block() -> bool:
        with sink.changed:
            return sink.changed.wait_for(ready, max(0.0, deadline - time.monotonic()))

    if not await asyncio.to_thread(block):
        raise TimeoutError(f"{marker}: {len(sink.times(marker))} of {count} emails")
    return sink.times(marker)


async def owned(args: argparse.Namespace, workdir: Path, sink: Sink, port: int) -> list[float]:
    db_url = args.db or f"sqlite:///{workdir}/bench.db"
    settings = settings_for(db_url, port, "mqtt://127.0.0.1:1")
    ctx = make_context(settings)
    await ctx.db.migrate()
    point_ids = await seed(ctx, args.points)
    months = -(-int(args.wage_rate * (args.reports * args.spacing + 30)) // len(point_ids))
    rows = wage_rows(point_ids, months)
    stop = asyncio.Event()
    daemon = Daemon(ctx, only=["alerting", "escalation", "outbox"])
    running = asyncio.create_task(daemon.run(stop))
    await daemon.ready.wait()
    load_stop = asyncio.Event()
    load = asyncio.create_task(wage_load_via_store(ctx, rows, args.wage_rate, load_stop))
    await asyncio.sleep(2)  # let the load reach its pace
    latencies = []
    load_started = time.perf_counter()
    for n in range(args.reports):
        marker = f"基准事件{n:04d}"
        now = datetime.now(UTC)
        async with ctx.db.session() as session:
            session.add(
                Finding(
                    detector="bench",
                    kind="event",
                    entity_type="event",
                    entity_id=f"BR{n}",
                    dedup_key=f"event:BR{n}",
                    region_code="430902",
                    point_id=None,
                    score=95.0,
                    level="I",
                    title=f"{marker} 150名农民工堵路讨薪",
                    evidence={"factors": [], "source_ids": [f"BR{n}"], "people_involved": 150},
                    as_of=now,
                    created_at=now,
                )
            )
        committed = time.perf_counter()
        ctx.bus.notify(bus.FINDINGS)
        arrivals = await wait_for(sink, marker, 3, 30)
        latencies.append(max(arrivals) - committed)
        await asyncio.sleep(max(0.0, args.spacing - (time.perf_counter() - committed)))
    elapsed = time.perf_counter() - load_started
    load_stop.set()
    written = await load
    stop.set()
    await running
    await ctx.close()
    print(f"background load: {written} wage rows stored, {written / (elapsed + 2):.0f} rows/s")
    return latencies


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = _free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n"
    )
    process = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # the broker's start-up, once, outside any measurement
    return process, f"mqtt://127.0.0.1:{port}"


def publish_wages(argv: list[str]) -> None:
    """The load generator: wage reports from a file, paced at --rate messages/s, QoS 1
    with up to 1,000 messages in flight (paho's own network thread)."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rows", required=True)
    parser.add_argument("--rate", type=float, required=True)
    opts = parser.parse_args(argv)
    host, port = opts.url.removeprefix("mqtt://").split(":")
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-wages")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, int(port))
    client.loop_start()
    rows = Path(opts.rows).read_text().splitlines()
    sent = 0
    started = time.perf_counter()
    stopped = threading.Event()
    signal_stop = lambda *_: stopped.set()  # noqa: E731
    import signal as _signal

    _signal.signal(_signal.SIGTERM, signal_stop)
    while sent < len(rows) and not stopped.is_set():
        row = json.loads(rows[sent])
        client.publish(f"labormon/v1/wages/{row['point_id']}", rows[sent], qos=1)
        sent += 1
        ahead = sent / opts.rate - (time.perf_counter() - started)
        if ahead > 0:
            time.sleep(ahead)
    elapsed = time.perf_counter() - started
    client.loop_stop()
    print(
        json.dumps({"published": sent, "seconds": round(elapsed, 1), "rate": round(sent / elapsed)})
    )


def check_full_path() -> None:
    if not {"mqtt", "detectors"} <= SERVICES.keys():
        raise SystemExit("--path full needs the MQTT ingest and detector services")


async def full(args: argparse.Namespace, workdir: Path, sink: Sink, port: int) -> list[float]:
    import aiomqtt

    broker, mqtt_url = start_broker(workdir)
    try:
        db_url = args.db or f"sqlite:///{workdir}/bench.db"
        settings = settings_for(db_url, port, mqtt_url)
        ctx = make_context(settings)
        await ctx.db.migrate()
        point_ids = await seed(ctx, args.points)
        await ctx.accounts.add(kind="informant", account_id="bench-informant", region_code="430902")
        # The points file their reports under their own accounts, as in production (the
        # daemon refuses reports from a topic id that is no active point account).
        for index, point_id in enumerate(point_ids):
            await ctx.accounts.add(
                kind="point", account_id=point_id, region_code=COUNTIES[index % len(COUNTIES)]
            )
        stop = asyncio.Event()
        daemon = Daemon(ctx)
        running = asyncio.create_task(daemon.run(stop))
        await daemon.ready.wait()
        months = -(-int(args.wage_rate * (args.reports * args.spacing + 30)) // len(point_ids))
        rows = wage_rows(point_ids, months)
        host, mport = mqtt_url.removeprefix("mqtt://").split(":")
        rows_file = workdir / "wages.jsonl"
        rows_file.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
        # The wage load comes from another process, as it would from the field: the daemon
        # under test does not share its event loop or its GIL with the load generator.
        publisher = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
            [
                sys.executable,
                __file__,
                "publish-wages",
                "--url",
                mqtt_url,
                "--rows",
                str(rows_file),
                "--rate",
                str(args.wage_rate),
            ],
            stdout=subprocess.PIPE,
        )
        await asyncio.sleep(2)
        latencies = []
        async with aiomqtt.Client(host, int(mport), identifier="bench-informant") as client:
            for n in range(args.reports):
                marker = f"基准企业事件{n:04d}"
                report = {
                    "report_id": f"BR{n:05d}",
                    "informant_id": "bench-informant",
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "region_code": "430902",
                    "enterprise_name": marker,
                    "event_type": "road_blocking",
                    "category": "wage_arrears",
                    "people_involved": 150,
                    "description": "工人堵路讨薪",
                }
                published = time.perf_counter()
                await client.publish(
                    "labormon/v1/reports/bench-informant", json.dumps(report), qos=1
                )
                arrivals = await wait_for(sink, marker, 3, 30)
                latencies.append(max(arrivals) - published)
                await asyncio.sleep(max(0.0, args.spacing - (time.perf_counter() - published)))
        publisher.terminate()
        out, _ = publisher.communicate(timeout=30)
        stop.set()
        await running
        await ctx.close()
        print(f"background load (another process): {out.decode().strip()}")
        return latencies
    finally:
        broker.terminate()
        broker.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--path", choices=["owned", "full"], default="owned")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--wage-rate", type=int, default=1000, help="wage reports per second")
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--spacing", type=float, default=0.15, help="seconds between reports")
    args = parser.parse_args()
    if args.path == "full":
        check_full_path()
    random.seed(7)
    configure("warning", "console")
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    workdir = Path(tempfile.mkdtemp(prefix="labormon-bench-"))
    try:
        base = await baseline(port, sink, args.reports)
        run = owned if args.path == "owned" else full
        measured = await run(args, workdir, sink, port)
    finally:
        controller.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    label = (
        "finding committed -> 3 emails accepted"
        if args.path == "owned"
        else "MQTT publish -> 3 emails accepted"
    )
    print(summary("baseline: one bare aiosmtplib send", base))
    print(summary(label, measured))
    p99, base_p99 = percentile(measured, 99), percentile(base, 99)
    print(f"ratio p99 / baseline p99: {p99 / base_p99:.1f}x")
    print(f"target p99 < 1 s: {'met' if p99 < 1 else 'NOT met'} ({p99 * 1000:.0f} ms)")
    print(f"Alertmanager group_wait (30 s) / our p99: {30 / p99:.0f}x faster")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    if sys.argv[1:2] == ["publish-wages"]:
        publish_wages(sys.argv[2:])
    else:
        asyncio.run(main())
