"""Typed helpers that write Grafana dashboard JSON (schemaVersion 39: Grafana 10.4 and later).

Plain JSON through small helpers rather than grafana-foundation-sdk: the boards use six
panel types, and the helpers keep every default in one place where a reviewer can read
it. Panels are placed by a flow layout (left to right, 24 columns), so adding a panel
never means recomputing coordinates by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from textwrap import dedent
from typing import Any, Literal

from dashboards.labels import LEVEL_COLORS, LEVEL_LABELS

Json = dict[str, Any]

#: Grafana's built-in PostgreSQL data source (the plugin id since Grafana 10.3; the old
#: id `postgres` is an alias).
DATASOURCE_TYPE = "grafana-postgresql-datasource"
#: The uid the provisioning files and `push` give the data source; the boards refer to it.
DATASOURCE_UID = "labormon-pg"
#: The boards show China time whatever the analyst's browser says, so that days and
#: months line up with the local days the views are built on.
TIMEZONE = "Asia/Shanghai"
SCHEMA_VERSION = 39
GRID_WIDTH = 24
#: The template variable every panel filters on.
COUNTY_FILTER = "region_code IN ($county)"

Format = Literal["time_series", "table"]


def datasource() -> Json:
    return {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}


@dataclass(frozen=True)
class Query:
    """One raw SQL target. `time_series` needs a `time` column and rows sorted by it."""

    sql: str
    format: Format = "time_series"

    def target(self, ref_id: str) -> Json:
        return {
            "datasource": datasource(),
            "editorMode": "code",
            "format": self.format,
            "rawQuery": True,
            "rawSql": dedent(self.sql).strip(),
            "refId": ref_id,
        }


# --------------------------------------------------------------------------- field config


def thresholds(steps: Sequence[tuple[float | None, str]]) -> Json:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def fixed_color(color: str) -> Json:
    return {"mode": "fixed", "fixedColor": color}


def by_name(name: str, *properties: tuple[str, Any]) -> Json:
    """An override for the field (series or column) called `name`."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": pid, "value": value} for pid, value in properties],
    }


def value_mappings(labels: Mapping[str, str], colors: Mapping[str, str] | None = None) -> Json:
    options: Json = {}
    for index, (code, text) in enumerate(labels.items()):
        option: Json = {"index": index, "text": text}
        if colors and code in colors:
            option["color"] = colors[code]
        options[code] = option
    return {"type": "value", "options": options}


def level_colors_by_label() -> list[Json]:
    """Series or columns named after a level ("I级 特别重大") take the level's colour."""
    return [
        by_name(LEVEL_LABELS[level], ("color", fixed_color(LEVEL_COLORS[level])))
        for level in LEVEL_LABELS
    ]


def hide_time() -> Json:
    """Table-format panels carry the `time` column for Grafana; some need not show it."""
    return {
        "id": "organize",
        "options": {"excludeByName": {"time": True}, "indexByName": {}, "renameByName": {}},
    }


_HIDE_FROM = {"legend": False, "tooltip": False, "viz": False}


# --------------------------------------------------------------------------- panels


@dataclass
class Panel:
    """A panel without its place: `Board` assigns the id and the grid position."""

    type: str
    title: str
    description: str
    queries: Sequence[Query]
    w: int
    h: int
    options: Json
    defaults: Json
    overrides: list[Json] = field(default_factory=list)
    transformations: list[Json] = field(default_factory=list)

    def to_json(self, panel_id: int, x: int, y: int) -> Json:
        panel: Json = {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "gridPos": {"h": self.h, "w": self.w, "x": x, "y": y},
            "datasource": datasource(),
            "targets": [q.target(chr(ord("A") + i)) for i, q in enumerate(self.queries)],
            "fieldConfig": {"defaults": self.defaults, "overrides": self.overrides},
            "options": self.options,
        }
        if self.transformations:
            panel["transformations"] = self.transformations
        return panel


@dataclass(frozen=True)
class Row:
    """A full-width heading that starts a new line of panels."""

    title: str

    def to_json(self, panel_id: int, y: int) -> Json:
        return {
            "id": panel_id,
            "type": "row",
            "title": self.title,
            "collapsed": False,
            "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
            "panels": [],
        }


