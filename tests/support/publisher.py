"""A load generator in its own process: publishes a deterministic stream with QoS 1.

    python -m tests.support.publisher --url mqtt://127.0.0.1:1883 --prefix run1 --count 10000

Message `i` of a stream is always the same record, so a test knows which ids must end
up in the database. The publisher keeps a persistent session and paho's own queue: it
goes on publishing while the broker is away and re-sends what was not acknowledged when
the broker is back. It exits 0 once the broker has acknowledged every message and
prints one JSON line with what it did.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

INFORMANTS = [f"inf-{n:02d}" for n in range(20)]
SOURCES = ["src-0", "src-1", "src-2"]
#: 20 points x 50 months: one wage report per point and month for 10,000 messages.
POINTS = [f"P{n:03d}" for n in range(20)]
COUNTIES = ["430902", "430903", "430921", "430922", "430923", "430981"]


def point_rows() -> list[dict[str, str]]:
    """The monitoring points the wage reports of a stream refer to (import them first)."""
    return [
        {
            "point_id": p,
            "name": f"监测企业{n:03d}",
            "region_code": COUNTIES[n % len(COUNTIES)],
            "industry": "construction" if n % 2 else "manufacturing",
            "headcount": str(200 + n),
        }
        for n, p in enumerate(POINTS)
    ]


def senders() -> list[tuple[str, str]]:
    """(account kind, id) of everyone who publishes in a mixed stream."""
    return (
        [("informant", i) for i in INFORMANTS]
        + [("source", s) for s in SOURCES]
        + [("point", p) for p in POINTS]
    )


@dataclass(frozen=True)
class Message:
    topic: str
    kind: str
    record_id: str
    payload: dict[str, object]


def message(prefix: str, i: int, mix: str = "mixed", topic_prefix: str = "labormon/v1") -> Message:
    """Message `i` of stream `prefix`: one in ten a petition, one in ten a wage report,
    the rest informant reports (only informant reports with mix="reports")."""
    slot = i % 10 if mix == "mixed" else 9
    day = 1 + i % 28
    if slot == 0:
        source = SOURCES[i % len(SOURCES)]
        rid = f"{prefix}-Q{i}"
        return Message(
            f"{topic_prefix}/petitions/{source}",
            "petition",
            rid,
            {
                "petition_id": rid,
                "received_at": f"2024-12-{day:02d}T10:{i % 60:02d}:00+08:00",
                "channel": "hotline_12351",
                "region_code": COUNTIES[i % len(COUNTIES)],
                "category": "wage_arrears",
                "people_involved": 1 + i % 7,
                "summary": "工地拖欠农民工工资两个月",
                "petitioner_name": "张三",
                "petitioner_phone": "13800001111",
            },
        )
    if slot == 1:
        n = i // 10
        point = POINTS[n % len(POINTS)]
        month = n // len(POINTS)  # months since 2015-01: one report per point and month
        rid = f"{prefix}-W{i}"
        return Message(
            f"{topic_prefix}/wages/{point}",
            "wage",
            rid,
            {
                "report_id": rid,
                "point_id": point,
                "period": f"{2015 + month // 12}-{1 + month % 12:02d}",
                "headcount": 200,
                "frontline_headcount": 150,
                "avg_frontline_wage": 4200.5,
                "wages_paid_on": None,
                "arrears_amount": 0,
                "arrears_workers": 0,
                "arrears_months": 0,
                "production_status": "normal",
            },
        )
    informant = INFORMANTS[i % len(INFORMANTS)]
    rid = f"{prefix}-R{i}"
    return Message(
        f"{topic_prefix}/reports/{informant}",
        "report",
        rid,
        {
            "report_id": rid,
            "informant_id": informant,
            "occurred_at": f"2024-12-{day:02d}T09:{i % 60:02d}:00+08:00",
            "region_code": COUNTIES[i % len(COUNTIES)],
            "event_type": "precursor",
            "category": "wage_arrears",
            "people_involved": i % 9,
            "description": "工人反映本月工资推迟发放",
        },
    )


def point_message(prefix: str, point: str, i: int, topic_prefix: str = "labormon/v1") -> Message:
    """Message `i` of one monitoring point's own stream: its wage report for month `i`
    (from 1990-01), on its own topic, so that the point's account may send it."""
    rid = f"{prefix}-{point}-W{i}"
    return Message(
        f"{topic_prefix}/wages/{point}",
        "wage",
        rid,
        {
            "report_id": rid,
            "point_id": point,
            "period": f"{1990 + i // 12}-{1 + i % 12:02d}",
            "headcount": 200,
            "frontline_headcount": 150,
            "avg_frontline_wage": 4200.5,
            "wages_paid_on": None,
            "arrears_amount": 0,
            "arrears_workers": 0,
            "arrears_months": 0,
            "production_status": "normal",
        },
    )


