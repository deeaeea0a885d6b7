"""工资监测趋势: frontline wages, arrears and silent monitoring points, month by month.

Monthly rows come from `v_wage_monthly`, whose `period` is the instant the month starts
in China; aggregates over several counties are recomputed from the view's sums (the
average wage is weighted by frontline headcount, never an average of averages).
"""

from __future__ import annotations

from dashboards.boards.common import (
    WAN_YUAN,
    YUAN,
    in_wan_yuan,
    spring_festival,
    where,
)
from dashboards.labels import LEVEL_COLORS
from dashboards.model import (
    Board,
    Panel,
    Query,
    Row,
    by_name,
    fixed_color,
    stat,
    table,
    thresholds,
    timeseries,
)

#: Share of expected monthly reports actually filed; a falling rate is a precursor
#: (DOMAIN: "the monthly report not filed"), so the colours run from red up.
REPORTING_STEPS: list[tuple[float | None, str]] = [
    (None, LEVEL_COLORS["I"]),
    (0.8, LEVEL_COLORS["II"]),
    (0.9, LEVEL_COLORS["III"]),
    (0.95, "green"),
]
WEIGHTED_WAGE = "sum(avg_frontline_wage * frontline_workers) / nullif(sum(frontline_workers), 0)"
REPORTING_RATE = "sum(points_reporting)::float8 / nullif(sum(points_expected), 0)"


def board() -> Board:
    return Board(
        uid="labormon-wages",
        title="工资监测趋势",
        description="劳动关系监测点月度报告:一线职工工资、欠薪与未报送情况",
        time_from="now-1y",
        refresh="1h",
        annotations=[spring_festival()],
        items=[
            Row("最近月份"),
            monthly_stat(
                "月报报送率",
                "最近一个月应报送月报的监测点中已报送的比例(当月报送期内偏低属正常)。",
                REPORTING_RATE,
                unit="percentunit",
                decimals=1,
                steps=REPORTING_STEPS,
            ),
            monthly_stat(
                "一线职工平均工资",
                "最近一个月已报送监测点的一线职工月平均工资(按一线人数加权)。",
                WEIGHTED_WAGE,
                unit=YUAN,
                steps=[(None, "text")],
            ),
            monthly_stat(
                "欠薪职工人数",
                "最近一个月监测点申报的被拖欠工资职工人数。",
                "sum(arrears_workers)",
                steps=[(None, "green"), (1, LEVEL_COLORS["II"])],
            ),
            monthly_stat(
                "欠薪金额",
                "最近一个月监测点申报的拖欠工资金额(万元)。",
                in_wan_yuan("sum(arrears_amount)"),
                unit=WAN_YUAN,
                decimals=2,
                steps=[(None, "green"), (0.0001, LEVEL_COLORS["II"])],
            ),
            Row("月度趋势"),
            wage_trend(),
            per_county(
                "欠薪职工人数(按区县)",
                "各区县监测点每月申报的被拖欠工资职工人数。",
                "arrears_workers",
            ),
            per_county(
                "欠薪金额(按区县)",
                "各区县监测点每月申报的拖欠工资金额(万元)。",
                in_wan_yuan("arrears_amount"),
                unit=WAN_YUAN,
                decimals=2,
            ),
            per_county(
                "未报送月报的监测点(按区县)",
                "应报送而未报送当月月报的监测点数。企业经营困难时往往先停报月报,"
                "持续未报送本身就是风险信号。",
                "points_not_reporting",
            ),
            reporting_rate_trend(),
            Row("明细"),
            latest_month_table(),
        ],
    )


def monthly_stat(
    title: str,
    description: str,
    aggregate: str,
    *,
    unit: str = "short",
    decimals: int | None = 0,
    steps: list[tuple[float | None, str]],
) -> Panel:
    """The latest month's value over the selected counties, with the year as sparkline."""
    return stat(
        title,
        description,
        Query(
            f"""
SELECT period AS time,
       {aggregate} AS "{title}"
FROM v_wage_monthly
WHERE {where("period")}
GROUP BY period
ORDER BY period
"""
        ),
        unit=unit,
        decimals=decimals,
        sparkline=True,
        steps=steps,
    )


