"""The production install's smaller promises (issue 18): the unit, the log keys, one-line
database errors, Grafana's provisioning for the grafana group and the real server, and
`labormon doctor`'s probes never treated as input."""

from __future__ import annotations

import configparser
import grp
import io
import json
import os
import stat
import sys
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ingest.topics import probe_topic
from monitor.cli import app
from monitor.context import Context
from monitor.logging import configure, get_logger
from monitor.models import RejectedMessage
from tests.conftest import SECRET
from tests.ingest_support import running
from tests.support.broker import Broker
from tests.support.daemon import eventually

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LABORMON_") and not name.startswith("LABORMON_TEST"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LABORMON_SECRET_KEY", SECRET)


def test_the_unit_runs_as_its_own_user_with_private_files() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(ROOT / "deploy" / "labormon.service")
    service = parser["Service"]
    assert service["User"] == service["Group"] == "labormon"
    assert service["StateDirectory"] == "labormon"
    assert service["UMask"] == "0077"
    assert service["ProtectSystem"] == "strict"
    assert service["ExecStartPre"].endswith("labormon doctor --quick")
    assert service["ExecStart"].endswith("labormon run")
    unit = (ROOT / "deploy" / "labormon.service").read_text()
    assert "\nEnvironment=LABORMON_CONFIG=/etc/labormon/labormon.toml\n" in unit
    # No optional secrets file: the secret has one source (the key file of the config).
    assert "EnvironmentFile" not in service
    makefile = (ROOT / "Makefile").read_text()
    install = makefile[makefile.index("\ninstall:") :]
    assert "SYSTEM_PYTHON := /usr/bin/python3" in makefile
    assert "venv-runtime PYTHON=$(SYSTEM_PYTHON)" in install
    assert "useradd --system" in install
    assert "chromium" not in makefile.split("INSTALL_APT :=")[1].split("\n\n")[0]


def test_json_log_keys_never_overwrite_an_events_own_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    configure("info", "json")
    get_logger("labormon.test").warning(
        "alert triggered", alert=7, level="I", timestamp="2025-01-15T01:00:00+00:00"
    )
    line = json.loads(buffer.getvalue().strip().splitlines()[-1])
    assert line["level"] == "warning"
    assert line["level_"] == "I"
    assert line["timestamp_"] == "2025-01-15T01:00:00+00:00"
    assert line["timestamp"] != line["timestamp_"]
    assert line["alert"] == 7


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://nobody:x@127.0.0.1:5432/postgres", 'role "nobody" does not exist'),
        ("postgresql://postgres@127.0.0.1:5432/no_such_db_18b", "does not exist"),
        ("postgresql://postgres@127.0.0.1:1/x", "cannot reach the database"),
    ],
)
def test_cli_database_errors_are_one_line_and_exit_2(url: str, reason: str) -> None:
    result = CliRunner().invoke(app, ["stats", "--db", url])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("labormon: ") and reason in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("backend", ["postgresql"])
def test_grafana_provisioning_is_readable_by_its_group_and_names_the_real_server(
    db_url: str, tmp_path: Path
) -> None:
    group = "nogroup" if _group_exists("nogroup") else grp.getgrgid(os.getgid()).gr_name
    target = tmp_path / "provisioning"
    result = CliRunner().invoke(
        app, ["dashboards", "export", str(target), "--db", db_url, "--group", group]
    )
    assert result.exit_code == 0, result.stderr
    gid = grp.getgrnam(group).gr_gid
    datasource = target / "datasources" / "labormon.yaml"
    for path in [target, datasource.parent, *target.rglob("*")]:
        info = path.stat()
        assert info.st_gid == gid, path
        assert info.st_mode & (0o050 if path.is_dir() else 0o040), path
    assert stat.S_IMODE(datasource.stat().st_mode) == 0o640  # a password is in it
    text = datasource.read_text(encoding="utf-8")
    import asyncpg  # the server's own answer, asked directly

    async def server_major() -> int:
        conn = await asyncpg.connect(db_url)
        try:
            return int(await conn.fetchval("SHOW server_version_num")) // 10000
        finally:
            await conn.close()

    import asyncio

    assert f"postgresVersion: {asyncio.run(server_major()) * 100}" in text
    refused = CliRunner().invoke(
        app, ["dashboards", "export", str(tmp_path / "x"), "--group", "no-such-group-18b"]
    )
    assert refused.exit_code == 2
    assert "no such group" in refused.stderr


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_doctors_probes_are_not_input(ctx: Context, broker: Broker) -> None:
    prefix = "t-probe/labormon/v1"
    ctx.settings.mqtt.url = broker.url
    ctx.settings.mqtt.client_id = "probe-daemon"
    ctx.settings.mqtt.topic_prefix = prefix
    ctx.settings.ingest.require_account = False

    async def rejected() -> int:
        async with ctx.db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(RejectedMessage)))

    async with running(ctx), aiomqtt.Client(broker.host, broker.port) as client:
        for segment in ("wages", "petitions", "reports"):
            await client.publish(probe_topic(prefix, segment, "labormon-1"), b"x", qos=1)
        # A real (bad) input after the probes: once it is refused, the probes were seen.
        await client.publish(f"{prefix}/reports/inf-1", b"not json", qos=1)
        await eventually(rejected, lambda n: n >= 1, 15, what="the bad input refused")
    assert await rejected() == 1
    async with ctx.db.session() as session:
        row = (await session.scalars(select(RejectedMessage))).one()
    assert "~doctor" not in str(row.origin)
