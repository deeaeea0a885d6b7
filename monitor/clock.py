"""The one injectable clock: every piece of time-dependent code asks it for `now()`.

Production uses `SystemClock`; tests use `FrozenClock` and move it to exact
boundaries (29:59 vs 30:00) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

#: China has kept UTC+8 without daylight saving since 1991; local days, months and
#: report periods are computed in this zone unless the configuration says otherwise.
SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    """What time-dependent code needs from a clock."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to; `changed` wakes loops waiting on deadlines."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2025, 1, 15, 1, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._now = start.astimezone(UTC)
        self._listeners: list[asyncio.Event] = []

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("FrozenClock.set needs a timezone-aware datetime")
        self._now = when.astimezone(UTC)
        self._fire()

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        self._fire()
        return self._now

    def subscribe(self) -> asyncio.Event:
        """An event set whenever the clock moves (loops use it to re-check deadlines)."""
        event = asyncio.Event()
        self._listeners.append(event)
        return event

    def _fire(self) -> None:
        for event in self._listeners:
            event.set()


class AcceleratedClock:
    """Simulated time for demos and replays: from `start` it runs `factor` times faster
    than the wall clock until it has caught up with the present, then at the wall
    clock's pace, so that it never stands in the future.

    Time stands still at `start` until `begin()` is called."""

    def __init__(self, start: datetime, factor: float, wall: Clock | None = None) -> None:
        self.start = utc(start)
        self.factor = factor
        self.wall = wall or SystemClock()
        self._begun: float | None = None

    def begin(self) -> None:
        self._begun = time.monotonic()

    def now(self) -> datetime:
        if self._begun is None:
            return min(self.start, self.wall.now())
        elapsed = (time.monotonic() - self._begun) * self.factor
        return min(self.start + timedelta(seconds=elapsed), self.wall.now())

    @property
    def caught_up(self) -> bool:
        return self.now() >= self.wall.now() - timedelta(seconds=1)


def utc(value: datetime) -> datetime:
    """Normalise an aware datetime to UTC; naive values are refused, never guessed."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: an offset is required")
    return value.astimezone(UTC)


def local_date(value: datetime, zone: tzinfo = SHANGHAI) -> date:
    """The local calendar day of an instant (petition days, report months)."""
    return utc(value).astimezone(zone).date()


def month_start(value: date) -> date:
    return value.replace(day=1)


def add_months(value: date, months: int) -> date:
    """First day of the month `months` after the month of `value`."""
    index = value.year * 12 + (value.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)