def wage_trend() -> Panel:
    overall = "所选区县合计"
    return timeseries(
        "一线职工月平均工资",
        "各区县监测点一线职工月平均工资(按一线人数加权),粗线为所选区县合计。",
        [
            Query(
                f"""
SELECT period AS time,
       county AS metric,
       avg_frontline_wage AS value
FROM v_wage_monthly
WHERE {where("period")}
ORDER BY 1, 2
"""
            ),
            Query(
                f"""
SELECT period AS time,
       {WEIGHTED_WAGE} AS "{overall}"
FROM v_wage_monthly
WHERE {where("period")}
GROUP BY period
ORDER BY period
"""
            ),
        ],
        unit=YUAN,
        w=24,
        decimals=0,
        min_value=None,
        points=True,
        legend_calcs=["lastNotNull", "min", "max"],
        overrides=[
            by_name(overall, ("custom.lineWidth", 4), ("color", fixed_color("text"))),
        ],
    )


def per_county(
    title: str, description: str, column: str, *, unit: str = "short", decimals: int = 0
) -> Panel:
    return timeseries(
        title,
        description,
        [
            Query(
                f"""
SELECT period AS time,
       county AS metric,
       {column} AS value
FROM v_wage_monthly
WHERE {where("period")}
ORDER BY 1, 2
"""
            )
        ],
        unit=unit,
        bars=True,
        stacked=True,
        decimals=decimals,
        legend_calcs=["sum"],
    )


def reporting_rate_trend() -> Panel:
    return timeseries(
        "月报报送率(按区县)",
        "各区县应报送监测点中已报送月报的比例;低于90%的区域以红色标出。",
        [
            Query(
                f"""
SELECT period AS time,
       county AS metric,
       points_reporting::float8 / nullif(points_expected, 0) AS value
FROM v_wage_monthly
WHERE {where("period")}
ORDER BY 1, 2
"""
            )
        ],
        unit="percentunit",
        decimals=1,
        points=True,
        steps=[(None, LEVEL_COLORS["I"]), (0.9, "transparent")],
        threshold_style="line+area",
    )


def latest_month_table() -> Panel:
    return table(
        "最近月份各区县明细",
        "所选时间范围内最近一个月份的各区县汇总。",
        Query(
            """
SELECT time, "区县", "应报送", "已报送", "未报送", "报送率", "一线职工",
       "平均一线工资", "欠薪企业", "欠薪职工", "欠薪金额"
FROM (
    SELECT period AS time,
           region_code,
           max(period) OVER () AS latest,
           county AS "区县",
           points_expected AS "应报送",
           points_reporting AS "已报送",
           points_not_reporting AS "未报送",
           points_reporting::float8 / nullif(points_expected, 0) AS "报送率",
           frontline_workers AS "一线职工",
           avg_frontline_wage AS "平均一线工资",
           arrears_points AS "欠薪企业",
           arrears_workers AS "欠薪职工",
           arrears_amount / 10000.0 AS "欠薪金额"
    FROM v_wage_monthly
    WHERE $__timeFilter(period)
) latest_month
WHERE time = latest AND region_code IN ($county)
ORDER BY region_code
""",
            "table",
        ),
        h=8,
        overrides=[
            by_name("time", ("displayName", "月份"), ("unit", "time:YYYY-MM")),
            by_name(
                "报送率",
                ("unit", "percentunit"),
                ("decimals", 1),
                ("thresholds", thresholds(REPORTING_STEPS)),
                ("custom.cellOptions", {"type": "color-text"}),
            ),
            by_name("平均一线工资", ("unit", YUAN), ("decimals", 0)),
            by_name("欠薪金额", ("unit", WAN_YUAN), ("decimals", 2)),
        ],
    )
