"""信访趋势: petitions per day by category and county, collective petitions, channels,
with the Spring Festival season shaded, when wage-arrears petitions peak."""

from __future__ import annotations

from dashboards.boards.common import RANGE_END, spring_festival, where
from dashboards.labels import CATEGORY_LABELS, CHANNEL_LABELS, LEVEL_COLORS, label_sql
from dashboards.model import (
    Board,
    Panel,
    Query,
    Row,
    by_name,
    piechart,
    stat,
    table,
    timeseries,
)

COLLECTIVE = "集体访件数"
COLLECTIVE_PEOPLE = "集体访人数"


def board() -> Board:
    return Board(
        uid="labormon-petitions",
        title="信访趋势",
        description="信访(来访、来信、12351热线、网上信访)按日、类别与区县的趋势;"
        "紫色阴影为春节前后欠薪高发期",
        time_from="now-1y",
        refresh="30m",
        annotations=[spring_festival()],
        items=[
            Row("时间范围内合计"),
            daily_stat("信访件数", "所选时间范围内的信访件数;曲线为每日件数。", "petitions"),
            daily_stat("涉及人数", "所选时间范围内信访涉及的人数。", "people"),
            daily_stat(
                "集体访件数",
                "5人及以上的集体访件数。",
                "collective_petitions",
                steps=[(None, "green"), (1, LEVEL_COLORS["II"])],
            ),
            daily_stat(
                "越级访件数",
                "越过区县直接到市、省或进京的信访件数。",
                "over_level_petitions",
                steps=[(None, "green"), (1, LEVEL_COLORS["II"])],
            ),
            Row("每日趋势"),
            per_day(
                "每日信访件数(按类别)",
                "按北京时间自然日统计;紫色阴影为春节前后欠薪高发期(节前60天至元宵节)。",
                label_sql("category", CATEGORY_LABELS),
            ),
            per_day(
                "每日信访件数(按区县)",
                "按北京时间自然日统计;紫色阴影为春节前后欠薪高发期(节前60天至元宵节)。",
                "county",
            ),
            collective(),
            channels(),
            Row("区县汇总"),
            county_table(),
        ],
    )


def daily_stat(
    title: str,
    description: str,
    column: str,
    *,
    steps: list[tuple[float | None, str]] | None = None,
) -> Panel:
    return stat(
        title,
        description,
        Query(
            f"""
SELECT day AS time,
       sum({column}) AS "{title}"
FROM v_petitions_daily
WHERE {where("day")}
GROUP BY day
ORDER BY day
"""
        ),
        calcs=["sum"],
        sparkline=True,
        steps=steps or [(None, "text")],
    )


def per_day(title: str, description: str, series: str) -> Panel:
    return timeseries(
        title,
        description,
        [
            Query(
                f"""
SELECT day AS time,
       {series} AS metric,
       sum(petitions) AS value
FROM v_petitions_daily
WHERE {where("day")}
GROUP BY 1, 2
ORDER BY 1, 2
"""
            )
        ],
        w=24,
        bars=True,
        stacked=True,
        decimals=0,
        legend_calcs=["sum"],
    )


def collective() -> Panel:
    return timeseries(
        "集体访(5人及以上)",
        "每日集体访件数(柱)与涉及人数(线,右轴)。",
        [
            Query(
                f"""
SELECT day AS time,
       sum(collective_petitions) AS "{COLLECTIVE}",
       sum(collective_people) AS "{COLLECTIVE_PEOPLE}"
FROM v_petitions_daily
WHERE {where("day")}
GROUP BY day
ORDER BY day
"""
            )
        ],
        bars=True,
        decimals=0,
        legend_calcs=["sum", "max"],
        overrides=[
            by_name(COLLECTIVE, ("color", {"mode": "fixed", "fixedColor": LEVEL_COLORS["II"]})),
            by_name(
                COLLECTIVE_PEOPLE,
                ("custom.drawStyle", "line"),
                ("custom.axisPlacement", "right"),
                ("custom.showPoints", "always"),
                ("custom.fillOpacity", 0),
                ("custom.lineWidth", 2),
                ("color", {"mode": "fixed", "fixedColor": LEVEL_COLORS["I"]}),
            ),
        ],
    )


def channels() -> Panel:
    return piechart(
        "信访渠道构成",
        "所选时间范围内各渠道的信访件数。",
        Query(
            f"""
SELECT {RANGE_END} AS time,
       {label_sql("channel", CHANNEL_LABELS)} AS "渠道",
       sum(petitions) AS "件数"
FROM v_petitions_daily
WHERE {where("day")}
GROUP BY 2
ORDER BY 3 DESC, 2
""",
            "table",
        ),
    )


def county_table() -> Panel:
    categories = ",\n       ".join(
        f"coalesce(sum(petitions) FILTER (WHERE category = '{code}'), 0) AS \"{name}\""
        for code, name in CATEGORY_LABELS.items()
    )
    return table(
        "各区县信访分类汇总",
        "所选时间范围内各区县按类别的信访件数,以及涉及人数、集体访与越级访。",
        Query(
            f"""
SELECT {RANGE_END} AS time,
       county AS "区县",
       sum(petitions) AS "合计",
       {categories},
       sum(people) AS "涉及人数",
       sum(collective_petitions) AS "集体访",
       sum(over_level_petitions) AS "越级访"
FROM v_petitions_daily
WHERE {where("day")}
GROUP BY region_code, county
ORDER BY region_code
""",
            "table",
        ),
        h=8,
        sort_by="合计",
        hide_time_column=True,
    )
