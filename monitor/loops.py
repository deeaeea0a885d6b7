"""Waking the alerting loops: on a bus topic, when an injected clock moves, when the next
deadline comes, or after the poll interval, whichever is first.

Deadlines live in columns; this only decides when to look at them again. A FrozenClock
announces its moves (`subscribe()`), so tests move time to an exact boundary and the
loops react without anyone sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, TypeVar

from monitor.bus import Bus
from monitor.clock import Clock

T = TypeVar("T")

#: Never wait less than this (a deadline "now" re-checked in a tight loop would spin).
MIN_WAIT = 0.005


def seconds_until(deadline: datetime | None, clock: Clock, cap: float) -> float:
    if deadline is None:
        return cap
    return max(MIN_WAIT, min(cap, (deadline - clock.now()).total_seconds()))


class Waker:
    """One consumer's wake-ups: its own subscription to each of its bus topics (see
    monitor.bus), the clock's moves and an optional extra event."""

    def __init__(
        self,
        bus: Bus,
        topics: list[str],
        clock: Clock | None,
        *,
        extra: asyncio.Event | None = None,
    ) -> None:
        self.bus = bus
        self.topics = topics
        self.subscriptions = [bus.subscribe(topic) for topic in topics]
        # Only a FrozenClock announces its moves; the system clock just passes.
        subscribe = getattr(clock, "subscribe", None)
        self.clock_moved: asyncio.Event | None = subscribe() if callable(subscribe) else None
        self.extra = extra

    async def wait(self, timeout: float) -> None:
        events = [e for e in (*self.subscriptions, self.clock_moved, self.extra) if e is not None]
        try:
            if any(e.is_set() for e in events):
                return
            waiters = [asyncio.create_task(e.wait()) for e in events]
            try:
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waiters:
                    task.cancel()
                for task in waiters:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            # Cleared as the consumer starts its work: what comes during it wakes it again.
            for e in events:
                e.clear()


async def finish(work: Coroutine[Any, Any, T]) -> T:
    """Run one unit of database work to its end even if the caller is cancelled meanwhile
    (daemon shutdown), then pass the cancellation on.

    A transaction abandoned half-way on SQLite keeps the write lock until its connection
    is torn down, and the next writer waits out the busy timeout; a finished unit also
    means a result (a send, an escalation step) is recorded rather than redone."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise
