"""The Spring Festival calendar comes from the lunar-calendar library, not a typed table."""

from __future__ import annotations

from datetime import date

from monitor import season

#: The table monitor/season.py typed by hand until the calendar came from `lunardate`
#: (Lunar New Year's Day, 正月初一, 2000-2040): the library must agree with it.
OLD_TABLE: dict[int, date] = {
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


def test_the_library_agrees_with_the_old_hand_typed_table() -> None:
    assert season.festivals(2000, 2040) == OLD_TABLE


def test_years_beyond_the_old_table_come_from_the_calendar() -> None:
    assert season.spring_festival(1990) == date(1990, 1, 27)
    assert season.spring_festival(2050) == date(2050, 1, 23)
    assert season.spring_festival(2099) == date(2099, 1, 21)
    # Outside the calendar: the mean date, a fair guess for seasonal weighting.
    assert season.spring_festival(2150) == date(2150, 2, 4)


def test_phases_follow_the_festival() -> None:
    festival = season.spring_festival(2026)
    assert festival == date(2026, 2, 17)
    assert season.days_to_festival(date(2026, 2, 10)) == 7
    assert season.in_pre_season(date(2026, 1, 1))
    assert season.in_lull(date(2026, 2, 20))
    assert not season.in_pre_season(date(2026, 6, 1))
