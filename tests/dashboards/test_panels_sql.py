"""Every panel's SQL, expanded as Grafana expands it for PostgreSQL, runs against a
simulated year and returns what Grafana needs: a `time` column, numeric values, rows in
time order for time series; and the county variable filters every panel."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from dashboards.build import JSON_DIR
from dashboards.calendar import seasons
from tests.dashboards.conftest import AnalystYear
from tests.dashboards.data import YEAR_FROM, YEAR_TO
from tests.dashboards.grafana_sql import (
    Frame,
    MacroError,
    TimeRange,
    Variable,
    expand,
    expand_macros,
    go_float,
    replace_variables,
    rfc3339nano,
)

BOARDS: dict[str, dict[str, Any]] = {
    p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(JSON_DIR.glob("*.json"))
}
COUNTIES = {
    "430902": "资阳区",
    "430903": "赫山区",
    "430921": "南县",
    "430922": "桃江县",
    "430923": "安化县",
    "430981": "沅江市",
}


def dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def run(conn: asyncpg.Connection, sql: str) -> Frame:
    statement = await conn.prepare(sql)
    columns = [(a.name, a.type.name) for a in statement.get_attributes()]
    return Frame(columns, [tuple(r) for r in await statement.fetch()])


def targets(board: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(p, t) for p in board["panels"] if p["type"] != "row" for t in p["targets"]]


# --------------------------------------------------------------------------- the emulation


FROM = datetime(2018, 4, 12, 18, 0, tzinfo=UTC)
FIVE_MINUTES = TimeRange(FROM, FROM + timedelta(minutes=5))


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # Cases from Grafana's own macros_test.go for the PostgreSQL data source.
        ("select $__time(time_column)", 'select time_column AS "time"'),
        (
            "WHERE $__timeFilter(time_column)",
            "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'",
        ),
        ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
        ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
        (
            "SELECT $__timeGroup(time_column,'5m'), value",
            'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value',
        ),
        (
            "SELECT $__timeGroup(time_column,'5m') as time, value",
            "SELECT floor(extract(epoch from time_column)/300)*300 as time, value",
        ),
        ("$__timeGroup(time_column , '5m')", "floor(extract(epoch from time_column)/300)*300"),
        (
            "SELECT $__timeGroupAlias(time_column,'5m')",
            'SELECT floor(extract(epoch from time_column)/300)*300 AS "time"',
        ),
        (
            "select $__unixEpochFilter(time)",
            f"select time >= {int(FROM.timestamp())} AND time <= {int(FROM.timestamp()) + 300}",
        ),
        ("select $__unixEpochNanoFrom()", f"select {int(FROM.timestamp()) * 10**9}"),
        (
            "SELECT $__unixEpochGroupAlias(time_column+time_adjustment,'5m')",
            'SELECT floor((time_column+time_adjustment)/300)*300 AS "time"',
        ),
        # A day and a month-long bucket, as Go's %v prints their seconds.
        ("$__timeGroup(t, '1d')", "floor(extract(epoch from t)/86400)*86400"),
        ("$__timeGroup(t, '30d')", "floor(extract(epoch from t)/2.592e+06)*2.592e+06"),
    ],
)
def test_macros_expand_as_in_grafana(sql: str, expected: str) -> None:
    assert expand_macros(sql, FIVE_MINUTES) == expected


def test_fractional_instants_and_unknown_macros() -> None:
    assert rfc3339nano(datetime(1960, 2, 1, 7, 0, 0, 500_000, tzinfo=UTC)) == (
        "1960-02-01T07:00:00.5Z"
    )
    assert [go_float(v) for v in (300.0, 604800.0, 1e6, 0.02)] == ["300", "604800", "1e+06", "0.02"]
    with pytest.raises(MacroError, match='unknown macro "__nope"'):
        expand_macros("SELECT $__nope(x)", FIVE_MINUTES)


def test_variables_are_quoted_as_the_sql_data_sources_do() -> None:
    county = Variable("county", ["430902", "430903", "43'0"])
    assert replace_variables("IN ($county)", {"county": county}) == (
        "IN ('430902','430903','43''0')"
    )
    county.selected = ["430903"]
    assert replace_variables("IN (${county})", {"county": county}) == "IN ('430903')"
    single = Variable("c", ["x'y"], selected=["x'y"], multi=False, include_all=False)
    assert replace_variables("= '[[c]]'", {"c": single}) == "= 'x''y'"
    # Macros and unknown variables are left to the backend.
    assert replace_variables("$__timeTo() $other", {"county": county}) == "$__timeTo() $other"


# --------------------------------------------------------------------------- the boards


def test_panel_sql_reads_only_the_views_and_filters_by_county() -> None:
    relation = re.compile(r"\b(?:FROM|JOIN)\s+(\(|[A-Za-z_][\w.]*)", re.IGNORECASE)
    checked = 0
    for uid, board in BOARDS.items():
        for panel, target in targets(board):
            sql, where = target["rawSql"], f"{uid} / {panel['title']} / {target['refId']}"
            assert "$county" in sql, where
            # Newer Grafana strips comments before expanding macros, older does not.
            assert "--" not in sql, where
            assert "/*" not in sql, where
            sources = {m.group(1) for m in relation.finditer(sql)}
            assert sources, where
            assert all(s == "(" or s.startswith("v_") for s in sources), where
            checked += 1
    assert checked >= 30  # the loop really saw the boards


@dataclass(frozen=True)
class Scenario:
    name: str
    start: datetime
    end: datetime
    counties: list[str] | None  # None: All


CHINA = timedelta(hours=8)
SCENARIOS = [
    Scenario("the year, all counties", YEAR_FROM, YEAR_TO, None),
    Scenario("the year, one county", YEAR_FROM, YEAR_TO, ["430923"]),
    Scenario("the year, two counties", YEAR_FROM, YEAR_TO, ["430902", "430981"]),
    Scenario(
        "a week before the festival",
        datetime(2025, 1, 20, tzinfo=UTC) - CHINA,
        datetime(2025, 1, 27, tzinfo=UTC) - CHINA,
        None,
    ),
    Scenario(
        "a month without data",
        datetime(2023, 6, 1, tzinfo=UTC),
        datetime(2023, 7, 1, tzinfo=UTC),
        None,
    ),
]


async def variable_options(conn: asyncpg.Connection, board: dict[str, Any]) -> dict[str, Variable]:
    """Every region variable at "All", resolved in order as Grafana does (province ->
    city -> county, each query expanded with the ones before it)."""
    resolved: dict[str, Variable] = {}
    for variable in board["templating"]["list"]:
        sql = replace_variables(variable["query"], resolved)
        assert "$" not in sql, variable["name"]
        frame = await run(conn, sql)
        assert [name for name, _ in frame.columns] == ["__text", "__value"]
        resolved[variable["name"]] = Variable(
            variable["name"], [str(v) for v in frame.column("__value")]
        )
    return resolved


async def county_options(conn: asyncpg.Connection, board: dict[str, Any]) -> list[str]:
    return list((await variable_options(conn, board))["county"].options)


@pytest.mark.parametrize("uid", list(BOARDS))
async def test_every_panel_query_runs_on_postgresql(analyst_year: AnalystYear, uid: str) -> None:
    board = BOARDS[uid]
    conn = await asyncpg.connect(dsn(analyst_year.pg_url))
    try:
        options = await county_options(conn, board)
        problems: list[str] = []
        results: dict[tuple[str, int, str], Frame] = {}
        fields: dict[int, set[str]] = {}
        for scenario in SCENARIOS:
            variable = Variable("county", options, selected=scenario.counties)
            rng = TimeRange(scenario.start, scenario.end)
            for panel, target in targets(board):
                where = f"{panel['title']} / {target['refId']} / {scenario.name}"
                sql = expand(target["rawSql"], rng, {"county": variable})
                assert "$" not in sql, where
                try:
                    frame = await run(conn, sql)
                except asyncpg.PostgresError as exc:
                    problems.append(f"{where}: {exc}")
                    continue
                problems += [f"{where}: {p}" for p in frame.problems(target["format"])]
                results[(scenario.name, panel["id"], target["refId"])] = frame
                if scenario is SCENARIOS[0]:
                    fields.setdefault(panel["id"], set()).update(
                        frame.field_names(target["format"])
                    )
        assert problems == []

        for panel, target in targets(board):
            where = f"{panel['title']} / {target['refId']}"
            whole = results[(SCENARIOS[0].name, panel["id"], target["refId"])]
            # A year of data fills every panel with numbers.
            numbers = [n for n, k in whole.kinds.items() if k == "number"]
            assert any(v is not None for n in numbers for v in whole.column(n)), where
            # One county selected: only that county, and not the same as all of them.
            one = results[(SCENARIOS[1].name, panel["id"], target["refId"])]
            others = set(COUNTIES.values()) - {COUNTIES["430923"]}
            assert not others & {v for row in one.rows for v in row if isinstance(v, str)}, where
            assert one.rows != whole.rows, where
            both = results[(SCENARIOS[2].name, panel["id"], target["refId"])]
            assert both.rows != whole.rows, where
            assert both.rows != one.rows, where

        for panel in board["panels"]:
            for override in panel.get("fieldConfig", {}).get("overrides", []):
                name = override["matcher"]["options"]
                assert name in fields[panel["id"]], f"{panel['title']}: override for {name!r}"
            if panel["type"] == "barchart":
                assert panel["options"]["xField"] in fields[panel["id"]], panel["title"]
            for sort in panel.get("options", {}).get("sortBy", []):
                assert sort["displayName"] in fields[panel["id"]], panel["title"]
    finally:
        await conn.close()


async def test_county_variable_lists_the_city_and_its_counties(analyst_year: AnalystYear) -> None:
    conn = await asyncpg.connect(dsn(analyst_year.pg_url))
    try:
        board = BOARDS["labormon-overview"]
        resolved = await variable_options(conn, board)
        county = board["templating"]["list"][-1]
        frame = await run(conn, replace_variables(county["query"], resolved))
    finally:
        await conn.close()
    assert resolved["province"].options == ["430000"]
    assert resolved["city"].options == ["430900"]
    assert dict(zip(frame.column("__value"), frame.column("__text"), strict=True)) == {
        "430900": "益阳市(市本级)",
        **COUNTIES,
    }
    for board in BOARDS.values():
        variables = board["templating"]["list"]
        assert [v["name"] for v in variables] == ["province", "city", "county"]
        for variable in variables:
            assert (variable["multi"], variable["includeAll"]) == (True, True)
            # "All" without a custom all value: Grafana sends the list of every option.
            assert variable["current"]["value"] == ["$__all"]
            assert "allValue" not in variable


async def test_spring_festival_season_is_marked_on_the_petitions_board(
    analyst_year: AnalystYear,
) -> None:
    board = BOARDS["labormon-petitions"]
    (note,) = [a for a in board["annotations"]["list"] if "target" in a]
    assert note["enable"]
    assert not note["hide"]
    assert note["target"]["format"] == "table"
    conn = await asyncpg.connect(dsn(analyst_year.pg_url))
    try:
        sql = expand(note["target"]["rawSql"], TimeRange(YEAR_FROM, YEAR_TO), {})
        frame = await run(conn, sql)
    finally:
        await conn.close()
    assert dict(frame.columns) == {
        "time": "timestamptz",
        "timeend": "timestamptz",
        "text": "text",
        "tags": "text",
    }
    # The 2025 festival (January 29th) falls in the simulated year: one shaded region from
    # 60 days before to the Lantern Festival, in China days.
    ((starts, ends, label, tags),) = frame.rows
    assert starts == datetime(2024, 11, 29, 16, 0, tzinfo=UTC)
    assert ends == datetime(2025, 2, 12, 16, 0, tzinfo=UTC)
    assert "春节 2025-01-29" in label
    assert tags == "春节"
    # The boards with time series all carry it.
    for uid, other in BOARDS.items():
        assert note in other["annotations"]["list"], uid
    assert {s.festival.year for s in seasons()} >= set(range(2020, 2036))
    # The petitions per day are the panels the region is drawn on.
    assert {p["title"] for p in board["panels"] if p["type"] == "timeseries"} >= {
        "每日信访件数(按类别)",
        "每日信访件数(按区县)",
        "集体访(5人及以上)",
    }


def test_the_simulated_year_is_where_the_scenarios_look(analyst_year: AnalystYear) -> None:
    generated = analyst_year.generated
    assert analyst_year.loaded.files == {
        "point": generated["points"],
        "wage": generated["wages"],
        "petition": generated["petitions"],
        "report": generated["reports"],
    }
    # Some points fell silent or joined late: fewer reports than points x months.
    assert 10_000 < generated["wages"] < 12_000
    assert generated["petitions"] == 1200
    assert analyst_year.loaded.alerts == 500
    assert analyst_year.loaded.risk_scores > 12000
    assert sorted(BOARDS) == sorted(
        ["labormon-overview", "labormon-wages", "labormon-petitions", "labormon-alerts"]
    )


async def test_a_role_granted_only_the_views_draws_every_panel(analyst_year: AnalystYear) -> None:
    """The grants docs/dashboards.md gives Grafana's role are enough for every panel, and
    keep it away from the tables (where the encrypted personal data lives)."""
    url = make_url(analyst_year.pg_url)
    role = f"labormon_reader_{os.getpid()}"
    admin = await asyncpg.connect(dsn(analyst_year.pg_url))
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'reader-pass'")
        await admin.execute(f'GRANT CONNECT ON DATABASE "{url.database}" TO {role}')
        await admin.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        await admin.execute(
            "GRANT SELECT ON v_regions, v_wage_monthly, v_petitions_daily, v_risk_latest, "
            f"v_alerts TO {role}"
        )
        reader_url = url.set(username=role, password="reader-pass")
        reader = await asyncpg.connect(dsn(reader_url.render_as_string(hide_password=False)))
        try:
            rng = TimeRange(YEAR_FROM, YEAR_TO)
            for board in BOARDS.values():
                county = Variable("county", await county_options(reader, board))
                for panel, target in targets(board):
                    frame = await run(reader, expand(target["rawSql"], rng, {"county": county}))
                    assert frame.rows, panel["title"]
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.fetch("SELECT petitioner_phone_enc FROM petitions LIMIT 1")
        finally:
            await reader.close()
    finally:
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
