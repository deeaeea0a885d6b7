"""The monthly petition report on a simulated year, on SQLite and PostgreSQL.

Every figure of the report is recomputed here from the raw rows, read with another
driver (sqlite3 / asyncpg) and counted with pandas, with months taken from
`received_at` in China time rather than from the stored `received_date`. The
expected table cells are formatted by this file's own helpers, then compared with
the report object, the HTML and Word tables and the CSV. The PDF and Word files under
test are the ones the daemon stored for delivery.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import select

from monitor.clock import FrozenClock, add_months
from monitor.config import Settings, load_settings
from monitor.context import Context
from monitor.daemon import make_context
from monitor.models import Delivery, Document, JobRun
from monitor.report import (
    MonthlyFigures,
    ReportDocument,
    ReportError,
    build_document,
    collect_figures,
    options_from,
    render,
)
from monitor.report.charts import county_chart
from monitor.report.service import JOB, ReportService, RunResult
from tests.conftest import SECRET
from tests.support.database import PostgresTestDatabase, SqliteTemplate, _asyncpg_dsn
from tests.support.report_year import (
    CST,
    EMPTY_MONTH,
    NOW,
    PETITIONER_NAMES,
    PETITIONER_PHONES,
    generate,
    load,
)
from tests.support.tables import docx_tables, docx_text, html_tables, html_text

JAN25 = date(2025, 1, 1)  # year boundary: against December 2024 and January 2024
JAN24 = date(2024, 1, 1)  # the same month a year before has no data at all
AUG24 = date(2024, 8, 1)  # the month before (July 2024) has no petition
MONTHS = [JAN25, JAN24, EMPTY_MONTH, AUG24, date(2024, 12, 1)]
RENDERED = [JAN25, JAN24, EMPTY_MONTH, AUG24]
DATA = generate()
REPO = Path(__file__).resolve().parents[1]

CHANNELS = {"visit": "来访", "letter": "来信", "hotline_12351": "12351热线", "online": "网上信访"}
CATEGORIES = {
    "wage_arrears": "拖欠工资",
    "social_insurance": "社会保险",
    "layoff": "裁员安置",
    "contract": "劳动合同",
    "injury": "工伤待遇",
    "other": "其他",
}
OVER = {"city": "到市", "province": "到省", "national": "进京"}
INDUSTRY = {
    "construction": "建筑业",
    "manufacturing": "制造业",
    "services": "服务业",
    "logistics": "交通物流",
    "mining": "采矿业",
    "other": "其他行业",
}
ALERT_LEVELS = {
    "I": "Ⅰ级（特别重大）",
    "II": "Ⅱ级（重大）",
    "III": "Ⅲ级（较大）",
    "IV": "Ⅳ级（一般）",
}
RISK = {"I": "红色（Ⅰ级）", "II": "橙色（Ⅱ级）", "III": "黄色（Ⅲ级）", "IV": "蓝色（Ⅳ级）"}


# --------------------------------------------------------------------------- formatting
# The test's own writing of the report's number formats (CSV figures and table cells).


def d1(value: Fraction | int) -> Decimal:
    exact = Fraction(value)
    return (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )


def share(part: int, whole: int) -> str:
    return "—" if whole == 0 else f"{d1(Fraction(part * 100, whole))}%"


def change(cur: int, base: int) -> str:
    if base == 0:
        return "↑新增" if cur else "→持平"
    if cur == base:
        return "→持平"
    value = d1(Fraction((cur - base) * 100, base))
    return f"{'↑' if cur > base else '↓'}{abs(value)}%"


def change_csv(cur: int, base: int) -> str:
    return "" if base == 0 else str(d1(Fraction((cur - base) * 100, base)))


def opt(value: Decimal | None) -> str:
    return "—" if value is None else str(value)


# --------------------------------------------------------------------------- the data


@dataclass
class YearRun:
    backend: str
    figures: dict[date, MonthlyFigures]
    docs: dict[date, ReportDocument]
    html: dict[date, str]
    csv: dict[date, bytes]
    raw: dict[str, pd.DataFrame]
    due: list[date | None]
    runs: list[RunResult]
    again: RunResult | None
    documents: list[Document]
    deliveries: list[Delivery]
    job_runs: list[JobRun]
    out: Path
    files: dict[str, bytes] = field(default_factory=dict)


RAW_SQL = {
    "petitions": "SELECT petition_id, received_at, channel, region_code, point_id, "
    "enterprise_name, category, people_involved, over_level, closed_at FROM petitions",
    "points": "SELECT point_id, name, region_code, industry FROM monitoring_points",
    "regions": "SELECT code, name, tier, parent_code FROM regions",
    "alerts": "SELECT id, level, created_at, acknowledged_at, acknowledged_by, resolved_at "
    "FROM alerts",
    "accounts": "SELECT id, tier FROM accounts",
    "risk": "SELECT id, entity_type, entity_id, score, level, factors, as_of, scored_at "
    "FROM risk_scores",
}


async def _raw(backend: str, url: str) -> dict[str, pd.DataFrame]:
    """The raw rows, read with the plain driver rather than labormon's engine."""
    frames: dict[str, pd.DataFrame] = {}
    if backend == "sqlite":
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            for name, sql in RAW_SQL.items():
                frames[name] = pd.read_sql_query(sql, conn)
    else:
        conn = await asyncpg.connect(_asyncpg_dsn(url))
        try:
            for name, sql in RAW_SQL.items():
                rows = await conn.fetch(sql)
                columns = sql.split("SELECT ", 1)[1].split(" FROM", 1)[0].split(", ")
                frames[name] = pd.DataFrame([dict(r) for r in rows], columns=columns)
        finally:
            await conn.close()
    return frames