def _defaults(
    unit: str,
    *,
    decimals: int | None,
    min_value: float | None,
    color: Json,
    steps: Sequence[tuple[float | None, str]],
    custom: Json,
    mappings: Sequence[Json] = (),
) -> Json:
    defaults: Json = {
        "unit": unit,
        "color": color,
        "thresholds": thresholds(steps),
        "mappings": list(mappings),
        "custom": custom,
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    if min_value is not None:
        defaults["min"] = min_value
    return defaults


def _legend(calcs: Sequence[str] = (), placement: str = "bottom") -> Json:
    return {
        "calcs": list(calcs),
        "displayMode": "table" if calcs else "list",
        "placement": placement,
        "showLegend": True,
    }


def timeseries(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str = "short",
    w: int = 12,
    h: int = 9,
    bars: bool = False,
    stacked: bool = False,
    decimals: int | None = None,
    min_value: float | None = 0,
    log_scale: bool = False,
    points: bool = False,
    overrides: Sequence[Json] = (),
    legend_calcs: Sequence[str] = (),
    steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
    threshold_style: str = "off",
) -> Panel:
    custom: Json = {
        "axisBorderShow": False,
        "axisCenteredZero": False,
        "axisColorMode": "text",
        "axisLabel": "",
        "axisPlacement": "auto",
        # Daily and monthly bars start at the local midnight they stand for.
        "barAlignment": 1 if bars else 0,
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 80 if bars else 10,
        "gradientMode": "none",
        "hideFrom": dict(_HIDE_FROM),
        "insertNulls": False,
        "lineInterpolation": "linear",
        "lineWidth": 1 if bars else 2,
        "pointSize": 6,
        "scaleDistribution": {"type": "log", "log": 10} if log_scale else {"type": "linear"},
        "showPoints": "always" if points else "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stacked else "none"},
        "thresholdsStyle": {"mode": threshold_style},
    }
    return Panel(
        type="timeseries",
        title=title,
        description=description,
        queries=queries,
        w=w,
        h=h,
        options={
            "legend": _legend(legend_calcs),
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        defaults=_defaults(
            unit,
            decimals=decimals,
            min_value=None if log_scale else min_value,
            # Stable colours per series name across panels and reloads.
            color={"mode": "palette-classic-by-name"},
            steps=steps,
            custom=custom,
        ),
        overrides=list(overrides),
    )


def stat(
    title: str,
    description: str,
    query: Query,
    *,
    unit: str = "short",
    w: int = 6,
    h: int = 4,
    calcs: Sequence[str] = ("lastNotNull",),
    sparkline: bool = False,
    color_mode: str = "value",
    decimals: int | None = 0,
    steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
    overrides: Sequence[Json] = (),
    text_mode: str = "auto",
) -> Panel:
    return Panel(
        type="stat",
        title=title,
        description=description,
        queries=[query],
        w=w,
        h=h,
        options={
            "colorMode": color_mode,
            "graphMode": "area" if sparkline else "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": list(calcs), "fields": "", "values": False},
            "showPercentChange": False,
            "textMode": text_mode,
            "wideLayout": True,
        },
        defaults=_defaults(
            unit,
            decimals=decimals,
            min_value=None,
            color={"mode": "thresholds"},
            steps=steps,
            custom={},
        ),
        overrides=list(overrides),
    )


def barchart(
    title: str,
    description: str,
    query: Query,
    *,
    x_field: str,
    unit: str = "short",
    w: int = 12,
    h: int = 9,
    stacked: bool = True,
    horizontal: bool = False,
    overrides: Sequence[Json] = (),
) -> Panel:
    return Panel(
        type="barchart",
        title=title,
        description=description,
        queries=[query],
        w=w,
        h=h,
        options={
            "barRadius": 0,
            "barWidth": 0.8,
            "fullHighlight": False,
            "groupWidth": 0.7,
            "legend": _legend(),
            "orientation": "horizontal" if horizontal else "vertical",
            "showValue": "auto",
            "stacking": "normal" if stacked else "none",
            "tooltip": {"mode": "multi", "sort": "none"},
            "xField": x_field,
            "xTickLabelRotation": 0,
            "xTickLabelSpacing": 0,
        },
        defaults=_defaults(
            unit,
            decimals=0,
            min_value=0,
            color={"mode": "palette-classic-by-name"},
            steps=((None, "green"),),
            custom={
                "axisBorderShow": False,
                "axisCenteredZero": False,
                "axisColorMode": "text",
                "axisLabel": "",
                "axisPlacement": "auto",
                "fillOpacity": 85,
                "gradientMode": "none",
                "hideFrom": dict(_HIDE_FROM),
                "lineWidth": 1,
                "scaleDistribution": {"type": "linear"},
                "thresholdsStyle": {"mode": "off"},
            },
        ),
        overrides=list(overrides),
        transformations=[hide_time()],
    )


def table(
    title: str,
    description: str,
    query: Query,
    *,
    w: int = 24,
    h: int = 10,
    overrides: Sequence[Json] = (),
    sort_by: str | None = None,
    hide_time_column: bool = False,
) -> Panel:
    return Panel(
        type="table",
        title=title,
        description=description,
        queries=[query],
        w=w,
        h=h,
        options={
            "cellHeight": "sm",
            "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
            "showHeader": True,
            "sortBy": [{"desc": True, "displayName": sort_by}] if sort_by else [],
        },
        defaults=_defaults(
            "short",
            decimals=None,
            min_value=None,
            color={"mode": "thresholds"},
            steps=((None, "text"),),
            custom={
                "align": "auto",
                "cellOptions": {"type": "auto"},
                "filterable": True,
                "inspect": False,
            },
        ),
        overrides=list(overrides),
        transformations=[hide_time()] if hide_time_column else [],
    )


def piechart(
    title: str,
    description: str,
    query: Query,
    *,
    unit: str = "short",
    w: int = 12,
    h: int = 9,
) -> Panel:
    return Panel(
        type="piechart",
        title=title,
        description=description,
        queries=[query],
        w=w,
        h=h,
        options={
            "displayLabels": ["name", "percent"],
            "legend": {
                "displayMode": "table",
                "placement": "right",
                "showLegend": True,
                "values": ["value", "percent"],
            },
            "pieType": "donut",
            # One slice per row of the table query.
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
            "tooltip": {"mode": "single", "sort": "none"},
        },
        defaults=_defaults(
            unit,
            decimals=0,
            min_value=None,
            color={"mode": "palette-classic-by-name"},
            steps=((None, "green"),),
            custom={"hideFrom": dict(_HIDE_FROM)},
        ),
        transformations=[hide_time()],
    )


# --------------------------------------------------------------------------- dashboard


def _region_variable(name: str, label: str, sql: str) -> Json:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": datasource(),
        "definition": sql,
        "query": sql,
        "refresh": 1,
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "regex": "",
        "sort": 0,
        "hide": 0,
        "skipUrlSync": False,
    }


