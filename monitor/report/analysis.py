"""The written analysis of the monthly report (综合分析与工作建议), generated from the figures.

Each sentence states a figure of `MonthlyFigures` and nothing that is not in it; the
wording follows what a union analyst writes in the hand-made report: what rose, what
fell, where, whether the season explains it, and what to do next.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from monitor.clock import add_months
from monitor.regions import PROVINCE
from monitor.report import labels
from monitor.report.figures import Compared, MonthlyFigures
from monitor.season import spring_festival

#: Hours after which an unacknowledged level III alert climbs to the city (interfaces §5);
#: a tier slower than this on average is named in the suggestions.
SLOW_ACK_HOURS = 2

#: A county is named as rising fast from this many more petitions and this much growth.
RISE_MIN_PETITIONS = 3
RISE_MIN_PCT = 20


@dataclass
class Analysis:
    """Paragraphs under numbered headings, and the numbered suggestions."""

    summary: str
    points: list[tuple[str, str]] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    season: str = ""


def _joined(parts: Iterable[str]) -> str:
    return "、".join(parts)


def _all(f: MonthlyFigures) -> str:
    return labels.whole(f.region_tier)


def _areas(f: MonthlyFigures) -> str:
    return labels.areas(f.region_tier)


def _lower(f: MonthlyFigures) -> str:
    """The unions one tier below the report's region: a province's cities, a city's counties."""
    return "市级" if f.region_tier == PROVINCE else "县级"


def _share(part: int, whole: int) -> str:
    return labels.fmt_share(part, whole)


def _season_phase(month: date) -> tuple[str, date | None]:
    """Where the month lies against the Spring Festival: "festival" (it falls in the
    month), "pre" (it falls within 45 days after the month), "post" (it fell within the
    45 days before the month), else "year_end" (November, December) or "none"."""
    month_end = add_months(month, 1) - timedelta(days=1)
    for year in (month.year, month.year + 1, month.year - 1):
        festival = spring_festival(year)
        if month <= festival <= month_end:
            return "festival", festival
        if month_end < festival <= month_end + timedelta(days=45):
            return "pre", festival
        if month - timedelta(days=45) <= festival < month:
            return "post", festival
    if month.month in (11, 12):
        return "year_end", None
    return "none", None


def season_text(f: MonthlyFigures) -> str:
    phase, festival = _season_phase(f.month)
    wage = next((r for r in f.by_category if r.key == "wage_arrears"), None)
    wage_now = wage.current.petitions if wage else 0
    wage_prev = wage.previous.petitions if wage else 0
    wage_ly = wage.last_year.petitions if wage else 0
    yoy = labels.change_words(f.totals.current.petitions, f.totals.last_year.petitions)
    festival_text = (
        f"{festival.year}年春节为{festival.month}月{festival.day}日。" if festival else ""
    )
    if phase in ("pre", "festival"):
        if phase == "festival":
            text = (
                f"{festival_text}本月正值春节，节前农民工工资集中结算、节后返岗复工，历年是拖欠工资类"
                "信访的高发期。"
            )
        else:
            text = (
                f"{festival_text}本月处于春节前农民工集中返乡、工资集中结算时段，历年是拖欠工资类"
                "信访的高发期。"
            )
        if wage_now > wage_prev:
            text += (
                f"本月拖欠工资类信访{wage_now}件，环比{labels.change_words(wage_now, wage_prev)}，"
                "符合节前欠薪矛盾集中显现的季节规律。"
            )
        else:
            text += (
                f"本月拖欠工资类信访{wage_now}件，环比{labels.change_words(wage_now, wage_prev)}，"
                "但仍处于高发期，不宜放松。"
            )
    elif phase == "post":
        text = f"{festival_text}本月为春节后返岗复工期，欠薪类信访通常随节前结算完成而回落。"
        if wage_now < wage_prev:
            text += (
                f"本月拖欠工资类信访{wage_now}件，环比{labels.change_words(wage_now, wage_prev)}，"
                "符合节后回落的规律。"
            )
        elif wage_now > wage_prev:
            text += (
                f"本月拖欠工资类信访{wage_now}件，"
                f"环比不降反升（{labels.change_words(wage_now, wage_prev)}），"
                "需关注节后复工企业的欠薪和裁员问题。"
            )
        else:
            text += f"本月拖欠工资类信访{wage_now}件，与上月持平。"
    elif phase == "year_end":
        text = (
            "本月进入岁末年初欠薪治理关键期，工程款和工资结算问题将逐步增多。"
            f"本月拖欠工资类信访{wage_now}件，环比{labels.change_words(wage_now, wage_prev)}。"
        )
    else:
        text = "本月无明显季节性因素。"
    if f.totals.last_year.petitions:
        text += (
            f"与上年同月相比，信访总量{yoy}、拖欠工资类{labels.change_words(wage_now, wage_ly)}，"
            "同比变化剔除了季节影响，更能反映实际走势。"
        )
    else:
        text += "上年同月无信访数据，暂不作同比分析。"
    return text