def _settings(url: str, tmp: Path, **report: Any) -> Settings:
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("LABORMON_") and not name.startswith("LABORMON_TEST"):
                mp.delenv(name)
        return load_settings(
            overrides={
                "database": {"url": url},
                "security": {"secret_key": SECRET, "secret_key_file": str(tmp / "secret.key")},
                # Mailed on schedule, without sign-off (tests/test_report_signoff.py).
                "report": {"sign_off": False} | report,
            }
        )


async def _build(backend: str, url: str, out: Path) -> YearRun:
    settings = _settings(
        url,
        out,
        recipients=["archive@yy-union.example", "City-Lead@YY-union.example"],
    )
    clock = FrozenClock(NOW)
    ctx = make_context(settings, clock=clock)
    other = make_context(settings, clock=clock)
    try:
        await load(ctx, DATA)
        options = options_from(settings)
        figures = {m: await collect_figures(ctx.db, m, options=options, now=NOW) for m in MONTHS}
        docs = {m: build_document(f) for m, f in figures.items()}
        html = {m: render(docs[m], "html").decode("utf-8") for m in RENDERED}
        csv_files = {m: render(docs[m], "csv") for m in MONTHS}

        # Two daemons at the scheduled time for January's report.
        scheduled = datetime(2025, 2, 1, 9, 0, tzinfo=CST)
        first = ReportService(ctx, holder="daemon-a")
        second = ReportService(other, holder="daemon-b")
        due = [
            first.due(scheduled - timedelta(seconds=1)),
            first.due(scheduled),
            first.due(scheduled + timedelta(days=3)),
            first.due(scheduled + timedelta(days=3, seconds=1)),
        ]
        clock.set(scheduled)
        runs = list(await asyncio.gather(first.run_due(), second.run_due()))
        clock.advance(minutes=30)
        again = await second.run_due()
        async with ctx.db.session() as session:
            documents = list(await session.scalars(select(Document).order_by(Document.id)))
            deliveries = list(await session.scalars(select(Delivery).order_by(Delivery.address)))
            job_runs = list(await session.scalars(select(JobRun).where(JobRun.job == JOB)))
        raw = await _raw(backend, url)
    finally:
        await ctx.close()
        await other.close()
    return YearRun(
        backend=backend,
        figures=figures,
        docs=docs,
        html=html,
        csv=csv_files,
        raw=raw,
        due=due,
        runs=runs,
        again=again,
        documents=documents,
        deliveries=deliveries,
        job_runs=job_runs,
        out=out,
        files={d.filename.rsplit(".", 1)[1]: d.data for d in documents},
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def year(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: SqliteTemplate,
) -> Iterator[YearRun]:
    """The simulated year loaded once per backend, its reports made once."""
    backend = str(request.param)
    out = tmp_path_factory.mktemp(f"report-{backend}")
    pg: PostgresTestDatabase | None = None
    if backend == "sqlite":
        url = sqlite_template.copy_to(out)
    else:
        pg = PostgresTestDatabase(f"report_{os.getpid()}")
        pg.reset()
        url = pg.url
    try:
        yield asyncio.run(_build(backend, url, out))
    finally:
        if pg is not None:
            pg.drop()


# --------------------------------------------------------------------------- expectations


def _instants(column: pd.Series) -> pd.Series:
    if column.dtype == object and column.map(lambda v: isinstance(v, str)).any():
        return pd.to_datetime(column, utc=True, format="ISO8601")
    return pd.to_datetime(column, utc=True)


def _micros(delta: pd.Timedelta) -> int:
    return int(delta // pd.Timedelta(microseconds=1))


class Expected:
    """The report's figures for one month, computed from the raw rows."""

    def __init__(self, raw: dict[str, pd.DataFrame], month: date) -> None:
        self.month = month
        p = raw["petitions"].copy()
        p["received"] = _instants(p["received_at"])
        p["closed"] = _instants(p["closed_at"])
        local = p["received"].dt.tz_convert(CST)
        p["ym"] = local.dt.strftime("%Y-%m")
        p["day"] = local.dt.date
        p["people"] = p["people_involved"].astype(int)
        p["collective"] = p["people"] >= 5
        self.p = p
        self.regions = raw["regions"].set_index("code")
        self.points = raw["points"].set_index("point_id")
        self.raw = raw
        self.start = datetime(month.year, month.month, 1, tzinfo=CST)
        nxt = add_months(month, 1)
        self.end = datetime(nxt.year, nxt.month, 1, tzinfo=CST)
        self.cur = self.ym(month)
        self.prev = self.ym(add_months(month, -1))
        self.ly = self.ym(add_months(month, -12))

    @staticmethod
    def ym(month: date) -> str:
        return f"{month:%Y-%m}"

    def rows(self, ym: str, **match: Any) -> pd.DataFrame:
        df = self.p[self.p["ym"] == ym]
        for column, value in match.items():
            df = df[df[column] == value] if value is not None else df[df[column].isna()]
        return df

    def count(self, ym: str, **match: Any) -> tuple[int, int]:
        df = self.rows(ym, **match)
        return len(df), int(df["people"].sum())

    @property
    def total(self) -> int:
        return self.count(self.cur)[0]

    def region_name(self, code: str) -> str:
        return str(self.regions.loc[code, "name"])

    def counties(self) -> list[str]:
        r = self.regions
        own = sorted(r[(r["tier"] == 3) & (r["parent_code"] == "430900")].index)
        window = self.p[
            (self.p["ym"] >= self.ym(add_months(self.month, -12))) & (self.p["ym"] <= self.cur)
        ]
        return own + sorted(set(window["region_code"]) - set(own))

    def yoy(self, cur: int, ly: int) -> str:
        """Year-on-year; "上年无数据" when nothing at all was stored a year before."""
        return "上年无数据" if self.count(self.ly)[0] == 0 else change(cur, ly)

    def compared_rows(
        self, column: str, keys: list[str], names: dict[str, str], collective: bool = False
    ) -> list[list[str]]:
        out = []
        total = self.total
        for key in [*keys, None]:
            match = {column: key} if key is not None else {}
            n, people = self.count(self.cur, **match)
            prev, ly = self.count(self.prev, **match)[0], self.count(self.ly, **match)[0]
            row = [names[key] if key is not None else "合计", str(n), share(n, total), str(people)]
            if collective:
                row.append(str(self.count(self.cur, collective=True, **match)[0]))
            row += [str(prev), change(n, prev), str(ly), self.yoy(n, ly)]
            out.append(row)
        return out

    def channel(self) -> list[list[str]]:
        return self.compared_rows("channel", list(CHANNELS), CHANNELS)

    def category(self) -> list[list[str]]:
        return self.compared_rows("category", list(CATEGORIES), CATEGORIES)

    def county(self) -> list[list[str]]:
        codes = self.counties()
        return self.compared_rows(
            "region_code", codes, {c: self.region_name(c) for c in codes}, collective=True
        )

    def over(self) -> list[list[str]]:
        out = []
        total = self.total
        over_rows = self.p[self.p["over_level"].notna() & (self.p["over_level"] != "")]
        for key in [*OVER, None]:

            def pick(ym: str, key: str | None = key) -> pd.DataFrame:
                df = over_rows[over_rows["ym"] == ym]
                return df if key is None else df[df["over_level"] == key]

            n, people = len(pick(self.cur)), int(pick(self.cur)["people"].sum())
            prev, ly = len(pick(self.prev)), len(pick(self.ly))
            out.append(
                [
                    OVER[key] if key else "越级访合计",
                    str(n),
                    share(n, total),
                    str(people),
                    str(prev),
                    change(n, prev),
                    str(ly),
                    self.yoy(n, ly),
                ]
            )
        return out

    def key(self) -> list[list[str]]:
        over = self.p[self.p["over_level"].notna() & (self.p["over_level"] != "")]
        rows = []
        for name, fn in (
            ("信访件数（件）", lambda ym: self.count(ym)[0]),
            ("涉及人次", lambda ym: self.count(ym)[1]),
            ("集体访件数（件）", lambda ym: self.count(ym, collective=True)[0]),
            ("集体访人次", lambda ym: self.count(ym, collective=True)[1]),
            ("越级访件数（件）", lambda ym: int((over["ym"] == ym).sum())),
        ):
            cur, prev, ly = fn(self.cur), fn(self.prev), fn(self.ly)
            rows.append([name, str(cur), str(prev), change(cur, prev), str(ly), self.yoy(cur, ly)])
        return rows

    def enterprises(self, top: int = 10) -> tuple[list[list[str]], int, int]:
        df = self.rows(self.cur).copy()
        names = df["enterprise_name"].fillna("").astype(str).str.strip()
        has_point = df["point_id"].notna() & (df["point_id"] != "")
        df["ekey"] = ("point:" + df["point_id"].astype(str)).where(has_point, "name:" + names)
        df = df[has_point | (names != "")]
        unattributed = len(self.rows(self.cur)) - len(df)
        found = []
        for ekey, g in df.groupby("ekey"):
            point_id = g["point_id"].iloc[0] if ekey.startswith("point:") else None
            if point_id is not None and point_id in self.points.index:
                name = str(self.points.loc[point_id, "name"])
                region = str(self.points.loc[point_id, "region_code"])
                industry = INDUSTRY[str(self.points.loc[point_id, "industry"])]
            else:
                name = ekey.split(":", 1)[1]
                counts = g["region_code"].value_counts()
                region = sorted(counts[counts == counts.max()].index)[0]
                industry = "—"
            found.append(
                (
                    len(g),
                    int(g["people"].sum()),
                    name,
                    ekey,
                    region,
                    industry,
                    int(g["collective"].sum()),
                )
            )
        found.sort(key=lambda e: (-e[0], -e[1], e[2], e[3]))
        rows = [
            [str(i), e[2], self.region_name(e[4]), e[5], str(e[0]), str(e[1]), str(e[6])]
            for i, e in enumerate(found[:top], 1)
        ]
        return rows, len(found), unattributed

    def collective_cases(self, limit: int = 20) -> list[list[str]]:
        df = self.rows(self.cur)
        df = df[df["collective"]].sort_values(
            ["people", "day", "petition_id"], ascending=[False, True, True]
        )
        out = []
        for i, (_, r) in enumerate(df.head(limit).iterrows(), 1):
            point_id, ename = r["point_id"], r["enterprise_name"]
            if isinstance(point_id, str) and point_id in self.points.index:
                enterprise = str(self.points.loc[point_id, "name"])
            elif isinstance(ename, str) and ename.strip():
                enterprise = ename.strip()
            else:
                enterprise = "未注明企业"
            closed = not pd.isna(r["closed"]) and r["closed"] < pd.Timestamp(self.end)
            out.append(
                [
                    str(i),
                    f"{r['day'].month}月{r['day'].day}日",
                    self.region_name(r["region_code"]),
                    enterprise,
                    CATEGORIES[r["category"]],
                    CHANNELS[r["channel"]],
                    str(r["people"]),
                    OVER[r["over_level"]]
                    if isinstance(r["over_level"], str) and r["over_level"]
                    else "否",
                    "是" if closed else "否",
                ]
            )
        return out

    def handling(self) -> list[str]:
        p = self.p
        start, end = pd.Timestamp(self.start), pd.Timestamp(self.end)
        closed = p[p["closed"].notna() & (p["closed"] >= start) & (p["closed"] < end)]
        micros = [_micros(c - r) for c, r in zip(closed["closed"], closed["received"], strict=True)]
        avg = d1(Fraction(sum(micros), len(micros) * 86_400_000_000)) if micros else None
        month = self.rows(self.cur)
        done = int((month["closed"].notna() & (month["closed"] < end)).sum())
        return [str(len(closed)), opt(avg), str(len(month)), str(done), share(done, len(month))]

    def alerts(self) -> tuple[list[list[str]], list[list[str]]]:
        a = self.raw["alerts"].copy()
        for column in ("created_at", "acknowledged_at", "resolved_at"):
            a[column] = _instants(a[column])
        start, end = pd.Timestamp(self.start), pd.Timestamp(self.end)
        rows = []
        totals = [0, 0, 0]
        for level, label in ALERT_LEVELS.items():
            g = a[a["level"] == level]
            opened = int(((g["created_at"] >= start) & (g["created_at"] < end)).sum())
            resolved = int(((g["resolved_at"] >= start) & (g["resolved_at"] < end)).sum())
            still = int(
                (
                    (g["created_at"] < end) & (g["resolved_at"].isna() | (g["resolved_at"] >= end))
                ).sum()
            )
            rows.append([label, str(opened), str(resolved), str(still)])
            totals = [totals[0] + opened, totals[1] + resolved, totals[2] + still]
        rows.append(["合计", *map(str, totals)])
        tiers = dict(zip(self.raw["accounts"]["id"], self.raw["accounts"]["tier"], strict=True))
        acked = a[(a["acknowledged_at"] >= start) & (a["acknowledged_at"] < end)]
        waits: dict[str, list[int]] = {}
        for _, r in acked.iterrows():
            tier = tiers.get(r["acknowledged_by"])
            label = {1: "省级", 2: "市级", 3: "区县级"}.get(int(tier)) if tier is not None else None
            waits.setdefault(label or "其他（非账号确认）", []).append(
                _micros(r["acknowledged_at"] - r["created_at"])
            )
        ack = []
        shown = ["区县级", "市级", "省级"] + (
            ["其他（非账号确认）"] if "其他（非账号确认）" in waits else []
        )
        every: list[int] = []
        for label in shown:
            values = waits.get(label, [])
            every += values
            ack.append(self._ack_row(label, values))
        ack.append(self._ack_row("合计", every))
        return rows, ack

    @staticmethod
    def _ack_row(label: str, values: list[int]) -> list[str]:
        hour = 3_600_000_000
        avg = d1(Fraction(sum(values), len(values) * hour)) if values else None
        longest = d1(Fraction(max(values), hour)) if values else None
        return [label, str(len(values)), opt(avg), opt(longest)]

    def risk(self) -> tuple[list[list[str]], list[list[str]]]:
        r = self.raw["risk"].copy()
        r["as_of"] = _instants(r["as_of"])
        r["scored_at"] = _instants(r["scored_at"])
        r = r[(r["entity_type"] == "point") & (r["as_of"] <= pd.Timestamp(self.end))]
        latest = (
            r.sort_values(["entity_id", "as_of", "scored_at", "id"]).groupby("entity_id").tail(1)
        )
        latest = latest[latest["entity_id"].isin(self.points.index)]
        registered = len(self.points)
        rows = []
        for level, label in RISK.items():
            n = int((latest["level"] == level).sum())
            rows.append([label, str(n), share(n, registered)])
        none = int(latest["level"].isna().sum())
        rows.append(["无预警", str(none), share(none, registered)])
        unscored = registered - len(latest)
        rows.append(["未评分", str(unscored), share(unscored, registered)])
        rows.append(["合计", str(registered), share(registered, registered)])
        order = {k: i for i, k in enumerate(RISK)}
        flagged = latest[latest["level"].notna()].copy()
        flagged["d"] = flagged["score"].map(lambda s: d1(Fraction(str(s))))
        flagged["o"] = flagged["level"].map(order)
        flagged["neg"] = -flagged["d"]
        flagged = flagged.sort_values(["o", "neg", "entity_id"])
        points = []
        for i, (_, f) in enumerate(flagged.head(10).iterrows(), 1):
            factors = f["factors"]
            factors = json.loads(factors) if isinstance(factors, str) else factors
            point = self.points.loc[f["entity_id"]]
            points.append(
                [
                    str(i),
                    str(point["name"]),
                    self.region_name(point["region_code"]),
                    INDUSTRY[point["industry"]],
                    str(f["d"].quantize(Decimal(1), rounding=ROUND_HALF_UP)),
                    RISK[f["level"]].split("（")[0],
                    factors[0]["text"] if factors else "—",
                ]
            )
        return rows, points

    def trend(self) -> list[list[str]]:
        out = []
        for i in range(13):
            m = add_months(self.month, i - 12)
            ym = self.ym(m)
            n, people = self.count(ym)
            row = [
                f"{m.year}年{m.month}月",
                str(n),
                str(people),
                str(self.count(ym, collective=True)[0]),
            ]
            row += [str(self.count(ym, category=c)[0]) for c in CATEGORIES]
            out.append(row)
        return out

    def tables(self) -> dict[str, list[list[str]]]:
        """Expected body rows (without the header) of every table of the report, by id."""
        enterprises, _, _ = self.enterprises()
        alerts, acks = self.alerts()
        risk, risk_points = self.risk()
        return {
            "t-key": self.key(),
            "t-channel": self.channel(),
            "t-category": self.category(),
            "t-county": self.county(),
            "t-over": self.over(),
            "t-collective": self.collective_cases() or [["本月未发生集体访。"]],
            "t-enterprise": enterprises or [["本月信访未涉及具体企业。"]],
            "t-handling": [self.handling()],
            "t-alerts": alerts,
            "t-ack": acks,
            "t-risk": risk,
            "t-risk-points": risk_points or [["截至月末无处于预警等级的监测点。"]],
            "t-trend": self.trend(),
        }


# --------------------------------------------------------------------------- figures


@pytest.mark.parametrize("month", MONTHS, ids=[f"{m:%Y-%m}" for m in MONTHS])
def test_every_table_of_the_report_equals_the_independent_computation(
    year: YearRun, month: date
) -> None:
    expected = Expected(year.raw, month).tables()
    doc = year.docs[month]
    produced = {t.id: t.rows or [[t.empty_text]] for t in doc.tables()}
    assert list(produced) == list(expected)
    for table_id, rows in expected.items():
        assert produced[table_id] == rows, table_id
    if month in year.html:
        rendered = html_tables(year.html[month])
        assert list(rendered) == list(expected)
        for table_id, rows in expected.items():
            assert rendered[table_id][1:] == rows, table_id


def test_the_figures_object_holds_the_same_counts(year: YearRun) -> None:
    for month in MONTHS:
        e = Expected(year.raw, month)
        f = year.figures[month]
        assert (f.totals.current.petitions, f.totals.current.people) == e.count(e.cur)
        assert (f.totals.previous.petitions, f.totals.previous.people) == e.count(e.prev)
        assert (f.totals.last_year.petitions, f.totals.last_year.people) == e.count(e.ly)
        assert f.collective.current.petitions == e.count(e.cur, collective=True)[0]
        for row in f.by_channel:
            assert (row.current.petitions, row.current.people) == e.count(e.cur, channel=row.key)
        for row in f.by_county:
            assert row.previous.petitions == e.count(e.prev, region_code=row.key)[0]
        _, count, unattributed = e.enterprises()
        assert (f.enterprise_count, f.without_enterprise) == (count, unattributed)
        assert f.trend[-1].month == month
        assert f.trend[0].month == add_months(month, -12)


def test_year_boundary_month_on_month_and_year_on_year(year: YearRun) -> None:
    """January 2025 against December 2024 and January 2024; January 2024 against an
    empty January 2023; August 2024 against an empty July."""
    jan = year.figures[JAN25]
    assert jan.previous_month == date(2024, 12, 1)
    assert jan.last_year_month == date(2024, 1, 1)
    assert jan.totals.previous == year.figures[date(2024, 12, 1)].totals.current
    assert jan.totals.last_year == year.figures[JAN24].totals.current
    # Both comparisons are real rises on this data, shown with an arrow and a percentage.
    key = {r[0]: r for r in html_tables(year.html[JAN25])["t-key"]}
    cur, prev, ly = (
        jan.totals.current.petitions,
        jan.totals.previous.petitions,
        jan.totals.last_year.petitions,
    )
    assert key["信访件数（件）"][1:] == [
        str(cur),
        str(prev),
        change(cur, prev),
        str(ly),
        change(cur, ly),
    ]
    assert key["信访件数（件）"][3].startswith("↑")
    assert key["信访件数（件）"][5].startswith("↑")
    # No data a year before January 2024: every year-on-year cell says so (not "new").
    jan24 = html_tables(year.html[JAN24])["t-category"]
    assert all(row[-1] == "上年无数据" for row in jan24[1:])
    assert year.figures[JAN24].totals.last_year.petitions == 0
    # After the empty July, August's month-on-month is "new".
    aug = html_tables(year.html[AUG24])["t-key"]
    assert aug[1][3] == "↑新增"
    assert aug[1][2] == "0"
    # Petitions at local midnight belong to the month of their China-time day, whether
    # the sender wrote the time in UTC or in China time.
    e = Expected(year.raw, JAN25)
    received = e.p.set_index("petition_id")["received"]
    month_of = e.p.set_index("petition_id")["ym"]
    edges = {
        pd.Timestamp("2025-01-31T15:59:00Z"): "2025-01",
        pd.Timestamp("2025-01-31T16:01:00Z"): "2025-02",
        pd.Timestamp("2024-12-31T15:50:00Z"): "2024-12",
        pd.Timestamp("2024-12-31T16:05:00Z"): "2025-01",
    }
    for instant, ym in edges.items():
        (pid,) = received[received == instant].index
        assert month_of[pid] == ym


def test_a_month_without_petitions_says_so(year: YearRun) -> None:
    f = year.figures[EMPTY_MONTH]
    assert f.empty
    assert f.totals.current.petitions == 0
    assert f.totals.previous.petitions > 0
    text = html_text(year.html[EMPTY_MONTH])
    assert "2024年7月全市未受理职工信访事项" in text
    assert "需核实各区县（市）工会信访数据是否按时报送" in text
    assert "本月未发生集体访。" in text
    key = html_tables(year.html[EMPTY_MONTH])["t-key"]
    assert key[1][1] == "0"
    assert key[1][3] == "↓100.0%"


def test_the_csv_holds_the_same_figures(year: YearRun) -> None:
    for month in MONTHS:
        e = Expected(year.raw, month)
        raw = year.csv[month]
        assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens it as UTF-8
        rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
        assert all(r["month"] == f"{month:%Y-%m}" for r in rows)
        value = {(r["section"], r["key"], r["metric"]): r["value"] for r in rows}
        for section, column, keys in (
            ("channel", "channel", list(CHANNELS)),
            ("category", "category", list(CATEGORIES)),
            ("county", "region_code", e.counties()),
        ):
            for k in keys:
                n, people = e.count(e.cur, **{column: k})
                prev, ly = e.count(e.prev, **{column: k})[0], e.count(e.ly, **{column: k})[0]
                assert value[(section, k, "petitions")] == str(n)
                assert value[(section, k, "people")] == str(people)
                assert value[(section, k, "petitions_prev")] == str(prev)
                assert value[(section, k, "petitions_last_year")] == str(ly)
                assert value[(section, k, "petitions_mom_pct")] == change_csv(n, prev)
                assert value[(section, k, "petitions_yoy_pct")] == change_csv(n, ly)
                assert value[(section, k, "share_pct")] == share(n, e.total).rstrip("%").replace(
                    "—", ""
                )
        n, people = e.count(e.cur)
        assert value[("summary", "total", "petitions")] == str(n)
        assert value[("summary", "total", "people")] == str(people)
        assert value[("summary", "collective", "petitions")] == str(
            e.count(e.cur, collective=True)[0]
        )
        closed, avg, month_n, done, _rate = e.handling()
        assert value[("handling", "handling", "closed")] == closed
        assert value[("handling", "handling", "month_petitions")] == month_n
        assert value[("handling", "handling", "avg_days")] == avg.replace("—", "")
        assert value[("handling", "handling", "closed_of_month")] == done
        alerts, acks = e.alerts()
        for level, row in zip(ALERT_LEVELS, alerts, strict=False):
            assert [
                value[("alerts", level, m)] for m in ("opened", "resolved", "open_at_end")
            ] == row[1:]
        assert value[("acknowledgement", "total", "acknowledged")] == acks[-1][1]
        assert value[("acknowledgement", "total", "avg_hours")] == acks[-1][2].replace("—", "")
        risk, _ = e.risk()
        for level, row in zip(RISK, risk, strict=False):
            assert value[("risk_level", level, "points")] == row[1]
        trend = e.trend()
        for i in range(13):
            m = add_months(month, i - 12)
            assert value[("trend", f"{m:%Y-%m}", "petitions")] == trend[i][1]
            assert value[("trend", f"{m:%Y-%m}", "category_wage_arrears")] == trend[i][4]


def test_the_written_analysis_states_the_figures(year: YearRun) -> None:
    e = Expected(year.raw, JAN25)
    n, people = e.count(e.cur)
    prev = e.count(e.prev)[0]
    year.figures[JAN25]
    text = html_text(year.html[JAN25])
    assert f"2025年1月全市共受理职工信访{n}件、涉及{people}人次" in text
    assert f"件数与上月（{prev}件）相比上升" in text
    # January 2025 holds the Spring Festival (29 January): the season is named.
    assert "2025年春节为1月29日。本月正值春节" in text
    top = max(CATEGORIES, key=lambda c: (e.count(e.cur, category=c)[0], c == "wage_arrears"))
    assert f"{CATEGORIES[top]}类{e.count(e.cur, category=top)[0]}件" in text
    assert "下一步工作建议" in text
    assert "综合分析" in text
    # Against months without data the text says so instead of "rose from zero".
    assert "上月、上年同月均无信访数据，不作比较" in html_text(year.html[AUG24])
    assert "上年同月无信访数据，暂不作同比分析" in html_text(year.html[JAN24])
    # Notes define what the figures mean, including the tier of an acknowledgement.
    assert "确认层级指确认人所属层级" in text
    assert "四舍五入" in text


async def test_the_running_month_is_partial_and_a_future_month_refused(
    ctx: Context, clock: FrozenClock
) -> None:
    """Mid-month (the clock is at 15 January 2025, 09:00 China time) the report covers
    the days so far and says so; February does not exist yet."""
    options = options_from(ctx.settings)
    f = await collect_figures(ctx.db, JAN25, options=options, now=clock.now())
    assert not f.complete
    assert f.last_day == date(2025, 1, 15)
    assert f.empty
    lead = build_document(f).blocks[0]
    assert "本期数据截至2025年1月15日，月度尚未结束" in getattr(lead, "text", "")
    with pytest.raises(ReportError, match="month 2025-02 is in the future"):
        await collect_figures(ctx.db, date(2025, 2, 1), options=options, now=clock.now())
    # One second before local midnight of 1 February, February is still the future.
    midnight = datetime(2025, 2, 1, tzinfo=CST)
    with pytest.raises(ReportError, match="in the future"):
        await collect_figures(
            ctx.db, date(2025, 2, 1), options=options, now=midnight - timedelta(seconds=1)
        )
    assert (await collect_figures(ctx.db, date(2025, 2, 1), options=options, now=midnight)).empty


# --------------------------------------------------------------------------- delivery


def test_exactly_one_daemon_makes_and_queues_the_report(year: YearRun) -> None:
    assert year.due == [None, JAN25, JAN25, None]
    assert sorted(r.status for r in year.runs) == ["done", "taken"]
    assert year.again is None  # already done: nothing is sent twice
    assert [(j.key, j.status) for j in year.job_runs] == [("2025-01", "done")]
    done = next(r for r in year.runs if r.status == "done")
    assert year.job_runs[0].holder == ("daemon-a" if year.runs[0] is done else "daemon-b")
    assert sorted(d.filename for d in year.documents) == [
        "益阳市2025年1月职工信访定量分析月报.docx",
        "益阳市2025年1月职工信访定量分析月报.pdf",
    ]
    assert {d.kind for d in year.documents} == {"monthly_report"}
    assert {d.key for d in year.documents} == {"2025-01"}
    assert year.files["pdf"].startswith(b"%PDF-")
    assert year.files["docx"].startswith(b"PK")
    assert sorted(done.document_ids) == sorted(int(d.id) for d in year.documents)


def test_report_emails_are_well_formed_outbox_rows(year: YearRun) -> None:
    """City and province leaders with an email (active, once per address) and the
    configured addresses get one pending email each, the files attached by id."""
    addresses = sorted(d.address.lower() for d in year.deliveries)
    assert addresses == [
        "analyst@yy-union.example",
        "archive@yy-union.example",
        "city-lead@yy-union.example",
        "prov-lead@hn-union.example",
    ]
    ids = {int(d.id) for d in year.documents}
    scheduled = datetime(2025, 2, 1, 9, 0, tzinfo=CST)
    for d in year.deliveries:
        assert d.channel == "email"
        assert d.purpose == "report"
        assert d.status == "pending"
        assert d.alert_id is None
        assert d.attempts == 0
        assert len(d.id) == 36
        assert d.id.count("-") == 4
        assert d.next_attempt_at == scheduled.astimezone(UTC)
        assert d.subject == "【月报】益阳市2025年1月职工信访定量分析月报"
        assert set(d.body) == {"text", "html", "attachments"}
        assert {a["document_id"] for a in d.body["attachments"]} == ids
        f = year.figures[JAN25]
        assert f"{f.totals.current.petitions}件" in d.body["text"]
        assert "各位领导" in d.body["text"]
        assert "<table" in d.body["html"]
    assert len({d.id for d in year.deliveries}) == len(year.deliveries)
    recipients = {d.recipient for d in year.deliveries}
    assert "city-gone" not in recipients
    assert "city-nomail" not in recipients
    assert "heshan-lead" not in recipients
    assert "report.recipients" in recipients


def test_no_personal_data_in_report_csv_or_email(year: YearRun) -> None:
    pdf = year.out / "check.pdf"
    pdf.write_bytes(year.files["pdf"])
    pdf_text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, check=True, text=True
    ).stdout
    outputs = {
        "html": year.html[JAN25],
        "csv": year.csv[JAN25].decode("utf-8-sig"),
        "pdf": pdf_text,
        "docx": docx_text(year.files["docx"]),
        "email": json.dumps([[d.subject, d.body] for d in year.deliveries], ensure_ascii=False),
    }
    secrets = [*PETITIONER_NAMES, *PETITIONER_PHONES, "inf-001", "heshan-lead", "city-duty"]
    for name, text in outputs.items():
        for secret in secrets:
            assert secret not in text, (name, secret)


# --------------------------------------------------------------------------- the files


def test_pdf_renders_to_pages_with_embedded_chinese_fonts(year: YearRun) -> None:
    pdf = year.out / "report.pdf"
    pdf.write_bytes(year.files["pdf"])
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, check=True, text=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert 5 <= pages <= 15
    assert "Title:           益阳市2025年1月职工信访定量分析月报" in info
    # Every font embedded, and only the Noto CJK faces: no fallback font took a glyph.
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, check=True, text=True)
    lines = fonts.stdout.splitlines()[2:]
    names = {line.split()[0].split("+", 1)[1] for line in lines}
    assert names <= {
        "Noto-Serif-CJK-SC",
        "Noto-Serif-CJK-SC-Bold",
        "Noto-Sans-CJK-SC",
        "Noto-Sans-CJK-SC-Bold",
    }, names
    assert {"Noto-Serif-CJK-SC", "Noto-Sans-CJK-SC-Bold"} <= names
    assert all(line.split()[-5] == "yes" for line in lines)  # emb
    assert all(line.split()[-3] == "yes" for line in lines)  # uni: text maps back to Unicode
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True, text=True
    ).stdout
    assert "\ufffd" not in text
    flat = "".join(text.split())  # layout spacing and line breaks are not content
    doc = year.docs[JAN25]
    for phrase in [doc.masthead, doc.title, "统计口径说明", *(t.caption for t in doc.tables())]:
        assert "".join(phrase.split()) in flat, phrase
    f = year.figures[JAN25]
    assert f"{f.totals.current.petitions}件、涉及{f.totals.current.people}人次" in flat
    # Pages as pictures, as a reader sees them: each has ink on it.
    prefix = year.out / "page"
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(prefix)], check=True)
    images = sorted(year.out.glob("page-*.png"))
    assert len(images) == pages
    for image in images:
        with Image.open(image) as page:
            grey = page.convert("L")
            dark = sum(grey.histogram()[:128])
            assert dark > 100, image.name  # a blank page has none
    # The first page carries the red masthead.
    with Image.open(images[0]) as first:
        rgb = np.asarray(first.convert("RGB")).astype(int)
        red = (rgb[..., 0] > 150) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
        assert red.sum() > 200


