"""预警处置: how alerts are handled along the four-tier chain: levels, the highest tier
each reached, acknowledge times and escalations (an alert nobody acknowledged in time)."""

from __future__ import annotations

from dashboards.boards.common import (
    HOURS,
    LEVEL_NAME,
    OPEN_AT_END,
    RANGE_END,
    in_hours,
    local_bucket,
    spring_festival,
    where,
)
from dashboards.labels import (
    KIND_LABELS,
    LEVEL_COLORS,
    LEVEL_LABELS,
    STATUS_LABELS,
    TIER_LABELS,
    label_sql,
)
from dashboards.model import (
    COUNTY_FILTER,
    Board,
    Panel,
    Query,
    Row,
    barchart,
    by_name,
    level_colors_by_label,
    stat,
    table,
    timeseries,
    value_mappings,
)

WEEK = local_bucket("created_at", "week")


def board() -> Board:
    return Board(
        uid="labormon-alerts",
        title="预警处置",
        description="预警的级别、最高通报层级、确认用时与逐级上报(升级)情况",
        time_from="now-90d",
        refresh="5m",
        annotations=[spring_festival()],
        items=[
            Row("时间范围内合计"),
            daily_count("新增预警", "所选时间范围内新产生的预警;曲线为每日新增。", "count(*)"),
            daily_count(
                "升级预警",
                "因未在时限内确认而逐级上报的预警数(按预警产生日统计)。",
                "count(*) FILTER (WHERE escalations > 0)",
                steps=[(None, "green"), (1, LEVEL_COLORS["II"])],
            ),
            median_ack(),
            still_unacknowledged(),
            Row("趋势"),
            per_day_by_kind(),
            level_by_tier(),
            weekly_ack_time(),
            weekly_escalations(),
            Row("处置"),
            handling_by_county(),
            Row("明细"),
            escalated_table(),
        ],
    )


def median(column: str) -> str:
    return f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {column})"


def handling_by_county() -> Panel:
    """Handling time by county (interfaces §8): verification and final report."""
    return barchart(
        "各区县处置用时",
        "所选时间范围内产生的突发事件预警,从预警到核实、到终报的用时中位数;"
        "尚未核实或终报的不计入。",
        Query(
            f"""
SELECT {RANGE_END} AS time,
       county AS "区县",
       {in_hours(median("seconds_to_verify"))} AS "核实用时中位数",
       {in_hours(median("seconds_to_final"))} AS "终报用时中位数"
FROM v_alerts
WHERE kind = 'event' AND {where("created_at")}
GROUP BY county
ORDER BY county
""",
            "table",
        ),
        x_field="区县",
        unit=HOURS,
        stacked=False,
        w=24,
    )


def daily_count(
    title: str,
    description: str,
    aggregate: str,
    *,
    steps: list[tuple[float | None, str]] | None = None,
) -> Panel:
    return stat(
        title,
        description,
        Query(
            f"""
SELECT {local_bucket("created_at", "day")} AS time,
       {aggregate} AS "{title}"
FROM v_alerts
WHERE {where("created_at")}
GROUP BY 1
ORDER BY 1
"""
        ),
        calcs=["sum"],
        sparkline=True,
        steps=steps or [(None, "text")],
    )


def median_ack() -> Panel:
    return stat(
        "确认用时中位数",
        "所选时间范围内产生并已确认的预警,从产生到确认的用时中位数(各级别合计)。",
        Query(
            f"""
SELECT {RANGE_END} AS time,
       {in_hours(median("seconds_to_acknowledge"))} AS "确认用时中位数"
FROM v_alerts
WHERE {where("created_at")}
""",
            "table",
        ),
        unit=HOURS,
        decimals=None,
        steps=[(None, "text")],
    )


def still_unacknowledged() -> Panel:
    return stat(
        "尚未确认",
        "所选时间范围结束时仍未解除、也无人确认的预警。",
        Query(
            f"""
SELECT {RANGE_END} AS time,
       count(*) AS "尚未确认"
FROM v_alerts
WHERE {OPEN_AT_END}
  AND (acknowledged_at IS NULL OR acknowledged_at > $__timeTo())
  AND {COUNTY_FILTER}
""",
            "table",
        ),
        color_mode="background",
        steps=[(None, "green"), (1, LEVEL_COLORS["I"])],
    )


