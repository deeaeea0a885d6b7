"""The Spring Festival season, when wage-arrears petitions peak (DOMAIN: "a strong seasonal
peak before the Spring Festival"), marked on the boards as a shaded region.

The festival follows the lunar calendar; its dates are listed in monitor/season.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.season import festivals

CHINA = ZoneInfo("Asia/Shanghai")

#: 春节 (first day of the first lunar month), Gregorian dates: the one calendar the
#: detectors and the report use too (monitor/season.py), from 2016 on for the boards.
SPRING_FESTIVALS: dict[int, date] = festivals(2016, 2040)

#: The season opens 60 days before the festival: year-end wage settlement on building
#: sites starts in December, and the winter campaigns against wage arrears run up to the
#: festival. It closes at the Lantern Festival (元宵节, 15th day of the first month), when
#: migrant workers have gone back to work and petitions fall back.
DAYS_BEFORE = 60
LANTERN_AFTER = 14


@dataclass(frozen=True)
class Season:
    festival: date
    first_day: date
    last_day: date

    @property
    def starts(self) -> datetime:
        """The instant the first local day begins."""
        return datetime.combine(self.first_day, time(), CHINA).astimezone(UTC)

    @property
    def ends(self) -> datetime:
        """The instant the last local day ends."""
        return datetime.combine(self.last_day + timedelta(days=1), time(), CHINA).astimezone(UTC)

    @property
    def text(self) -> str:
        return (
            f"春节前后欠薪高发期:{self.first_day:%Y-%m-%d} 至 {self.last_day:%Y-%m-%d}"
            f"(春节 {self.festival:%Y-%m-%d},元宵节 {self.last_day:%Y-%m-%d})"
        )


def seasons() -> list[Season]:
    return [
        Season(
            festival=day,
            first_day=day - timedelta(days=DAYS_BEFORE),
            last_day=day + timedelta(days=LANTERN_AFTER),
        )
        for _, day in sorted(SPRING_FESTIVALS.items())
    ]
