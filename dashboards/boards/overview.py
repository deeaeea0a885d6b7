"""劳动关系风险总览: where the risk is now, what is open, and how fast it is handled."""

from __future__ import annotations

from dashboards.boards.common import (
    HOURS,
    LEVEL_NAME,
    OPEN_AT_END,
    RANGE_END,
    local_bucket,
    per_level,
    spring_festival,
    where,
)
from dashboards.labels import (
    ACK_WINDOW_MINUTES,
    INDUSTRY_LABELS,
    LEVEL_COLORS,
    LEVEL_LABELS,
    SCORE_STEPS,
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
    thresholds,
    timeseries,
    value_mappings,
)


def board() -> Board:
    return Board(
        uid="labormon-overview",
        title="劳动关系风险总览",
        description="各区县劳动关系风险、未解除预警与处置时效(数据来自 labormon 分析视图)",
        time_from="now-30d",
        refresh="5m",
        annotations=[spring_festival()],
        items=[
            Row("当前态势"),
            open_alerts(),
            unacknowledged(),
            high_risk_points(),
            new_alerts(),
            Row("风险分布"),
            risk_by_county(),
            top_risk_points(),
            Row("预警与处置"),
            alerts_per_day(),
            time_to_acknowledge(),
        ],
    )


def open_alerts() -> Panel:
    return stat(
        "未解除预警(按级别)",
        "所选时间范围结束时仍未解除的预警数,按级别。",
        Query(
            f"""
SELECT {RANGE_END} AS time,
       {per_level("count(*)")}
FROM v_alerts
WHERE {OPEN_AT_END}
  AND {COUNTY_FILTER}
""",
            "table",
        ),
        w=10,
        color_mode="background",
        text_mode="value_and_name",
        overrides=level_colors_by_label(),
    )


def unacknowledged() -> Panel:
    return stat(
        "待确认预警",
        "所选时间范围结束时尚无人确认的预警。有待确认的预警即显示红色:"
        "未确认的预警会按级别逐级上报。",
        Query(
            f"""
SELECT {RANGE_END} AS time,
       count(*) AS "待确认"
FROM v_alerts
WHERE {OPEN_AT_END}
  AND (acknowledged_at IS NULL OR acknowledged_at > $__timeTo())
  AND {COUNTY_FILTER}
""",
            "table",
        ),
        w=5,
        color_mode="background",
        steps=[(None, "green"), (1, LEVEL_COLORS["I"])],
    )


def high_risk_points() -> Panel:
    return stat(
        "高风险监测点企业",
        "最新评分为 I 级或 II 级的监测点企业数(评分时间在所选范围内)。",
        Query(
            f"""
SELECT {RANGE_END} AS time,
       count(*) FILTER (WHERE level IN ('I', 'II')) AS "I、II级企业"
FROM v_risk_latest
WHERE {where("scored_at")}
""",
            "table",
        ),
        w=5,
        color_mode="background",
        steps=[(None, "green"), (1, LEVEL_COLORS["II"])],
    )


def new_alerts() -> Panel:
    return stat(
        "新增预警",
        "所选时间范围内新产生的预警总数;曲线为每日新增。",
        Query(
            f"""
SELECT {local_bucket("created_at", "day")} AS time,
       count(*) AS "新增预警"
FROM v_alerts
WHERE {where("created_at")}
GROUP BY 1
ORDER BY 1
"""
        ),
        w=4,
        calcs=["sum"],
        sparkline=True,
        steps=[(None, "text")],
    )


def risk_by_county() -> Panel:
    return barchart(
        "各区县监测点企业风险等级(最新评分)",
        "每家监测点企业按最新一次风险评分的等级计数;只计评分时间在所选范围内的企业。",
        Query(
            f"""
SELECT max(scored_at) AS time,
       county AS "区县",
       {per_level("count(*)")}
FROM v_risk_latest
WHERE {where("scored_at")}
GROUP BY region_code, county
ORDER BY region_code
""",
            "table",
        ),
        x_field="区县",
        h=10,
        overrides=level_colors_by_label(),
    )


def top_risk_points() -> Panel:
    return table(
        "风险最高的20家监测点企业",
        "按最新风险评分从高到低;等级由风险模型给出,风险分颜色仅作参考。",
        Query(
            f"""
SELECT scored_at AS time,
       name AS "企业",
       county AS "区县",
       {label_sql("industry", INDUSTRY_LABELS)} AS "行业",
       score AS "风险分",
       level AS "等级",
       top_factors AS "主要风险因素"
FROM v_risk_latest
WHERE {where("scored_at")}
ORDER BY score DESC, point_id
LIMIT 20
""",
            "table",
        ),
        w=12,
        h=10,
        overrides=[
            by_name("time", ("displayName", "评分时间"), ("unit", "time:YYYY-MM-DD HH:mm")),
            by_name(
                "风险分",
                ("min", 0),
                ("max", 100),
                ("decimals", 1),
                ("thresholds", thresholds(SCORE_STEPS)),
                ("custom.cellOptions", {"type": "gauge", "mode": "basic"}),
            ),
            by_name(
                "等级",
                ("mappings", [value_mappings(LEVEL_LABELS, LEVEL_COLORS)]),
                ("custom.cellOptions", {"type": "color-background", "mode": "basic"}),
            ),
            by_name("主要风险因素", ("custom.minWidth", 240)),
        ],
    )


def alerts_per_day() -> Panel:
    return timeseries(
        "每日新增预警(按级别)",
        "按北京时间自然日统计的新增预警,颜色为预警级别。",
        [
            Query(
                f"""
SELECT {local_bucket("created_at", "day")} AS time,
       {LEVEL_NAME} AS metric,
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
        overrides=level_colors_by_label(),
    )


#: Median seconds to acknowledge; shown in hours.
ACK_MEDIAN = "percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds_to_acknowledge)"


def time_to_acknowledge() -> Panel:
    """Median time to acknowledge per level, red once it passes the level's escalation
    window: the one number that says whether the fast-response chain works."""
    overrides = [
        by_name(
            LEVEL_LABELS[level],
            ("thresholds", thresholds([(None, "green"), (minutes / 60, LEVEL_COLORS["I"])])),
        )
        for level, minutes in ACK_WINDOW_MINUTES.items()
    ]
    return stat(
        "确认用时中位数(按级别)",
        "所选时间范围内产生的预警从产生到确认的用时中位数。超过该级别的升级时限"
        "(I级15分钟、II级30分钟、III级2小时、IV级24小时)显示红色。",
        Query(
            f"""
SELECT {RANGE_END} AS time,
       {per_level(ACK_MEDIAN, then=" / 3600.0")}
FROM v_alerts
WHERE {where("created_at")}
""",
            "table",
        ),
        unit=HOURS,
        w=12,
        h=9,
        decimals=None,
        color_mode="background",
        text_mode="value_and_name",
        overrides=overrides,
    )
