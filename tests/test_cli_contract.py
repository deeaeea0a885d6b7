"""interfaces §4 on the command line: every command takes --config and --db; bad usage and
bad input are one line on stderr and exit 2; `.xlsx` cells pass like the same CSV;
a monitoring point's account may come before the point."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from openpyxl import Workbook
from typer.testing import CliRunner, Result

from monitor.cli import app
from tests.support.database import SqliteTemplate, fetch_all

runner = CliRunner()
SECRET = "test-secret-0123456789abcdef0123456789abcdef"
POINTS = (
    "point_id,name,region_code,industry,headcount\nP-RV1,资阳建工有限公司,430902,construction,320\n"
)
WAGES = (
    "report_id,point_id,period,headcount,frontline_headcount,avg_frontline_wage,wages_paid_on,"
    "arrears_amount,arrears_workers,arrears_months,social_insurance_arrears_months,"
    "layoffs_planned,production_status,overtime_hours_avg\n"
    "W-RV1,P-RV1,2024-11,320,280,4500,,0,0,0,0,0,normal,\n"
)


@pytest.fixture
def db(tmp_path: Path, sqlite_template: SqliteTemplate, monkeypatch: pytest.MonkeyPatch) -> str:
    """A scratch SQLite store (migrated, with the demo regions) and a clean environment."""
    for name in list(os.environ):
        if name.startswith("LABORMON_") and not name.startswith("LABORMON_TEST"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LABORMON_SECRET_KEY", SECRET)
    url = sqlite_template.copy_to(tmp_path)
    monkeypatch.setenv("LABORMON_DB", url)
    return url


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def one_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def busy_ports() -> Iterator[list[int]]:
    """Two listening ports on 127.0.0.1, so that the demo stops at its bind check."""
    socks = []
    for _ in range(2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        socks.append(sock)
    yield [s.getsockname()[1] for s in socks]
    for sock in socks:
        sock.close()


# ----------------------------------------------------------------- --config and --db


def _leaf_commands() -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):  # a group
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found.append(path)

    walk(typer.main.get_command(app), ())
    return found


def test_every_command_takes_config_and_db(db: str) -> None:
    commands = _leaf_commands()
    assert ("demo",) in commands and ("simulate",) in commands
    missing = []
    for path in commands:
        command: Any = typer.main.get_command(app)
        for name in path:
            command = command.commands[name]
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        if not {"--config", "--db"} <= options:
            missing.append(" ".join(path))
    assert missing == []


def test_simulate_checks_config_and_db(db: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt]\nbogus = 1\n", encoding="utf-8")
    args = ("simulate", "--points", "3", "--months", "2", "--seed", "1")
    result = invoke(*args, "--out", str(tmp_path / "a"), "--config", str(bad))
    assert result.exit_code == 2
    assert one_line(result) == f"labormon: {bad}: mqtt.bogus: unknown key"
    assert not (tmp_path / "a").exists()
    result = invoke(*args, "--out", str(tmp_path / "b"), "--db", db)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "b" / "incidents.csv").is_file()


def test_demo_refuses_a_bad_config_file(db: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[http]\nbind = 'nowhere'\n", encoding="utf-8")
    result = invoke("demo", "--config", str(bad), "--db", db, "--dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    assert one_line(result).startswith(f"labormon: {bad}: http.bind: must be host:port")


def test_demo_binds_where_labormon_http_bind_says_unless_told(
    db: str, tmp_path: Path, busy_ports: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ports are taken, so the demo stops at its bind check, naming the address it
    # would have used: the variable's, or an explicit --bind over it.
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    env_port, cli_port = busy_ports
    monkeypatch.setenv("LABORMON_HTTP_BIND", f"127.0.0.1:{env_port}")
    demo = ("demo", "--config", str(empty), "--dir", str(tmp_path / "d"))
    result = invoke(*demo)
    assert result.exit_code == 2
    assert one_line(result).startswith(f"labormon: 127.0.0.1:{env_port} is in use")
    result = invoke(*demo, "--bind", f"127.0.0.1:{cli_port}")
    assert result.exit_code == 2
    assert one_line(result).startswith(f"labormon: 127.0.0.1:{cli_port} is in use")
    monkeypatch.delenv("LABORMON_HTTP_BIND")
    configured = tmp_path / "bind.toml"
    configured.write_text(f'[http]\nbind = "127.0.0.1:{cli_port}"\n', encoding="utf-8")
    result = invoke("demo", "--config", str(configured), "--dir", str(tmp_path / "d"))
    assert one_line(result).startswith(f"labormon: 127.0.0.1:{cli_port} is in use")


def test_demo_settings_start_from_config_and_use_db(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.demo.run import DemoOptions, demo_settings

    config = tmp_path / "base.toml"
    config.write_text('[console]\nsession_ttl = "2h"\n[report]\nenabled = false\n', "utf-8")
    opts = DemoOptions(directory=tmp_path / "d", bind="127.0.0.1:8099", config=config, db=db)
    settings = demo_settings(opts, "mqtt://u:p@127.0.0.1:1", "smtp://127.0.0.1:2")
    assert settings.database.url == db
    assert settings.http.bind == "127.0.0.1:8099"
    assert settings.console.session_ttl.total_seconds() == 7200  # from the file
    assert settings.console.anonymous_read is True  # the demo's own
    assert settings.report.enabled is False
    # Without --db the demo keeps its own store, whatever LABORMON_DB says.
    opts = DemoOptions(directory=tmp_path / "d", bind="127.0.0.1:8099")
    settings = demo_settings(opts, "mqtt://u:p@127.0.0.1:1", "smtp://127.0.0.1:2")
    assert settings.database.url == f"sqlite:///{(tmp_path / 'd').resolve() / 'labormon.db'}"


# ----------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["alerts", "ack", "abc"],
            "labormon: error: Invalid value for 'alert_id': Input should be a valid integer, "
            "unable to parse string as an integer (try labormon alerts ack --help)",
        ),
        (["nosuch"], "labormon: error: No such command 'nosuch'. (try labormon --help)"),
        (["demo", "--zzz"], "labormon: error: No such option: --zzz (try labormon demo --help)"),
        (
            ["stats", "--jsn"],
            "labormon: error: No such option: --jsn; did you mean --json? "
            "(try labormon stats --help)",
        ),
        (["import"], "labormon: error: Missing argument 'path'. (try labormon import --help)"),
        (
            ["accounts", "add", "--kind", "leader"],
            "labormon: error: Missing option '--id'. (try labormon accounts add --help)",
        ),
        (["mqtt", "nope"], "labormon: error: No such command 'nope'. (try labormon mqtt --help)"),
    ],
)
def test_usage_errors_are_one_line(db: str, args: list[str], expected: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert one_line(result) == expected
    assert result.stdout == ""


def test_help_is_left_as_it_is(db: str) -> None:
    result = invoke("alerts", "ack", "--help")
    assert result.exit_code == 0
    assert "Usage: labormon alerts ack" in result.stdout
    assert result.stderr == ""
    bare = invoke("alerts")  # a group without a command shows its help
    assert "Usage: labormon alerts" in bare.stdout


# ----------------------------------------------------------------- paths that fail


def test_unwritable_paths_are_one_line_errors(db: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    below = blocker / "sub"  # its parent is a file: ENOTDIR, even for root
    cases = [
        ("mqtt", "auth-files", str(below)),
        ("simulate", "--points", "3", "--months", "2", "--out", str(below)),
        ("score", "--as-of", "2024-06-30", "--out", str(below / "risk.csv")),
        ("report", "monthly", "--month", "2024-05", "--out", str(below / "r.csv")),
        ("dashboards", "export", str(below)),
    ]
    for args in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.stderr, result.exception)
        line = one_line(result)
        assert line.startswith("labormon: ") and str(blocker) in line, (args, line)
    result = invoke("mqtt", "auth-files", str(blocker))
    assert result.exit_code == 2
    assert one_line(result) == f"labormon: {blocker} exists and is not a directory"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/mem")
def test_unreadable_import_file_is_a_one_line_error(db: str) -> None:
    result = invoke("import", "/proc/self/mem", "--kind", "point")
    assert result.exit_code == 2
    assert one_line(result).startswith("labormon: cannot read /proc/self/mem: ")


# ----------------------------------------------------------------- .xlsx import


def _book(path: Path, header: list[str], *rows: list[object]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_xlsx_numbers_and_dates_pass_like_csv(db: str, tmp_path: Path) -> None:
    # Excel stores typed codes, counts and phone numbers as numbers.
    _book(
        tmp_path / "points.xlsx",
        ["point_id", "name", "region_code", "industry", "headcount"],
        ["P-X1", "赫山电子厂", 430903, "manufacturing", 150],
        ["P-X2", "资阳建工有限公司", 430902.0, "construction", 320.0],
    )
    # A month typed as 2024-11 is a date to Excel; the pay day a date-time.
    wage = ["W-X1", "P-X1", datetime(2024, 11, 1), 150, 120, 4500.5, datetime(2024, 12, 5)]
    _book(
        tmp_path / "wages.xlsx",
        WAGES.splitlines()[0].split(","),
        [*wage, 0, 0, 0, 0, 0, "normal", None],
    )
    header = ["petition_id", "received_at", "channel", "region_code", "people_involved"]
    _book(
        tmp_path / "petitions.xlsx",
        [*header, "summary", "petitioner_phone", "enterprise_name"],
        ["X1", datetime(2025, 1, 9, 9, 30), "hotline_12351", 430903, 6, "拖欠", 13812345678, None],
        ["X2", datetime(2025, 1, 9, 10), "visit", 430902.0, 12.0, "欠薪", 13900001111.0, 2024],
    )
    result = invoke("import", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    stats = json.loads(invoke("stats", "--json").stdout)
    assert (stats["points"], stats["wage_reports"], stats["petitions"]) == (2, 1, 2)
    assert stats["rejected"] == 0
    rows = fetch_all(db, "SELECT region_code FROM monitoring_points ORDER BY point_id")
    assert [r[0] for r in rows] == ["430903", "430902"]
    rows = fetch_all(db, "SELECT enterprise_name FROM petitions ORDER BY petition_id")
    assert [r[0] for r in rows] == [None, "2024"]


def test_xlsx_cell_text() -> None:
    from datetime import UTC, date, time

    from ingest.files import xlsx_cell

    assert xlsx_cell(430922, UTC) == "430922"
    assert xlsx_cell(13812345678.0, UTC) == "13812345678"
    assert xlsx_cell(4500.5, UTC) == "4500.5"
    assert xlsx_cell(None, UTC) == ""
    assert xlsx_cell(" x ", UTC) == " x "
    assert xlsx_cell(True, UTC) == "TRUE"
    assert xlsx_cell(date(2025, 1, 9), UTC) == "2025-01-09"
    assert xlsx_cell(datetime(2025, 1, 9, 9, 30), UTC) == "2025-01-09T09:30:00+00:00"
    assert xlsx_cell(time(9, 30), UTC) == "09:30:00"
    assert xlsx_cell(date(2025, 1, 9), UTC, keep_dates=True) == date(2025, 1, 9)


# ----------------------------------------------------------------- point accounts


def test_point_account_before_the_point(db: str, tmp_path: Path) -> None:
    add = ("accounts", "add", "--kind", "point", "--id", "P-RV1")
    result = invoke(*add, "--region", "430902", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["id"] == "P-RV1"
    line = one_line(result)
    assert line.startswith("labormon: warning: monitoring point P-RV1 is not registered yet")
    # The region must still be known.
    result = invoke("accounts", "add", "--kind", "point", "--id", "P-RV2", "--region", "430999")
    assert result.exit_code == 2
    assert one_line(result) == "labormon: --region: unknown region code 430999"
    # Wage reports for the point are refused until it is imported.
    (tmp_path / "wages.csv").write_text(WAGES, encoding="utf-8")
    result = invoke("import", str(tmp_path / "wages.csv"))
    assert result.exit_code == 1
    assert "point_id: unknown monitoring point P-RV1" in result.stderr
    (tmp_path / "points.csv").write_text(POINTS, encoding="utf-8")
    result = invoke("import", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    stats = json.loads(invoke("stats", "--json").stdout)
    assert (stats["points"], stats["wage_reports"]) == (1, 1)
