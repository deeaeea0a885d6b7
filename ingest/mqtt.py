"""MQTT intake: read the input topics with QoS 1 and acknowledge each message after its commit.

At-least-once for real: aiomqtt acknowledges a QoS 1 message as soon as it is queued in
the process (aiomqtt issue #345), so paho's manual acknowledgement is switched on right
after the client is built, and the PUBACK is sent only once the record (or its
rejection) is committed. A crash in between makes the broker redeliver; the idempotent
insert turns the redelivery into a duplicate. The session is persistent (MQTT 5
`clean_start=False` with a session expiry; 3.1.1 `clean_session=False`) under a stable
client id, so messages published while the daemon is away wait in the broker.

Nothing is dropped in the process either: the incoming queue is unbounded and its size
is bounded instead by MQTT 5 Receive Maximum (the broker sends no more unacknowledged
messages than that).

Several daemons share the input through a shared subscription (`$share/<group>/...`).
The broker keeps routing a share to a member whose persistent session outlives its
process, so each daemon renews a lease on its session in the database, and a peer takes
over the session of a daemon whose lease ran out: it connects under that client id,
unsubscribes it from the group, and stores what was waiting there.

Wage reports come on a connection of their own (`mqtt.wage_lane`, the default): the
broker queues a session's messages in order, so on one connection an informant's report
published just after a month of wage reports would wait behind all of them. Each lane is
its own session (client id `<client_id>` for informant reports and petitions,
`<client_id>-wages` for wage reports), with its own window, queue, lease and rescue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ingest.pipeline import (
    REASON_TEXT_ZH,
    Envelope,
    IngestPipeline,
    Outcome,
    is_transient,
    record_id_from_payload,
)
from ingest.topics import errors_topic, input_filters, is_probe, parse_input_topic, shared
from monitor.clock import Clock
from monitor.context import Context
from monitor.db import Database
from monitor.logging import get_logger
from monitor.models import Lease

log = get_logger("labormon.mqtt")

#: MQTT 5 reason code of a DISCONNECT sent because another client took our client id.
SESSION_TAKEN_OVER = 142
#: Messages validated in a row before the MQTT reader yields to the event loop.
READ_SLICE = 64
#: Rejection notices waiting for the broker beyond this many are dropped (counted).
MAX_PENDING_NOTICES = 10_000
LEASE_PREFIX = "mqtt-session:"
#: Leases of the wage lane's sessions: a lane rescues only sessions of its own lane.
WAGE_LEASE_PREFIX = "mqtt-wages-session:"
#: The lanes (see the module docstring) and the input kinds each reads.
LANE_KINDS: dict[str, tuple[str, ...]] = {
    "all": ("wage", "petition", "report"),
    "events": ("petition", "report"),
    "wages": ("wage",),
}
#: A row in `leases` saying until when the broker should still hold this daemon's
#: session (the session expiry after it was last seen connected), so that a restarted
#: daemon knows when `session_present: false` means the broker lost it.
SESSION_MARK = "mqtt-known:"


@dataclass(eq=False)
class _Connection:
    """One connection to the broker under one client id, and its unanswered messages."""

    client: aiomqtt.Client
    client_id: str
    open: bool = False
    session_present: bool | None = None
    outstanding: int = 0
    received: int = 0
    last_message: float = field(default_factory=time.monotonic)


class SessionLeases:
    """Which daemon is alive behind which MQTT session (rows of `leases`)."""

    def __init__(self, db: Database, clock: Clock, ttl: float, prefix: str = LEASE_PREFIX) -> None:
        self.db = db
        self.clock = clock
        self.ttl = ttl
        self.prefix = prefix

    def _expiry(self) -> datetime:
        return self.clock.now() + timedelta(seconds=self.ttl)

    async def renew_own(self, client_id: str) -> None:
        """This daemon is alive and owns its session (taking it back from a rescuer)."""
        expires = self._expiry()
        async with self.db.connect() as conn:
            dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(Lease).values(
                name=self.prefix + client_id, holder=client_id, expires_at=expires
            )
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[Lease.name], set_={"holder": client_id, "expires_at": expires}
                )
            )

    async def expired(self, me: str) -> list[str]:
        """Client ids of sessions whose daemon stopped renewing its lease."""
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(Lease.name).where(
                    Lease.name.like(self.prefix + "%"),
                    Lease.name != self.prefix + me,
                    Lease.expires_at < self.clock.now(),
                )
            )
            return sorted(row[0][len(self.prefix) :] for row in rows)

    async def claim(self, client_id: str, me: str) -> bool:
        """Take an expired lease; only one of several daemons wins."""
        async with self.db.connect() as conn:
            result = await conn.execute(
                update(Lease)
                .where(Lease.name == self.prefix + client_id, Lease.expires_at < self.clock.now())
                .values(holder=me, expires_at=self._expiry())
            )
            return bool(result.rowcount)

    async def keep(self, client_id: str, me: str) -> bool:
        async with self.db.connect() as conn:
            result = await conn.execute(
                update(Lease)
                .where(Lease.name == self.prefix + client_id, Lease.holder == me)
                .values(expires_at=self._expiry())
            )
            return bool(result.rowcount)

    async def release(self, client_id: str, me: str) -> None:
        async with self.db.connect() as conn:
            await conn.execute(
                delete(Lease).where(Lease.name == self.prefix + client_id, Lease.holder == me)
            )


def _still_wanted() -> None:
    """Re-raise a cancellation that Python 3.11's `asyncio.wait_for` (which aiomqtt uses)
    swallows when the awaited reply arrives in the same loop turn as the cancel; the
    daemon would otherwise hang on shutdown, waiting for this task."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _code(value: object) -> int:
    """A paho ReasonCode or a plain int (MQTT 3.1.1 SUBACK) as an int."""
    value = getattr(value, "value", value)
    return value if isinstance(value, int) else 0x80


