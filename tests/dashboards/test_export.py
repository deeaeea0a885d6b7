"""`labormon dashboards export DIR`: files that drop into /etc/grafana/provisioning."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dashboards.build import JSON_DIR
from monitor.cli import app

pytestmark = pytest.mark.usefixtures("clean_env")


def export(target: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["dashboards", "export", str(target), *args])
    return result.exit_code, result.stdout, result.stderr


def test_export_for_postgresql(tmp_path: Path) -> None:
    target = tmp_path / "provisioning"
    code, out, err = export(target, "--db", "postgresql://labormon:s3cret@localhost/labormon")
    assert code == 0, err
    datasource = target / "datasources" / "labormon.yaml"
    provider = target / "dashboards" / "labormon.yaml"
    boards = sorted((target / "dashboards" / "labormon").glob("*.json"))
    assert out.split() == [str(datasource), str(provider), *map(str, sorted(boards, key=_order))]

    (source,) = yaml.safe_load(datasource.read_text(encoding="utf-8"))["datasources"]
    assert source == {
        "name": "labormon",
        "uid": "labormon-pg",
        "type": "grafana-postgresql-datasource",
        "access": "proxy",
        "url": "localhost:5432",
        "user": "labormon",
        "jsonData": {
            "database": "labormon",
            "sslmode": "disable",  # same host: no TLS needed
            "postgresVersion": 1200,
            "timescaledb": False,
            "maxOpenConns": 10,
            "maxIdleConns": 5,
            "connMaxLifetime": 14400,
        },
        "secureJsonData": {"password": "s3cret"},
        "editable": False,
    }
    # The password is in it: not world-readable.
    assert stat.S_IMODE(datasource.stat().st_mode) == 0o640

    (prov,) = yaml.safe_load(provider.read_text(encoding="utf-8"))["providers"]
    assert (prov["type"], prov["folder"], prov["folderUid"]) == ("file", "劳动关系监测", "labormon")
    assert prov["options"]["path"] == "/etc/grafana/provisioning/dashboards/labormon"
    assert prov["allowUiUpdates"] is False

    assert [b.name for b in boards] == sorted(p.name for p in JSON_DIR.glob("*.json"))
    for board in boards:
        assert board.read_text(encoding="utf-8") == (JSON_DIR / board.name).read_text(
            encoding="utf-8"
        )
    assert "copy" in err
    assert "/etc/grafana/provisioning" in err


def _order(path: Path) -> int:
    order = ["labormon-overview", "labormon-wages", "labormon-petitions", "labormon-alerts"]
    return order.index(path.stem)


def test_export_follows_the_grafana_settings(tmp_path: Path) -> None:
    config = tmp_path / "labormon.toml"
    config.write_text(
        "[database]\n"
        'url = "sqlite:///./var/labormon.db"\n'
        "[grafana]\n"
        'database_url = "postgresql://reader:pw@pg.internal:6432/union?sslmode=verify-full"\n'
        'datasource_uid = "union-pg"\n'
        'datasource_name = "工会数据库"\n'
        'folder_uid = "union"\n'
        'folder_title = "益阳市总工会"\n'
        'dashboards_path = "/var/lib/grafana/dashboards/labormon"\n',
        encoding="utf-8",
    )
    target = tmp_path / "out"
    stale = target / "dashboards" / "labormon" / "retired-board.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}", encoding="utf-8")

    code, _out, err = export(target, "--config", str(config))
    assert code == 0, err
    assert not stale.exists()  # a board labormon no longer makes is removed
    (source,) = yaml.safe_load((target / "datasources" / "labormon.yaml").read_text())[
        "datasources"
    ]
    assert (source["uid"], source["name"], source["url"], source["user"]) == (
        "union-pg",
        "工会数据库",
        "pg.internal:6432",
        "reader",
    )
    assert source["jsonData"]["database"] == "union"
    assert source["jsonData"]["sslmode"] == "verify-full"
    (prov,) = yaml.safe_load((target / "dashboards" / "labormon.yaml").read_text())["providers"]
    assert (prov["folderUid"], prov["folder"]) == ("union", "益阳市总工会")
    assert prov["options"]["path"] == "/var/lib/grafana/dashboards/labormon"

    board = json.loads((target / "dashboards" / "labormon" / "labormon-alerts.json").read_text())
    refs = _datasource_refs(board)
    assert refs
    assert all(ref == {"type": "grafana-postgresql-datasource", "uid": "union-pg"} for ref in refs)


def _datasource_refs(node: object) -> list[dict]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "grafana-postgresql-datasource":
            found.append(node)
        for value in node.values():
            found += _datasource_refs(value)
    elif isinstance(node, list):
        for value in node:
            found += _datasource_refs(value)
    return found


def test_export_with_sqlite_writes_placeholders_and_says_so(tmp_path: Path) -> None:
    code, _out, err = export(tmp_path / "p", "--db", f"sqlite:///{tmp_path}/labormon.db")
    assert code == 0
    text = (tmp_path / "p" / "datasources" / "labormon.yaml").read_text(encoding="utf-8")
    assert "Grafana's built-in data source needs\n# PostgreSQL" in text
    (source,) = yaml.safe_load(text)["datasources"]
    assert source["url"] == "CHANGE_ME:5432"
    assert source["user"] == "CHANGE_ME"
    assert source["secureJsonData"] == {"password": "CHANGE_ME"}
    assert (
        "the configured database is SQLite, but Grafana's built-in data source needs PostgreSQL"
        in err
    )


def test_export_refuses_a_file_as_directory(tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("x", encoding="utf-8")
    code, _out, err = export(target, "--db", "postgresql://u:p@localhost/db")
    assert code == 2
    assert err.strip() == f"labormon: {target} exists and is not a directory"
