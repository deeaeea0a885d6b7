"""Database access: engines for SQLite (default) and PostgreSQL, sessions, migrations.

SQLite runs in WAL mode with `synchronous=NORMAL`: a committed transaction survives a
SIGKILL of the process (not a power cut; production uses PostgreSQL). Write
transactions start with `BEGIN IMMEDIATE` so that two writers queue on the busy
timeout instead of failing half-way with "database is locked"; within one process they
queue, in order, for the pool's single connection.

Long reads (the detectors' panel of every point, the monthly report's figures) go
through `Database.read()`: on SQLite a second, read-only connection with a deferred
`BEGIN`, which in WAL mode reads a consistent snapshot while the writer goes on, so
loading 20,000 points' history for 15 s no longer holds up the intake behind it.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def async_url(url: str) -> str:
    """Map the user-facing URL (`sqlite:///...`, `postgresql://...`) to an async driver."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")


def create_private_store(path: Path) -> None:
    """Create a missing SQLite store 0600 in a directory made 0700: it holds report texts,
    informant ids and rejected payloads. SQLite gives its -wal and -shm files the store's
    mode (and, run as root, its owner). Run as root (an operator's command on the host),
    what is created belongs to the owner of the directory it is in: the service user's."""
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True)
        _own_like(parent, parent.parent)
    if not path.exists():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:  # another process made it meanwhile
            return
        _own_like(path, parent)


def _own_like(path: Path, model: Path) -> None:
    if os.geteuid() == 0:
        info = model.stat()
        if (info.st_uid, info.st_gid) != (0, 0):
            os.chown(path, info.st_uid, info.st_gid)


def _json_dumps(value: Any) -> str:
    # Keep Chinese readable in the database and in psql.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _sqlite_setup(engine: AsyncEngine, *, reader: bool = False) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit
        # transactions start too late for a read-then-write to be atomic).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if reader:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if reader else "BEGIN IMMEDIATE")


class Database:
    """One engine and its session factory; `dialect` is "sqlite" or "postgresql"."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        driver_url = async_url(url)
        parsed = make_url(driver_url)
        self.dialect = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql"
        kwargs: dict[str, Any] = {"echo": echo, "json_serializer": _json_dumps}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                create_private_store(Path(parsed.database).expanduser())
            kwargs["connect_args"] = {"timeout": 30}
            # One connection per process: every transaction takes SQLite's write lock
            # (BEGIN IMMEDIATE), so more connections only add busy-waiting, whose sleeps
            # (up to 100 ms each) made a level I report wait behind the ingest writer, and
            # whose unfairness could starve it. The pool's queue serves them in order.
            kwargs.update(pool_size=1, max_overflow=0, pool_timeout=120)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(driver_url, **kwargs)
        self._reader: AsyncEngine | None = None
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine)
            if parsed.database and parsed.database != ":memory:":
                # A connection of its own for long reads (see the module's docstring).
                self._reader = create_async_engine(driver_url, **kwargs)
                _sqlite_setup(self._reader, reader=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a transaction (bulk paths that skip the ORM)."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection for a long read-only load: a consistent snapshot that does
        not hold up writers (SQLite: its own connection, deferred BEGIN, query_only)."""
        async with (self._reader or self.engine).connect() as conn:
            yield conn

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent; safe for several daemons
        on PostgreSQL thanks to alembic's version table inside one transaction)."""
        async with self.engine.begin() as conn:
            if self.is_postgres:
                # Two daemons starting together must not both run the DDL.
                await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4711)")
            await conn.run_sync(_upgrade)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._reader is not None:
            await self._reader.dispose()


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same transaction later can succeed (the database is away,
    busy, or chose this transaction as a deadlock victim). A service's task group fails
    with a group of its tasks' errors: transient when every one of them is."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_transient(e) for e in exc.exceptions)
    if isinstance(exc, OSError | TimeoutError | sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        # 08 connection, 40 rollback (deadlock, serialization), 53 resources, 57 shutdown.
        if isinstance(state, str) and state[:2] in {"08", "40", "53", "57"}:
            return True
    return False
