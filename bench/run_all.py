"""Every benchmark, one after the other, each printing its figures beside the baseline it
measures in the same run (`make bench`). Takes about ten minutes on two cores.

    python bench/run_all.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]

With --pg (an admin URL), the benchmarks that have a PostgreSQL variant also run on a
scratch database created and dropped here.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(title: str, args: list[str]) -> int:
    print(f"\n=== {title}: {' '.join(args)}", flush=True)
    started = time.perf_counter()
    code = subprocess.call([sys.executable, *args], cwd=ROOT)
    print(f"--- {title}: exit {code} after {time.perf_counter() - started:.0f} s", flush=True)
    return code


async def scratch(admin: str, name: str, drop: bool = False) -> str:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(admin)
    conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", help="PostgreSQL admin URL for the PostgreSQL variants")
    opts = parser.parse_args()
    failures = 0
    failures += run("import", ["-m", "bench.import_bench"]) != 0
    backends = "sqlite,postgresql" if opts.pg else "sqlite"
    failures += run("MQTT ingest", ["bench/ingest_throughput.py", "--backends", backends]) != 0
    failures += (
        run("alert latency (full path, SQLite)", ["bench/alert_latency.py", "--path", "full"]) != 0
    )
    failures += run("monthly report (SQLite)", ["bench/report_bench.py"]) != 0
    failures += run("scoring 100,000 points", ["bench/score_100k.py"]) != 0
    failures += run("petition surge false alarms", ["bench/surge_false_alarms.py"]) != 0
    failures += (
        run("alert budget (today vs issue 13)", ["bench/alert_budget.py", "--points", "60"]) != 0
    )
    if opts.pg:
        db = asyncio.run(scratch(opts.pg, "labormon_bench_alerts"))
        failures += (
            run(
                "alert latency (full path, PostgreSQL)",
                ["bench/alert_latency.py", "--path", "full", "--db", db],
            )
            != 0
        )
        db = asyncio.run(scratch(opts.pg, "labormon_bench_report"))
        failures += run("monthly report (PostgreSQL)", ["bench/report_bench.py", "--pg", db]) != 0
        for name in ("labormon_bench_alerts", "labormon_bench_report"):
            asyncio.run(scratch(opts.pg, name, drop=True))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
