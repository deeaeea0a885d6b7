"""The report as a sequence of blocks (headings, paragraphs, tables, charts).

The HTML/PDF and Word renderers walk the same blocks, so the Word file holds exactly
the tables of the PDF. Table cells are final text (formatted by `labels`): what the
renderers print is what the tests read back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from monitor.regions import PROVINCE
from monitor.report import labels
from monitor.report.analysis import Analysis, analyse
from monitor.report.figures import Compared, Disposal, MonthlyFigures

Align = Literal["l", "c", "r"]

DIGITS = "零一二三四五六七八九"


def cn_number(n: int) -> str:
    """1..99 in Chinese numerals, as section numbers are written: 一, 十, 十一, 二十三."""
    if not 0 < n < 100:
        raise ValueError(n)
    tens, ones = divmod(n, 10)
    if tens == 0:
        return DIGITS[ones]
    return ("" if tens == 1 else DIGITS[tens]) + "十" + (DIGITS[ones] if ones else "")


@dataclass
class Heading:
    text: str
    level: int = 1


@dataclass
class Paragraph:
    text: str
    #: body | lead | note | label (a bold run-in label before the text)
    style: str = "body"
    label: str = ""


@dataclass
class Table:
    """A table with a caption; the last `total_rows` rows are totals (set in bold)."""

    id: str
    caption: str
    header: list[str]
    rows: list[list[str]]
    align: list[Align]
    total_rows: int = 0
    #: Column widths for Word, in cm of 10.5 pt text; scaled to the text width.
    widths: list[float] = field(default_factory=list)
    note: str = ""
    #: Shown instead of the body when there are no rows.
    empty_text: str = "（无）"


@dataclass
class Chart:
    id: str
    caption: str


Block = Heading | Paragraph | Table | Chart


@dataclass
class ReportDocument:
    figures: MonthlyFigures
    analysis: Analysis
    masthead: str
    issue: str
    issuer_line: str
    date_line: str
    title: str
    blocks: list[Block]
    notes: list[str]
    #: Sign-off (审核/签发): set on the signed report only; a draft carries none.
    signatory: str | None = None
    review_note: str | None = None
    #: 报/送/发 lines of the signed report, as (label, text).
    distribution: list[tuple[str, str]] = field(default_factory=list)
    #: The mark in the top corner (内部资料).
    classification: str = ""

    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]

    def charts(self) -> list[Chart]:
        return [b for b in self.blocks if isinstance(b, Chart)]

    @property
    def filename_stem(self) -> str:
        return (
            f"{self.figures.city_name}{labels.month_title(self.figures.month)}职工信访定量分析月报"
        )


#: The year-on-year cell when the store holds nothing for the same month a year before.
NO_LAST_YEAR = "上年无数据"


def compared_table(
    table_id: str,
    caption: str,
    first: str,
    rows: list[Compared],
    total: Compared,
    *,
    collective_column: bool = False,
) -> Table:
    """Item | 件数 | 占比 | 人次 | [集体访] | 上月 | 环比 | 上年同月 | 同比, with a total row."""
    header = [first, "件数", "占比", "人次"]
    if collective_column:
        header.append("集体访")
    header += ["上月", "环比", "上年同月", "同比"]
    body = []
    for r in [*rows, total]:
        cells = [
            r.label,
            labels.fmt_int(r.current.petitions),
            labels.fmt_share(r.current.petitions, total.current.petitions),
            labels.fmt_int(r.current.people),
        ]
        if collective_column:
            cells.append(labels.fmt_int(r.collective.petitions))
        cells += [
            labels.fmt_int(r.previous.petitions),
            labels.fmt_change(r.current.petitions, r.previous.petitions),
            labels.fmt_int(r.last_year.petitions),
            labels.fmt_change(r.current.petitions, r.last_year.petitions),
        ]
        body.append(cells)
    right: list[Align] = ["r"] * (len(header) - 1)
    align: list[Align] = ["l", *right]
    # Widths in cm of text at 10.5 pt: what each column's longest cell needs.
    widths = [2.1, 1.2, 1.7, 1.3] + ([1.4] if collective_column else []) + [1.2, 1.9, 1.9, 1.9]
    return Table(table_id, caption, header, body, align, total_rows=1, widths=widths)


def build_document(f: MonthlyFigures, analysis: Analysis | None = None) -> ReportDocument:
    a = analysis or analyse(f)
    month = labels.month_title(f.month)
    blocks: list[Block] = []
    section = iter(cn_number(i) for i in range(1, 100))
    table_no = iter(range(1, 100))
    chart_no = iter(range(1, 100))

    def heading(text: str) -> None:
        blocks.append(Heading(f"{next(section)}、{text}"))

    def caption(text: str) -> str:
        return f"表{next(table_no)}　{text}"

    total = f.totals
    lead = (
        f"根据各{labels.areas(f.region_tier)}工会、12351职工服务热线和网上信访平台报送的信访数据，"
        f"现将{month}{labels.whole(f.region_tier)}职工信访情况分析如下。"
    )
    if not f.complete:
        lead += f"（本期数据截至{labels.day_title(f.last_day)}，月度尚未结束，为阶段性统计。）"
    blocks.append(Paragraph(lead, "lead"))
    blocks.append(Paragraph(a.summary, "label", label="本月要点："))

    # 一、总体情况
    heading("总体情况")
    key_rows = [
        (
            "信访件数（件）",
            total.current.petitions,
            total.previous.petitions,
            total.last_year.petitions,
        ),
        ("涉及人次", total.current.people, total.previous.people, total.last_year.people),
        (
            "集体访件数（件）",
            f.collective.current.petitions,
            f.collective.previous.petitions,
            f.collective.last_year.petitions,
        ),
        (
            "集体访人次",
            f.collective.current.people,
            f.collective.previous.people,
            f.collective.last_year.people,
        ),
        (
            "越级访件数（件）",
            f.over_level_total.current.petitions,
            f.over_level_total.previous.petitions,
            f.over_level_total.last_year.petitions,
        ),
    ]
    blocks.append(
        Table(
            "t-key",
            caption("主要指标"),
            ["指标", "本月", "上月", "环比", "上年同月", "同比"],
            [
                [
                    name,
                    labels.fmt_int(cur),
                    labels.fmt_int(prev),
                    labels.fmt_change(cur, prev),
                    labels.fmt_int(ly),
                    labels.fmt_change(cur, ly),
                ]
                for name, cur, prev, ly in key_rows
            ],
            ["l", "r", "r", "r", "r", "r"],
            widths=[3.8, 2.4, 2.4, 2.4, 2.4, 2.4],
            note=(
                f"上月为{labels.month_title(f.previous_month)}，"
                f"上年同月为{labels.month_title(f.last_year_month)}。"
            ),
        )
    )
    if f.empty:
        blocks.append(
            Paragraph(
                f"{month}{labels.whole(f.region_tier)}未受理职工信访事项，以下各表本月数均为零，上月和上年同月数供对比。",
                "body",
            )
        )

    # 二、三、四 breakdowns
    heading("分渠道情况")
    blocks.append(compared_table("t-channel", caption("信访渠道分布"), "渠道", f.by_channel, total))
    heading("分类别情况")
    blocks.append(
        compared_table("t-category", caption("信访诉求类别分布"), "类别", f.by_category, total)
    )
    if f.inferred_categories:
        blocks.append(
            Paragraph(
                f"注：本月{f.inferred_categories}件信访未注明类别，由系统根据诉求摘要自动归类。",
                "note",
            )
        )
    blocks.append(Chart("trend", f"图{next(chart_no)}　近13个月信访件数（按诉求类别）"))
    heading("分区域情况")
    # A province's report compares its cities (市州) and then ranks counties province-wide.
    area = "市州" if f.region_tier == PROVINCE else "区县（市）"
    blocks.append(
        compared_table(
            "t-county",
            caption(f"各{area}信访情况"),
            area,
            f.by_county,
            total,
            collective_column=True,
        )
    )
    blocks.append(Chart("county", f"图{next(chart_no)}　各{area}信访件数对比"))
    if f.region_tier == PROVINCE:
        blocks.append(
            Table(
                "t-county-rank",
                caption(f"全省区县（市）信访件数排名（前{len(f.county_ranking)}位）"),
                ["排名", "区县（市）", "件数", "占全省", "人次", "集体访", "上月", "环比"],
                [
                    [
                        str(i),
                        r.label,
                        labels.fmt_int(r.current.petitions),
                        labels.fmt_share(r.current.petitions, total.current.petitions),
                        labels.fmt_int(r.current.people),
                        labels.fmt_int(r.collective.petitions),
                        labels.fmt_int(r.previous.petitions),
                        labels.fmt_change(r.current.petitions, r.previous.petitions),
                    ]
                    for i, r in enumerate(f.county_ranking, start=1)
                ],
                ["r", "l", "r", "r", "r", "r", "r", "r"],
                widths=[1.2, 4.6, 1.2, 1.7, 1.3, 1.4, 1.2, 1.9],
                empty_text="（本月各区县均无信访）",
            )
        )

    # 五、集体访与越级访
    heading("集体访与越级访")
    over = compared_table(
        "t-over", caption("越级访情况"), "越级类型", f.by_over_level, f.over_level_total
    )
    # Shares of over-level petitions are of all petitions (how much goes over the
    # county's head), not of over-level petitions only.
    over.header[2] = "占信访总量"
    for row, item in zip(over.rows, [*f.by_over_level, f.over_level_total], strict=True):
        row[2] = labels.fmt_share(item.current.petitions, total.current.petitions)
    blocks.append(over)
    col_total = f.collective.current.petitions
    shown = len(f.collective_cases)
    blocks.append(
        Table(
            "t-collective",
            caption(f"集体访明细（{f.collective_threshold}人及以上）"),
            ["序号", "受理日期", "区县", "涉及企业", "类别", "渠道", "人数", "越级", "办结"],
            [
                [
                    str(i),
                    f"{c.received_date.month}月{c.received_date.day}日",
                    c.region,
                    c.enterprise,
                    c.category,
                    c.channel,
                    labels.fmt_int(c.people),
                    c.over_level or "否",
                    "是" if c.closed else "否",
                ]
                for i, c in enumerate(f.collective_cases, 1)
            ],
            ["c", "c", "l", "l", "l", "l", "r", "c", "c"],
            widths=[1.1, 1.9, 1.5, 3.8, 1.9, 2.1, 1.1, 1.1, 1.1],
            note=(
                f"本月集体访共{col_total}件，按人数由多到少列出前{shown}件。"
                if col_total > shown
                else ""
            ),
            empty_text="本月未发生集体访。",
        )
    )

    # 六、重点企业
    heading("信访较多的企业")
    blocks.append(
        Table(
            "t-enterprise",
            caption("信访件数居前的企业"),
            ["排名", "企业", "区县（市）", "行业", "件数", "人次", "集体访"],
            [
                [
                    str(i),
                    e.name,
                    e.region,
                    labels.label(labels.INDUSTRIES, e.industry) if e.industry else "—",
                    labels.fmt_int(e.count.petitions),
                    labels.fmt_int(e.count.people),
                    labels.fmt_int(e.collective),
                ]
                for i, e in enumerate(f.enterprises, 1)
            ],
            ["c", "l", "l", "l", "r", "r", "r"],
            widths=[1.1, 5.0, 2.2, 1.9, 1.5, 1.5, 1.8],
            note=(
                f"本月信访涉及企业{f.enterprise_count}家，按件数（同件数按人次）排序列出前"
                f"{len(f.enterprises)}家；另有{f.without_enterprise}件信访未注明企业。"
                if f.enterprise_count
                else ""
            ),
            empty_text="本月信访未涉及具体企业。",
        )
    )

    # 七、办理情况
    heading("办理情况")
    h = f.handling
    blocks.append(
        Table(
            "t-handling",
            caption("信访办理情况"),
            [
                "本月办结（件）",
                "平均办理用时（天）",
                "本月受理（件）",
                "其中月内办结（件）",
                "办结率",
            ],
            [
                [
                    labels.fmt_int(h.closed),
                    labels.fmt_days(h.avg_days),
                    labels.fmt_int(h.month_petitions),
                    labels.fmt_int(h.closed_of_month),
                    labels.fmt_share(h.closed_of_month, h.month_petitions),
                ]
            ],
            ["r"] * 5,
            widths=[3.0, 3.7, 3.0, 3.7, 1.8],
        )
    )

    # 八、预警处置
    heading("风险预警处置情况")
    alert_rows = [
        [
            r.label,
            labels.fmt_int(r.opened),
            labels.fmt_int(r.resolved),
            labels.fmt_int(r.open_at_end),
        ]
        for r in f.alerts
    ]
    alert_rows.append(
        [
            "合计",
            labels.fmt_int(sum(r.opened for r in f.alerts)),
            labels.fmt_int(sum(r.resolved for r in f.alerts)),
            labels.fmt_int(sum(r.open_at_end for r in f.alerts)),
        ]
    )
    blocks.append(
        Table(
            "t-alerts",
            caption("风险预警分级情况"),
            ["预警级别", "本月新发", "本月解除", "月末未解除"],
            alert_rows,
            ["l", "r", "r", "r"],
            total_rows=1,
            widths=[5.0, 3.2, 3.2, 3.2],
        )
    )
    blocks.append(
        Table(
            "t-ack",
            caption("各层级预警确认用时"),
            ["确认层级", "确认条数", "平均确认用时（小时）", "最长确认用时（小时）"],
            [
                [
                    a_.label,
                    labels.fmt_int(a_.acknowledged),
                    labels.fmt_hours(a_.avg_hours),
                    labels.fmt_hours(a_.max_hours),
                ]
                for a_ in f.acks
            ],
            ["l", "r", "r", "r"],
            total_rows=1,
            widths=[4.0, 2.5, 4.3, 4.3],
            note="确认层级按确认人所属层级统计（见统计口径说明）。",
        )
    )

    if f.disposal is not None:
        _disposal_section(f.disposal, heading, caption, blocks)

    # 九、监测点风险
    heading("劳动关系监测点风险状况")
    blocks.append(
        Table(
            "t-risk",
            caption("监测点风险等级分布（截至月末）"),
            ["风险等级", "监测点数", "占比"],
            [
                [r.label, labels.fmt_int(r.points), labels.fmt_share(r.points, f.points_registered)]
                for r in f.risk_levels
            ]
            + [
                [
                    "合计",
                    labels.fmt_int(f.points_registered),
                    labels.fmt_share(f.points_registered, f.points_registered),
                ]
            ],
            ["l", "r", "r"],
            total_rows=1,
            widths=[5.0, 3.0, 3.0],
        )
    )
    blocks.append(
        Table(
            "t-risk-points",
            caption("风险等级较高的监测点"),
            ["序号", "监测点", "区县（市）", "行业", "风险分", "等级", "主要风险因素"],
            [
                [
                    str(i),
                    p.name,
                    p.region,
                    p.industry,
                    # Whole points, as the console shows scores.
                    str(p.score.quantize(Decimal(1), rounding=ROUND_HALF_UP)),
                    labels.label(labels.RISK_LEVELS, p.level).split("（")[0],
                    p.factor or "—",
                ]
                for i, p in enumerate(f.risk_points, 1)
            ],
            ["c", "l", "l", "l", "r", "c", "l"],
            widths=[1.1, 4.0, 2.3, 1.9, 1.5, 1.2, 3.8],
            empty_text="截至月末无处于预警等级的监测点。",
        )
    )

    # 十、综合分析与工作建议
    heading("综合分析")
    for i, (title, text) in enumerate(a.points):
        blocks.append(Paragraph(text, "label", label=f"（{cn_number(i + 1)}）{title}。"))
    heading("下一步工作建议")
    for i, text in enumerate(a.suggestions, 1):
        # A full-width stop: a space after "1." would stretch in justified lines.
        blocks.append(Paragraph(text, "label", label=f"{i}．"))

    # Annex: the numbers behind chart 1.
    blocks.append(Heading("附表", level=0))
    cats = list(f.trend[-1].by_category)
    numeric: list[Align] = ["r"] * (3 + len(cats))
    blocks.append(
        Table(
            "t-trend",
            caption("近13个月信访情况"),
            ["月份", "件数", "人次", "集体访"] + [labels.label(labels.CATEGORIES, c) for c in cats],
            [
                [
                    labels.month_title(m.month),
                    labels.fmt_int(m.total.petitions),
                    labels.fmt_int(m.total.people),
                    labels.fmt_int(m.collective),
                ]
                + [labels.fmt_int(m.by_category.get(c, 0)) for c in cats]
                for m in f.trend
            ],
            ["l", *numeric],
            widths=[2.3, 1.1, 1.3, 1.3] + [1.6] * len(cats),
        )
    )

    notes = [
        f"统计月份按信访受理日期（{_zone_words(f.zone_name)}）划分，本期为{month}1日至"
        f"{labels.day_title(f.last_day)}。",
        "“人次”为各件信访涉及人数之和；集体访指涉及"
        f"{f.collective_threshold}人及以上的信访；越级访指越过区县（市）直接到市、到省或进京的信访。",
        "环比与上月比较，同比与上年同月比较；变化率保留一位小数（四舍五入）。“↑”“↓”“→”分别表示"
        "上升、下降、持平；基期为零时不计算变化率，本期有数据标“新增”，均为零标“持平”。",
        "办结件数按办结日期统计；平均办理用时为受理至办结的天数平均值；办结率为本月受理的信访中"
        "月末前已办结的比例。",
        "预警按当前级别统计，按其所依据事件的发生时间（信息员报告的发生时间、信访的受理时间；"
        "无所依据记录的按生成时间）计入月份：“本月新发”指事件发生在本月，“本月解除”指本月解除，"
        "“月末未解除”指事件发生在月末前且月末仍处于未解除状态。确认用时为预警生成至确认的时长，按确认月份统计；确认层级指确认人所属层级"
        "（省级、市级、区县级工会账号），非通过账号的确认（如系统操作员）单列。",
        "监测点风险等级取截至月末各监测点最近一次风险评分；“无预警”指评分未达预警等级，"
        "“未评分”指截至月末尚无评分。",
        "本报告由劳动关系风险监测预警系统根据系统数据自动生成，不含信访人姓名、联系方式等个人信息。",
    ]
    if f.totals.last_year.petitions == 0:
        # Nothing at all a year before (the system was not yet in use): a year-on-year
        # "new" would read as a rise, so the tables say there is nothing to compare with.
        for block in blocks:
            if isinstance(block, Table) and "同比" in block.header:
                column = block.header.index("同比")
                for row in block.rows:
                    row[column] = NO_LAST_YEAR
    return ReportDocument(
        figures=f,
        analysis=a,
        masthead="职工信访定量分析月报",
        issue=f"{f.month.year}年第{f.month.month}期",
        issuer_line=f"{f.issuer}编",
        date_line=labels.day_title(f.local_day(f.generated_at)),
        title=f"{month}{labels.whole(f.region_tier)}职工信访情况分析",
        blocks=blocks,
        notes=notes,
    )


def _disposal_section(
    d: Disposal,
    heading: Callable[[str], None],
    caption: Callable[[str], str],
    blocks: list[Block],
) -> None:
    """处置情况 (interfaces §8): shown for a month in which something was handled."""
    heading("突发事件处置情况")
    rows = [
        [
            r.label,
            labels.fmt_int(r.events),
            labels.fmt_int(r.verified_true),
            labels.fmt_int(r.verified_false),
            labels.fmt_int(r.unverified),
            labels.fmt_hours(r.median_verify_hours),
            labels.fmt_hours(r.median_final_hours),
        ]
        for r in d.levels
    ]
    blocks.append(
        Table(
            "t-disposal",
            caption("突发事件预警核实与处置用时"),
            [
                "预警级别",
                "本月事件",
                "核实属实",
                "核实不实",
                "未核实",
                "核实用时中位数（小时）",
                "终报用时中位数（小时）",
            ],
            rows,
            ["l", "r", "r", "r", "r", "r", "r"],
            widths=[3.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0],
            note="核实属实含部分属实；用时自预警发出起算。",
        )
    )
    blocks.append(
        Table(
            "t-late",
            caption("处置逾期情况（分区县）"),
            ["区县", "核实逾期", "续报逾期", "终报逾期", "批示答复逾期", "合计"],
            [
                [
                    r.region,
                    labels.fmt_int(r.verify),
                    labels.fmt_int(r.progress),
                    labels.fmt_int(r.final),
                    labels.fmt_int(r.answer),
                    labels.fmt_int(r.total),
                ]
                for r in d.late
            ],
            ["l", "r", "r", "r", "r", "r"],
            widths=[3.5, 2.2, 2.2, 2.2, 2.6, 2.0],
            empty_text="本月无逾期。",
        )
    )
    blocks.append(
        Table(
            "t-final",
            caption("终报情况"),
            ["本月终报（件）", "追回工资（元）", "领到工资人数"],
            [
                [
                    labels.fmt_int(d.finals),
                    f"{d.wages_recovered:,.0f}",
                    labels.fmt_int(d.workers_paid),
                ]
            ],
            ["r", "r", "r"],
            widths=[4.0, 5.0, 4.0],
        )
    )


def _zone_words(zone_name: str) -> str:
    return "北京时间" if zone_name in ("Asia/Shanghai", "Asia/Chongqing", "PRC") else zone_name
