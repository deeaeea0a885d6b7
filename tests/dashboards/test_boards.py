"""The boards as code: the committed JSON is what the code builds, it passes the schema of
every panel type it uses, and the calendar behind the Spring Festival region is sane."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from dashboards.build import JSON_DIR, build_all, main, render, stale_files, write_all
from dashboards.calendar import SPRING_FESTIVALS, seasons
from dashboards.labels import LEVEL_COLORS, LEVEL_LABELS, label_sql
from dashboards.model import DATASOURCE_UID
from dashboards.provisioning import retarget
from dashboards.schema import PANEL_SCHEMAS, check_dashboard

COMMITTED = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in JSON_DIR.glob("*.json")}


def test_committed_json_is_what_the_code_builds() -> None:
    assert stale_files() == [], "run `make dashboards` and commit dashboards/json"
    assert main(["--check"]) == 0


def test_a_stale_or_extra_file_is_caught(tmp_path: Path) -> None:
    write_all(tmp_path)
    assert stale_files(tmp_path) == []
    board = tmp_path / "labormon-wages.json"
    board.write_text(board.read_text(encoding="utf-8").replace("工资", "薪资"), encoding="utf-8")
    (tmp_path / "old-board.json").write_text("{}", encoding="utf-8")
    (tmp_path / "labormon-alerts.json").unlink()
    assert stale_files(tmp_path) == [
        "labormon-alerts.json",
        "labormon-wages.json",
        "old-board.json",
    ]
    assert main(["--check", "--out", str(tmp_path)]) == 1
    assert main(["--out", str(tmp_path)]) == 0
    assert stale_files(tmp_path) == []


def test_the_four_boards_in_chinese() -> None:
    titles = {b["uid"]: b["title"] for b in COMMITTED.values()}
    assert titles == {
        "labormon-overview": "劳动关系风险总览",
        "labormon-wages": "工资监测趋势",
        "labormon-petitions": "信访趋势",
        "labormon-alerts": "预警处置",
    }
    for board in COMMITTED.values():
        assert board["timezone"] == "Asia/Shanghai"
        for panel in board["panels"]:
            # Every title is Chinese (analysts read the boards in Chinese).
            assert any("\u4e00" <= ch <= "\u9fff" for ch in panel["title"]), panel["title"]


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_boards_pass_the_schema_of_each_panel_type(name: str) -> None:
    board = COMMITTED[name]
    assert check_dashboard(board) == []
    used = {p["type"] for p in board["panels"]}
    assert used <= set(PANEL_SCHEMAS)


def test_the_boards_use_these_panel_types() -> None:
    used = {p["type"] for b in COMMITTED.values() for p in b["panels"]}
    assert used == {"row", "timeseries", "stat", "barchart", "table", "piechart"}


def _types(board: dict[str, Any]) -> set[str]:
    return {p["type"] for p in board["panels"]}


def _first(board: dict[str, Any], panel_type: str) -> dict[str, Any]:
    return next(p for p in board["panels"] if p["type"] == panel_type)


def _parent(board: dict[str, Any], panel_type: str, path: str) -> tuple[Any, str]:
    node: Any = _first(board, panel_type)
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    return node, last


def _drop(path: str) -> Any:
    def change(board: dict[str, Any], panel_type: str) -> None:
        node, last = _parent(board, panel_type, path)
        del node[last]

    return change


def _set(path: str, value: Any) -> Any:
    def change(board: dict[str, Any], panel_type: str) -> None:
        node, last = _parent(board, panel_type, path)
        node[last] = value

    return change


BREAKAGES = [
    ("timeseries", _drop("gridPos.h"), "$.panels[{i}].gridPos: missing h"),
    ("timeseries", _drop("fieldConfig.overrides"), "$.panels[{i}].fieldConfig: missing overrides"),
    ("timeseries", _drop("options"), "$.panels[{i}]: missing options"),
    ("timeseries", _set("type", "graph"), "no schema for panel type 'graph'"),
    ("stat", _drop("options.reduceOptions"), "$.panels[{i}].options: missing reduceOptions"),
    ("stat", _drop("targets.0.rawSql"), "$.panels[{i}].targets[0]: missing rawSql"),
    ("stat", _set("targets.0.format", "logs"), "$.panels[{i}].targets[0].format: 'logs'"),
    ("stat", _set("targets.0.rawQuery", False), "$.panels[{i}].targets[0].rawQuery: False"),
    ("table", _drop("datasource.uid"), "$.panels[{i}].datasource: missing uid"),
    ("table", _set("datasource.type", "mysql"), "$.panels[{i}].datasource.type: 'mysql'"),
    ("barchart", _drop("options.xField"), "$.panels[{i}].options: missing xField"),
    ("barchart", _set("gridPos.w", 30), "$.panels[{i}].gridPos.w"),
    ("piechart", _set("options.pieType", "cake"), "$.panels[{i}].options.pieType: 'cake'"),
    ("timeseries", _set("fieldConfig.defaults.unit", "furlongs"), "'furlongs' does not match"),
    ("timeseries", _set("title", " "), "$.panels[{i}].title: expected a non-empty string"),
    ("stat", _set("gridPos.x", 20), "overlaps panel"),
    ("row", _set("gridPos.w", 12), "$.panels[{i}].gridPos.w: 12 not one of (24,)"),
]


@pytest.mark.parametrize(("panel_type", "change", "problem"), BREAKAGES)
def test_the_schema_check_catches_a_broken_panel(
    panel_type: str, change: Any, problem: str
) -> None:
    name = next(n for n, b in sorted(COMMITTED.items()) if panel_type in _types(b))
    board = copy.deepcopy(COMMITTED[name])
    index = board["panels"].index(_first(board, panel_type))
    change(board, panel_type)
    problems = check_dashboard(board)
    assert any(problem.format(i=index) in p for p in problems), problems


def test_the_schema_check_catches_dashboard_level_mistakes() -> None:
    board = copy.deepcopy(COMMITTED["labormon-petitions.json"])
    board["uid"] = "x" * 41
    board["panels"][2]["id"] = board["panels"][1]["id"]
    board["panels"][1]["targets"].append(dict(board["panels"][1]["targets"][0]))
    del board["templating"]["list"][0]["datasource"]
    board["annotations"]["list"][1]["target"]["rawSql"] = ""
    problems = "\n".join(check_dashboard(board))
    for expected in (
        "$.uid:",
        "duplicate ids",
        "duplicate refId",
        "$.templating.list[0]: missing datasource",
        "$.annotations.list[1].target.rawSql: expected a non-empty string",
    ):
        assert expected in problems


def test_build_refuses_an_invalid_board(monkeypatch: pytest.MonkeyPatch) -> None:
    import dashboards.build as build

    def broken() -> Any:
        class Broken:
            def to_json(self) -> dict[str, Any]:
                board = copy.deepcopy(COMMITTED["labormon-wages.json"])
                del board["panels"][1]["gridPos"]
                return board

        return Broken()

    monkeypatch.setattr(build, "BOARDS", (broken,))
    with pytest.raises(build.InvalidDashboard, match=r"labormon-wages: .*missing gridPos"):
        build_all()
    assert main(["--check"]) == 1


def test_thresholds_use_the_level_colours() -> None:
    assert LEVEL_COLORS == {"IV": "blue", "III": "yellow", "II": "orange", "I": "red"}
    overview = COMMITTED["labormon-overview.json"]
    table = next(p for p in overview["panels"] if p["title"] == "风险最高的20家监测点企业")
    props = {
        o["matcher"]["options"]: {x["id"]: x["value"] for x in o["properties"]}
        for o in table["fieldConfig"]["overrides"]
    }
    steps = props["风险分"]["thresholds"]["steps"]
    assert [s["color"] for s in steps] == ["green", "blue", "yellow", "orange", "red"]
    assert [s["value"] for s in steps][1:] == sorted(s["value"] for s in steps[1:])
    mapping = props["等级"]["mappings"][0]["options"]
    assert {code: (m["text"], m["color"]) for code, m in mapping.items()} == {
        code: (LEVEL_LABELS[code], LEVEL_COLORS[code]) for code in LEVEL_LABELS
    }


def test_spring_festival_dates_look_lunar() -> None:
    days = sorted(SPRING_FESTIVALS.values())
    # The festival falls between January 21st and February 20th ...
    assert all(date(d.year, 1, 21) <= d <= date(d.year, 2, 20) for d in days)
    # ... 12 or 13 lunar months after the previous one.
    gaps = {(b - a).days for a, b in itertools.pairwise(days)}
    assert gaps <= {353, 354, 355, 383, 384, 385}
    assert all(year == d.year for year, d in SPRING_FESTIVALS.items())
    season = next(s for s in seasons() if s.festival == date(2025, 1, 29))
    assert (season.first_day, season.last_day) == (date(2024, 11, 30), date(2025, 2, 12))
    assert season.ends - season.starts == timedelta(days=75)


def test_labels_become_sql_and_data_source_refs_can_be_retargeted() -> None:
    assert label_sql("level", {"I": "特别重大", "o'k": "x"}) == (
        "CASE level WHEN 'I' THEN '特别重大' WHEN 'o''k' THEN 'x' ELSE level END"
    )
    assert label_sql("tier_reached", {3: "县级"}) == (
        "CASE tier_reached WHEN 3 THEN '县级' ELSE tier_reached::text END"
    )
    board = build_all()["labormon-alerts.json"]
    moved = retarget(board, "our-pg")
    assert DATASOURCE_UID not in render(moved)
    assert '"uid": "our-pg"' in render(moved)
    assert DATASOURCE_UID in render(board)  # the original is untouched
    assert retarget(board, DATASOURCE_UID) is board


def _units() -> list[tuple[str, str, str, str]]:
    """(board, panel, field or "", unit) for every unit set on a panel or a field."""
    out = []
    for name, board in COMMITTED.items():
        for panel in board["panels"]:
            if "fieldConfig" not in panel:
                continue
            defaults = panel["fieldConfig"]["defaults"]
            if "unit" in defaults:
                out.append((name, panel["title"], "", defaults["unit"]))
            for o in panel["fieldConfig"]["overrides"]:
                for prop in o["properties"]:
                    if prop["id"] == "unit":
                        out.append((name, panel["title"], o["matcher"]["options"], prop["value"]))
    return out


def test_money_in_wan_yuan_and_durations_in_hours() -> None:
    units = _units()
    # Grafana's own "¥"/"s" units would show "¥1.2 Mil" and "1.5 hour" to Chinese readers.
    assert not [u for u in units if u[3] in ("currencyCNY", "s") or u[3].startswith("dt")]
    money = {(b, p, f): unit for b, p, f, unit in units if "金额" in (f or p)}
    durations = {(b, p, f): unit for b, p, f, unit in units if "用时" in (f or p)}
    assert len(money) == 3 and set(money.values()) == {"suffix:万元"}, money
    assert len(durations) == 5 and set(durations.values()) == {"suffix:小时"}, durations
    assert {(p, f) for _b, p, f, unit in units if unit == "suffix:元"} == {
        ("一线职工平均工资", ""),
        ("一线职工月平均工资", ""),
        ("最近月份各区县明细", "平均一线工资"),
    }
    # The SQL scales what the suffix names: yuan to 万元, seconds to hours.
    sql = {
        p["title"]: " ".join(t["rawSql"] for t in p.get("targets", []))
        for board in COMMITTED.values()
        for p in board["panels"]
    }
    for _b, panel, _f in money:
        assert "/ 10000.0" in sql[panel], panel
    for _b, panel, _f in durations:
        assert "/ 3600.0" in sql[panel], panel
    # The level thresholds of the acknowledgement times are in hours too (I级: 15 minutes).
    overview = COMMITTED["labormon-overview.json"]
    ack = next(p for p in overview["panels"] if p["title"] == "确认用时中位数(按级别)")
    first = ack["fieldConfig"]["overrides"][0]
    assert first["matcher"]["options"] == LEVEL_LABELS["I"]
    [steps] = [x["value"]["steps"] for x in first["properties"] if x["id"] == "thresholds"]
    assert steps[1]["value"] == 0.25