def province_variable() -> Json:
    """`$province`: the provinces the installation holds (one, usually)."""
    return _region_variable(
        "province",
        "省份",
        "SELECT name AS __text, region_code AS __value FROM v_regions WHERE tier = 1 "
        "ORDER BY region_code",
    )


def city_variable() -> Json:
    """`$city`: the cities of the selected provinces."""
    return _region_variable(
        "city",
        "市州",
        "SELECT name AS __text, region_code AS __value FROM v_regions "
        "WHERE tier = 2 AND parent_code IN ($province) ORDER BY region_code",
    )


def county_variable() -> Json:
    """`$county`: one or more counties of the selected cities, or all; each city itself
    is listed for records filed at city level (市本级), and a county governed by its
    province directly (省直辖) with the province. All expands to the quoted list of
    every option, so the panels' `region_code IN ($county)` follows the whole chain
    province -> city -> county."""
    sql = (
        "SELECT CASE WHEN tier = 2 THEN name || '(市本级)' ELSE name END AS __text, "
        "region_code AS __value FROM v_regions "
        "WHERE (tier = 2 AND region_code IN ($city)) "
        "OR (tier = 3 AND (parent_code IN ($city) OR parent_code IN ($province))) "
        "ORDER BY region_code"
    )
    return _region_variable("county", "区县", sql)


#: The variables of every board, in the order Grafana resolves them.
def region_variables() -> list[Json]:
    return [province_variable(), city_variable(), county_variable()]


def builtin_annotation() -> Json:
    """Grafana's own annotations (comments analysts add on a graph)."""
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


def sql_annotation(name: str, query: Query, color: str) -> Json:
    """Annotations from SQL: rows with `time`, optional `timeend` (a region), `text`, `tags`."""
    return {
        "datasource": datasource(),
        "enable": True,
        "hide": False,
        "iconColor": color,
        "name": name,
        "target": query.target("Anno"),
    }


@dataclass
class Board:
    uid: str
    title: str
    description: str
    time_from: str
    items: Sequence[Panel | Row]
    annotations: Sequence[Json] = ()
    refresh: str = "15m"
    tags: Sequence[str] = ("labormon",)

    def panels(self) -> list[Json]:
        placed: list[Json] = []
        x = y = line_height = 0
        for panel_id, item in enumerate(self.items, start=1):
            if isinstance(item, Row):
                if x:
                    y, x, line_height = y + line_height, 0, 0
                placed.append(item.to_json(panel_id, y))
                y += 1
                continue
            if x + item.w > GRID_WIDTH:
                y, x, line_height = y + line_height, 0, 0
            placed.append(item.to_json(panel_id, x, y))
            x += item.w
            line_height = max(line_height, item.h)
        return placed

    def to_json(self) -> Json:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": TIMEZONE,
            "weekStart": "monday",
            "editable": True,
            "graphTooltip": 1,
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "refresh": self.refresh,
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "links": [
                {
                    "type": "dashboards",
                    "title": "labormon 看板",
                    "tags": ["labormon"],
                    "asDropdown": False,
                    "includeVars": True,
                    "keepTime": True,
                    "icon": "external link",
                    "targetBlank": False,
                    "tooltip": "",
                    "url": "",
                }
            ],
            "annotations": {"list": [builtin_annotation(), *self.annotations]},
            "templating": {"list": region_variables()},
            "panels": self.panels(),
        }
