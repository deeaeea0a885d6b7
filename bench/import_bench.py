"""Import throughput: `labormon import` (validate, hash, check, store idempotently) against
a plain `executemany` of the same rows into the same schema, measured in one run.

    .venv/bin/python bench/import_bench.py [--points 2000 --months 36] [--db postgresql://...]

The ratio shows what validation, deduplication and encryption of personal data cost.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.gen_dataset import generate
from ingest.files import FileImporter
from monitor.config import load_settings
from monitor.daemon import make_context
from monitor.store import MAX_PARAMETERS


async def labormon_import(url: str, data: Path) -> tuple[int, float]:
    settings = load_settings(
        overrides={"database": {"url": url}, "security": {"secret_key": "b" * 64}}
    )
    ctx = make_context(settings)
    await ctx.db.migrate()
    start = time.perf_counter()
    report = await FileImporter(ctx.store).run(data)
    elapsed = time.perf_counter() - start
    await ctx.close()
    assert not report.errors, report.errors[:3]
    return sum(s.rows for s in report.kinds.values()), elapsed


async def plain_executemany(url: str, data: Path) -> tuple[int, float]:
    """The same rows, as the CSV has them, with no validation, through the same driver."""
    settings = load_settings(
        overrides={"database": {"url": url}, "security": {"secret_key": "b" * 64}}
    )
    ctx = make_context(settings)
    await ctx.db.migrate()
    now = datetime.now(UTC)
    sqlite = ctx.db.dialect == "sqlite"
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else now
    tables = [
        (
            "points.csv",
            "monitoring_points",
            {"payload_hash": "x", "source": "file", "created_at": stamp, "updated_at": stamp},
        ),
        (
            "wages.csv",
            "wage_reports",
            {"payload_hash": "x", "source": "file", "ingested_at": stamp},
        ),
        (
            "petitions.csv",
            "petitions",
            {
                "payload_hash": "x",
                "source": "file",
                "ingested_at": stamp,
                "received_date": "2024-01-01" if sqlite else now.date(),
                "category_inferred": False,
            },
        ),
    ]
    rows_total = 0
    start = time.perf_counter()
    async with ctx.db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection  # the aiosqlite / asyncpg connection itself
        if sqlite:
            await driver.execute("BEGIN")  # one transaction, as labormon's batches are
        for filename, table, fixed in tables:
            with (data / filename).open(encoding="utf-8") as fh:
                records = [
                    {
                        k: v
                        for k, v in r.items()
                        if v != "" and k not in {"petitioner_name", "petitioner_phone"}
                    }
                    for r in csv.DictReader(fh)
                ]
            if table == "petitions":  # the baseline does not infer categories
                for r in records:
                    r.setdefault("category", "other")
            columns = sorted({k for r in records for k in r} | set(fixed))
            rows = [
                tuple(_typed(table, c, (r | fixed).get(c), sqlite) for c in columns)
                for r in records
            ]
            names = ", ".join(columns)
            if sqlite:
                sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
                await driver.executemany(sql, rows)
            else:
                marks = ", ".join(f"${i + 1}" for i in range(len(columns)))
                await driver.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            rows_total += len(rows)
        reports = [json.loads(line) for line in (data / "reports.jsonl").read_text().splitlines()]
        rows_total += len(reports)  # counted, as labormon counts them; stored below
        columns = [
            "report_id",
            "informant_id",
            "occurred_at",
            "occurred_date",
            "region_code",
            "point_id",
            "event_type",
            "category",
            "people_involved",
            "description",
            "payload_hash",
            "source",
            "ingested_at",
        ]
        rows = [
            tuple(
                _typed(
                    "informant_reports",
                    c,
                    (
                        r
                        | {
                            "occurred_date": r["occurred_at"][:10],
                            "payload_hash": "x",
                            "source": "file",
                            "ingested_at": stamp,
                        }
                    ).get(c),
                    sqlite,
                )
                for c in columns
            )
            for r in reports
        ]
        if sqlite:
            await driver.executemany(
                f"INSERT INTO informant_reports ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                rows,
            )
        else:
            await driver.executemany(
                f"INSERT INTO informant_reports ({', '.join(columns)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(columns)))})",
                rows,
            )
        if sqlite:
            await driver.commit()
        await conn.commit()
    elapsed = time.perf_counter() - start
    await ctx.close()
    return rows_total, elapsed


_INTS = {
    "headcount",
    "frontline_headcount",
    "arrears_workers",
    "arrears_months",
    "social_insurance_arrears_months",
    "layoffs_planned",
    "people_involved",
}
_FLOATS = {"avg_frontline_wage", "arrears_amount", "overtime_hours_avg"}


def _typed(table: str, column: str, value: object, sqlite: bool) -> object:
    """PostgreSQL's driver wants Python types; SQLite takes the text as it is."""
    if value is None or sqlite:
        if sqlite and column == "period" and isinstance(value, str):
            return value + "-01"
        return value
    from datetime import date

    text = str(value)
    if column in _INTS:
        return int(text)
    if column in _FLOATS:
        return float(text)
    if column == "period":
        return date.fromisoformat(text + "-01")
    if column in {"wages_paid_on", "occurred_date"}:
        return date.fromisoformat(text[:10])
    if column in {"received_at", "occurred_at"}:
        return datetime.fromisoformat(text)
    return value


def fresh(url: str | None, tmp: Path, name: str) -> str:
    if url:
        return url
    return f"sqlite:///{tmp / name}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--db", help="PostgreSQL URL of an EMPTY database to use for both runs")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="labormon-bench-"))
    try:
        data = tmp / "data"
        counts = generate(args.points, args.months, data)
        n1, t1 = await plain_executemany(fresh(args.db, tmp, "baseline.db"), data)
        if args.db:
            await _truncate(args.db)
        n2, t2 = await labormon_import(fresh(args.db, tmp, "labormon.db"), data)
        base, ours = n1 / t1, n2 / t2
        print(f"data set: {json.dumps(counts)}  (max {MAX_PARAMETERS} parameters per statement)")
        print(f"plain executemany : {n1:>7} rows in {t1:6.2f} s = {base:>9,.0f} rows/s")
        print(f"labormon import   : {n2:>7} rows in {t2:6.2f} s = {ours:>9,.0f} rows/s")
        print(
            f"ratio labormon/executemany = {ours / base:.3f}; target >= 20,000 rows/s: "
            f"{'met' if ours >= 20_000 else 'NOT met'}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def _truncate(url: str) -> None:
    settings = load_settings(
        overrides={"database": {"url": url}, "security": {"secret_key": "b" * 64}}
    )
    ctx = make_context(settings)
    async with ctx.db.engine.begin() as conn:
        await conn.exec_driver_sql(
            "TRUNCATE monitoring_points, wage_reports, petitions, informant_reports CASCADE"
        )
    await ctx.close()


if __name__ == "__main__":
    asyncio.run(main())
