"""`labormon dashboards push` against a local server that answers like Grafana's HTTP API:
the requests it makes, idempotence, and one clear line with exit 2 for each failure."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from dashboards.build import JSON_DIR
from monitor.cli import app
from tests.dashboards.fake_grafana import FakeGrafana

ROOT = Path(__file__).resolve().parents[2]
DB = "postgresql://grafana_reader:pa%40ss@db.internal:5432/labormon"
UIDS = ["labormon-overview", "labormon-wages", "labormon-petitions", "labormon-alerts"]

pytestmark = pytest.mark.usefixtures("clean_env")


def push(grafana: FakeGrafana, *args: str, token: str | None = None) -> Result:
    return CliRunner().invoke(
        app,
        [
            "dashboards",
            "push",
            "--url",
            grafana.url,
            "--token",
            token or grafana.token,
            "--db",
            DB,
            *args,
        ],
    )


def committed(uid: str) -> dict:
    return json.loads((JSON_DIR / f"{uid}.json").read_text(encoding="utf-8"))


def test_first_push_creates_everything_with_the_right_requests(grafana: FakeGrafana) -> None:
    command = ["dashboards", "push", "--url", grafana.url + "/", "--token", grafana.token]
    done = subprocess.run(
        [sys.executable, "-m", "monitor", *command, "--db", DB],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Grafana 11.3.0 at {grafana.url}"
    assert lines[1:] == [
        "folder labormon (劳动关系监测): created",
        "datasource labormon-pg (labormon): created",
        "dashboard labormon-overview (劳动关系风险总览): created",
        "dashboard labormon-wages (工资监测趋势): created",
        "dashboard labormon-petitions (信访趋势): created",
        "dashboard labormon-alerts (预警处置): created",
        "6 changed",
    ]

    calls = [(r.method, r.path) for r in grafana.requests]
    assert calls == [
        ("GET", "/api/health"),
        ("GET", "/api/folders/labormon"),
        ("POST", "/api/folders"),
        ("GET", "/api/datasources/uid/labormon-pg"),
        ("POST", "/api/datasources"),
        *[
            call
            for uid in UIDS
            for call in (("GET", f"/api/dashboards/uid/{uid}"), ("POST", "/api/dashboards/db"))
        ],
        ("GET", "/api/search"),
    ]
    # Every request carries the token as a bearer token.
    assert {r.authorization for r in grafana.requests} == {f"Bearer {grafana.token}"}
    search = grafana.requests[-1].query
    assert search == {"type": ["dash-db"], "folderUIDs": ["labormon"]}

    folder = grafana.requests[2].body
    assert folder == {"title": "劳动关系监测", "uid": "labormon"}

    datasource = grafana.requests[4].body
    assert datasource["uid"] == "labormon-pg"
    assert datasource["type"] == "grafana-postgresql-datasource"
    assert (datasource["url"], datasource["user"], datasource["database"]) == (
        "db.internal:5432",
        "grafana_reader",
        "labormon",
    )
    assert datasource["secureJsonData"] == {"password": "pa@ss"}
    assert datasource["jsonData"]["database"] == "labormon"
    assert datasource["jsonData"]["sslmode"] == "require"  # not on this host: encrypt

    saves = [r.body for r in grafana.requests if r.path == "/api/dashboards/db"]
    assert [s["dashboard"]["uid"] for s in saves] == UIDS
    for save in saves:
        assert save["folderUid"] == "labormon"
        assert save["overwrite"] is True
        expected = committed(save["dashboard"]["uid"])
        del expected["version"]  # Grafana numbers the versions
        assert save["dashboard"] == expected
    assert {uid: d["meta"]["folderUid"] for uid, d in grafana.dashboards.items()} == dict.fromkeys(
        UIDS, "labormon"
    )


def test_a_second_push_changes_nothing_and_says_so(grafana: FakeGrafana) -> None:
    first = push(grafana)
    assert first.exit_code == 0, first.stderr
    writes = len(grafana.writes())
    assert writes == 6

    again = push(grafana)
    assert again.exit_code == 0, again.stderr
    assert len(grafana.writes()) == writes  # not one POST or PUT
    assert again.stdout.splitlines()[-1] == "nothing changed: Grafana already has these boards"
    assert all(line.endswith(": unchanged") for line in again.stdout.splitlines()[1:-1])
    assert {uid: d["meta"]["version"] for uid, d in grafana.dashboards.items()} == dict.fromkeys(
        UIDS, 1
    )


def test_push_repairs_what_was_changed_in_grafana(grafana: FakeGrafana) -> None:
    assert push(grafana).exit_code == 0
    # An analyst edited a board in the UI, someone renamed the folder and pointed the data
    # source elsewhere, and a board of their own sits in the folder.
    grafana.dashboards["labormon-wages"]["dashboard"]["panels"].pop()
    grafana.folders["labormon"]["title"] = "别的名字"
    grafana.datasources["labormon-pg"]["url"] = "elsewhere:5432"
    grafana.dashboards["mine"] = {
        "dashboard": {"id": 99, "uid": "mine", "title": "我的看板"},
        "meta": {"folderUid": "labormon", "folderTitle": "x", "url": "/d/mine", "version": 1},
    }
    before = len(grafana.writes())

    result = push(grafana)
    assert result.exit_code == 0, result.stderr
    assert "folder labormon (劳动关系监测): updated" in result.stdout
    assert "datasource labormon-pg (labormon): updated" in result.stdout
    assert "dashboard labormon-wages (工资监测趋势): updated" in result.stdout
    assert "dashboard labormon-overview (劳动关系风险总览): unchanged" in result.stdout
    assert result.stdout.splitlines()[-1] == "3 changed"
    assert "note: dashboard mine (我的看板) in folder labormon is not one of labormon's" in (
        result.stderr
    )
    writes = grafana.writes()[before:]
    assert [(w.method, w.path) for w in writes] == [
        ("PUT", "/api/folders/labormon"),
        ("PUT", "/api/datasources/uid/labormon-pg"),
        ("POST", "/api/dashboards/db"),
    ]
    assert writes[0].body == {"title": "劳动关系监测", "overwrite": True}
    assert writes[2].body["overwrite"] is True
    assert writes[2].body["folderUid"] == "labormon"
    assert grafana.dashboards["labormon-wages"]["meta"]["version"] == 2
    assert grafana.datasources["labormon-pg"]["url"] == "db.internal:5432"

    forced = push(grafana, "--force")
    assert forced.exit_code == 0
    assert forced.stdout.splitlines()[-1] == "5 changed"


def one_line_failure(result: Result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_wrong_token_is_one_line(grafana: FakeGrafana) -> None:
    line = one_line_failure(push(grafana, token="glsa_wrong"))
    assert line == (
        f"labormon: Grafana at {grafana.url} refused the token while reading folder labormon "
        "(401 Unauthorized: Invalid API key); use a service account token with the Editor role"
    )
    assert grafana.writes() == []


def test_missing_permission_is_one_line(grafana: FakeGrafana) -> None:
    grafana.denied = {"dashboards:write"}
    line = one_line_failure(push(grafana))
    assert line.startswith(
        f"labormon: Grafana at {grafana.url} denied saving dashboard labormon-overview "
        "(403 Forbidden: You'll need additional permissions to perform this action. "
        "Permissions needed: dashboards:create)"
    )


def test_a_version_conflict_is_one_line(grafana: FakeGrafana) -> None:
    grafana.conflicts = {"labormon-wages"}
    line = one_line_failure(push(grafana))
    assert line.startswith(
        "labormon: Grafana refused saving dashboard labormon-wages (412 Precondition Failed, "
        "version-mismatch: The dashboard has been changed by someone else)"
    )


def test_an_unreachable_grafana_is_one_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more.
    result = CliRunner().invoke(
        app,
        ["dashboards", "push", "--url", f"http://127.0.0.1:{port}", "--token", "t", "--db", DB],
    )
    line = one_line_failure(result)
    assert line.startswith(f"labormon: cannot reach Grafana at http://127.0.0.1:{port}: ")
    assert "Connection refused" in line


def test_bad_usage_is_one_line(grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    no_token = runner.invoke(app, ["dashboards", "push", "--url", grafana.url, "--db", DB])
    assert "no Grafana token" in one_line_failure(no_token)
    sqlite = runner.invoke(
        app, ["dashboards", "push", "--url", grafana.url, "--token", "t", "--db", "sqlite:///x.db"]
    )
    assert "Grafana's built-in data source needs PostgreSQL" in one_line_failure(sqlite)
    assert grafana.requests == []
    # URL and token may come from the configuration and the environment instead.
    monkeypatch.setenv("LABORMON_GRAFANA__URL", grafana.url)
    monkeypatch.setenv("LABORMON_GRAFANA__TOKEN", grafana.token)
    from_env = runner.invoke(app, ["dashboards", "push", "--db", DB])
    assert from_env.exit_code == 0, from_env.stderr