def per_day_by_kind() -> Panel:
    return timeseries(
        "每日新增预警(按类型)",
        "突发事件、企业风险、区县风险、信访激增与月报逾期预警的每日新增数。",
        [
            Query(
                f"""
SELECT {local_bucket("created_at", "day")} AS time,
       {label_sql("kind", KIND_LABELS)} AS metric,
       count(*) AS value
FROM v_alerts
WHERE {where("created_at")}
GROUP BY 1, 2
ORDER BY 1, 2
"""
            )
        ],
        bars=True,
        stacked=True,
        decimals=0,
        legend_calcs=["sum"],
    )


def level_by_tier() -> Panel:
    tiers = ",\n       ".join(
        f'count(a.alert_id) FILTER (WHERE a.tier_reached = {tier}) AS "{name}"'
        for tier, name in TIER_LABELS.items()
    )
    levels = ", ".join(f"('{code}', '{name}')" for code, name in LEVEL_LABELS.items())
    return barchart(
        "预警级别与最高通报层级",
        "所选时间范围内产生的预警,按级别与最终通报到的最高层级(县级、市级、省级)计数。"
        "I级预警产生即通报到省级;其余级别上到更高层级说明曾逐级上报。",
        Query(
            f"""
SELECT {RANGE_END} AS time,
       l.label AS "级别",
       {tiers}
FROM (VALUES {levels}) AS l(level, label)
LEFT JOIN v_alerts a
       ON a.level = l.level
      AND $__timeFilter(a.created_at)
      AND a.region_code IN ($county)
GROUP BY l.level, l.label
ORDER BY l.level
""",
            "table",
        ),
        x_field="级别",
    )


def weekly_ack_time() -> Panel:
    return timeseries(
        "确认用时中位数(按级别,每周)",
        "每周(周一起)产生的预警从产生到确认的用时中位数,对数坐标。",
        [
            Query(
                f"""
SELECT {WEEK} AS time,
       {LEVEL_NAME} AS metric,
       {in_hours(median("seconds_to_acknowledge"))} AS value
FROM v_alerts
WHERE {where("created_at")}
  AND seconds_to_acknowledge IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, 2
"""
            )
        ],
        unit=HOURS,
        log_scale=True,
        points=True,
        overrides=level_colors_by_label(),
    )


def weekly_escalations() -> Panel:
    return timeseries(
        "每周升级预警数(按级别)",
        "每周产生的预警中因未及时确认而逐级上报的预警数。",
        [
            Query(
                f"""
SELECT {WEEK} AS time,
       {LEVEL_NAME} AS metric,
       count(*) FILTER (WHERE escalations > 0) AS value
FROM v_alerts
WHERE {where("created_at")}
GROUP BY 1, 2
ORDER BY 1, 2
"""
            )
        ],
        bars=True,
        stacked=True,
        decimals=0,
        overrides=level_colors_by_label(),
    )


def escalated_table() -> Panel:
    return table(
        "升级或尚未确认的预警",
        "所选时间范围内产生、曾逐级上报或至今未确认的预警,最新在前(最多200条)。",
        Query(
            f"""
SELECT created_at AS time,
       level AS "级别",
       status AS "状态",
       county AS "区县",
       kind AS "类型",
       title AS "预警",
       tier_reached AS "最高通报层级",
       escalations AS "升级次数",
       seconds_to_acknowledge / 3600.0 AS "确认用时"
FROM v_alerts
WHERE {where("created_at")}
  AND (escalations > 0 OR acknowledged_at IS NULL)
ORDER BY created_at DESC, alert_id DESC
LIMIT 200
""",
            "table",
        ),
        overrides=[
            by_name("time", ("displayName", "产生时间"), ("unit", "time:YYYY-MM-DD HH:mm")),
            by_name(
                "级别",
                ("mappings", [value_mappings(LEVEL_LABELS, LEVEL_COLORS)]),
                ("custom.cellOptions", {"type": "color-background", "mode": "basic"}),
            ),
            by_name("状态", ("mappings", [value_mappings(STATUS_LABELS)])),
            by_name("类型", ("mappings", [value_mappings(KIND_LABELS)])),
            by_name(
                "最高通报层级",
                ("mappings", [value_mappings({str(k): v for k, v in TIER_LABELS.items()})]),
            ),
            by_name("确认用时", ("unit", HOURS), ("decimals", 2)),
            by_name("预警", ("custom.minWidth", 240)),
        ],
    )
