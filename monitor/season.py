"""The Spring Festival calendar: the season that shapes wage arrears and labor incidents.

Wages (above all on construction sites) are settled before the Spring Festival, so
arrears incidents peak in the weeks before it; during the holiday workers are home
and petition offices quiet; afterwards activity returns. The festival follows the
lunar calendar, so "January" is the wrong unit: these helpers give the phase of a day
relative to the festival.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

import numpy as np
from lunardate import LunarDate

#: The years the lunar calendar below covers (the library's own range).
FIRST_YEAR, LAST_YEAR = 1900, 2099

#: The pre-festival arrears season: from this many days before the festival ...
PRE_SEASON_START = 60
#: ... to the start of the holiday lull.
LULL_BEFORE = 7
#: The holiday lull lasts until this many days after the festival (元宵 is day 14).
LULL_AFTER = 14

#: Day numbers count from this epoch (vectorised code works on int day numbers).
EPOCH = date(1970, 1, 1)


@cache
def spring_festival(year: int) -> date:
    """The festival of `year` (正月初一), from the lunar calendar of `lunardate`.

    Outside the calendar's years, the mean date (Feb 4) is a fair guess for seasonal
    weighting, which is all the detectors use it for."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return date(year, 2, 4)
    return LunarDate(year, 1, 1).to_solar_date()


def festivals(first: int, last: int) -> dict[int, date]:
    """The festival of each year from `first` to `last` inclusive."""
    return {year: spring_festival(year) for year in range(first, last + 1)}


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
