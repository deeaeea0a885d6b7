"""Fixtures every test can use: both databases, the clock, a real broker, a real SMTP server.

Tests that take `db_url` (or anything built on it: `settings`, `ctx`) run once on
SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from detectors.panel import Panel
from monitor.clock import FrozenClock
from monitor.config import Settings, load_settings
from monitor.context import Context
from monitor.daemon import make_context
from tests.support.broker import Broker
from tests.support.database import PostgresTestDatabase, SqliteTemplate
from tests.support.mail import MailSink

BACKENDS = ["sqlite", "postgresql"]
SECRET = "test-secret-0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_db(worker_id: str) -> Iterator[PostgresTestDatabase]:
    database = PostgresTestDatabase(f"{worker_id}_{os.getpid()}")
    yield database
    database.drop()


@pytest.fixture(scope="session")
def worker_id() -> str:
    return "main"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: SqliteTemplate
) -> str:
    """An empty, migrated database with the demo regions, on each backend."""
    if backend == "sqlite":
        return sqlite_template.copy_to(tmp_path)
    pg: PostgresTestDatabase = request.getfixturevalue("postgres_db")
    pg.reset()
    return pg.url


@pytest.fixture
def clock() -> FrozenClock:
    """Mid-January 2025, China time 09:00: near the Spring Festival peak."""
    return FrozenClock(datetime(2025, 1, 15, 1, 0, tzinfo=UTC))


@pytest.fixture
def settings(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith("LABORMON_") and not name.startswith("LABORMON_TEST"):
            monkeypatch.delenv(name)
    return load_settings(
        overrides={
            "database": {"url": db_url},
            "security": {"secret_key": SECRET, "secret_key_file": str(tmp_path / "secret.key")},
            "http": {"bind": "127.0.0.1:0"},
            # Off unless a test points it at its own broker: a daemon started by a test
            # must not join the machine's Mosquitto with a persistent session.
            "mqtt": {"client_id": "labormon-test", "enabled": False},
            # In this process: a test that wants the worker process says so.
            "detectors": {"wage_worker": False},
        }
    )


@pytest.fixture
async def ctx(settings: Settings, clock: FrozenClock) -> AsyncIterator[Context]:
    context = make_context(settings, clock=clock)
    yield context
    await context.close()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A Mosquitto shared by the session; tests must use their own topics/client ids."""
    with Broker(tmp_path_factory.mktemp("mosquitto")) as b:
        yield b


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto of the test's own, to stop, restart or lock down with auth files."""
    b = Broker(tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def mail_sink() -> Iterator[MailSink]:
    sink = MailSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def mail(mail_sink: MailSink) -> MailSink:
    """The session's SMTP server, emptied for this test."""
    mail_sink.clear()
    mail_sink.handler.fail_with = None
    return mail_sink


# --------------------------------------------------------------------------- detectors
# Simulated data sets are shared by the session: generating and reading them is the
# expensive part of the detector tests.


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated region (import files + incidents.csv), seed 11, 2022-01..2023-12."""
    from datetime import date

    from monitor.simulator import write_dataset

    out = tmp_path_factory.mktemp("sim-small")
    write_dataset(out, points=150, months=24, seed=11, start=date(2022, 1, 1))
    return out


@pytest.fixture(scope="session")
def sim_panel(sim_dir: Path) -> Panel:
    """The small simulated region as a detectors panel (read from its files)."""
    from detectors.sources import panel_from_directory

    return panel_from_directory(sim_dir)