def _streak(f: MonthlyFigures) -> int:
    """Consecutive monthly rises ending with this month."""
    totals = [m.total.petitions for m in f.trend]
    streak = 0
    for i in range(len(totals) - 1, 0, -1):
        if totals[i] > totals[i - 1]:
            streak += 1
        else:
            break
    return streak


def _ranked_change(rows: list[Compared]) -> list[tuple[int, Compared]]:
    return sorted(
        ((r.current.petitions - r.previous.petitions, r) for r in rows),
        key=lambda dr: (-dr[0], dr[1].key),
    )


def analyse(f: MonthlyFigures) -> Analysis:
    month = labels.month_title(f.month)
    total = f.totals.current
    prev, ly = f.totals.previous, f.totals.last_year
    points: list[tuple[str, str]] = []

    # (一) volume
    if f.empty:
        volume = (
            f"{month}{_all(f)}未受理职工信访事项（0件、0人次）。上月{prev.petitions}件，"
            f"上年同月{ly.petitions}件。"
        )
        if prev.petitions or ly.petitions:
            volume += f"信访数据为零与往期差异明显，需核实各{_areas(f)}工会信访数据是否按时报送。"
        summary = (
            f"{month}{_all(f)}未受理职工信访事项。"
            "本期各项信访统计均为零，预警和监测点风险情况见正文。"
        )
    else:
        # A zero base (the system's first year, a county not yet reporting) has no
        # meaningful change: say there is no data rather than "rose from zero".
        versus, missing = [], []
        for name, base in (("上月", prev), ("上年同月", ly)):
            if base.petitions:
                versus.append(
                    f"与{name}（{base.petitions}件）相比"
                    f"{labels.change_words(total.petitions, base.petitions)}"
                )
            else:
                missing.append(name)
        people = [
            f"{name}{labels.change_words(total.people, base.people, '人次')}"
            for name, base in (("环比", prev), ("同比", ly))
            if base.people
        ]
        clauses = []
        if versus:
            clauses.append("件数" + "，".join(versus))
        if people:
            clauses.append("人次" + "、".join(people))
        if missing:
            both = "均" if len(missing) > 1 else ""
            clauses.append(f"{'、'.join(missing)}{both}无信访数据，不作比较")
        volume = (
            f"{month}{_all(f)}共受理职工信访{total.petitions}件、涉及{total.people}人次。"
            + "；".join(clauses)
            + "。"
        )
        counts = [m.total.petitions for m in f.trend]
        if (
            len(counts) == 13
            and total.petitions == max(counts)
            and counts.count(total.petitions) == 1
        ):
            volume += "本月信访量为近13个月最高。"
        elif (
            len(counts) == 13
            and total.petitions == min(counts)
            and counts.count(total.petitions) == 1
        ):
            volume += "本月信访量为近13个月最低。"
        streak = _streak(f)
        if streak >= 3:
            volume += f"信访量已连续{streak}个月上升。"
        summary = volume
    points.append(("总量变化", volume))

    # (二) structure: categories and channels
    if not f.empty:
        cats = sorted(f.by_category, key=lambda r: (-r.current.petitions, r.key))
        top = cats[0]
        text = (
            f"从诉求类别看，{top.label}类{top.current.petitions}件，"
            f"占{_share(top.current.petitions, total.petitions)}，"
            "居各类之首"
        )
        text += "，仍是职工信访的主要诉求。" if top.key == "wage_arrears" else "。"
        others = [f"{r.label}类{r.current.petitions}件" for r in cats[1:] if r.current.petitions]
        if others:
            text += f"其余依次为{_joined(others)}。"
        changes = _ranked_change(f.by_category)
        rise, fall = changes[0], changes[-1]
        if rise[0] > 0:
            text += (
                f"环比增加最多的是{rise[1].label}类（增加{rise[0]}件，"
                f"{labels.change_words(rise[1].current.petitions, rise[1].previous.petitions)}）"
            )
            text += "；" if fall[0] < 0 else "。"
        if fall[0] < 0:
            text += (
                f"减少最多的是{fall[1].label}类（减少{-fall[0]}件，"
                f"{labels.change_words(fall[1].current.petitions, fall[1].previous.petitions)}）。"
            )
        if f.inferred_categories:
            text += f"本月有{f.inferred_categories}件信访未注明类别，由系统根据诉求摘要自动归类。"
        chans = sorted(f.by_channel, key=lambda r: (-r.current.petitions, r.key))
        text += (
            f"从信访渠道看，{chans[0].label}{chans[0].current.petitions}件"
            f"（占{_share(chans[0].current.petitions, total.petitions)}），为职工反映诉求的主要渠道"
        )
        rest = [f"{r.label}{r.current.petitions}件" for r in chans[1:]]
        text += f"；{_joined(rest)}。" if rest else "。"
        points.append(("诉求结构", text))

        # (三) regions
        counties = sorted(f.by_county, key=lambda r: (-r.current.petitions, r.key))
        text = (
            f"从区域分布看，{counties[0].label}{counties[0].current.petitions}件，"
            f"占{_share(counties[0].current.petitions, total.petitions)}，居各{_areas(f)}首位"
        )
        if len(counties) > 1 and counties[1].current.petitions:
            text += f"；其次是{counties[1].label}（{counties[1].current.petitions}件）"
        text += "。"
        rising = _rising(f.by_county)
        if rising:
            text += (
                "环比上升较快的有"
                + _joined(
                    f"{r.label}（{labels.change_words(r.current.petitions, r.previous.petitions)}）"
                    for r in rising
                )
                + "。"
            )
        quiet = [r.label for r in f.by_county if r.current.petitions == 0]
        if quiet:
            text += f"{_joined(quiet)}本月无信访。"
        points.append(("区域分布", text))

        # (四) collective and over-level petitions, enterprises
        col = f.collective.current
        if col.petitions:
            text = (
                f"集体访（{f.collective_threshold}人及以上）{col.petitions}件、{col.people}人次，"
                f"占信访总件数的{_share(col.petitions, total.petitions)}，"
                f"环比{labels.change_words(col.petitions, f.collective.previous.petitions)}。"
            )
            biggest = f.collective_cases[0] if f.collective_cases else None
            if biggest is not None:
                text += (
                    f"人数最多的一起为{biggest.received_date.month}月{biggest.received_date.day}日"
                    f"{biggest.region}{biggest.enterprise}{biggest.category}问题集体访，"
                    f"涉及{biggest.people}人。"
                )
        else:
            text = "本月未发生集体访。"
        over = f.over_level_total.current.petitions
        if over:
            parts = [
                f"{r.label}{r.current.petitions}件" for r in f.by_over_level if r.current.petitions
            ]
            text += (
                f"越级访{over}件（{_joined(parts)}），"
                f"占信访总件数的{_share(over, total.petitions)}。"
            )
        else:
            text += "本月无越级访。"
        if f.enterprises:
            e = f.enterprises[0]
            text += (
                f"涉及企业中，信访件数最多的是{e.name}（{e.region}，{e.count.petitions}件、"
                f"{e.count.people}人次）"
            )
            m = f.most_people
            if m is not None and m.key != e.key:
                text += f"，涉及人次最多的是{m.name}（{m.region}，{m.count.people}人次）"
            text += "。"
        points.append(("群体性与越级信访", text))

        # (五) handling
        h = f.handling
        if h.closed:
            text = f"本月办结信访{h.closed}件，平均办理用时{labels.fmt_days(h.avg_days)}天；"
        else:
            text = "本月无办结信访；"
        text += (
            f"本月受理的{h.month_petitions}件中，月末前已办结{h.closed_of_month}件，"
            f"办结率{_share(h.closed_of_month, h.month_petitions)}。"
        )
        points.append(("办理情况", text))

    # (六) alerts and risk (also in an empty month: they do not depend on petitions)
    points.append(("预警处置与风险研判", _alerts_text(f)))
    season = season_text(f)
    points.append(("季节因素", season))
    return Analysis(summary=summary, points=points, suggestions=_suggestions(f), season=season)


