"""In-process wake-ups between stages.

Stages hand work to each other through rows (STYLE habit 1); the bus only says "look
now" so that a level I report does not wait for the next poll. Every waiter also polls
on a timeout, so a lost wake-up (or work written by another daemon) costs latency,
never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

#: Topics: new input records, new findings, new or changed deliveries.
RECORDS = "records"
FINDINGS = "findings"
DELIVERIES = "deliveries"
ALERTS = "alerts"


class Bus:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def notify(self, topic: str) -> None:
        self._events[topic].set()

    async def wait(self, topic: str, timeout: float) -> bool:
        """Wait until `topic` is notified or `timeout` passes; True if notified."""
        event = self._events[topic]
        if not event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        fired = event.is_set()
        event.clear()
        return fired
