"""Upgrades and backups (issue 18).

`tests/data/upgrade/release-0007.db` was made by the release at migration 0007 (`labormon
demo` of main at 163a0ef, 24 points, 3 months): accounts, points, wage reports,
petitions, informant reports, findings, alerts, deliveries, attempts, acknowledge links,
risk scores, job runs. Every later migration is run against it, on SQLite and (its rows
loaded into a PostgreSQL database at 0007) on PostgreSQL, and every row and every value
it held must still be there. Keep the file as it is: it is what an installed
store of that release looks like.

`labormon backup FILE` copies the SQLite store with SQLite's online backup API while a
writer goes on; the copy, opened as a store, holds every record and alert.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from monitor.db import Database

ROOT = Path(__file__).resolve().parents[1]
RELEASE_0007 = ROOT / "tests" / "data" / "upgrade" / "release-0007.db"
RECORDS = ("monitoring_points", "wage_reports", "petitions", "informant_reports")
ALERTS = ("findings", "alerts", "alert_events", "deliveries", "delivery_attempts", "ack_links")


def snapshot(path: Path) -> dict[str, tuple[list[str], list[tuple[object, ...]]]]:
    """Every table's columns and rows, sorted (the alembic version left out)."""
    conn = sqlite3.connect(path)
    try:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT IN ('alembic_version', 'sqlite_sequence') ORDER BY name"
            )
        ]
        result = {}
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            rows = sorted(cursor.fetchall(), key=repr)
            result[table] = (columns, rows)
        return result
    finally:
        conn.close()


def project(
    snap: tuple[list[str], list[tuple[object, ...]]], columns: list[str]
) -> list[tuple[object, ...]]:
    names, rows = snap
    index = [names.index(c) for c in columns]
    return sorted((tuple(row[i] for i in index) for row in rows), key=repr)


def test_a_store_of_the_last_release_is_migrated_with_every_row_and_value(
    tmp_path: Path,
) -> None:
    store = tmp_path / "labormon.db"
    shutil.copyfile(RELEASE_0007, store)
    before = snapshot(store)
    assert sum(len(rows) for _c, rows in before.values()) > 500
    for table in (*RECORDS, *ALERTS, "accounts"):
        assert before[table][1], f"the fixture has no {table}"

    async def migrate() -> None:
        db = Database(f"sqlite:///{store}")
        try:
            await db.migrate()
        finally:
            await db.dispose()

    asyncio.run(migrate())
    after = snapshot(store)
    conn = sqlite3.connect(store)
    try:
        head = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        conn.close()
    assert head != "0007"
    for table, (columns, rows) in before.items():
        assert table in after, f"{table} is gone after the upgrade"
        kept = [c for c in columns if c in after[table][0]]
        dropped = set(columns) - set(kept)
        assert not dropped, f"{table}: columns {sorted(dropped)} dropped by the upgrade"
        assert len(after[table][1]) >= len(rows), f"{table}: rows lost"
        survivors = set(project(after[table], kept))
        missing = [row for row in project(before[table], kept) if row not in survivors]
        assert not missing, f"{table}: {len(missing)} rows changed or lost, e.g. {missing[0]}"


def test_backup_while_a_writer_runs_restores_every_record_and_alert(tmp_path: Path) -> None:
    store = tmp_path / "var" / "labormon.db"
    store.parent.mkdir(mode=0o700)
    shutil.copyfile(RELEASE_0007, store)
    url = f"sqlite:///{store}"

    async def migrate() -> None:
        db = Database(url)
        try:
            await db.migrate()
        finally:
            await db.dispose()

    asyncio.run(migrate())
    before = snapshot(store)

    # The daemon goes on writing (its own connection, WAL mode, one row per transaction)
    # while the backup runs.
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        conn = sqlite3.connect(store, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        n = 0
        while not stop.is_set() or n < 50:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO job_runs (job, key, holder, started_at, status) "
                "VALUES ('backup-test', ?, 'writer', '2025-01-15 01:00:00', 'done')",
                (str(n),),
            )
            conn.execute("COMMIT")
            n += 1
            written.append(n)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    copy = tmp_path / "backup" / "labormon-copy.db"
    copy.parent.mkdir()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABORMON_")}
        result = subprocess.run(
            [sys.executable, "-m", "monitor", "backup", str(copy), "--db", url],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT), "LABORMON_SECRET_KEY": "x" * 40},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    assert "integrity ok" in result.stdout
    assert written, "the writer never wrote"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600

    # The copy, restored as a store, holds every record and alert of before the backup.
    restored = tmp_path / "restored" / "labormon.db"
    restored.parent.mkdir()
    shutil.copyfile(copy, restored)
    after = snapshot(restored)
    for table in (*RECORDS, *ALERTS, "accounts", "regions"):
        columns = before[table][0]
        assert project(after[table], columns) == project(before[table], columns), table
    runs = [row for row in after["job_runs"][1] if "backup-test" in row]
    assert len(runs) <= len(written)

    async def open_restored() -> int:
        db = Database(f"sqlite:///{restored}")
        try:
            await db.migrate()  # already at head: nothing to do
            async with db.engine.connect() as conn:
                value = await conn.exec_driver_sql("SELECT count(*) FROM alerts")
                return int(value.scalar_one())
        finally:
            await db.dispose()

    assert asyncio.run(open_restored()) == len(before["alerts"][1])


