"""What Grafana does to a panel's raw SQL before PostgreSQL sees it, and how it reads the
result: template variables in the browser, then macros in the PostgreSQL data source
backend. A real Grafana cannot run here, so the tests run panels through this instead.

Followed from Grafana's source:
- browser: `packages/grafana-sql/src/datasource/SqlDatasource.ts` `interpolateVariable`
  (multi-value or include-All variables: each value quoted as a literal, joined by ',';
  "All" without a custom all value expands to every option) and TemplateSrv's variable
  syntax (`$name`, `${name}`, `[[name]]`);
- backend: `pkg/tsdb/grafana-postgresql-datasource/sqleng/sql_engine.go` `Interpolate`
  ($__interval, $__interval_ms, $__unixEpochFrom(), $__unixEpochTo()), then
  `macros.go` (`\\$(\\w+)\\(([^)]*)\\)`: $__timeFilter -> `col BETWEEN '<RFC3339Nano from>'
  AND '<to>'`, $__timeGroup -> `floor(extract(epoch from col)/<secs>)*<secs>`, ...;
  an unknown macro is an error);
- result: `convertResultsToFrame` / `newProcessCfg` (the time column is the one named
  `time`; int2/4/8, float4/8 and numeric are numbers; timestamp, timestamptz and date are
  times; time_series frames need a time column, and long frames are turned wide, which
  needs rows sorted by time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)

NUMBER_TYPES = {"int2", "int4", "int8", "float4", "float8", "numeric"}
TIME_TYPES = {"timestamptz", "timestamp", "date"}


class MacroError(ValueError):
    """Grafana would answer the query with an interpolation error."""


@dataclass
class Variable:
    """A dashboard template variable as the browser holds it."""

    name: str
    options: list[str]
    selected: list[str] | None = None  # None: "All"
    multi: bool = True
    include_all: bool = True

    def value(self) -> str | list[str]:
        if self.selected is None:
            return list(self.options)
        if self.multi:
            return list(self.selected)
        return self.selected[0]


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def format_variable(value: str | list[str], variable: Variable) -> str:
    """SqlDatasource.interpolateVariable."""
    if isinstance(value, str):
        if variable.multi or variable.include_all:
            return quote_literal(value)
        return value.replace("'", "''")
    return ",".join(quote_literal(v) for v in value)


def replace_variables(sql: str, variables: dict[str, Variable]) -> str:
    """TemplateSrv.replace: known variables only; unknown `$names` (macros) stay."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        variable = variables.get(name)
        if variable is None:
            return match.group(0)
        if fmt:
            raise MacroError(f"variable format {fmt!r} is not emulated")
        return format_variable(variable.value(), variable)

    return VARIABLE.sub(substitute, sql)


def rfc3339nano(when: datetime) -> str:
    """Go's time.RFC3339Nano for a UTC instant: no trailing zeros in the fraction."""
    when = when.astimezone(UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{when.microsecond:06d}".rstrip("0")
    return text + (f".{fraction}" if fraction else "") + "Z"


def go_float(value: float) -> str:
    """Go's `%v` of a float64: the shortest digits that round-trip, in exponent form when
    the decimal exponent is below -4 or at least 6 (strconv's 'g' at shortest precision):
    300 -> '300', 86400 -> '86400', 2592000 -> '2.592e+06'."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits)
    exponent = int(digits_tuple.exponent)
    point = len(digits) + exponent  # position of the decimal point
    exp = point - 1
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_interval(text: str) -> timedelta:
    """gtime.ParseInterval for the fixed-length units (months and years depend on the
    current date in Grafana, so the boards never use them)."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", text.strip())
    if not match:
        raise MacroError(f"error parsing interval {text}")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def format_interval(interval: timedelta) -> str:
    """gtime.FormatInterval."""
    seconds = interval.total_seconds()
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    if seconds >= 0.001:
        return f"{int(seconds * 1000)}ms"
    return "1ms"


@dataclass
class TimeRange:
    start: datetime
    end: datetime
    interval: timedelta = timedelta(days=1)
    fill: dict[str, Any] = field(default_factory=dict)


def global_substitutions(sql: str, rng: TimeRange) -> str:
    """sqleng.Interpolate (runs before the macro engine)."""
    sql = sql.replace("$__interval_ms", str(int(rng.interval.total_seconds() * 1000)))
    sql = sql.replace("$__interval", format_interval(rng.interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(rng.start.timestamp())))
    return sql.replace("$__unixEpochTo()", str(int(rng.end.timestamp())))