def expected_ids(prefix: str, start: int, count: int, mix: str = "mixed") -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"wage": set(), "petition": set(), "report": set()}
    for i in range(start, start + count):
        m = message(prefix, i, mix)
        out[m.kind].add(m.record_id)
    return out


def publish(
    url: str,
    client_id: str,
    prefix: str,
    start: int,
    count: int,
    *,
    rate: float = 0.0,
    mix: str = "mixed",
    topic_prefix: str = "labormon/v1",
    stamp: bool = False,
    timeout: float = 120.0,
    point: str | None = None,
) -> dict[str, object]:
    parts = urlsplit(url)
    connected = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    client.max_inflight_messages_set(100)
    client.reconnect_delay_set(0.1, 1)
    reconnects = 0

    def on_connect(_c: paho.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        nonlocal reconnects
        if getattr(rc, "value", rc) == 0:
            if connected.is_set():
                reconnects += 1
            connected.set()

    # Acknowledged message ids. MessageInfo.is_published() cannot be used: it raises for a
    # message published while disconnected, although paho queues and re-sends it.
    acked: set[int] = set()
    lock = threading.Lock()

    def on_publish(_c: paho.Client, _u: object, mid: int, _rc: object, _p: object) -> None:
        with lock:
            acked.add(mid)

    client.on_connect = on_connect
    client.on_publish = on_publish
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect_async(
        parts.hostname or "127.0.0.1",
        parts.port or 1883,
        keepalive=10,
        clean_start=False,
        properties=props,
    )
    client.loop_start()
    if not connected.wait(10):
        raise SystemExit(f"publisher {client_id}: cannot connect to {url}")
    began = time.monotonic()
    infos = []
    for n, i in enumerate(range(start, start + count)):
        if rate > 0:
            # Pace the stream (a load generator, not a test waiting on a timer).
            delay = began + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        m = (
            point_message(prefix, point, i, topic_prefix)
            if point
            else message(prefix, i, mix, topic_prefix)
        )
        body = dict(m.payload)
        if stamp:
            body["sent_at"] = time.time()
        infos.append(client.publish(m.topic, json.dumps(body, ensure_ascii=False), qos=1))
    published_in = time.monotonic() - began
    deadline = time.monotonic() + timeout
    mids = {info.mid for info in infos}
    assert len(mids) == count, "message ids wrapped around: publish fewer per client"
    while True:
        with lock:
            unacked = len(mids - acked)
        if not unacked:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"publisher {client_id}: {unacked} messages not acknowledged")
        time.sleep(0.05)
    client.disconnect()
    client.loop_stop()
    return {
        "client_id": client_id,
        "published": count,
        "acknowledged": count,
        "reconnects": reconnects,
        "publish_seconds": round(published_in, 3),
        "seconds": round(time.monotonic() - began, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--client-id", default="labormon-load")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s; 0: no pacing")
    parser.add_argument("--mix", choices=["mixed", "reports"], default="mixed")
    parser.add_argument("--topic-prefix", default="labormon/v1")
    parser.add_argument("--stamp", action="store_true", help="add sent_at (epoch seconds)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--point", help="publish only this point's wage reports")
    args = parser.parse_args(argv)
    summary = publish(
        args.url,
        args.client_id,
        args.prefix,
        args.start,
        args.count,
        rate=args.rate,
        mix=args.mix,
        topic_prefix=args.topic_prefix,
        stamp=args.stamp,
        timeout=args.timeout,
        point=args.point,
    )
    print(json.dumps(summary), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
