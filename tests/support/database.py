"""Test databases: a migrated SQLite template copied per test, and a PostgreSQL
database created once per session and emptied between tests.

PostgreSQL comes from LABORMON_TEST_PG (an admin URL) or the local server
(postgresql://postgres@127.0.0.1:5432/test, trust auth); when nothing answers and we
are root, the local cluster is started with pg_ctlcluster.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from monitor.db import Database
from monitor.regions import DEMO_REGIONS, tier_of

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def pg_admin_url() -> str:
    return os.environ.get("LABORMON_TEST_PG", DEFAULT_PG)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _can_connect(url: str) -> bool:
    try:
        conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def ensure_postgres() -> str:
    url = pg_admin_url()
    if asyncio.run(_can_connect(url)):
        return url
    if os.geteuid() == 0 and shutil.which("pg_ctlcluster") and Path("/etc/postgresql").is_dir():
        for version in sorted(os.listdir("/etc/postgresql")):
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                capture_output=True,
            )
        if asyncio.run(_can_connect(url)):
            return url
    raise RuntimeError(f"PostgreSQL is not reachable at {url}; set LABORMON_TEST_PG")


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await db.migrate()
    finally:
        await db.dispose()


class PostgresTestDatabase:
    """One database for the session, emptied (not recreated) before each test."""

    def __init__(self, suffix: str) -> None:
        self.admin_url = ensure_postgres()
        self.name = f"labormon_test_{suffix}"
        self.url = (
            make_url(self.admin_url).set(database=self.name).render_as_string(hide_password=False)
        )
        asyncio.run(_create_database(self.admin_url, self.name))
        asyncio.run(_migrate(self.url))
        self.tables = asyncio.run(self._tables())
        self.superuser = asyncio.run(self._superuser())

    async def _tables(self) -> list[str]:
        conn = await asyncpg.connect(_asyncpg_dsn(self.url))
        try:
            rows = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        finally:
            await conn.close()
        return sorted(r["tablename"] for r in rows)

    async def _superuser(self) -> bool:
        conn = await asyncpg.connect(_asyncpg_dsn(self.url))
        try:
            return bool(
                await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            )
        finally:
            await conn.close()

    async def areset(self) -> None:
        """Empty every table, restart the id sequences, put back the demo regions.

        DELETE, not TRUNCATE: a test leaves a few rows at most, and TRUNCATE gives each of
        the ~25 tables new files, fsynced at commit (~0.6 s per test on this machine, 10x
        the DELETEs). Foreign keys are not checked while emptying (replica role): every
        table is emptied in the same transaction, in any order.
        """
        conn = await asyncpg.connect(_asyncpg_dsn(self.url))
        tables = ", ".join(f'"{t}"' for t in self.tables)
        try:
            async with conn.transaction():
                if self.superuser:
                    await conn.execute("SET LOCAL session_replication_role = replica")
                    await conn.execute("; ".join(f'DELETE FROM "{t}"' for t in self.tables))
                    await conn.execute(
                        "SELECT setval(format('%I.%I', schemaname, sequencename), start_value,"
                        " false) FROM pg_sequences WHERE schemaname = 'public'"
                    )
                    await conn.execute("SET LOCAL session_replication_role = DEFAULT")
                else:  # the replica role needs a superuser; TRUNCATE only ownership
                    await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
                await conn.executemany(
                    "INSERT INTO regions (code, name, tier, parent_code) VALUES ($1, $2, $3, $4)",
                    [(code, name, tier_of(code), parent) for code, name, parent in DEMO_REGIONS],
                )
        finally:
            await conn.close()

    def reset(self) -> None:
        asyncio.run(self.areset())

    def drop(self) -> None:
        asyncio.run(_drop_database(self.admin_url, self.name))


class SqliteTemplate:
    """A migrated SQLite file; each test gets a copy (much faster than migrating)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "template.db"
        asyncio.run(_migrate(f"sqlite:///{self.path}"))

    def copy_to(self, directory: Path) -> str:
        target = directory / "labormon.db"
        shutil.copyfile(self.path, target)
        return f"sqlite:///{target}"


def fetch_all(url: str, sql: str) -> list[tuple[object, ...]]:
    """Run a query from synchronous test code (e.g. after invoking the CLI)."""

    async def go() -> list[tuple[object, ...]]:
        db = Database(url)
        try:
            async with db.engine.connect() as conn:
                return [tuple(row) for row in await conn.exec_driver_sql(sql)]
        finally:
            await db.dispose()

    return asyncio.run(go())