def _rising(rows: list[Compared]) -> list[Compared]:
    found = []
    for delta, r in _ranked_change(rows):
        if delta < RISE_MIN_PETITIONS:
            break
        change = labels.change_pct(r.current.petitions, r.previous.petitions)
        if change is None or change >= RISE_MIN_PCT:
            found.append(r)
    return found[:3]


def _alerts_text(f: MonthlyFigures) -> str:
    opened = sum(r.opened for r in f.alerts)
    resolved = sum(r.resolved for r in f.alerts)
    still = sum(r.open_at_end for r in f.alerts)
    if opened or resolved or still:
        by_level = [f"{r.label.split('（')[0]}{r.opened}条" for r in f.alerts if r.opened]
        text = f"本月新发预警{opened}条"
        text += f"（{_joined(by_level)}）" if by_level else ""
        text += f"，解除{resolved}条，月末仍有{still}条未解除。"
    else:
        text = "本月未发生风险预警。"
    total_ack = f.acks[-1]
    if total_ack.acknowledged:
        tiers = [
            f"{a.label}{labels.fmt_hours(a.avg_hours)}小时"
            for a in f.acks[:-1]
            if a.acknowledged and a.tier is not None
        ]
        text += (
            f"本月确认预警{total_ack.acknowledged}条，"
            f"平均确认用时{labels.fmt_hours(total_ack.avg_hours)}小时"
        )
        text += f"，其中{_joined(tiers)}。" if tiers else "。"
    scored = sum(r.points for r in f.risk_levels if r.level != "unscored")
    if scored:
        levels = [
            f"{r.label.split('（')[0]}风险{r.points}个"
            for r in f.risk_levels
            if r.level in labels.RISK_LEVELS
        ]
        text += (
            f"截至月末，{_all(f)}{f.points_registered}个劳动关系监测点中已评分{scored}个，"
            f"其中{_joined(levels)}。"
        )
        if f.risk_points:
            p = f.risk_points[0]
            text += f"风险最高的是{p.name}（{p.region}，{p.score}分"
            text += f"，{p.factor}）。" if p.factor else "）。"
    else:
        text += f"截至月末，{_all(f)}{f.points_registered}个劳动关系监测点尚无风险评分。"
    return text


