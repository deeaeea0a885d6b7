"""The report's figures as CSV, for analysts who build their own tables in Excel.

One figure per row (`month, section, key, label, region, metric, value`): a long table
is what Excel pivot tables and pandas read without reshaping, and new metrics can be
added later without breaking anyone's column positions. The file starts with a UTF-8
BOM so that Excel on a Chinese Windows opens the labels as Chinese, not mojibake.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal

from monitor.report import labels
from monitor.report.figures import Compared, MonthlyFigures
from monitor.safetext import spreadsheet_row

COLUMNS = ["month", "section", "key", "label", "region", "metric", "value"]

Value = int | Decimal | str | None


def _value(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.1f}"
    return str(value)


def _compared(
    section: str, item: Compared, whole: int
) -> Iterator[tuple[str, str, str, str, Value]]:
    cur, prev, ly = item.current, item.previous, item.last_year
    for metric, value in (
        ("petitions", cur.petitions),
        ("people", cur.people),
        ("collective_petitions", item.collective.petitions),
        ("share_pct", labels.pct(cur.petitions, whole)),
        ("petitions_prev", prev.petitions),
        ("petitions_mom_pct", labels.change_pct(cur.petitions, prev.petitions)),
        ("petitions_last_year", ly.petitions),
        ("petitions_yoy_pct", labels.change_pct(cur.petitions, ly.petitions)),
        ("people_prev", prev.people),
        ("people_mom_pct", labels.change_pct(cur.people, prev.people)),
        ("people_last_year", ly.people),
        ("people_yoy_pct", labels.change_pct(cur.people, ly.people)),
    ):
        yield section, item.key, item.label, metric, value


def rows(f: MonthlyFigures) -> Iterator[list[str]]:
    """The CSV rows (without the header)."""
    month = f.key
    whole = f.totals.current.petitions

    def row(
        section: str, key: str, label: str, metric: str, value: Value, region: str = ""
    ) -> list[str]:
        return [month, section, key, label, region, metric, _value(value)]

    for item in (f.totals, f.collective, f.over_level_total):
        for section, key, label, metric, value in _compared("summary", item, whole):
            yield row(section, key, label, metric, value)
    for section, items in (
        ("channel", f.by_channel),
        ("category", f.by_category),
        ("county", f.by_county),
        ("over_level", f.by_over_level),
    ):
        for item in items:
            for sec, key, label, metric, value in _compared(section, item, whole):
                yield row(sec, key, label, metric, value)
    yield row("summary", "total", "合计", "inferred_categories", f.inferred_categories)
    yield row("summary", "total", "合计", "without_enterprise", f.without_enterprise)
    yield row("summary", "total", "合计", "enterprises", f.enterprise_count)
    for rank, e in enumerate(f.enterprises, 1):
        for metric, value in (
            ("rank", rank),
            ("petitions", e.count.petitions),
            ("people", e.count.people),
            ("collective_petitions", e.collective),
        ):
            yield row("enterprise", e.point_id or "", e.name, metric, value, e.region)
    h = f.handling
    for metric, value in (
        ("closed", h.closed),
        ("avg_days", h.avg_days),
        ("month_petitions", h.month_petitions),
        ("closed_of_month", h.closed_of_month),
        ("closed_rate_pct", labels.pct(h.closed_of_month, h.month_petitions)),
    ):
        yield row("handling", "handling", "办理情况", metric, value)
    for a in f.alerts:
        for metric, count in (
            ("opened", a.opened),
            ("resolved", a.resolved),
            ("open_at_end", a.open_at_end),
        ):
            yield row("alerts", a.level, a.label, metric, count)
    for ack in f.acks:
        key = "total" if ack.tier == 0 else ("other" if ack.tier is None else str(ack.tier))
        for metric, value in (
            ("acknowledged", ack.acknowledged),
            ("avg_hours", ack.avg_hours),
            ("max_hours", ack.max_hours),
        ):
            yield row("acknowledgement", key, ack.label, metric, value)
    for r in f.risk_levels:
        key = r.level or "none"
        yield row("risk_level", key, r.label, "points", r.points)
        yield row(
            "risk_level", key, r.label, "share_pct", labels.pct(r.points, f.points_registered)
        )
    yield row("risk_level", "total", "合计", "points", f.points_registered)
    for rank, p in enumerate(f.risk_points, 1):
        yield row("risk_point", p.point_id, p.name, "rank", rank, p.region)
        yield row("risk_point", p.point_id, p.name, "score", p.score, p.region)
        yield row("risk_point", p.point_id, p.name, "level", p.level, p.region)
    for m in f.trend:
        key, label = f"{m.month:%Y-%m}", labels.month_title(m.month)
        yield row("trend", key, label, "petitions", m.total.petitions)
        yield row("trend", key, label, "people", m.total.people)
        yield row("trend", key, label, "collective_petitions", m.collective)
        for category, n in m.by_category.items():
            yield row("trend", key, label, f"category_{category}", n)


def render_csv(f: MonthlyFigures) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    # Labels hold company names from petitions: never formulas in the analyst's Excel.
    writer.writerows(spreadsheet_row(r) for r in rows(f))
    return buffer.getvalue().encode("utf-8-sig")
