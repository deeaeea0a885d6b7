"""The notification outbox: deliveries are written with the alert change that causes them
(`Outbox.enqueue*`, in the caller's transaction) and sent afterwards (`OutboxSender`).

The sender claims due deliveries with a lease (`claimed_until`; `FOR UPDATE SKIP LOCKED`
on PostgreSQL, the write lock that every SQLite transaction takes at BEGIN elsewhere),
counts the attempt at claim time, sends through the channel's notifier, and records a
`DeliveryAttempt`. A crash mid-send leaves the delivery claimed: another daemon takes it
after the lease, and a restarted daemon at once (it owns its own stale leases). The
re-send carries the same delivery id (Message-ID, Idempotency-Key), so receivers drop
the copy. Transient errors back off exponentially; permanent ones mark the delivery and
its channel failed, which the CLI, the API and /metrics show.

Level III and IV messages to one contact within `alerting.batch_window` of the previous
one are held until the window has passed and go out as one message listing them all;
the first one of a quiet period goes at once, and levels I and II never wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from monitor import bus
from monitor.alerting.contacts import Contact
from monitor.alerting.messages import subject_for
from monitor.alerting.metrics import alerting_metrics
from monitor.alerting.notifiers import (
    ComposeError,
    DeliveryError,
    Notifier,
    NotifierEnv,
    build_notifiers,
)
from monitor.context import Context
from monitor.db import is_transient
from monitor.logging import get_logger
from monitor.loops import Waker, finish, seconds_until
from monitor.models import Alert, AlertEvent, ChannelHealth, Delivery, DeliveryAttempt

log = get_logger("labormon.outbox")

LEVEL_PRIORITY = {"I": 0, "II": 1, "III": 2, "IV": 3}
OTHER_PRIORITY = 4
BATCHED_LEVELS = frozenset({"III", "IV"})
#: Deliveries claimed per query.
CLAIM_BATCH = 50
_EMAIL = re.compile(r"[\w.+\-]+@")


def priority_of(level: str | None) -> int:
    return LEVEL_PRIORITY.get(level or "", OTHER_PRIORITY)


class Outbox:
    """Writes deliveries in the caller's transaction."""

    def __init__(self, *, batch_window: timedelta, postgres: bool) -> None:
        self.batch_window = batch_window
        self.postgres = postgres

    async def enqueue(
        self,
        session: AsyncSession,
        *,
        channel: str,
        recipient: str | None,
        address: str,
        subject: str,
        body: dict[str, Any],
        purpose: str,
        now: datetime,
        priority: int = OTHER_PRIORITY,
        alert_id: int | None = None,
        batch_key: str | None = None,
        not_before: datetime | None = None,
    ) -> Delivery:
        delivery = Delivery(
            id=str(uuid.uuid4()),
            alert_id=alert_id,
            purpose=purpose,
            channel=channel,
            recipient=recipient,
            address=address,
            subject=subject,
            body=body,
            status="pending",
            attempts=0,
            next_attempt_at=max(now, not_before) if not_before else now,
            created_at=now,
            priority=priority,
            batch_key=batch_key,
        )
        session.add(delivery)
        return delivery

    async def enqueue_alert(
        self,
        session: AsyncSession,
        *,
        contact: Contact,
        alert: Alert,
        item: dict[str, Any],
        purpose: str,
        now: datetime,
    ) -> Delivery:
        """One alert message to one contact, batched with others for level III/IV."""
        if alert.level not in BATCHED_LEVELS or self.batch_window <= timedelta(0):
            body = {"kind": "alert", "items": [item]}
            return await self.enqueue(
                session,
                channel=contact.channel,
                recipient=contact.recipient,
                address=contact.address,
                subject=subject_for(body),
                body=body,
                purpose=purpose,
                now=now,
                priority=priority_of(alert.level),
                alert_id=alert.id,
            )
        key = f"{contact.channel}:{contact.recipient}:{contact.address}"[:300]
        held = await self._open_batch(session, key)
        if held is not None:
            # Not attempted yet, so no receiver has seen it: it can still grow.
            items = [*held.body.get("items", []), item]
            body = {**held.body, "items": items}
            held.body = body
            held.subject = subject_for(body)
            if held.purpose != purpose:
                held.purpose = "batch"
            return held
        last_slot = await session.scalar(
            select(func.max(func.coalesce(Delivery.sent_at, Delivery.next_attempt_at))).where(
                Delivery.batch_key == key,
                Delivery.created_at >= now - self.batch_window - timedelta(days=1),
            )
        )
        not_before = None
        if last_slot is not None and last_slot + self.batch_window > now:
            not_before = last_slot + self.batch_window
        body = {"kind": "alert", "items": [item]}
        return await self.enqueue(
            session,
            channel=contact.channel,
            recipient=contact.recipient,
            address=contact.address,
            subject=subject_for(body),
            body=body,
            purpose=purpose,
            now=now,
            priority=priority_of(alert.level),
            alert_id=alert.id,
            batch_key=key,
            not_before=not_before,
        )

    async def _open_batch(self, session: AsyncSession, key: str) -> Delivery | None:
        query = (
            select(Delivery)
            .where(
                Delivery.batch_key == key,
                Delivery.status == "pending",
                Delivery.attempts == 0,
                Delivery.claimed_until.is_(None),
            )
            .order_by(Delivery.created_at.desc())
            .limit(1)
        )
        if self.postgres:
            # A sender claiming it at the same moment wins; we then see it claimed
            # (the row is re-checked after the lock) and start a new message.
            query = query.with_for_update()
        return (await session.scalars(query)).first()