def test_docx_opens_and_holds_the_same_tables(year: YearRun) -> None:
    tables = docx_tables(year.files["docx"])
    doc = year.docs[JAN25]
    html = html_tables(year.html[JAN25])
    expected = Expected(year.raw, JAN25).tables()
    assert len(tables) == len(doc.tables()) == len(expected)
    for table, (table_id, rows) in zip(tables, expected.items(), strict=True):
        assert table[0] == html[table_id][0], table_id  # the header
        assert table[1:] == rows, table_id
    text = docx_text(year.files["docx"])
    assert doc.masthead in text
    assert doc.title in text
    assert "统计口径说明" in text
    for caption in (t.caption for t in doc.tables()):
        assert caption in text
    assert "PAGE" in _docx_xml(year.files["docx"], "word/footer1.xml")


def _docx_xml(data: bytes, name: str) -> str:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name).decode("utf-8")


def test_a_chart_glyph_missing_from_the_font_is_an_error(year: YearRun) -> None:
    """matplotlib would draw a box; the report refuses instead."""
    f = year.figures[JAN25]
    odd = replace(f, by_county=[replace(f.by_county[0], label="县\U0001f3ed"), *f.by_county[1:]])
    with pytest.raises(ReportError, match="font lacks"):
        county_chart(odd, "png")
    assert county_chart(f, "png").startswith(b"\x89PNG")


