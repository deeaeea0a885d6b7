"""The informant's report form: head-counts in words, numbers that contradict the text,
and what a report will set in motion (said before it is sent).

Informants type "30", "三十" or "三十多人"; their description says "工地三十多名农民工".
A count ten times what the text says is almost always a slip of the thumb, and at 100
people it pages three tiers, so the form asks before sending rather than after.
"""

from __future__ import annotations

import re

import cn2an

_NUMERAL = r"[0-9]+|[零〇一二两三四五六七八九十百千万]+"
#: The whole people field: a number, optionally "多/余/来" and a counter word.
_PEOPLE_FIELD = re.compile(rf"^\s*({_NUMERAL})\s*(?:多|余|来)?\s*(?:人|名|个|位)?\s*$")
#: A head-count in free text: a number followed by a counter for people.
_PEOPLE_IN_TEXT = re.compile(
    rf"({_NUMERAL})\s*(?:多|余|来)?\s*(?:名|人|个人|位|余人|多人)(?!民币|次|天|元|月)"
)
#: Consequences by level, as the default escalation policy (interfaces §5) has them.
TIERS_AT_ONCE = {"I": "县、市、省三级", "II": "县、市两级"}


def to_number(text: str) -> int | None:
    """A numeral in figures or Chinese ("三十", "两百") as an int, or None."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        value = cn2an.cn2an(text, "smart")
    except (ValueError, KeyError, IndexError):
        return None
    return int(value) if float(value).is_integer() and value >= 0 else None


def parse_people(text: str) -> int | None:
    """The people field in figures or Chinese numerals; None if it is not a count."""
    match = _PEOPLE_FIELD.match(text)
    return to_number(match.group(1)) if match else None


def stated_people(description: str) -> list[int]:
    """Head-counts written in the description ("三十多名农民工" -> 30)."""
    found = []
    for match in _PEOPLE_IN_TEXT.finditer(description):
        value = to_number(match.group(1))
        if value is not None and value > 0:
            found.append(value)
    return found


def contradiction(people: int, description: str) -> str | None:
    """A warning when the number given and every number in the text are far apart (a
    factor of three or more: "300" against "三十多名"), else None."""
    stated = stated_people(description)
    if not stated or people <= 0:
        return None
    if any(n / 3 < people < n * 3 for n in stated):
        return None
    return (
        f"填写的涉及人数为 {people} 人，情况说明中写的是 {stated[0]} 人左右，"
        "两者相差较大，请核对后再提交。"
    )


def consequence(level: str | None) -> str | None:
    """What sending a report of this level sets off at once (None: nothing urgent)."""
    tiers = TIERS_AT_ONCE.get(level or "")
    if tiers is None:
        return None
    return f"这份报告将定为{level}级，提交后将立即报告{tiers}，并通知相关领导。"
