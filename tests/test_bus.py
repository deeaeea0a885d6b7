"""The bus: every consumer of a topic gets its own wake-up."""

from __future__ import annotations

import asyncio
import time

from monitor import bus
from monitor.bus import Bus
from monitor.loops import Waker


async def test_a_busy_consumer_still_wakes_at_once_when_it_is_free() -> None:
    hub = Bus()
    quick = Waker(hub, [bus.RECORDS], None)
    busy = Waker(hub, [bus.RECORDS], None)
    free = asyncio.Event()
    woken: list[tuple[str, float]] = []

    async def quick_consumer() -> None:
        await quick.wait(30)
        woken.append(("quick", time.monotonic()))

    async def busy_consumer() -> None:
        await free.wait()  # a long batch, the start-up re-score ...
        freed = time.monotonic()
        await busy.wait(30)  # ... then it looks for work again
        woken.append(("busy", time.monotonic() - freed))

    tasks = [asyncio.create_task(quick_consumer()), asyncio.create_task(busy_consumer())]
    await asyncio.sleep(0)
    hub.notify(bus.RECORDS)  # a report arrives while one consumer is busy
    async with asyncio.timeout(5):
        await tasks[0]
    assert woken[0][0] == "quick"  # the free one ran and cleared its own wake-up ...
    free.set()
    async with asyncio.timeout(5):
        await asyncio.gather(*tasks)
    # ... and the busy one still finds its own: it runs at once, not after the 30 s poll.
    assert woken[1][0] == "busy"
    assert woken[1][1] < 0.5


async def test_a_wake_up_during_the_work_is_kept_for_the_next_wait() -> None:
    hub = Bus()
    waker = Waker(hub, [bus.FINDINGS, bus.ALERTS], None)
    hub.notify(bus.ALERTS)
    started = time.monotonic()
    await waker.wait(30)  # notified before it waited: returns at once
    hub.notify(bus.FINDINGS)  # during the work that follows
    await waker.wait(30)
    assert time.monotonic() - started < 0.5
    await waker.wait(0.05)  # nothing new: waits out its timeout
    assert time.monotonic() - started >= 0.05


async def test_a_consumer_that_is_gone_drops_out_of_the_topic() -> None:
    hub = Bus()
    waker = Waker(hub, [bus.RECORDS], None)
    assert len(hub._subscribers[bus.RECORDS]) == 1
    del waker
    hub.notify(bus.RECORDS)
    assert len(hub._subscribers[bus.RECORDS]) == 0