# --------------------------------------------------------------------------- command line


def _cli(*args: str, db: str | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABORMON_")}
    env["LABORMON_SECRET_KEY"] = SECRET
    command = [sys.executable, "-m", "monitor", *args]
    if db:
        command += ["--db", db]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cli_empty_store_gives_a_report_that_says_so(db_url: str, tmp_path: Path) -> None:
    out, figures = tmp_path / "empty.pdf", tmp_path / "empty.csv"
    result = _cli(
        "report",
        "monthly",
        "--month",
        "2025-01",
        "--out",
        str(out),
        "--csv",
        str(figures),
        db=db_url,
    )
    assert result.returncode == 0, result.stderr
    assert "0 petitions" in result.stderr
    text = subprocess.run(
        ["pdftotext", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "2025年1月全市未受理职工信访事项" in text
    assert "尚无风险评分" in text.replace("\n", "")
    rows = list(csv.DictReader(io.StringIO(figures.read_text(encoding="utf-8-sig"))))
    assert {r["value"] for r in rows if r["metric"] == "petitions"} == {"0"}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cli_refuses_a_future_month_and_bad_input(db_url: str, tmp_path: Path) -> None:
    future = _cli(
        "report", "monthly", "--month", "2999-01", "--out", str(tmp_path / "r.html"), db=db_url
    )
    assert future.returncode == 2
    assert future.stderr.strip().count("\n") == 0
    assert "month 2999-01 is in the future" in future.stderr
    assert not (tmp_path / "r.html").exists()
    bad = _cli("report", "monthly", "--month", "2025-13", "--out", str(tmp_path / "r.html"))
    assert bad.returncode == 2
    assert "not a month: use YYYY-MM" in bad.stderr
    ext = _cli("report", "monthly", "--month", "2025-01", "--out", str(tmp_path / "r.txt"))
    assert ext.returncode == 2
    assert "must end in .html, .pdf, .docx or .csv" in ext.stderr


# --------------------------------------------------------------------------- the service


def _report_settings(settings: Settings, **report: Any) -> Settings:
    return settings.model_copy(
        update={
            "report": settings.report.model_copy(
                update={"attach": ["docx"], "sign_off": False} | report
            )
        }
    )


async def test_a_failed_run_is_retried_and_a_stale_one_taken_over(
    ctx: Context, clock: FrozenClock
) -> None:
    settings = _report_settings(ctx.settings)
    service_ctx = make_context(settings, clock=clock, db=ctx.db)
    await ctx.accounts.add(
        kind="leader", account_id="city-1", region_code="430900", email="c@x.example"
    )
    service = ReportService(service_ctx, holder="me")
    clock.set(datetime(2025, 2, 1, 9, 0, tzinfo=CST))

    # March is in the future on 1 February: the run fails, nothing is stored or sent.
    failed = await service.produce(date(2025, 3, 1))
    assert failed.status == "failed"
    assert "in the future" in (failed.error or "")
    async with ctx.db.session() as session:
        run = await session.scalar(select(JobRun).where(JobRun.key == "2025-03"))
        assert run is not None
        assert run.status == "failed"
        assert "future" in run.details["error"]
        assert await session.scalar(select(Document.id)) is None
        assert await session.scalar(select(Delivery.id)) is None

    # A month later the failed run is claimed again and completes.
    clock.set(datetime(2025, 4, 1, 9, 0, tzinfo=CST))
    retried = await service.produce(date(2025, 3, 1))
    assert retried.status == "done"
    assert len(retried.delivery_ids) == 1

    # A run another daemon started a minute ago is left alone; after `stale_after`
    # (it crashed) it is taken over.
    async with ctx.db.session() as session:
        session.add(
            JobRun(
                job=JOB,
                key="2025-02",
                holder="crashed",
                started_at=clock.now() - timedelta(minutes=1),
                status="running",
            )
        )
    assert (await service.produce(date(2025, 2, 1))).status == "taken"
    clock.advance(hours=1)
    assert (await service.produce(date(2025, 2, 1))).status == "done"
    async with ctx.db.session() as session:
        runs = {r.key: (r.status, r.holder) for r in await session.scalars(select(JobRun))}
        documents = list(await session.scalars(select(Document.key)))
    assert runs == {"2025-03": ("done", "me"), "2025-02": ("done", "me")}
    assert sorted(documents) == ["2025-02", "2025-03"]
    metrics = service_ctx.metrics.reports
    assert metrics.labels("done")._value.get() == 2
    assert metrics.labels("failed")._value.get() == 1


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_daemon_schedules_and_sends_the_report(ctx: Context, clock: FrozenClock) -> None:
    from monitor import bus
    from monitor.daemon import SERVICES, Daemon

    assert "report" in SERVICES
    settings = _report_settings(ctx.settings)
    clock.set(datetime(2025, 2, 1, 9, 5, tzinfo=CST))
    daemon_ctx = make_context(settings, clock=clock)
    await ctx.accounts.add(
        kind="leader", account_id="prov-1", region_code="430000", email="p@x.example"
    )
    daemon = Daemon(daemon_ctx, only=["report"])
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        assert await daemon_ctx.bus.wait(bus.DELIVERIES, timeout=60)
        job = daemon.scheduler.get_job("monthly_report")
        assert job is not None
        fire = job.next_run_time
        assert (fire.day, fire.hour, fire.minute, str(fire.tzinfo)) == (1, 9, 0, "Asia/Shanghai")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await daemon_ctx.close()
    async with ctx.db.session() as session:
        deliveries = list(await session.scalars(select(Delivery)))
        run = await session.scalar(select(JobRun).where(JobRun.job == JOB))
    assert [d.address for d in deliveries] == ["p@x.example"]
    assert run is not None
    assert run.key == "2025-01"
    assert run.status == "done"
    assert daemon.health()["report"]["last"] == {"month": "2025-01", "status": "done"}