@pytest.mark.parametrize("backend", ["postgresql"])
def test_backup_on_postgresql_prints_the_pg_dump_command(db_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABORMON_")}
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "backup", str(tmp_path / "x.dump"), "--db", db_url],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT), "LABORMON_SECRET_KEY": "x" * 40},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    command = result.stdout.strip()
    assert command.startswith("pg_dump --format=custom --file=")
    assert command.endswith(db_url.rsplit("/", 1)[1])
    assert not (tmp_path / "x.dump").exists()


def _from_sqlite(value: object, column_type: object) -> object:
    """A value as the 0007 release's SQLite store held it, as PostgreSQL takes it."""
    import json
    from datetime import UTC, date, datetime

    from sqlalchemy import JSON, Boolean, Date, DateTime

    if value is None:
        return None
    if isinstance(column_type, DateTime):
        parsed = datetime.fromisoformat(str(value))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(column_type, Date):
        return date.fromisoformat(str(value))
    if isinstance(column_type, Boolean):
        return bool(value)
    if isinstance(column_type, JSON):
        return json.loads(value) if isinstance(value, str) else value
    return value


def _comparable(value: object) -> object:
    import json
    from datetime import UTC, date, datetime
    from decimal import Decimal

    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal | float):
        return round(float(value), 6)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_same_store_on_postgresql_is_migrated_with_every_row_and_value(
    backend: str,
) -> None:
    """The 0007 release's rows, loaded into a PostgreSQL database at 0007, then every
    later migration on PostgreSQL (its DDL differs from SQLite's batch mode)."""
    import asyncpg
    from alembic import command
    from sqlalchemy import MetaData
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    from monitor.db import alembic_config
    from tests.support.database import _asyncpg_dsn, ensure_postgres

    admin = await asyncio.to_thread(ensure_postgres)
    name = f"labormon_upgrade_{os.getpid()}"
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    conn = await asyncpg.connect(_asyncpg_dsn(admin))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    db = Database(url)
    try:
        async with db.engine.begin() as pg:
            await pg.run_sync(lambda c: command.upgrade(alembic_config(c), "0007"))
        before = snapshot(RELEASE_0007)
        meta = MetaData()
        async with db.engine.begin() as pg:
            await pg.run_sync(lambda c: meta.reflect(c))
            for table in meta.sorted_tables:
                if table.name == "alembic_version" or not before[table.name][1]:
                    continue
                columns, rows = before[table.name]
                values = [
                    {c: _from_sqlite(v, table.c[c].type) for c, v in zip(columns, row, strict=True)}
                    for row in rows
                ]
                # Rows the migrations seed themselves (the regions) are there already.
                await pg.execute(pg_insert(table).on_conflict_do_nothing(), values)
        await db.migrate()
        async with db.engine.connect() as pg:
            assert await pg.scalar(text("SELECT version_num FROM alembic_version")) != "0007"
            for table in meta.sorted_tables:
                if table.name == "alembic_version":
                    continue
                columns, rows = before[table.name]
                listed = ", ".join(f'"{c}"' for c in columns)
                result = await pg.execute(text(f'SELECT {listed} FROM "{table.name}"'))
                after = {tuple(_comparable(v) for v in row) for row in result}
                expected = [
                    tuple(
                        _comparable(_from_sqlite(v, table.c[c].type))
                        for c, v in zip(columns, row, strict=True)
                    )
                    for row in rows
                ]
                missing = [row for row in expected if row not in after]
                assert not missing, f"{table.name}: {len(missing)} rows lost, e.g. {missing[0]}"
    finally:
        await db.dispose()
        conn = await asyncpg.connect(_asyncpg_dsn(admin))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
