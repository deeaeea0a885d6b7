"""How long the monthly report takes on 100,000 petitions, beside the bare SQL queries.

    python bench/report_bench.py                      # SQLite in var/bench-report/
    python bench/report_bench.py --pg postgresql://postgres@127.0.0.1:5432/labormon_bench

The data set: 2,800 monitoring points and 100,000 petitions over 36 months (2022-2024),
written as `points.csv` / `petitions.csv` with `bench/gen_dataset.py`'s vocabulary plus
over-level petitions and closing times, loaded through `labormon import`'s importer;
then a monthly risk score per point for 2024 and 600 alerts, so that every query of
the report has rows to read. The
report is for the last month of the data (2024-12); the baseline is the same SQL
statements the report runs, executed alone (no assembly, no writing, no rendering).
Each figure is the median of `--repeat` (5) runs. The target is under 10 s for figures,
HTML and PDF together.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select

from bench.gen_dataset import CHANNELS, COUNTIES, INDUSTRIES, SUMMARIES
from ingest.files import FileImporter
from monitor.clock import FrozenClock, add_months
from monitor.config import load_settings
from monitor.context import Context
from monitor.daemon import make_context
from monitor.models import Alert, MonitoringPoint, Petition, RiskScore
from monitor.report import build_document, collect_figures, options_from, render
from monitor.report import figures as F

CST = ZoneInfo("Asia/Shanghai")
MONTH = date(2024, 12, 1)
NOW = datetime(2025, 1, 15, 9, 0, tzinfo=CST).astimezone(UTC)
POINTS, PETITIONS = 2800, 100_000
FIRST = date(2022, 1, 1)
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
T = TypeVar("T")


async def timed(fn: Callable[[], Awaitable[T]], repeat: int) -> tuple[float, T]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - start)
    assert result is not None
    return statistics.median(times), result


def write_data(out: Path, seed: int = 7) -> None:
    """points.csv and petitions.csv: 100,000 petitions spread over 2022-2024."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    meta = []
    with (out / "points.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["point_id", "name", "region_code", "industry", "headcount"])
        for i in range(POINTS):
            county = rng.choice(COUNTIES)
            meta.append((f"P{i:06d}", county))
            w.writerow([f"P{i:06d}", f"益阳第{i}号企业", county, rng.choice(INDUSTRIES), 300])
    days = (date(2025, 1, 1) - FIRST).days
    with (out / "petitions.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "petition_id", "received_at", "channel", "region_code", "point_id",
                "enterprise_name", "category", "people_involved", "summary",
                "petitioner_name", "petitioner_phone", "over_level", "closed_at",
            ]
        )  # fmt: skip
        for i in range(PETITIONS):
            point_id, county = rng.choice(meta)
            category = rng.choice(list(SUMMARIES))
            day = FIRST + timedelta(days=rng.randrange(days))
            when = datetime.combine(day, datetime.min.time(), CST)
            when += timedelta(minutes=rng.randrange(8 * 60, 20 * 60))
            people = rng.choice([1, 1, 1, 2, 3, 5, 8, 12, 30])
            closed = when + timedelta(hours=rng.randrange(12, 40 * 24))
            w.writerow(
                [
                    f"Q{i:07d}", when.isoformat(), rng.choice(CHANNELS), county,
                    point_id if rng.random() < 0.85 else "",
                    "" if rng.random() < 0.85 else f"益阳劳务{i % 50}公司",
                    category if rng.random() < 0.8 else "", people,
                    SUMMARIES[category].format(n=people, m=rng.randint(1, 6)),
                    "张某", f"139{rng.randrange(10**8):08d}",
                    rng.choice(["", "", "", "", "", "", "", "", "city", "province"]),
                    closed.isoformat() if closed < NOW and rng.random() < 0.7 else "",
                ]
            )  # fmt: skip


