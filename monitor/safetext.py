"""Untrusted text made safe for one line: headers, subjects, chat titles, CSV cells.

A company name typed by an informant can hold a line break, and a line break in an email
Subject makes Python refuse the whole message (issue 19, finding 1). Intake replaces
control characters in short fields (`clean_short`); every header and title is built
through `one_line` as well, so a value stored before that rule, or written by a
detector, still cannot break a message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# C0 and C1 controls, DEL, and Unicode's own line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The same without tab and line feed: what long free text (a report's description) keeps.
_CONTROL_IN_LONG = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_SPACES = re.compile(r" {2,}")


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def first_control(text: str) -> str | None:
    found = _CONTROL.search(text)
    return f"U+{ord(found.group(0)):04X}" if found else None


def one_line(value: object) -> str:
    """One line of text: every control character becomes a space, runs of spaces one."""
    text = "" if value is None else str(value)
    if not _CONTROL.search(text):
        return text
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


def clean_short(text: str) -> str:
    """A short field (a name, a title) as intake keeps it."""
    return one_line(text)


def clean_long(text: str) -> str:
    """Free text keeps its lines (CR LF and CR become LF) and tabs; other controls,
    NUL among them (PostgreSQL text cannot hold it), become a space."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_IN_LONG.sub(" ", text)


def needs_long_cleaning(text: str) -> bool:
    return "\r" in text or _CONTROL_IN_LONG.search(text) is not None


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection:
# a company name "=HYPERLINK(...)" in an analyst's export).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?%?")


def spreadsheet_cell(value: object) -> object:
    """A value for a CSV or xlsx cell: text that a spreadsheet would run as a formula gets
    a leading apostrophe (shown as text); numbers, and text that is a plain number such
    as "-12.5", are left as they are."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value


def spreadsheet_row(values: Iterable[object]) -> list[object]:
    return [spreadsheet_cell(v) for v in values]


class SafeWriter:
    """A `csv.writer` whose cells pass through `spreadsheet_cell`."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow(spreadsheet_row(row))

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)
