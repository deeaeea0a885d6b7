"""The Spring Festival season, when wage-arrears petitions peak (DOMAIN: "a strong seasonal
peak before the Spring Festival"), marked on the boards as a shaded region.

The festival follows the lunar calendar, so its dates are listed rather than computed:
a lunisolar calendar library would be a dependency for twenty-five dates a year apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")

#: 春节 (first day of the first lunar month), Gregorian dates.
SPRING_FESTIVALS: dict[int, date] = {
    2016: date(2016, 2, 8),
    2017: date(2017, 1, 28),
    2018: date(2018, 2, 16),
    2019: date(2019, 2, 5),
    2020: date(2020, 1, 25),
    2021: date(2021, 2, 12),
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
    2031: date(2031, 1, 23),
    2032: date(2032, 2, 11),
    2033: date(2033, 1, 31),
    2034: date(2034, 2, 19),
    2035: date(2035, 2, 8),
    2036: date(2036, 1, 28),
    2037: date(2037, 2, 15),
    2038: date(2038, 2, 4),
    2039: date(2039, 1, 24),
    2040: date(2040, 2, 12),
}

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