def _suggestions(f: MonthlyFigures) -> list[str]:
    out: list[str] = []
    phase, _festival = _season_phase(f.month)
    if f.empty and (f.totals.previous.petitions or f.totals.last_year.petitions):
        out.append(f"核实各{_areas(f)}工会本月信访数据报送情况，确保月报数据完整、准确。")
    if phase in ("pre", "festival", "year_end"):
        out.append(
            "深入开展岁末年初农民工工资治欠保支专项行动，对建筑业等重点行业和在建工程项目逐一排查，"
            "确保农民工工资按时足额发放。"
        )
    elif phase == "post":
        out.append("关注节后返岗复工企业的工资支付、社保缴纳和裁员安置情况，防止矛盾延续。")
    rising = _rising(f.by_county)
    if rising:
        out.append(
            f"对{_joined(r.label for r in rising)}等信访量上升较快的{_areas(f)}，"
            f"督促{_lower(f)}工会开展专项排查，摸清矛盾底数，落实化解责任。"
        )
    if f.collective.current.petitions:
        out.append(
            f"对本月{f.collective.current.petitions}件集体访逐案跟踪，落实“一企一策”，"
            "防止矛盾反复和升级。"
        )
    if f.over_level_total.current.petitions:
        out.append(
            f"落实首办负责制和工会领导干部接访制度，减少越级访（本月{f.over_level_total.current.petitions}件）。"
        )
    serious = sum(r.points for r in f.risk_levels if r.level in ("I", "II"))
    if serious:
        out.append(f"对{serious}个红色、橙色风险监测点实行动态盯守，督促企业限期整改。")
    slow = [
        a.label
        for a in f.acks[:-1]
        if a.tier is not None and a.avg_hours is not None and a.avg_hours > SLOW_ACK_HOURS
    ]
    if slow:
        out.append(
            f"{_joined(slow)}预警平均确认用时超过{SLOW_ACK_HOURS}小时，"
            "需进一步压实快速响应责任，做到第一时间知情、第一时间报告。"
        )
    out.append("畅通12351职工服务热线和网上信访渠道，做好信访事项登记、转办、督办和回访工作。")
    return out
