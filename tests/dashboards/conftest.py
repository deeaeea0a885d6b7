"""One simulated year, loaded once per session into a PostgreSQL database and a SQLite
file of its own (the shared `db_url` databases are emptied between tests)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dashboards.data import LoadedYear, load_year, make_files
from tests.dashboards.fake_grafana import FakeGrafana
from tests.support.database import PostgresTestDatabase, SqliteTemplate


@dataclass(frozen=True)
class AnalystYear:
    pg_url: str
    sqlite_url: str
    generated: dict[str, int]
    loaded: LoadedYear


@pytest.fixture(scope="session")
def analyst_year(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: SqliteTemplate
) -> Iterator[AnalystYear]:
    base = tmp_path_factory.mktemp("analyst-year")
    files = base / "files"
    generated = make_files(files)
    pg = PostgresTestDatabase(f"dashboards_{os.getpid()}")
    pg.reset()  # the demo regions
    sqlite_url = sqlite_template.copy_to(base)
    try:
        loaded = asyncio.run(load_year(pg.url, files, base))
        again = asyncio.run(load_year(sqlite_url, files, base))
        assert again == loaded
        yield AnalystYear(pg.url, sqlite_url, generated, loaded)
    finally:
        pg.drop()


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LABORMON_* settings from the developer's shell leak into CLI runs."""
    for name in list(os.environ):
        if name.startswith("LABORMON_") and not name.startswith("LABORMON_TEST"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