def backoff(
    attempts: int,
    *,
    initial: timedelta,
    cap: timedelta,
    delivery_id: str,
    retry_after: float | None = None,
) -> timedelta:
    """initial * 2^(attempts-1), capped, with a fixed per-delivery jitter of +-15 %
    (spreads retries after an outage, and stays reproducible under a frozen clock).

    The exponent is capped before the power is taken: `timedelta * 2**n` overflows
    (OverflowError) from about n = 43, and a channel that fails for days gets there."""
    try:
        spread = int(delivery_id.replace("-", "")[:8], 16) / 0xFFFFFFFF
    except ValueError:
        spread = 0.5
    if initial <= timedelta(0) or cap <= timedelta(0):
        return max(cap, timedelta(0))
    # The smallest doubling count that reaches the cap even at the lowest jitter (0.85).
    ceiling = max(0, math.ceil(math.log2(cap / initial / 0.85)))
    exponent = min(max(0, attempts - 1), ceiling)
    delay = min(initial * (2**exponent) * (0.85 + 0.3 * spread), cap)
    if retry_after:
        delay = max(delay, timedelta(seconds=min(retry_after, (cap * 2).total_seconds())))
    return delay


class OutboxSender:
    """The service that sends deliveries."""

    name = "outbox"

    def __init__(
        self,
        ctx: Context,
        *,
        notifiers: dict[str, Notifier] | None = None,
        http: httpx.AsyncClient | None = None,
        node: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.config = ctx.settings.alerting.outbox
        self.metrics = alerting_metrics(ctx.metrics)
        #: Stable across restarts of this daemon (its MQTT client id): leases held by an
        #: earlier incarnation of the same node are known to be dead.
        self.node = node or ctx.settings.mqtt.client_id
        self.holder = f"{self.node}/{uuid.uuid4().hex[:8]}"
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(follow_redirects=False)
        self.notifiers = notifiers or build_notifiers(
            NotifierEnv(ctx.settings, ctx.db, ctx.clock, self.http)
        )
        #: Sends under way in this process: task -> (channel, delivery id).
        self._in_flight: dict[asyncio.Task[None], tuple[str, str]] = {}
        self._finished = asyncio.Event()
        self._started = False
        self._closed = False

    @classmethod
    def create(cls, ctx: Context) -> OutboxSender | None:
        return cls(ctx) if ctx.settings.alerting.enabled else None

    def health(self) -> dict[str, Any]:
        return {"in_flight": len(self._in_flight), "holder": self.holder}

    async def start(self) -> None:
        """Take back this node's leases from before a restart and load channel states."""
        if self._started:
            return
        self._started = True
        await finish(self._start())

    async def _start(self) -> None:
        async with self.ctx.db.session() as session:
            result = await session.execute(
                update(Delivery)
                .where(
                    Delivery.status == "pending",
                    Delivery.claimed_by.startswith(self.node + "/", autoescape=True),
                    Delivery.claimed_by != self.holder,
                )
                .values(claimed_until=None)
            )
            released = result.rowcount  # type: ignore[attr-defined]
            for health in await session.scalars(select(ChannelHealth)):
                self._set_gauges(health.channel, health.recipient, health)
        if released:
            log.warning("took back deliveries claimed before a restart", count=released)

    # ------------------------------------------------------------------ sending

    async def run_once(self) -> int:
        """Claim every due delivery and send it; returns when their results are recorded."""
        await self.start()
        tasks = await self._dispatch_due()
        if tasks:
            await asyncio.gather(*tasks)
        return len(tasks)

    async def _dispatch_due(self) -> list[asyncio.Task[None]]:
        tasks: list[asyncio.Task[None]] = []
        while True:
            busy = self._busy_channels()
            batch = await self._claim(busy)
            for delivery in batch:
                task = asyncio.create_task(self._send_one(delivery), name=f"send {delivery.id}")
                self._in_flight[task] = (delivery.channel, delivery.id)
                task.add_done_callback(self._done)
                tasks.append(task)
            if len(batch) < CLAIM_BATCH:
                return tasks

    def _busy_channels(self) -> list[str]:
        counts: dict[str, int] = {}
        for channel, _ in self._in_flight.values():
            counts[channel] = counts.get(channel, 0) + 1
        return [c for c, n in counts.items() if n >= self.config.concurrency]

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._finished.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", error=repr(task.exception()))

    async def _claim(self, busy: list[str]) -> list[Delivery]:
        return await finish(self._claim_now(busy))

    async def _claim_now(self, busy: list[str]) -> list[Delivery]:
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            query = (
                select(Delivery)
                .where(
                    Delivery.status == "pending",
                    Delivery.next_attempt_at <= now,
                    or_(Delivery.claimed_until.is_(None), Delivery.claimed_until <= now),
                )
                .order_by(Delivery.priority, Delivery.next_attempt_at)
                .limit(CLAIM_BATCH)
            )
            if busy:
                query = query.where(Delivery.channel.not_in(busy))
            if self._in_flight:
                # A send of ours that outlives its lease (a server that trickles, a
                # clock that jumped) is still ours: never start it a second time.
                query = query.where(Delivery.id.not_in([i for _, i in self._in_flight.values()]))
            if self.ctx.db.is_postgres:
                query = query.with_for_update(skip_locked=True)
            rows = list((await session.scalars(query)).all())
            for delivery in rows:
                delivery.claimed_until = now + self.config.lease
                delivery.claimed_by = self.holder
                # Counted before sending: a crash mid-send still counts as an attempt.
                delivery.attempts += 1
        return rows

    async def _send_one(self, delivery: Delivery) -> None:
        notifier = self.notifiers.get(delivery.channel)
        started = time.perf_counter()
        error: DeliveryError | None = None
        if notifier is None:
            error = DeliveryError(f"no notifier for channel {delivery.channel}", permanent=True)
        else:
            try:
                await notifier.send(delivery)
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # a notifier bug must not lose the message: retry it
                log.exception("notifier raised", channel=delivery.channel, delivery=delivery.id)
                error = DeliveryError(f"{exc.__class__.__name__}: {exc}")
        # Cancelled while sending: not recorded, the lease brings the message back. Once
        # sent, the result is recorded whatever happens, or it would be sent again.
        await finish(self._record(delivery, error, (time.perf_counter() - started) * 1000))

    async def _record(
        self, delivery: Delivery, error: DeliveryError | None, duration_ms: float
    ) -> None:
        now = self.ctx.clock.now()
        channel, recipient = delivery.channel, delivery.recipient or "-"
        async with self.ctx.db.session() as session:
            session.add(
                DeliveryAttempt(
                    delivery_id=delivery.id,
                    at=now,
                    ok=error is None,
                    permanent=bool(error and error.permanent),
                    error=str(error)[:2000] if error else None,
                    duration_ms=round(duration_ms, 2),
                )
            )
            row = await session.get(Delivery, delivery.id, with_for_update=True)
            if row is None or row.status != "pending":
                return  # finished by another sender after our lease ran out
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", now, None
                row.claimed_until = None
                await self._pull_in(session, row, now)
                outcome = "sent"
            elif error.permanent:
                row.status, row.last_error, row.claimed_until = "failed", str(error)[:2000], None
                outcome = "failed"
                if isinstance(error, ComposeError) and row.alert_id is not None:
                    # On the alert's timeline in the console: an operator must look.
                    session.add(
                        AlertEvent(
                            alert_id=row.alert_id,
                            at=now,
                            event="DeliveryComposeFailed",
                            actor="system",
                            reason=str(error)[:500],
                            details={"delivery_id": row.id, "channel": channel},
                        )
                    )
            elif now - row.created_at >= self.config.give_up_after:
                row.status, row.claimed_until = "failed", None
                row.last_error = f"gave up after {row.attempts} attempts: {error}"[:2000]
                outcome = "failed"
            else:
                cap = (
                    self.config.urgent_backoff_max if row.priority <= 1 else self.config.backoff_max
                )
                row.next_attempt_at = now + backoff(
                    row.attempts,
                    initial=self.config.backoff_initial,
                    cap=cap,
                    delivery_id=row.id,
                    retry_after=error.retry_after,
                )
                row.claimed_until, row.last_error = None, str(error)[:2000]
                outcome = "retry"
            health = await self._update_health(session, channel, recipient, error, now, outcome)
        self.metrics.deliveries.labels(channel, outcome).inc()
        if isinstance(error, ComposeError):
            self.metrics.compose_errors.labels(channel).inc()
            log.error(
                "message could not be composed; failed without retrying",
                delivery=delivery.id,
                channel=channel,
                error=str(error)[:300],
            )
        if outcome == "sent":
            self.metrics.delivery_latency.labels(channel).observe(
                max(0.0, (now - delivery.created_at).total_seconds())
            )
        self._set_gauges(channel, recipient, health)
        if outcome != "sent":
            log.warning(
                "delivery not sent",
                delivery=delivery.id,
                channel=channel,
                recipient=recipient,
                outcome=outcome,
                attempts=delivery.attempts,
                # SMTP replies quote the address, which may carry a person's name.
                error=_EMAIL.sub("***@", str(error))[:300],
            )

    async def _pull_in(self, session: AsyncSession, row: Delivery, now: datetime) -> None:
        """The channel works again: retries waiting out a backoff on it go now."""
        same = (
            Delivery.channel == "email"
            if row.channel == "email"
            else (Delivery.channel == row.channel) & (Delivery.address == row.address)
        )
        await session.execute(
            update(Delivery)
            .where(
                same,
                Delivery.status == "pending",
                Delivery.attempts > 0,
                Delivery.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )

    async def _update_health(
        self,
        session: AsyncSession,
        channel: str,
        recipient: str,
        error: DeliveryError | None,
        now: datetime,
        outcome: str,
    ) -> ChannelHealth:
        table = ChannelHealth.__table__
        insert = postgresql.insert if self.ctx.db.is_postgres else sqlite.insert
        key = f"{channel}:{recipient}"[:100]
        if error is None:
            values: dict[str, Any] = {
                "status": "ok",
                "consecutive_failures": 0,
                "last_ok_at": now,
                "updated_at": now,
            }
            update_set: dict[str, Any] = dict(values)
        else:
            values = {
                "status": "failed" if outcome == "failed" else "failing",
                "consecutive_failures": 1,
                "last_error": str(error)[:2000],
                "last_error_at": now,
                "updated_at": now,
            }
            update_set = values | {"consecutive_failures": table.c.consecutive_failures + 1}
        statement = (
            insert(ChannelHealth)
            .values(key=key, channel=channel, recipient=recipient, **values)
            .on_conflict_do_update(index_elements=["key"], set_=update_set)
        )
        await session.execute(statement)
        health = await session.get(ChannelHealth, key, populate_existing=True)
        assert health is not None
        return health

    def _set_gauges(self, channel: str, recipient: str, health: ChannelHealth) -> None:
        self.metrics.channel_failed.labels(channel, recipient).set(
            1 if health.status == "failed" else 0
        )
        self.metrics.channel_failing.labels(channel, recipient).set(health.consecutive_failures)

    # ------------------------------------------------------------------ loop

    async def next_due(self) -> datetime | None:
        async with self.ctx.db.session() as session:
            pending = await session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.status == "pending")
            )
            self.metrics.deliveries_pending.set(pending or 0)
            due = await session.scalar(
                select(func.min(func.coalesce(Delivery.claimed_until, Delivery.next_attempt_at)))
                .select_from(Delivery)
                .where(Delivery.status == "pending")
            )
        return due

    async def run(self) -> None:
        waker = Waker(self.ctx.bus, [bus.DELIVERIES], self.ctx.clock, extra=self._finished)
        poll = self.ctx.settings.alerting.poll_interval.total_seconds()
        try:
            while True:
                timeout = poll
                try:
                    await self.start()
                    await self._dispatch_due()
                    timeout = seconds_until(await finish(self.next_due()), self.ctx.clock, poll)
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    log.error("outbox: database unavailable, retrying", error=str(exc)[:300])
                    self._started = False
                await waker.wait(timeout)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._in_flight):
            task.cancel()
        for task in list(self._in_flight):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for notifier in self.notifiers.values():
            with contextlib.suppress(Exception):
                await notifier.aclose()
        if self._own_http:
            await self.http.aclose()
