"""Chinese names and colours for the codes the views hold, shared by every board.

The views keep codes (`wage_arrears`, `II`, `hotline_12351`) so that they stay stable for
analysts' own SQL; the boards translate them, in SQL (`label_sql`) where a code becomes a
series or row name, and by value mapping where it stays a cell value.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor import labels as glossary

#: Alert levels on China's emergency scale (interfaces §5), most severe first.
LEVEL_LABELS: dict[str, str] = {lv: f"{lv}级 {name}" for lv, name in glossary.LEVEL_NAMES.items()}
#: The published colours of the levels: IV blue, III yellow, II orange, I red.
LEVEL_COLORS: dict[str, str] = {"I": "red", "II": "orange", "III": "yellow", "IV": "blue"}

#: Minutes an alert of each level may stay unacknowledged before it escalates
#: (interfaces §5 defaults): the yardstick the acknowledge-time panels colour against.
ACK_WINDOW_MINUTES: dict[str, int] = {"I": 15, "II": 30, "III": 120, "IV": 24 * 60}

#: Risk score (0-100) cut-offs used only to colour scores; the authoritative level is the
#: `level` column the detectors write, which the boards show next to the score.
SCORE_STEPS: list[tuple[float | None, str]] = [
    (None, "green"),
    (25, LEVEL_COLORS["IV"]),
    (50, LEVEL_COLORS["III"]),
    (70, LEVEL_COLORS["II"]),
    (85, LEVEL_COLORS["I"]),
]

CATEGORY_LABELS: dict[str, str] = glossary.CATEGORIES

CHANNEL_LABELS: dict[str, str] = glossary.CHANNELS

INDUSTRY_LABELS: dict[str, str] = glossary.INDUSTRIES

STATUS_LABELS: dict[str, str] = glossary.ALERT_STATUS

KIND_LABELS: dict[str, str] = glossary.ALERT_KINDS

#: Highest tier an alert reached: 3 county, 2 city, 1 province (interfaces §1).
TIER_LABELS: dict[int, str] = {t: glossary.TIERS[t] for t in (3, 2, 1)}


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def label_sql(column: str, labels: Mapping[str, str] | Mapping[int, str]) -> str:
    """`CASE column WHEN 'code' THEN '名称' ... ELSE column END` (unknown codes show as is)."""
    whens = " ".join(
        f"WHEN {code if isinstance(code, int) else _literal(code)} THEN {_literal(name)}"
        for code, name in labels.items()
    )
    fallback = f"{column}::text" if any(isinstance(c, int) for c in labels) else column
    return f"CASE {column} {whens} ELSE {fallback} END"
