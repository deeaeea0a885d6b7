"""The Spring Festival calendar: the season that shapes wage arrears and labor incidents.

Wages (above all on construction sites) are settled before the Spring Festival, so
arrears incidents peak in the weeks before it; during the holiday workers are home
and petition offices quiet; afterwards activity returns. The festival follows the
lunar calendar, so "January" is the wrong unit: these helpers give the phase of a day
relative to the festival.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

#: Lunar New Year's Day (正月初一), 2000-2040.
SPRING_FESTIVAL: dict[int, date] = {
    2000: date(2000, 2, 5),
    2001: date(2001, 1, 24),
    2002: date(2002, 2, 12),
    2003: date(2003, 2, 1),
    2004: date(2004, 1, 22),
    2005: date(2005, 2, 9),
    2006: date(2006, 1, 29),
    2007: date(2007, 2, 18),
    2008: date(2008, 2, 7),
    2009: date(2009, 1, 26),
    2010: date(2010, 2, 14),
    2011: date(2011, 2, 3),
    2012: date(2012, 1, 23),
    2013: date(2013, 2, 10),
    2014: date(2014, 1, 31),
    2015: date(2015, 2, 19),
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

#: The pre-festival arrears season: from this many days before the festival ...
PRE_SEASON_START = 60
#: ... to the start of the holiday lull.
LULL_BEFORE = 7
#: The holiday lull lasts until this many days after the festival (元宵 is day 14).
LULL_AFTER = 14

#: Day numbers count from this epoch (vectorised code works on int day numbers).
EPOCH = date(1970, 1, 1)


def spring_festival(year: int) -> date:
    """The festival of `year`; outside the table, the mean date (Feb 4) is a fair guess
    for seasonal weighting, which is all the detectors use it for."""
    return SPRING_FESTIVAL.get(year, date(year, 2, 4))


def next_festival(day: date) -> date:
    """The first festival on or after `day`."""
    this_year = spring_festival(day.year)
    return this_year if this_year >= day else spring_festival(day.year + 1)


def days_to_festival(day: date) -> int:
    """Days from `day` to the next festival (0 on the day itself)."""
    return (next_festival(day) - day).days


def days_since_festival(day: date) -> int:
    """Days since the latest festival on or before `day`."""
    this_year = spring_festival(day.year)
    last = this_year if this_year <= day else spring_festival(day.year - 1)
    return (day - last).days


def in_pre_season(day: date) -> bool:
    """Within the pre-festival arrears season (before the holiday starts)."""
    return LULL_BEFORE < days_to_festival(day) <= PRE_SEASON_START


def in_lull(day: date) -> bool:
    """Within the holiday lull around the festival."""
    return days_to_festival(day) <= LULL_BEFORE or days_since_festival(day) <= LULL_AFTER


def day_number(day: date) -> int:
    return (day - EPOCH).days


def from_day_number(number: int) -> date:
    return EPOCH + timedelta(days=int(number))


def phase_arrays(first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (pre-season, lull) for the day numbers `first..last` inclusive."""
    n = last - first + 1
    pre = np.zeros(n, dtype=bool)
    lull = np.zeros(n, dtype=bool)
    start, end = from_day_number(first), from_day_number(last)
    for year in range(start.year - 1, end.year + 2):
        festival = day_number(spring_festival(year)) - first
        lo, hi = festival - PRE_SEASON_START, festival - LULL_BEFORE
        pre[max(lo, 0) : max(min(hi, n), 0)] = True
        lo, hi = festival - LULL_BEFORE, festival + LULL_AFTER + 1
        lull[max(lo, 0) : max(min(hi, n), 0)] = True
    return pre, lull
