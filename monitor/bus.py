"""In-process wake-ups between stages.

Stages hand work to each other through rows (STYLE habit 1); the bus only says "look
now" so that a level I report does not wait for the next poll. Every waiter also polls
on a timeout, so work written by another daemon costs latency, never correctness.

Each consumer of a topic subscribes and gets a wake-up of its own: the detectors and the
overdue check both follow `records`, and with one shared flag whichever woke first
cleared it, so a report that came while the other was busy (the start-up re-score, a
long batch) waited for that one's next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections import defaultdict

#: Topics: new input records (EVENTS: new informant reports or petitions, the kinds a
#: level I event comes from), new findings, new or changed deliveries.
RECORDS = "records"
EVENTS = "events"
FINDINGS = "findings"
DELIVERIES = "deliveries"
ALERTS = "alerts"


class Bus:
    def __init__(self) -> None:
        # Weak: a consumer that is gone (a restarted service's old loop) drops out.
        self._subscribers: dict[str, weakref.WeakSet[asyncio.Event]] = defaultdict(weakref.WeakSet)
        self._events: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        #: Bulk work (wage reports' intake and checks) waits until then (monotonic).
        self.bulk_held_until = 0.0
        self._bulk_free_at = 0.0

    def hold_bulk(self, seconds: float) -> None:
        """An event was stored: bulk work pauses for `seconds`, so that detecting,
        alerting and mailing it have the daemon (and the database) to themselves. After
        a pause at least as long of bulk work comes before the next one."""
        now = time.monotonic()
        if seconds <= 0 or now < self._bulk_free_at:
            return
        self.bulk_held_until = now + seconds
        self._bulk_free_at = now + 2 * seconds

    def bulk_wait(self) -> float:
        """Seconds bulk work should still wait (0: go on)."""
        return max(0.0, self.bulk_held_until - time.monotonic())

    def subscribe(self, topic: str) -> asyncio.Event:
        """A wake-up of the caller's own for `topic`: set by every later `notify(topic)`,
        cleared only by its owner. Keep a reference to it as long as it is wanted."""
        event = asyncio.Event()
        self._subscribers[topic].add(event)
        return event

    def notify(self, topic: str) -> None:
        for event in list(self._subscribers[topic]):
            event.set()
        self._events[topic].set()

    async def wait(self, topic: str, timeout: float) -> bool:
        """One-off wait (tests, scripts) on a flag shared by every such caller: until
        `topic` is notified or `timeout` passes; True if notified. A consumer that waits
        again and again subscribes instead."""
        event = self._events[topic]
        if not event.is_set():
            # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation
            # that comes in the turn the event is set, and the loop would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await event.wait()
        fired = event.is_set()
        event.clear()
        return fired