def timed_sync(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    assert result is not None
    return statistics.median(times), result


async def load(ctx: Context, work: Path) -> int:
    """Load the data set unless the database already holds it."""
    async with ctx.db.session() as session:
        have = int(await session.scalar(select(func.count()).select_from(Petition)) or 0)
    if have >= 100_000:
        return have
    data = work / "data"
    if not (data / "petitions.csv").exists():
        write_data(data)
    importer = FileImporter(ctx.store, batch_size=5000, zone=CST)
    started = time.perf_counter()
    await importer.run(data / "points.csv", "point")
    report = await importer.run(data / "petitions.csv", "petition")
    print(
        f"loaded {report.kinds['petition'].stored} petitions in "
        f"{time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    rng = random.Random(7)
    async with ctx.db.session() as session:
        query = select(MonitoringPoint.point_id, MonitoringPoint.region_code)
        points = list(await session.execute(query))
    levels = [None] * 6 + ["IV", "IV", "III", "II", "I"]
    scores = []
    for point_id, region in points:
        for m in range(12):
            as_of = datetime.combine(add_months(date(2024, 1, 1), m + 1), datetime.min.time(), CST)
            level = rng.choice(levels)
            scores.append(
                {
                    "entity_type": "point",
                    "entity_id": point_id,
                    "region_code": region,
                    "score": rng.uniform(10, 95),
                    "level": level,
                    "factors": [{"code": "w", "text": "工资发放推迟", "weight": 1}] * bool(level),
                    "as_of": as_of.astimezone(UTC),
                    "scored_at": (as_of + timedelta(hours=2)).astimezone(UTC),
                }
            )
    alerts = []
    for i in range(600):
        created = datetime(2024, 6, 1, tzinfo=CST) + timedelta(hours=rng.randrange(200 * 24))
        acked = created + timedelta(minutes=rng.randrange(5, 3000))
        alerts.append(
            {
                "dedup_key": f"bench:{i}",
                "kind": "event",
                "level": rng.choice(["I", "II", "III", "IV"]),
                "status": "acknowledged",
                "region_code": points[i % len(points)][1],
                "title": "bench",
                "created_at": created.astimezone(UTC),
                "updated_at": created.astimezone(UTC),
                "acknowledged_at": acked.astimezone(UTC),
                "acknowledged_by": "operator",
                "tier_reached": 3,
                "escalation_step": 0,
                "repeats_done": 0,
            }
        )
    async with ctx.db.connect() as conn:
        for start in range(0, len(scores), 5000):
            await conn.execute(insert(RiskScore), scores[start : start + 5000])
        await conn.execute(insert(Alert), alerts)
    async with ctx.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Petition)) or 0)


async def bare_sql(ctx: Context) -> int:
    """The report's statements alone, results fetched and dropped."""
    options = options_from(ctx.settings)
    start, end = F.month_bounds(MONTH, options.zone)
    first = add_months(MONTH, -12)
    async with ctx.db.connect() as conn:
        threshold = options.collective_threshold
        rows = len(await F._grouped(conn, ctx.db.dialect, first, MONTH, threshold))
        rows += len(await F._enterprise_rows(conn, MONTH, options.collective_threshold))
        await F._flags(conn, MONTH)
        rows += len(await F._collective_cases(conn, MONTH, options))
        await F._handling(conn, MONTH, start, end)
        await F._alerts(conn, start, end)
        points = {
            p: (n, r, i)
            for p, n, r, i in await conn.execute(
                select(
                    MonitoringPoint.point_id,
                    MonitoringPoint.name,
                    MonitoringPoint.region_code,
                    MonitoringPoint.industry,
                )
            )
        }
        await F._risk(conn, end, points, {}, options)
    return rows + 1


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", help="run on this PostgreSQL database instead of SQLite")
    parser.add_argument("--work", type=Path, default=Path("var/bench-report"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    url = args.pg or f"sqlite:///{args.work / 'bench.db'}"
    settings = load_settings(
        overrides={
            "database": {"url": url},
            "security": {"secret_key": SECRET, "secret_key_file": str(args.work / "secret.key")},
        }
    )
    ctx = make_context(settings, clock=FrozenClock(NOW))
    try:
        await ctx.db.migrate()
        petitions = await load(ctx, args.work)
        options = options_from(settings)
        await bare_sql(ctx)  # warm the caches once, as a daemon that has run before would
        sql_s, _ = await timed(lambda: bare_sql(ctx), args.repeat)
        figures_s, figures = await timed(
            lambda: collect_figures(ctx.db, MONTH, options=options, now=NOW), args.repeat
        )
        doc = build_document(figures)
        html_s, html = timed_sync(lambda: render(doc, "html"), args.repeat)
        pdf_s, pdf = timed_sync(lambda: render(doc, "pdf"), args.repeat)
        docx_s, docx = timed_sync(lambda: render(doc, "docx"), args.repeat)
        csv_s, _ = timed_sync(lambda: render(doc, "csv"), args.repeat)
        (args.work / "report-2024-12.pdf").write_bytes(pdf)
        (args.work / "report-2024-12.docx").write_bytes(docx)
    finally:
        await ctx.close()
    total = figures_s + html_s + pdf_s
    result: dict[str, Any] = {
        "backend": ctx.db.dialect,
        "petitions": petitions,
        "month_petitions": figures.totals.current.petitions,
        "bare_sql_s": round(sql_s, 3),
        "figures_s": round(figures_s, 3),
        "html_s": round(html_s, 3),
        "pdf_s": round(pdf_s, 3),
        "docx_s": round(docx_s, 3),
        "csv_s": round(csv_s, 4),
        "report_html_pdf_s": round(total, 3),
        "ratio_to_bare_sql": round(total / sql_s, 1),
        "html_bytes": len(html),
        "pdf_bytes": len(pdf),
        "target_s": 10,
        "ok": total < 10,
    }
    print(
        f"{result['backend']}: {petitions} petitions; report {MONTH:%Y-%m} (figures + HTML + PDF) "
        f"{total:.2f} s = figures {figures_s:.2f} + HTML {html_s:.2f} + PDF {pdf_s:.2f}; "
        f"bare SQL {sql_s:.2f} s; ratio {total / sql_s:.1f}x; Word {docx_s:.2f} s; "
        f"target < 10 s: {'ok' if total < 10 else 'MISSED'}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
