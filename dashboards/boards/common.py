"""SQL pieces and annotations every board shares."""

from __future__ import annotations

from dashboards.calendar import seasons
from dashboards.labels import LEVEL_LABELS, label_sql
from dashboards.model import COUNTY_FILTER, TIMEZONE, Json, Query, sql_annotation

#: The end of the selected range: the "as of" instant of panels that show a state.
RANGE_END = "$__timeTo()::timestamptz"

LEVEL_NAME = label_sql("level", LEVEL_LABELS)


def where(time_column: str) -> str:
    """The time range and the county variable, which every panel applies."""
    return f"$__timeFilter({time_column}) AND {COUNTY_FILTER}"


def local_bucket(column: str, unit: str) -> str:
    """The instant a China-time day/week/month starts. Grafana's `$__timeGroup` buckets
    on UTC epoch boundaries, which would cut China's days at 08:00."""
    return f"date_trunc('{unit}', {column} AT TIME ZONE '{TIMEZONE}') AT TIME ZONE '{TIMEZONE}'"


def per_level(expression: str, *, column: str = "level", then: str = "") -> str:
    """One column per level named after it, e.g. `count(*) FILTER (WHERE level = 'I')`;
    `then` follows the filtered aggregate (e.g. `/ 3600.0`)."""
    return ",\n       ".join(
        f"{expression} FILTER (WHERE {column} = '{level}'){then} AS \"{label}\""
        for level, label in LEVEL_LABELS.items()
    )


def spring_festival() -> Json:
    """The Spring Festival season as shaded regions on every time series."""
    rows = ",\n    ".join(
        f"('{s.starts:%Y-%m-%dT%H:%M:%SZ}'::timestamptz, "
        f"'{s.ends:%Y-%m-%dT%H:%M:%SZ}'::timestamptz, '{s.text}')"
        for s in seasons()
    )
    sql = f"""
SELECT s.starts AS time, s.ends AS timeend, s.label AS text, '春节' AS tags
FROM (VALUES
    {rows}
) AS s(starts, ends, label)
WHERE s.ends >= $__timeFrom() AND s.starts <= $__timeTo()
ORDER BY s.starts
"""
    return sql_annotation("春节前后欠薪高发期", Query(sql, "table"), "purple")


#: Open at the end of the range: created by then and not yet resolved then, so that
#: looking at a past range shows what was open at its end.
OPEN_AT_END = "created_at <= $__timeTo() AND (resolved_at IS NULL OR resolved_at > $__timeTo())"


#: Money on the boards is shown in 万元 and durations in 小时 (Chinese units, not Grafana's
#: "¥" or "1.5 hour"): the SQL scales the value and the unit is a Grafana suffix.
WAN_YUAN = "suffix:万元"
YUAN = "suffix:元"
HOURS = "suffix:小时"


def in_wan_yuan(expression: str) -> str:
    """An amount in yuan, as 万元."""
    return f"({expression}) / 10000.0"


def in_hours(expression: str) -> str:
    """A duration in seconds, as hours."""
    return f"({expression}) / 3600.0"