def _reason_value(exc: BaseException) -> int | None:
    rc = getattr(exc, "rc", None)
    return None if rc is None else _code(rc)


class MqttIngest:
    """The MQTT face of intake (a `Service`); the pipeline does validation and storage."""

    name = "mqtt"

    def __init__(self, ctx: Context, pipeline: IngestPipeline, lane: str = "all") -> None:
        self.ctx = ctx
        self.config = ctx.settings.mqtt
        self.pipeline = pipeline
        self.metrics = ctx.metrics
        self.lane = lane
        wages = lane == "wages"
        self.client_id = self.config.client_id + ("-wages" if wages else "")
        if wages:
            self.name = "mqtt-wages"
        prefix = self.config.topic_prefix.rstrip("/")
        self.prefix = prefix
        group = self.config.shared_group
        #: Every input filter (a session taken over, or one from before the lanes, may
        #: hold any of them) and this lane's own.
        self.all_filters = [shared(f, group) for f in input_filters(prefix)]
        self.filters = [shared(f, group) for f in input_filters(prefix, LANE_KINDS[lane])]
        self.leases = SessionLeases(
            ctx.db,
            ctx.clock,
            self.config.session_lease.total_seconds(),
            WAGE_LEASE_PREFIX if wages else LEASE_PREFIX,
        )
        #: Without the lanes, this daemon also rescues wage-lane sessions left by a peer
        #: (or by itself before `mqtt.wage_lane` was turned off): the broker keeps
        #: routing a share of the wage reports to them.
        self.other_leases = (
            SessionLeases(
                ctx.db, ctx.clock, self.config.session_lease.total_seconds(), WAGE_LEASE_PREFIX
            )
            if lane == "all"
            else None
        )
        self.metrics.mqtt_lanes[self.name] = False
        self._main: _Connection | None = None
        self._up = asyncio.Event()
        self._notices: collections.deque[tuple[str, bytes]] = collections.deque()
        self._notice_ready = asyncio.Event()
        self._connections = 0
        self._since: datetime | None = None
        self._last_error: str | None = None
        #: (first connection of this process, session_present) of each CONNACK.
        self._connacks: asyncio.Queue[tuple[bool, bool | None]] = asyncio.Queue()
        self.sessions_lost = 0

    @classmethod
    def create(cls, ctx: Context, pipeline: IngestPipeline, lane: str = "all") -> MqttIngest | None:
        return cls(ctx, pipeline, lane) if ctx.settings.mqtt.enabled else None

    @property
    def rescuing(self) -> bool:
        return bool(self.config.shared_group) and self.config.rescue_sessions

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    async def wait_connected(self) -> None:
        await self._up.wait()

    def health(self) -> dict[str, Any]:
        return {
            "connected": self._up.is_set(),
            "broker": f"{self.config.host}:{self.config.port}",
            "client_id": self.client_id,
            "protocol": self.config.protocol,
            "since": self._since.isoformat() if self._since else None,
            "last_error": self._last_error,
            "pending_error_notices": len(self._notices),
            "sessions_lost": self.sessions_lost,
        }

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            if self.rescuing:
                # Claim our own session before connecting, so no peer rescues it meanwhile.
                try:
                    await self.leases.renew_own(self.client_id)
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    log.warning("cannot renew the mqtt session lease", error=type(exc).__name__)
                group.create_task(self._lease_loop(), name="mqtt-lease")
                group.create_task(self._rescue_loop(), name="mqtt-rescue")
            group.create_task(self._notice_loop(), name="mqtt-notices")
            group.create_task(self._session_loop(), name="mqtt-session-check")
            group.create_task(self._main_loop(), name="mqtt-main")

    # ------------------------------------------------------------------ connection

    def _make_client(self, client_id: str) -> aiomqtt.Client:
        cfg = self.config
        v5 = cfg.protocol == "5"
        properties = None
        if v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = int(cfg.session_expiry.total_seconds())
            properties.ReceiveMaximum = cfg.receive_maximum
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username,
            password=cfg.password,
            identifier=client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            clean_session=None if v5 else False,
            # paho refuses any clean_start but its default on 3.1.1 (clean_session rules).
            clean_start=False if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            keepalive=cfg.keepalive,
            properties=properties,
            tls_context=ssl.create_default_context() if cfg.tls else None,
        )
        # Right after construction, before any message can arrive: acknowledge only
        # after the commit (see the module docstring).
        client._client.manual_ack_set(True)
        return client

    def _watch_connack(self, conn: _Connection) -> None:
        """Note whether the broker still had our session (aiomqtt does not expose it)."""
        paho_client = conn.client._client
        original: Any = paho_client.on_connect

        def on_connect(
            client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any = None
        ) -> None:
            conn.session_present = bool(getattr(flags, "session_present", False))
            if original is not None:
                original(client, userdata, flags, reason, props)

        paho_client.on_connect = on_connect

    async def _main_loop(self) -> None:
        failures = 0
        while True:
            connected_before = self._connections
            try:
                await self._serve()
            except aiomqtt.MqttError as exc:
                # A cancellation swallowed on the way (aiomqtt's connect uses wait_for)
                # must not turn into reconnecting for ever: a stopped daemon (or a
                # test's teardown) waited on this task without end.
                _still_wanted()
                self._last_error = str(exc) or exc.__class__.__name__
                self.metrics.mqtt_disconnects.inc()
                failures = 0 if self._connections > connected_before else failures + 1
                delay = self._backoff(failures)
                if _reason_value(exc) == SESSION_TAKEN_OVER:
                    log.error(
                        "another client connected with this daemon's client id; "
                        "mqtt.client_id must be unique per daemon",
                        client_id=self.client_id,
                        retry_in=round(delay, 2),
                    )
                elif self._connections > connected_before:
                    log.warning(
                        "mqtt connection lost; reconnecting",
                        broker=f"{self.config.host}:{self.config.port}",
                        error=self._last_error,
                        retry_in=round(delay, 2),
                    )
                else:
                    log.warning(
                        "mqtt broker unreachable; retrying",
                        broker=f"{self.config.host}:{self.config.port}",
                        error=self._last_error,
                        attempt=failures,
                        retry_in=round(delay, 2),
                    )
                await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        low = self.config.reconnect_min.total_seconds()
        high = self.config.reconnect_max.total_seconds()
        ceiling = min(high, low * 2 ** min(max(failures - 1, 0), 20))
        # Jitter, so that daemons and publishers do not return in lock-step.
        return random.uniform(ceiling / 2, ceiling)

    def _open(self, client_id: str) -> _Connection:
        conn = _Connection(self._make_client(client_id), client_id)
        self._watch_connack(conn)
        return conn

    async def _serve(self) -> None:
        """Connect under our client id and feed the pipeline until the connection ends."""
        conn = self._open(self.client_id)
        async with conn.client as client:
            conn.open = True
            self._connected(conn)
            try:
                granted = await client.subscribe([(f, 1) for f in self.filters])
                _still_wanted()
                refused = [
                    f for f, code in zip(self.filters, granted, strict=False) if _code(code) >= 0x80
                ]
                if refused:
                    log.error(
                        "broker refused the input subscriptions; check the daemon "
                        "account's ACL (labormon mqtt auth-files)",
                        filters=refused,
                    )
                    raise aiomqtt.MqttError("subscription refused")
                others = [f for f in self.all_filters if f not in self.filters]
                if others and conn.session_present:
                    # A session from before the lanes also holds the other lane's input,
                    # which would keep coming here, in one queue with ours.
                    await client.unsubscribe(others)
                    _still_wanted()
                await self._read(conn)
            finally:
                conn.open = False
                self._disconnected()

    async def _read(self, conn: _Connection) -> None:
        # aiomqtt's iterator spends a task and a few loop turns on every message; what
        # is already queued behind the one it returns is taken directly, in order.
        # Each message is validated as it is handed over: after a slice of them the loop
        # gets a turn, so a window of a thousand wage reports cannot hold up the alerts.
        queue = conn.client._queue
        async for message in conn.client.messages:
            self._handle(conn, message)
            handled = 1
            while not queue.empty():
                self._handle(conn, queue.get_nowait())
                handled += 1
                if handled % READ_SLICE == 0:
                    await asyncio.sleep(0)

    async def _serve_orphan(self, client_id: str, idle: float = 2.0) -> int:
        """Take over a stopped peer's session: unsubscribe it from the group, so that the
        broker routes nothing more to it, and store what it holds. Returns the count."""
        conn = self._open(client_id)
        async with conn.client as client:
            conn.open = True
            reader = asyncio.create_task(self._read(conn), name="mqtt-rescue-read")
            try:
                await client.unsubscribe(self.all_filters)
                _still_wanted()
                # Drained: everything answered and nothing new for `idle` seconds (the
                # broker sends held messages as soon as acknowledgements free the window).
                while conn.outstanding or time.monotonic() - conn.last_message < idle:
                    if reader.done():
                        reader.result()  # the connection broke: raises MqttError
                        raise aiomqtt.MqttError("session reader stopped")
                    await asyncio.sleep(0.1)
            except BaseException:
                reader.cancel()
                raise
            finally:
                conn.open = False
        # Leaving the client context disconnected it, which ended the reader (a message
        # still in flight stays in the session, unacknowledged, for its owner).
        with contextlib.suppress(aiomqtt.MqttError, asyncio.CancelledError):
            await reader
        return conn.received

    def _connected(self, conn: _Connection) -> None:
        first = self._connections == 0
        self._connections += 1
        self._main = conn
        self._since = self.ctx.clock.now()
        self._up.set()
        self._notice_ready.set()
        self._set_connected_gauge()
        self.metrics.mqtt_connects.inc()
        log.info(
            "mqtt connected",
            broker=f"{self.config.host}:{self.config.port}",
            client_id=self.client_id,
            session_present=conn.session_present,
        )
        self._connacks.put_nowait((first, conn.session_present))

    def _set_connected_gauge(self) -> None:
        """`labormon_mqtt_connected` is 1 only while every lane of this daemon is."""
        lanes = self.metrics.mqtt_lanes
        lanes[self.name] = self._up.is_set()
        self.metrics.mqtt_connected.set(1 if all(lanes.values()) else 0)

    def _session_lost(self) -> None:
        self.sessions_lost += 1
        self.metrics.mqtt_sessions_lost.inc()
        log.error(
            "the broker no longer had this daemon's session (session_present: false); "
            "messages it held for the daemon may be lost: check persistence and "
            "autosave in the broker's configuration (deploy/mosquitto/labormon.conf)",
            client_id=self.client_id,
            broker=f"{self.config.host}:{self.config.port}",
        )

    async def _mark_session(self) -> None:
        expires = self.ctx.clock.now() + self.config.session_expiry
        async with self.ctx.db.connect() as conn:
            dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(Lease).values(
                name=SESSION_MARK + self.client_id, holder=self.client_id, expires_at=expires
            )
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[Lease.name], set_={"expires_at": expires}
                )
            )

    async def _session_expected(self) -> bool:
        """Whether the broker should still hold our session (from before a restart)."""
        async with self.ctx.db.connect() as conn:
            row = (
                await conn.execute(
                    select(Lease.expires_at).where(Lease.name == SESSION_MARK + self.client_id)
                )
            ).first()
        return row is not None and row[0] > self.ctx.clock.now()

    async def _session_loop(self) -> None:
        """Check each CONNACK's session_present against what the broker should hold, and
        keep the mark of our session fresh while connected."""
        refresh = max(60.0, self.config.session_expiry.total_seconds() / 20)
        while True:
            try:
                first, present = await asyncio.wait_for(self._connacks.get(), refresh)
            except TimeoutError:
                first, present = False, None
                if not self.connected:
                    continue
            # A CONNACK that came in the turn the task was cancelled: Python 3.11's
            # wait_for returns it and drops the cancellation, and this loop would go on
            # for ever (a test's teardown hung on it).
            _still_wanted()
            try:
                # Within this process we know; after a restart the mark tells.
                if present is False and (not first or await self._session_expected()):
                    self._session_lost()
                await self._mark_session()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if present is False and first:
                    log.warning(
                        "cannot tell whether the broker kept this daemon's session "
                        "(database unavailable)",
                        error=exc.__class__.__name__,
                    )

    def _disconnected(self) -> None:
        self._up.clear()
        self._main = None
        self._since = self.ctx.clock.now()
        self._set_connected_gauge()

    # ------------------------------------------------------------------ messages

    def _handle(self, conn: _Connection, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        if is_probe(self.prefix, topic):  # `labormon doctor` checking the ACL: not input
            if message.qos > 0 and conn.open:
                conn.client._client.ack(message.mid, message.qos)
            return
        target = parse_input_topic(self.prefix, topic)
        payload = message.payload
        if isinstance(payload, bytes | bytearray):
            data = bytes(payload)
        elif payload is None:
            data = b""
        else:
            data = str(payload).encode()
        env = Envelope(
            channel="mqtt",
            origin=topic,
            kind=target.kind if target else None,
            sender=target.sender if target else None,
            payload=data,
            check_sender=True,
            # One kind per lane keeps acknowledgements in order by itself; a connection
            # with every kind (no lanes, a rescued session) must not let events jump.
            in_order=self.lane == "all" or conn is not self._main,
        )
        conn.outstanding += 1
        conn.received += 1
        conn.last_message = time.monotonic()
        mid, qos = message.mid, message.qos

        def answer(outcome: Outcome) -> None:
            if outcome.status == "rejected":
                self._notify(env, outcome)
            conn.outstanding -= 1
            # A PUBACK belongs to the connection the message came on; after a reconnect
            # the broker redelivers instead, and the redelivery is answered.
            if qos > 0 and conn.open:
                conn.client._client.ack(mid, qos)

        env.on_done = answer
        self.pipeline.submit(env)

    def _notify(self, env: Envelope, outcome: Outcome) -> None:
        """Queue a rejection notice for the sender's errors topic."""
        if not env.sender:
            return
        if len(self._notices) >= MAX_PENDING_NOTICES:
            self.metrics.mqtt_error_notices.labels("dropped").inc()
            return
        code = outcome.code or "invalid_field"
        notice = {
            "topic": env.origin,
            "kind": env.kind,
            "record_id": outcome.record_id or record_id_from_payload(env),
            "code": code,
            "message": REASON_TEXT_ZH.get(code, "消息被拒收"),
            "errors": [{"field": e.field, "reason": e.reason} for e in outcome.errors],
            "received_at": self.ctx.clock.now().isoformat(),
        }
        self._notices.append(
            (
                errors_topic(self.prefix, env.sender),
                json.dumps(notice, ensure_ascii=False).encode(),
            )
        )
        self._notice_ready.set()

    async def _notice_loop(self) -> None:
        """Publish rejection notices in order, over the main connection, as it comes and goes."""
        while True:
            await self._notice_ready.wait()
            self._notice_ready.clear()
            while self._notices:
                conn = self._main
                if conn is None or not conn.open:
                    break  # _connected() sets the event again
                topic, payload = self._notices[0]
                try:
                    await conn.client.publish(topic, payload, qos=1, timeout=10)
                except aiomqtt.MqttError:
                    break
                _still_wanted()
                self._notices.popleft()
                self.metrics.mqtt_error_notices.labels("sent").inc()

    # ------------------------------------------------------------------ scale-out

    async def _lease_loop(self) -> None:
        period = max(self.leases.ttl / 3, 0.2)
        while True:
            await asyncio.sleep(period)
            try:
                await self.leases.renew_own(self.client_id)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("cannot renew the mqtt session lease", error=exc.__class__.__name__)

    async def _rescue_loop(self) -> None:
        period = max(self.leases.ttl / 2, 0.2)
        while True:
            await asyncio.sleep(period)
            try:
                for leases in (self.leases, self.other_leases):
                    if leases is None:
                        continue
                    for orphan in await leases.expired(self.client_id):
                        if await leases.claim(orphan, self.client_id):
                            await self._rescue(orphan, leases)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("cannot check peers' mqtt sessions", error=exc.__class__.__name__)

    async def _rescue(self, orphan: str, leases: SessionLeases) -> None:
        log.warning(
            "taking over the mqtt session of a daemon whose lease ran out",
            session=orphan,
        )

        async def keep_claim() -> None:
            while True:
                if not await leases.keep(orphan, self.client_id):
                    return  # the owner is back and took its lease
                await asyncio.sleep(max(leases.ttl / 3, 0.2))

        keeper = asyncio.create_task(keep_claim(), name="mqtt-rescue-lease")
        try:
            received = await self._serve_orphan(orphan)
        except aiomqtt.MqttError as exc:
            # Most likely the owner came back and took its session: that is fine.
            log.info("session takeover ended", session=orphan, reason=str(exc))
            return
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await keeper
        await leases.release(orphan, self.client_id)
        self.metrics.mqtt_sessions_rescued.inc()
        log.warning(
            "session of a stopped daemon drained and unsubscribed",
            session=orphan,
            messages=received,
        )
