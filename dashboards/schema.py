"""The fields Grafana needs in a dashboard and in each panel type the boards use, written
as data (one schema per panel type) and checked by a small validator.

Grafana accepts almost any JSON and shows a broken or empty panel for what it cannot
use, so nothing fails loudly until an analyst looks. The schemas follow Grafana's
dashboard schema (`kinds/dashboard`, schemaVersion 39) and the options each panel plugin
reads: a panel needs `type`, `gridPos` with h/w/x/y, `fieldConfig` with `defaults` and
`overrides`, and `options`; a SQL target needs `refId`, `rawSql`, `format` and
`rawQuery`; a stat needs `reduceOptions`, a barchart its `xField`, and so on.

Schema language: a Python type is an isinstance check (bool is not a number); a dict is
an object whose keys are required unless they end in "?" (extra keys allowed, except in
`Closed`); `ListOf`, `OneOf`, `Range`, `Pattern`, `Nullable` do what they say.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dashboards.model import DATASOURCE_TYPE, GRID_WIDTH, Json

# --------------------------------------------------------------------------- language


@dataclass(frozen=True)
class OneOf:
    values: tuple[Any, ...]

    def __init__(self, *values: Any) -> None:
        object.__setattr__(self, "values", values)


@dataclass(frozen=True)
class Range:
    low: float
    high: float


@dataclass(frozen=True)
class Pattern:
    regex: str


@dataclass(frozen=True)
class ListOf:
    item: Any
    min_len: int = 0


@dataclass(frozen=True)
class Nullable:
    spec: Any


@dataclass(frozen=True)
class Closed:
    """An object that may hold no keys but those listed."""

    fields: dict[str, Any]


class _Number:
    """int or float, not bool."""


class _NonEmpty:
    """A non-blank string."""


Number = _Number()
NonEmpty = _NonEmpty()
ANY = object()


def validate(value: Any, spec: Any, path: str = "$") -> list[str]:
    """Every way `value` fails `spec`, as 'path: problem' lines."""
    if spec is ANY:
        return []
    if isinstance(spec, Nullable):
        return [] if value is None else validate(value, spec.spec, path)
    if isinstance(spec, _Number):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number, got {value!r}"]
    if isinstance(spec, _NonEmpty):
        ok = isinstance(value, str) and value.strip() != ""
        return [] if ok else [f"{path}: expected a non-empty string, got {value!r}"]
    if isinstance(spec, type):
        ok = isinstance(value, spec) and not (spec is int and isinstance(value, bool))
        return [] if ok else [f"{path}: expected {spec.__name__}, got {value!r}"]
    if isinstance(spec, OneOf):
        return [] if value in spec.values else [f"{path}: {value!r} not one of {spec.values}"]
    if isinstance(spec, Range):
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and spec.low <= value <= spec.high:
            return []
        return [f"{path}: expected an integer in [{spec.low}, {spec.high}], got {value!r}"]
    if isinstance(spec, Pattern):
        ok = isinstance(value, str) and re.fullmatch(spec.regex, value) is not None
        return [] if ok else [f"{path}: {value!r} does not match {spec.regex}"]
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {value!r}"]
        problems = [f"{path}: needs at least {spec.min_len} item(s)"] * (len(value) < spec.min_len)
        for i, item in enumerate(value):
            problems += validate(item, spec.item, f"{path}[{i}]")
        return problems
    if isinstance(spec, Closed | dict):
        fields = spec.fields if isinstance(spec, Closed) else spec
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {value!r}"]
        problems = []
        known = set()
        for key, sub in fields.items():
            name = key.removesuffix("?")
            known.add(name)
            if name in value:
                problems += validate(value[name], sub, f"{path}.{name}")
            elif not key.endswith("?"):
                problems.append(f"{path}: missing {name}")
        if isinstance(spec, Closed):
            problems += [f"{path}: unexpected key {k}" for k in value if k not in known]
        return problems
    raise TypeError(f"not a schema: {spec!r}")


# --------------------------------------------------------------------------- vocabulary

_HUES = ("red", "orange", "yellow", "green", "blue", "purple")
COLOR = Pattern(
    r"(?:(?:dark|semi-dark|light|super-light)-)?(?:" + "|".join(_HUES) + r")"
    r"|text|transparent|#[0-9A-Fa-f]{6}|rgba?\([\d\s.,]+\)"
)
#: Units the boards use; `time:<format>` is Grafana's custom date format.
UNIT = Pattern(r"short|none|percentunit|suffix:(?:万元|元|小时)|time:[A-Za-z :\-]+")
REDUCER = OneOf("lastNotNull", "last", "firstNotNull", "sum", "mean", "max", "min", "count")
PROPERTY_ID = OneOf(
    "displayName",
    "color",
    "unit",
    "decimals",
    "min",
    "max",
    "thresholds",
    "mappings",
    "custom.lineWidth",
    "custom.drawStyle",
    "custom.axisPlacement",
    "custom.showPoints",
    "custom.fillOpacity",
    "custom.cellOptions",
    "custom.minWidth",
    "custom.width",
    "custom.hidden",
)
HIDE_FROM = {"legend": bool, "tooltip": bool, "viz": bool}

DATASOURCE_REF = Closed({"type": OneOf(DATASOURCE_TYPE), "uid": NonEmpty})
TARGET = Closed(
    {
        "refId": Pattern(r"[A-Za-z][A-Za-z0-9]*"),
        "datasource": DATASOURCE_REF,
        "editorMode": OneOf("code"),
        "format": OneOf("time_series", "table"),
        "rawQuery": OneOf(True),
        "rawSql": NonEmpty,
    }
)
GRID_POS = Closed(
    {
        "h": Range(1, 100),
        "w": Range(1, GRID_WIDTH),
        "x": Range(0, GRID_WIDTH - 1),
        "y": Range(0, 10_000),
    }
)
THRESHOLDS = Closed(
    {
        "mode": OneOf("absolute", "percentage"),
        "steps": ListOf(Closed({"color": COLOR, "value": Nullable(Number)}), min_len=1),
    }
)
VALUE_MAPPING = Closed(
    {
        "type": OneOf("value"),
        "options": dict,
    }
)
FIELD_COLOR = Closed(
    {
        "mode": OneOf("thresholds", "fixed", "palette-classic", "palette-classic-by-name"),
        "fixedColor?": COLOR,
    }
)
OVERRIDE = Closed(
    {
        "matcher": Closed(
            {"id": OneOf("byName", "byRegexp", "byType", "byFrameRefID"), "options": NonEmpty}
        ),
        "properties": ListOf(Closed({"id": PROPERTY_ID, "value": ANY}), min_len=1),
    }
)
TRANSFORMATION = Closed({"id": OneOf("organize"), "options": dict})
_LEGEND_BASE = {
    "displayMode": OneOf("list", "table", "hidden"),
    "placement": OneOf("bottom", "right"),
    "showLegend": bool,
}
#: Graph legends can show reducers per series (sum, max, ...).
LEGEND = {**_LEGEND_BASE, "calcs": ListOf(REDUCER)}
TOOLTIP = {"mode": OneOf("single", "multi", "none"), "sort": OneOf("none", "asc", "desc")}
REDUCE_OPTIONS = {"calcs": ListOf(REDUCER, min_len=1), "fields": str, "values": bool}
AXIS = {
    "axisBorderShow": bool,
    "axisCenteredZero": bool,
    "axisColorMode": OneOf("text", "series"),
    "axisLabel": str,
    "axisPlacement": OneOf("auto", "left", "right", "hidden"),
    "scaleDistribution": {"type": OneOf("linear", "log"), "log?": OneOf(2, 10)},
}


def _field_defaults(custom: Any) -> dict[str, Any]:
    return {
        "unit": UNIT,
        "decimals?": Range(0, 6),
        "min?": Number,
        "max?": Number,
        "color": FIELD_COLOR,
        "thresholds": THRESHOLDS,
        "mappings": ListOf(VALUE_MAPPING),
        "custom": custom,
    }


def _panel(type_name: str, options: dict[str, Any], custom: Any) -> Closed:
    return Closed(
        {
            "id": Range(1, 10_000),
            "type": OneOf(type_name),
            "title": NonEmpty,
            "description": NonEmpty,
            "gridPos": GRID_POS,
            "datasource": DATASOURCE_REF,
            "targets": ListOf(TARGET, min_len=1),
            "fieldConfig": Closed(
                {"defaults": _field_defaults(custom), "overrides": ListOf(OVERRIDE)}
            ),
            "options": options,
            "transformations?": ListOf(TRANSFORMATION),
        }
    )


# --------------------------------------------------------------------------- per panel type

PANEL_SCHEMAS: dict[str, Any] = {
    "row": Closed(
        {
            "id": Range(1, 10_000),
            "type": OneOf("row"),
            "title": NonEmpty,
            "collapsed": bool,
            "gridPos": Closed({"h": OneOf(1), "w": OneOf(GRID_WIDTH), "x": OneOf(0), "y": int}),
            "panels": list,
        }
    ),
    "timeseries": _panel(
        "timeseries",
        {"legend": LEGEND, "tooltip": TOOLTIP},
        {
            **AXIS,
            "barAlignment": OneOf(-1, 0, 1),
            "drawStyle": OneOf("line", "bars", "points"),
            "fillOpacity": Range(0, 100),
            "gradientMode": OneOf("none", "opacity", "hue", "scheme"),
            "hideFrom": HIDE_FROM,
            "lineInterpolation": OneOf("linear", "smooth", "stepBefore", "stepAfter"),
            "lineWidth": Range(0, 10),
            "pointSize": Range(1, 40),
            "showPoints": OneOf("auto", "always", "never"),
            "spanNulls": bool,
            "stacking": {"group": str, "mode": OneOf("none", "normal", "percent")},
            "thresholdsStyle": {
                "mode": OneOf("off", "line", "dashed", "area", "line+area", "dashed+area")
            },
        },
    ),
    "stat": _panel(
        "stat",
        {
            "colorMode": OneOf("value", "background", "background_solid", "none"),
            "graphMode": OneOf("none", "area"),
            "justifyMode": OneOf("auto", "center"),
            "orientation": OneOf("auto", "horizontal", "vertical"),
            "reduceOptions": REDUCE_OPTIONS,
            "textMode": OneOf("auto", "value", "value_and_name", "name", "none"),
        },
        dict,
    ),
    "barchart": _panel(
        "barchart",
        {
            "xField": NonEmpty,
            "orientation": OneOf("auto", "horizontal", "vertical"),
            "stacking": OneOf("none", "normal", "percent"),
            "showValue": OneOf("auto", "always", "never"),
            "barWidth": Number,
            "groupWidth": Number,
            "legend": LEGEND,
            "tooltip": TOOLTIP,
        },
        {
            **AXIS,
            "fillOpacity": Range(0, 100),
            "gradientMode": OneOf("none", "opacity", "hue", "scheme"),
            "hideFrom": HIDE_FROM,
            "lineWidth": Range(0, 10),
        },
    ),
    "table": _panel(
        "table",
        {
            "showHeader": bool,
            "cellHeight": OneOf("sm", "md", "lg"),
            "footer": {"show": bool, "reducer": ListOf(REDUCER), "fields": str},
            "sortBy": ListOf({"displayName": NonEmpty, "desc": bool}),
        },
        {
            "align": OneOf("auto", "left", "center", "right"),
            "cellOptions": {"type": OneOf("auto", "color-text", "color-background", "gauge")},
            "inspect": bool,
        },
    ),
    "piechart": _panel(
        "piechart",
        {
            "pieType": OneOf("pie", "donut"),
            "reduceOptions": REDUCE_OPTIONS,
            "legend": {**_LEGEND_BASE, "values": ListOf(OneOf("value", "percent"))},
            "tooltip": TOOLTIP,
            "displayLabels": ListOf(OneOf("name", "value", "percent")),
        },
        {"hideFrom": HIDE_FROM},
    ),
}

VARIABLE = {
    "name": Pattern(r"[A-Za-z_][A-Za-z0-9_]*"),
    "label": NonEmpty,
    "type": OneOf("query"),
    "datasource": DATASOURCE_REF,
    "query": NonEmpty,
    "definition": NonEmpty,
    "refresh": OneOf(1, 2),
    "multi": bool,
    "includeAll": bool,
    "current": {"text": ANY, "value": ANY},
    "options": list,
    "hide": OneOf(0, 1, 2),
}
BUILTIN_ANNOTATION = {
    "builtIn": OneOf(1),
    "datasource": {"type": OneOf("grafana"), "uid": NonEmpty},
    "enable": bool,
    "hide": bool,
    "iconColor": COLOR,
    "name": NonEmpty,
    "type": OneOf("dashboard"),
}
SQL_ANNOTATION = Closed(
    {
        "datasource": DATASOURCE_REF,
        "enable": bool,
        "hide": bool,
        "iconColor": COLOR,
        "name": NonEmpty,
        "target": TARGET,
    }
)
DASHBOARD = {
    "uid": Pattern(r"[A-Za-z0-9_-]{1,40}"),
    "title": NonEmpty,
    "description": str,
    "tags": ListOf(NonEmpty),
    "timezone": NonEmpty,
    "editable": bool,
    "schemaVersion": Range(36, 41),
    "version": int,
    "refresh": Pattern(r"\d+[smhd]|"),
    "time": {"from": NonEmpty, "to": NonEmpty},
    "templating": {"list": ListOf(VARIABLE)},
    "annotations": {"list": ListOf(ANY, min_len=1)},
    "panels": ListOf(dict, min_len=1),
}


# --------------------------------------------------------------------------- checks


def check_dashboard(dashboard: Json) -> list[str]:
    """Every schema problem of the dashboard and its panels, plus the layout rules
    Grafana relies on (unique ids, no overlapping panels, one refId per target)."""
    problems = validate(dashboard, DASHBOARD)
    for i, note in enumerate(dashboard.get("annotations", {}).get("list", [])):
        kind: Any = BUILTIN_ANNOTATION if note.get("builtIn") else SQL_ANNOTATION
        problems += validate(note, kind, f"$.annotations.list[{i}]")
    panels = dashboard.get("panels", [])
    for i, panel in enumerate(panels):
        path = f"$.panels[{i}]"
        spec = PANEL_SCHEMAS.get(panel.get("type"))
        if spec is None:
            problems.append(f"{path}: no schema for panel type {panel.get('type')!r}")
            continue
        problems += validate(panel, spec, path)
        refs = [t.get("refId") for t in panel.get("targets", [])]
        if len(refs) != len(set(refs)):
            problems.append(f"{path}: duplicate refId in {refs}")
    problems += _layout_problems(panels)
    return problems


def _layout_problems(panels: Sequence[Json]) -> list[str]:
    problems = []
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        problems.append(f"$.panels: duplicate ids {ids}")
    owner: dict[tuple[int, int], Any] = {}
    for panel in panels:
        pos = panel.get("gridPos", {})
        try:
            x, y, w, h = pos["x"], pos["y"], pos["w"], pos["h"]
        except KeyError:
            continue  # reported by the schema
        if x + w > GRID_WIDTH:
            problems.append(f"{panel.get('title')}: extends past column {GRID_WIDTH}")
        overlapped = {
            owner[cell]
            for cell in ((cx, cy) for cx in range(x, x + w) for cy in range(y, y + h))
            if owner.setdefault(cell, panel.get("id")) != panel.get("id")
        }
        problems += [f"panel {panel.get('id')}: overlaps panel {other}" for other in overlapped]
    return problems