def _evaluate(name: str, args: list[str], rng: TimeRange) -> str:
    start, end = rng.start.astimezone(UTC), rng.end.astimezone(UTC)
    need_column = {
        "__time",
        "__timeEpoch",
        "__timeFilter",
        "__unixEpochFilter",
        "__unixEpochNanoFilter",
    }
    if name in need_column and (not args or args[0] == ""):
        raise MacroError(f"missing time column argument for macro {name}")
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{rfc3339nano(start)}' AND '{rfc3339nano(end)}'"
    if name == "__timeFrom":
        return f"'{rfc3339nano(start)}'"
    if name == "__timeTo":
        return f"'{rfc3339nano(end)}'"
    if name in {"__timeGroup", "__unixEpochGroup"}:
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval and optional fill value")
        interval = parse_interval(args[1].strip("'"))
        if len(args) == 3:
            rng.fill = {"interval": interval, "mode": args[2]}
        secs = go_float(interval.total_seconds())
        if name == "__timeGroup":
            return f"floor(extract(epoch from {args[0]})/{secs})*{secs}"
        return f"floor(({args[0]})/{secs})*{secs}"
    if name in {"__timeGroupAlias", "__unixEpochGroupAlias"}:
        return _evaluate(name.removesuffix("Alias"), args, rng) + ' AS "time"'
    if name == "__unixEpochFilter":
        first, last = int(start.timestamp()), int(end.timestamp())
        return f"{args[0]} >= {first} AND {args[0]} <= {last}"
    if name == "__unixEpochNanoFilter":
        return f"{args[0]} >= {_nanos(start)} AND {args[0]} <= {_nanos(end)}"
    if name == "__unixEpochNanoFrom":
        return str(_nanos(start))
    if name == "__unixEpochNanoTo":
        return str(_nanos(end))
    raise MacroError(f'unknown macro "{name}"')


def _nanos(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def expand_macros(sql: str, rng: TimeRange) -> str:
    """postgresMacroEngine.Interpolate."""
    out: list[str] = []
    last = 0
    for match in MACRO.finditer(sql):
        name, raw_args = match.group(1), match.group(2)
        if name == "__timeGroup":
            # Before Grafana 5.3 `$__timeGroup(...),` also named the column "time".
            index = sql.find(match.group(0))
            after = index + len(match.group(0))
            if index >= 0 and len(sql) > after and sql[after] == ",":
                name = "__timeGroupAlias"
        args = [a.strip(" ") for a in raw_args.split(",")]
        out.append(sql[last : match.start()])
        out.append(_evaluate(name, args, rng))
        last = match.end()
    return "".join(out) + sql[last:]


def expand(sql: str, rng: TimeRange, variables: dict[str, Variable]) -> str:
    """Browser, then backend: the SQL PostgreSQL receives from Grafana."""
    return expand_macros(global_substitutions(replace_variables(sql, variables), rng), rng)


# --------------------------------------------------------------------------- results


@dataclass
class Frame:
    """A query result as Grafana's SQL backend classifies it."""

    columns: list[tuple[str, str]]  # (name, PostgreSQL type name)
    rows: list[tuple[Any, ...]]

    def kind(self, type_name: str) -> str:
        if type_name in NUMBER_TYPES:
            return "number"
        if type_name in TIME_TYPES:
            return "time"
        if type_name in {"json", "jsonb"}:
            return "json"
        if type_name == "bool":
            return "bool"
        return "string"

    @property
    def kinds(self) -> dict[str, str]:
        return {name: self.kind(t) for name, t in self.columns}

    def column(self, name: str) -> list[Any]:
        index = [n for n, _ in self.columns].index(name)
        return [row[index] for row in self.rows]

    def problems(self, fmt: str) -> list[str]:
        """Why Grafana could not draw this frame (empty when it can)."""
        kinds = self.kinds
        problems = []
        if len(kinds) != len(self.columns):
            problems.append("duplicate column names")
        if kinds.get("time") not in {"time", "number"}:
            problems.append(f"no time column named 'time' (columns: {kinds})")
        odd = {n: k for n, k in kinds.items() if n != "time" and k not in {"number", "string"}}
        if odd:
            problems.append(f"columns Grafana cannot plot or show plainly: {odd}")
        if not any(k == "number" for n, k in kinds.items() if n != "time"):
            problems.append("no numeric value column")
        if fmt == "time_series" and "time" in kinds:
            times = self.column("time")
            if any(t is None for t in times):
                problems.append("NULL in the time column")
            elif times != sorted(times):
                problems.append("time_series rows not sorted by time")
            labels = [n for n, k in kinds.items() if k == "string"]
            if labels:
                columns = [times, *(self.column(n) for n in labels)]
                keys = list(zip(*columns, strict=True))
                if len(keys) != len(set(keys)):
                    problems.append(f"two rows for one time and label set {labels}")
        return problems

    def field_names(self, fmt: str) -> set[str]:
        """Names of the fields a panel's overrides can match (after long-to-wide)."""
        kinds = self.kinds
        if fmt == "table":
            return set(kinds)
        labels = [n for n, k in kinds.items() if k == "string"]
        values = [n for n, k in kinds.items() if k == "number" and n != "time"]
        if len(self.columns) == 3 and len(labels) == 1 and len(values) == 1:
            # Grafana's pre-8 naming: the series is named by its label value.
            return {str(v) for v in self.column(labels[0])}
        return set(values)
