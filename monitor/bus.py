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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        fired = event.is_set()
        event.clear()
        return fired
