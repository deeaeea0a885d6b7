"""The figures of the monthly petition report, computed in SQL and held as typed data.

Everything the report prints comes from one `MonthlyFigures` object; the renderers
(HTML, PDF, Word, CSV, email) only format it. The petition counts need a 13-month
window (the trend), which also holds the previous month and the same month a year
earlier, so one grouped query over that window answers all of them.

Months are local (China time): a petition belongs to the month of `received_date`
(its local day); alerts and closings, which are instants, are cut at local midnight.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.clock import add_months, local_date
from monitor.db import Database
from monitor.models import (
    Account,
    Alert,
    HandlingDeadline,
    HandlingRecord,
    InformantReport,
    MonitoringPoint,
    Petition,
    Region,
    RiskScore,
)
from monitor.regions import CITY, COUNTY, PROVINCE
from monitor.report import labels


class ReportError(ValueError):
    """The report cannot be made as asked (a month in the future, a bad month)."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Count:
    """Petitions (件) and the people they involve (人次)."""

    petitions: int = 0
    people: int = 0

    def __add__(self, other: Count) -> Count:
        return Count(self.petitions + other.petitions, self.people + other.people)


@dataclass(frozen=True, slots=True)
class Compared:
    """One item of a breakdown this month, last month and the same month a year earlier."""

    key: str
    label: str
    current: Count
    previous: Count
    last_year: Count
    #: Collective petitions (集体访) of the item this month.
    collective: Count = Count()


@dataclass(frozen=True, slots=True)
class Enterprise:
    """An enterprise named by petitions this month (a monitoring point or a free-text name)."""

    key: str
    name: str
    region_code: str
    region: str
    point_id: str | None
    industry: str | None
    count: Count
    collective: int


@dataclass(frozen=True, slots=True)
class CollectiveCase:
    """One collective petition (no personal data: no petitioner, no summary)."""

    petition_id: str
    received_date: date
    region: str
    enterprise: str
    category: str
    channel: str
    people: int
    over_level: str | None
    closed: bool


@dataclass(frozen=True, slots=True)
class Handling:
    """Cases closed (办结) in the month and how long they took."""

    #: Petitions whose `closed_at` falls in the month, whenever received.
    closed: int
    #: Mean days from receipt to closing of those, one decimal (None when none closed).
    avg_days: Decimal | None
    #: Of this month's petitions, how many were closed by the end of the month.
    closed_of_month: int
    month_petitions: int


@dataclass(frozen=True, slots=True)
class AlertLevelRow:
    level: str
    label: str
    opened: int
    resolved: int
    open_at_end: int


@dataclass(frozen=True, slots=True)
class AckRow:
    """Alerts acknowledged in the month by leaders of one tier (None: not via an account)."""

    tier: int | None
    label: str
    acknowledged: int
    avg_hours: Decimal | None
    max_hours: Decimal | None


@dataclass(frozen=True, slots=True)
class RiskLevelRow:
    level: str | None
    label: str
    points: int


@dataclass(frozen=True, slots=True)
class RiskPoint:
    point_id: str
    name: str
    region: str
    industry: str
    score: Decimal
    level: str
    factor: str


@dataclass(frozen=True, slots=True)
class DisposalLevelRow:
    """Event alerts opened in the month of one level, and how their handling went."""

    level: str
    label: str
    events: int
    verified_true: int
    verified_false: int
    unverified: int
    median_verify_hours: Decimal | None
    median_final_hours: Decimal | None


@dataclass(frozen=True, slots=True)
class LateRow:
    """Handling deadlines missed in the month in one county, by kind."""

    region_code: str
    region: str
    verify: int
    progress: int
    final: int
    answer: int

    @property
    def total(self) -> int:
        return self.verify + self.progress + self.final + self.answer


@dataclass(frozen=True, slots=True)
class Disposal:
    """处置情况: the handling of the month's event alerts and the final reports' totals."""

    levels: list[DisposalLevelRow]
    late: list[LateRow]
    finals: int
    wages_recovered: Decimal
    workers_paid: int


@dataclass(frozen=True, slots=True)
class TrendMonth:
    month: date
    total: Count
    collective: int
    by_category: dict[str, int]


@dataclass
class MonthlyFigures:
    """Everything the monthly petition report states, for one month."""

    month: date
    previous_month: date
    last_year_month: date
    city_code: str
    city_name: str
    issuer: str
    #: Local month start and end (exclusive) as UTC instants.
    period_start: datetime
    period_end: datetime
    #: The end of the data: the month's end, or "now" for the running month.
    as_of: datetime
    generated_at: datetime
    zone: tzinfo
    collective_threshold: int
    totals: Compared
    collective: Compared
    over_level_total: Compared
    by_channel: list[Compared]
    by_category: list[Compared]
    by_county: list[Compared]
    by_over_level: list[Compared]
    #: Petitions of the month whose category was inferred from the summary.
    inferred_categories: int
    #: Petitions of the month tied to no enterprise (no point id, no enterprise name).
    without_enterprise: int
    enterprises: list[Enterprise]
    #: How many enterprises were named by petitions this month (the list shows the top).
    enterprise_count: int
    #: The enterprise whose petitions involved the most people.
    most_people: Enterprise | None
    collective_cases: list[CollectiveCase]
    handling: Handling
    alerts: list[AlertLevelRow]
    acks: list[AckRow]
    risk_levels: list[RiskLevelRow]
    risk_points: list[RiskPoint]
    points_registered: int
    trend: list[TrendMonth]
    meta: dict[str, Any] = field(default_factory=dict)
    #: The tier of the report's region: a city's report lists its counties; a province's
    #: compares its cities (`by_county` then holds cities) and ranks every county.
    region_tier: int = CITY
    #: A province report's counties, all cities together, most petitions first.
    county_ranking: list[Compared] = field(default_factory=list)
    #: None when nothing was handled in the month (no record filed, no deadline missed).
    disposal: Disposal | None = None

    @property
    def complete(self) -> bool:
        """False for the running month (figures up to `as_of` only)."""
        return self.as_of >= self.period_end

    @property
    def zone_name(self) -> str:
        return str(getattr(self.zone, "key", self.zone))

    def local_day(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    @property
    def last_day(self) -> date:
        """The last local day the figures cover (the month's last, or today's)."""
        if self.complete:
            return self.local_day(self.period_end - timedelta(microseconds=1))
        return self.local_day(self.as_of)

    @property
    def empty(self) -> bool:
        return self.totals.current.petitions == 0

    @property
    def key(self) -> str:
        return f"{self.month:%Y-%m}"


# --------------------------------------------------------------------------- helpers


def parse_month(text: str) -> date:
    """`YYYY-MM` to the first day of that month, or `ReportError` with the reason."""
    try:
        parsed = datetime.strptime(text.strip(), "%Y-%m")
    except ValueError:
        raise ReportError(f"--month {text!r} is not a month: use YYYY-MM, e.g. 2025-01") from None
    if parsed.year < 2000:
        raise ReportError(f"--month {text!r} is before 2000")
    return parsed.date()


def month_bounds(month: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """Local midnight of the month's first day and of the next month's, as UTC."""
    start = datetime.combine(month, time(), zone).astimezone(UTC)
    end = datetime.combine(add_months(month, 1), time(), zone).astimezone(UTC)
    return start, end


def check_month(month: date, now: datetime, zone: tzinfo) -> None:
    today = local_date(now, zone)
    if month > today.replace(day=1):
        raise ReportError(
            f"month {month:%Y-%m} is in the future (today is {today.isoformat()} "
            f"in {getattr(zone, 'key', zone)}): no report can be made for it yet"
        )


def _hours(delta: timedelta) -> Fraction:
    return Fraction(delta // timedelta(microseconds=1), 3_600_000_000)


def _mean(values: Sequence[Fraction]) -> Decimal | None:
    if not values:
        return None
    return labels.round1(sum(values, Fraction(0)) / len(values))


def _month_key(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


@dataclass(frozen=True, slots=True)
class _Group:
    """One row of the grouped petition query."""

    month: str
    channel: str
    category: str
    region_code: str
    collective: bool
    over_level: str | None
    petitions: int
    people: int


class _Window:
    """The grouped rows of the 13-month window, summed as the tables need them."""

    def __init__(self, groups: Iterable[_Group]) -> None:
        self.groups = list(groups)
        self.by_month: dict[str, list[_Group]] = defaultdict(list)
        for g in self.groups:
            self.by_month[g.month].append(g)

    def count(self, month: date, **match: Any) -> Count:
        total = Count()
        for g in self.by_month.get(_month_key(month), ()):
            if all(getattr(g, k) == v for k, v in match.items()):
                total += Count(g.petitions, g.people)
        return total

    def keys(self, attribute: str) -> set[Any]:
        return {getattr(g, attribute) for g in self.groups}


# --------------------------------------------------------------------------- collection


@dataclass(frozen=True)
class ReportOptions:
    """What the configuration decides about the report (see `[report]`)."""

    city_code: str = "430900"
    zone: tzinfo = UTC
    issuer: str = ""
    collective_threshold: int = 5
    top_enterprises: int = 10
    max_collective_cases: int = 20
    max_risk_points: int = 10
    #: Count only records of `city_code`'s subtree: a city's report within a province's
    #: installation. (An installation's own report counts everything it holds, as before.)
    subtree_only: bool = False
    #: Counties shown in a province report's province-wide ranking.
    max_ranked_counties: int = 30


async def collect_figures(
    db: Database, month: date, *, options: ReportOptions, now: datetime
) -> MonthlyFigures:
    """All figures of the report for `month` (first day), as known at `now`."""
    zone = options.zone
    check_month(month, now, zone)
    start, end = month_bounds(month, zone)
    as_of = min(end, now)
    previous, last_year = add_months(month, -1), add_months(month, -12)
    first = add_months(month, -12)
    async with db.read() as conn:
        regions = {
            r.code: (r.name, r.tier, r.parent_code)
            for r in await conn.execute(
                select(Region.code, Region.name, Region.tier, Region.parent_code)
            )
        }
        scope = _subtree(regions, options.city_code) if options.subtree_only else None
        points = {
            p.point_id: (p.name, p.region_code, p.industry)
            for p in await conn.execute(
                select(
                    MonitoringPoint.point_id,
                    MonitoringPoint.name,
                    MonitoringPoint.region_code,
                    MonitoringPoint.industry,
                ).where(_within(MonitoringPoint.region_code, scope))
            )
        }
        window = _Window(
            await _grouped(conn, db.dialect, first, month, options.collective_threshold, scope)
        )
        enterprise_rows = await _enterprise_rows(conn, month, options.collective_threshold, scope)
        inferred, unattributed = await _flags(conn, month, scope)
        cases = await _collective_cases(conn, month, options, scope)
        handling = await _handling(conn, month, start, as_of, scope)
        alerts, acks = await _alerts(conn, start, as_of, scope)
        disposal = await _disposal(conn, start, as_of, {c: v[0] for c, v in regions.items()}, scope)
        risk_levels, risk_points = await _risk(conn, as_of, points, regions, options)

    def region_name(code: str) -> str:
        return regions.get(code, (code, 0, None))[0]

    def compared(key: str, label: str, **match: Any) -> Compared:
        return Compared(
            key=key,
            label=label,
            current=window.count(month, **match),
            previous=window.count(previous, **match),
            last_year=window.count(last_year, **match),
            collective=window.count(month, collective=True, **match),
        )

    city_name = region_name(options.city_code)
    region_tier = regions.get(options.city_code, ("", CITY, None))[1]
    # Every county of the city is listed, with or without petitions, so a quiet county
    # shows as 0 rather than vanishing; petitions filed elsewhere (the city's own office,
    # another region) follow with their own rows.
    counties = sorted(
        code
        for code, (_n, tier, parent) in regions.items()
        if tier == COUNTY and parent == options.city_code
    )
    counties += sorted(window.keys("region_code") - set(counties))
    by_county = [compared(code, region_name(code), region_code=code) for code in counties]
    county_ranking: list[Compared] = []
    if region_tier == PROVINCE:
        # A province compares its cities (a city's row sums its counties and its own
        # office) and ranks every county province-wide.
        cities = sorted(
            code
            for code, (_n, tier, parent) in regions.items()
            if tier == CITY and parent == options.city_code
        )
        city_of = {code: _city_of(regions, code) for code in window.keys("region_code")}
        by_city = _Window(replace(g, region_code=city_of[g.region_code]) for g in window.groups)
        cities += sorted(by_city.keys("region_code") - set(cities))
        by_county = [
            Compared(
                key=code,
                label=region_name(code),
                current=by_city.count(month, region_code=code),
                previous=by_city.count(previous, region_code=code),
                last_year=by_city.count(last_year, region_code=code),
                collective=by_city.count(month, collective=True, region_code=code),
            )
            for code in cities
        ]
        ranked = [
            compared(code, f"{region_name(city_of[code])}{region_name(code)}", region_code=code)
            for code in window.keys("region_code")
            if regions.get(code, ("", 0, None))[1] == COUNTY
        ]
        ranked.sort(key=lambda r: (-r.current.petitions, -r.current.people, r.key))
        county_ranking = [r for r in ranked if r.current.petitions][: options.max_ranked_counties]

    channels = list(labels.CHANNELS) + sorted(window.keys("channel") - set(labels.CHANNELS))
    categories = list(labels.CATEGORIES) + sorted(window.keys("category") - set(labels.CATEGORIES))
    over_levels = list(labels.OVER_LEVELS) + sorted(
        window.keys("over_level") - set(labels.OVER_LEVELS) - {None}
    )
    over_rows = [
        compared(k, labels.label(labels.OVER_LEVELS, k), over_level=k) for k in over_levels
    ]

    def summed(rows: list[Compared], key: str, label: str) -> Compared:
        zero = Count()
        return Compared(
            key=key,
            label=label,
            current=sum((r.current for r in rows), zero),
            previous=sum((r.previous for r in rows), zero),
            last_year=sum((r.last_year for r in rows), zero),
            collective=sum((r.collective for r in rows), zero),
        )

    collective_rows = [
        Compared(
            key="collective",
            label="集体访",
            current=window.count(month, collective=True),
            previous=window.count(previous, collective=True),
            last_year=window.count(last_year, collective=True),
            collective=window.count(month, collective=True),
        )
    ]

    enterprises, most_people, enterprise_count = _rank_enterprises(
        enterprise_rows, points, region_name, options.top_enterprises
    )
    trend = []
    for i in range(13):
        m = add_months(first, i)
        per_category: Counter[str] = Counter()
        for g in window.by_month.get(_month_key(m), ()):
            per_category[g.category] += g.petitions
        trend.append(
            TrendMonth(
                month=m,
                total=window.count(m),
                collective=window.count(m, collective=True).petitions,
                by_category={c: per_category.get(c, 0) for c in categories},
            )
        )

    return MonthlyFigures(
        month=month,
        previous_month=previous,
        last_year_month=last_year,
        city_code=options.city_code,
        city_name=city_name,
        issuer=options.issuer or f"{city_name}总工会",
        period_start=start,
        period_end=end,
        as_of=as_of,
        generated_at=now,
        zone=zone,
        collective_threshold=options.collective_threshold,
        totals=compared("total", "合计"),
        collective=collective_rows[0],
        over_level_total=summed(over_rows, "over_level", "越级访合计"),
        by_channel=[compared(k, labels.label(labels.CHANNELS, k), channel=k) for k in channels],
        by_category=[
            compared(k, labels.label(labels.CATEGORIES, k), category=k) for k in categories
        ],
        by_county=by_county,
        by_over_level=over_rows,
        inferred_categories=inferred,
        without_enterprise=unattributed,
        enterprises=enterprises,
        enterprise_count=enterprise_count,
        most_people=most_people,
        collective_cases=[
            CollectiveCase(
                petition_id=c.petition_id,
                received_date=c.received_date,
                region=region_name(c.region_code),
                enterprise=_enterprise_name(c.point_id, c.enterprise_name, points),
                category=labels.label(labels.CATEGORIES, c.category),
                channel=labels.label(labels.CHANNELS, c.channel),
                people=c.people_involved,
                over_level=None
                if c.over_level is None
                else labels.label(labels.OVER_LEVELS, c.over_level),
                closed=c.closed_at is not None and c.closed_at < as_of,
            )
            for c in cases
        ],
        handling=handling,
        alerts=alerts,
        acks=acks,
        risk_levels=risk_levels,
        risk_points=risk_points,
        points_registered=len(points),
        trend=trend,
        region_tier=region_tier,
        county_ranking=county_ranking,
        disposal=disposal,
    )


def _subtree(regions: dict[str, tuple[str, int, str | None]], code: str) -> frozenset[str]:
    children: dict[str | None, list[str]] = defaultdict(list)
    for child, (_name, _tier, parent) in regions.items():
        children[parent].append(child)
    found, stack = {code}, [code]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return frozenset(found)


def _city_of(regions: dict[str, tuple[str, int, str | None]], code: str) -> str:
    """The city a region lies in (itself for a city; a county under no city: itself)."""
    current: str | None = code
    while current is not None and current in regions:
        _name, tier, parent = regions[current]
        if tier == CITY:
            return current
        current = parent
    return code


def _within(column: Any, scope: frozenset[str] | None) -> Any:
    """`column IN scope`, or no condition when the report counts everything."""
    return true() if scope is None else column.in_(sorted(scope))


def _month_expr(dialect: str, column: Any) -> Any:
    if dialect == "sqlite":
        return func.strftime("%Y-%m", column)
    return func.to_char(column, "YYYY-MM")


async def _grouped(
    conn: AsyncConnection,
    dialect: str,
    first: date,
    month: date,
    threshold: int,
    scope: frozenset[str] | None = None,
) -> list[_Group]:
    """Petitions of the 13 months up to `month`, grouped by every dimension the report cuts.

    The grouping runs over a labelled subquery: PostgreSQL matches GROUP BY expressions
    by text, and a bound parameter (the month format, the threshold) numbered twice would
    not match itself.
    """
    inner = (
        select(
            _month_expr(dialect, Petition.received_date).label("m"),
            Petition.channel.label("channel"),
            Petition.category.label("category"),
            Petition.region_code.label("region_code"),
            case((Petition.people_involved >= threshold, 1), else_=0).label("collective"),
            Petition.over_level.label("over_level"),
            Petition.people_involved.label("people"),
        )
        .where(
            Petition.received_date >= first,
            Petition.received_date < add_months(month, 1),
            _within(Petition.region_code, scope),
        )
        .subquery()
    )
    keys = [inner.c.m, inner.c.channel, inner.c.category, inner.c.region_code]
    keys += [inner.c.collective, inner.c.over_level]
    stmt = select(*keys, func.count(), func.sum(inner.c.people)).group_by(*keys)
    return [
        _Group(
            month=row[0],
            channel=row[1],
            category=row[2],
            region_code=row[3],
            collective=bool(row[4]),
            over_level=row[5],
            petitions=int(row[6]),
            people=int(row[7] or 0),
        )
        for row in await conn.execute(stmt)
    ]


def _in_month(month: date) -> Any:
    return and_(Petition.received_date >= month, Petition.received_date < add_months(month, 1))


async def _enterprise_rows(
    conn: AsyncConnection, month: date, threshold: int, scope: frozenset[str] | None = None
) -> list[Any]:
    collective = case((Petition.people_involved >= threshold, 1), else_=0)
    stmt = (
        select(
            Petition.point_id,
            Petition.enterprise_name,
            Petition.region_code,
            func.count(),
            func.sum(Petition.people_involved),
            func.sum(collective),
        )
        .where(_in_month(month), _within(Petition.region_code, scope))
        .group_by(Petition.point_id, Petition.enterprise_name, Petition.region_code)
    )
    return list(await conn.execute(stmt))


def _enterprise_name(
    point_id: str | None, name: str | None, points: dict[str, tuple[str, str, str]]
) -> str:
    if point_id and point_id in points:
        return points[point_id][0]
    if name and name.strip():
        return name.strip()
    if point_id:
        return f"{point_id}（未登记监测点）"
    return "未注明企业"


def _rank_enterprises(
    rows: list[Any],
    points: dict[str, tuple[str, str, str]],
    region_name: Any,
    top: int,
) -> tuple[list[Enterprise], Enterprise | None, int]:
    """Enterprises by petitions this month. A monitoring point is one enterprise however
    its petitions spell the name; without a point id the written name (trimmed) is the key."""
    totals: dict[str, list[Any]] = {}
    regions: dict[str, Counter[str]] = defaultdict(Counter)
    for point_id, name, region_code, n, people, collective in rows:
        if point_id:
            key = f"point:{point_id}"
        elif name and name.strip():
            key = f"name:{name.strip()}"
        else:
            continue
        entry = totals.setdefault(key, [point_id, name, 0, 0, 0])
        entry[2] += int(n)
        entry[3] += int(people or 0)
        entry[4] += int(collective or 0)
        regions[key][region_code] += int(n)
    ranked: list[Enterprise] = []
    for key, (point_id, name, n, people, collective) in totals.items():
        if point_id and point_id in points:
            region_code, industry = points[point_id][1], points[point_id][2]
        else:
            # The county that filed most of its petitions (ties: the lowest code).
            region_code = min(regions[key].items(), key=lambda kv: (-kv[1], kv[0]))[0]
            industry = None
        ranked.append(
            Enterprise(
                key=key,
                name=_enterprise_name(point_id, name, points),
                region_code=region_code,
                region=region_name(region_code),
                point_id=point_id,
                industry=industry,
                count=Count(n, people),
                collective=collective,
            )
        )
    ranked.sort(key=lambda e: (-e.count.petitions, -e.count.people, e.name, e.key))
    most_people = min(
        ranked, key=lambda e: (-e.count.people, -e.count.petitions, e.name, e.key), default=None
    )
    return ranked[:top], most_people, len(ranked)


async def _flags(
    conn: AsyncConnection, month: date, scope: frozenset[str] | None = None
) -> tuple[int, int]:
    inferred = case((Petition.category_inferred.is_(True), 1), else_=0)
    unattributed = case(
        (
            and_(
                Petition.point_id.is_(None),
                or_(Petition.enterprise_name.is_(None), func.trim(Petition.enterprise_name) == ""),
            ),
            1,
        ),
        else_=0,
    )
    row = (
        await conn.execute(
            select(func.sum(inferred), func.sum(unattributed)).where(
                _in_month(month), _within(Petition.region_code, scope)
            )
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


async def _collective_cases(
    conn: AsyncConnection,
    month: date,
    options: ReportOptions,
    scope: frozenset[str] | None = None,
) -> list[Any]:
    stmt = (
        select(
            Petition.petition_id,
            Petition.received_date,
            Petition.region_code,
            Petition.point_id,
            Petition.enterprise_name,
            Petition.category,
            Petition.channel,
            Petition.people_involved,
            Petition.over_level,
            Petition.closed_at,
        )
        .where(
            _in_month(month),
            Petition.people_involved >= options.collective_threshold,
            _within(Petition.region_code, scope),
        )
        .order_by(Petition.people_involved.desc(), Petition.received_date, Petition.petition_id)
        .limit(options.max_collective_cases)
    )
    return list(await conn.execute(stmt))


async def _handling(
    conn: AsyncConnection,
    month: date,
    start: datetime,
    end: datetime,
    scope: frozenset[str] | None = None,
) -> Handling:
    closed = await conn.execute(
        select(Petition.received_at, Petition.closed_at).where(
            Petition.closed_at >= start,
            Petition.closed_at < end,
            _within(Petition.region_code, scope),
        )
    )
    durations = [
        _hours(closed_at - received_at) / 24
        for received_at, closed_at in closed
        if closed_at is not None
    ]
    month_rows = (
        await conn.execute(
            select(
                func.count(),
                func.sum(
                    case(
                        (and_(Petition.closed_at.is_not(None), Petition.closed_at < end), 1),
                        else_=0,
                    )
                ),
            ).where(_in_month(month), _within(Petition.region_code, scope))
        )
    ).one()
    return Handling(
        closed=len(durations),
        avg_days=_mean(durations),
        closed_of_month=int(month_rows[1] or 0),
        month_petitions=int(month_rows[0] or 0),
    )


def _median(values: Sequence[Fraction]) -> Decimal | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    value = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return labels.round1(value)


async def _disposal(
    conn: AsyncConnection,
    start: datetime,
    end: datetime,
    region_names: dict[str, str],
    scope: frozenset[str] | None = None,
) -> Disposal | None:
    """处置情况 (interfaces §8): the month's event alerts by level with their verification
    and the median hours to the first verify record and to the final report; the
    deadlines missed in the month by county; the totals of the final reports filed in
    the month."""
    records = list(
        await conn.execute(
            select(
                HandlingRecord.alert_id,
                HandlingRecord.kind,
                HandlingRecord.created_at,
                HandlingRecord.fields,
            )
            .join(Alert, Alert.id == HandlingRecord.alert_id)
            .where(HandlingRecord.created_at < end, _within(Alert.region_code, scope))
            .order_by(HandlingRecord.created_at, HandlingRecord.id)
        )
    )
    missed = list(
        await conn.execute(
            select(HandlingDeadline.kind, Alert.region_code)
            .join(Alert, Alert.id == HandlingDeadline.alert_id)
            .where(
                HandlingDeadline.missed_at >= start,
                HandlingDeadline.missed_at < end,
                _within(Alert.region_code, scope),
            )
        )
    )
    in_month = [r for r in records if start <= r.created_at < end]
    if not in_month and not missed:
        return None
    events = list(
        await conn.execute(
            select(Alert.id, Alert.level, Alert.created_at).where(
                Alert.kind == "event",
                Alert.created_at >= start,
                Alert.created_at < end,
                _within(Alert.region_code, scope),
            )
        )
    )
    by_alert: dict[int, list[Any]] = defaultdict(list)
    for r in records:
        if r.created_at < end:
            by_alert[r.alert_id].append(r)
    levels = []
    for level in labels.ALERT_LEVELS:
        mine = [e for e in events if e.level == level]
        true = false = 0
        to_verify: list[Fraction] = []
        to_final: list[Fraction] = []
        for event in mine:
            done = by_alert.get(event.id, [])
            verify = next((r for r in done if r.kind == "verify"), None)
            if verify is not None:
                if (verify.fields or {}).get("verdict") == "false":
                    false += 1
                else:
                    true += 1
                to_verify.append(_hours(verify.created_at - event.created_at))
            final = next((r for r in done if r.kind == "final"), None)
            if final is not None:
                to_final.append(_hours(final.created_at - event.created_at))
        levels.append(
            DisposalLevelRow(
                level=level,
                label=labels.label(labels.ALERT_LEVELS, level),
                events=len(mine),
                verified_true=true,
                verified_false=false,
                unverified=len(mine) - true - false,
                median_verify_hours=_median(to_verify),
                median_final_hours=_median(to_final),
            )
        )
    late: dict[str, Counter[str]] = defaultdict(Counter)
    for kind, region_code in missed:
        late[region_code][kind] += 1
    late_rows = [
        LateRow(
            region_code=code,
            region=region_names.get(code, code),
            verify=late[code]["verify"],
            progress=late[code]["progress"],
            final=late[code]["final"],
            answer=late[code]["answer"],
        )
        for code in sorted(late)
    ]
    finals = [r for r in in_month if r.kind == "final"]
    wages = sum(
        (Decimal(str((r.fields or {}).get("wages_recovered") or 0)) for r in finals), Decimal(0)
    )
    paid = sum(int((r.fields or {}).get("workers_paid") or 0) for r in finals)
    return Disposal(
        levels=levels,
        late=late_rows,
        finals=len(finals),
        wages_recovered=wages,
        workers_paid=paid,
    )


async def _event_times(conn: AsyncConnection, ids: set[str]) -> dict[str, datetime]:
    """When the records behind alerts happened: an informant report's `occurred_at`, a
    petition's `received_at`."""
    found: dict[str, datetime] = {}
    wanted = sorted(ids)
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        for rid, at in await conn.execute(
            select(InformantReport.report_id, InformantReport.occurred_at).where(
                InformantReport.report_id.in_(chunk)
            )
        ):
            found[rid] = at
        for rid, at in await conn.execute(
            select(Petition.petition_id, Petition.received_at).where(
                Petition.petition_id.in_(chunk)
            )
        ):
            found.setdefault(rid, at)
    return found


async def _alerts(
    conn: AsyncConnection, start: datetime, end: datetime, scope: frozenset[str] | None = None
) -> tuple[list[AlertLevelRow], list[AckRow]]:
    """Alerts opened, resolved and still open, by level; time to acknowledge, by tier.

    The tier of an acknowledgement is the acknowledger's: the tier of the account in
    `acknowledged_by` (county leaders answer for tier 3, city for 2, province for 1).
    An acknowledgement not made through an account (an operator on the command line)
    is counted on its own row rather than guessed.
    """
    rows = list(
        await conn.execute(
            select(
                Alert.level,
                Alert.created_at,
                Alert.acknowledged_at,
                Alert.acknowledged_by,
                Alert.resolved_at,
                Alert.source_ids,
            ).where(
                or_(Alert.resolved_at.is_(None), Alert.resolved_at >= start),
                _within(Alert.region_code, scope),
            )
        )
    )
    # An alert counts in the month of its event (the records behind it), not of the day
    # the system raised it: the same month as the console's, even when records arrive
    # late or, in the demo, carry simulated times.
    happened = await _event_times(conn, {str(i) for r in rows for i in (r.source_ids or [])})

    def event_at(r: Any) -> datetime:
        times = [happened[str(i)] for i in (r.source_ids or []) if str(i) in happened]
        return min(times) if times else r.created_at

    rows = [r for r in rows if event_at(r) < end]
    actors = sorted({r.acknowledged_by for r in rows if r.acknowledged_by})
    tiers: dict[str, int] = {}
    for chunk_start in range(0, len(actors), 500):
        chunk = actors[chunk_start : chunk_start + 500]
        result = await conn.execute(select(Account.id, Account.tier).where(Account.id.in_(chunk)))
        tiers.update({account_id: int(tier) for account_id, tier in result})
    levels = list(labels.ALERT_LEVELS) + sorted({r.level for r in rows} - set(labels.ALERT_LEVELS))
    alert_rows = []
    for level in levels:
        mine = [r for r in rows if r.level == level]
        alert_rows.append(
            AlertLevelRow(
                level=level,
                label=labels.label(labels.ALERT_LEVELS, level),
                opened=sum(1 for r in mine if start <= event_at(r) < end),
                resolved=sum(
                    1 for r in mine if r.resolved_at is not None and start <= r.resolved_at < end
                ),
                open_at_end=sum(1 for r in mine if r.resolved_at is None or r.resolved_at >= end),
            )
        )
    waits: dict[int | None, list[Fraction]] = defaultdict(list)
    for r in rows:
        if r.acknowledged_at is not None and start <= r.acknowledged_at < end:
            tier = tiers.get(r.acknowledged_by) if r.acknowledged_by else None
            waits[tier].append(_hours(r.acknowledged_at - r.created_at))
    ack_rows = []
    # Counties first: the tiers in the order an alert climbs them.
    shown: list[int | None] = [3, 2, 1]
    shown += sorted(t for t in waits if t is not None and t not in shown)
    if None in waits:
        shown.append(None)
    for tier in shown:
        values = waits.get(tier, [])
        ack_rows.append(
            AckRow(
                tier=tier,
                label=labels.TIER_UNKNOWN if tier is None else labels.TIERS.get(tier, str(tier)),
                acknowledged=len(values),
                avg_hours=_mean(values),
                max_hours=labels.round1(max(values)) if values else None,
            )
        )
    every = [v for values in waits.values() for v in values]
    ack_rows.append(
        AckRow(
            tier=0,
            label="合计",
            acknowledged=len(every),
            avg_hours=_mean(every),
            max_hours=labels.round1(max(every)) if every else None,
        )
    )
    return alert_rows, ack_rows


async def _risk(
    conn: AsyncConnection,
    as_of: datetime,
    points: dict[str, tuple[str, str, str]],
    regions: dict[str, tuple[str, int, str | None]],
    options: ReportOptions,
) -> tuple[list[RiskLevelRow], list[RiskPoint]]:
    """The latest score of every monitoring point as of the month's end.

    "As of" is the score's `as_of` (the data it was computed from), not when it was
    computed: a re-score run early on the 1st for the month just ended belongs here.
    """
    ranked = (
        select(
            RiskScore.entity_id,
            RiskScore.score,
            RiskScore.level,
            RiskScore.factors,
            func.row_number()
            .over(
                partition_by=RiskScore.entity_id,
                order_by=(RiskScore.as_of.desc(), RiskScore.scored_at.desc(), RiskScore.id.desc()),
            )
            .label("rn"),
        )
        .where(RiskScore.entity_type == "point", RiskScore.as_of <= as_of)
        .subquery()
    )
    latest = list(
        await conn.execute(
            select(ranked.c.entity_id, ranked.c.score, ranked.c.level, ranked.c.factors).where(
                ranked.c.rn == 1
            )
        )
    )
    counts: Counter[str | None] = Counter()
    top: list[RiskPoint] = []
    for entity_id, score, level, factors in latest:
        if entity_id not in points:
            continue  # a score for a point since removed from the registry
        counts[level] += 1
        if level is not None:
            name, region_code, industry = points[entity_id]
            factor = ""
            if factors:
                first = factors[0]
                factor = str(first.get("text", "")) if isinstance(first, dict) else str(first)
            top.append(
                RiskPoint(
                    point_id=entity_id,
                    name=name,
                    region=regions.get(region_code, (region_code, 0, None))[0],
                    industry=labels.label(labels.INDUSTRIES, industry),
                    score=labels.round1(Fraction(str(score))),
                    level=level,
                    factor=factor,
                )
            )
    level_order = {k: i for i, k in enumerate(labels.RISK_LEVELS)}
    top.sort(key=lambda p: (level_order.get(p.level, 99), -p.score, p.point_id))
    rows = [
        RiskLevelRow(level=k, label=v, points=counts.get(k, 0))
        for k, v in labels.RISK_LEVELS.items()
    ]
    rows += [
        RiskLevelRow(level=k, label=k, points=n)
        for k, n in sorted(counts.items(), key=lambda kv: str(kv[0]))
        if k is not None and k not in labels.RISK_LEVELS
    ]
    rows.append(RiskLevelRow(level=None, label=labels.RISK_NONE, points=counts.get(None, 0)))
    scored = sum(counts.values())
    rows.append(
        RiskLevelRow(level="unscored", label=labels.RISK_UNSCORED, points=len(points) - scored)
    )
    return rows, top[: options.max_risk_points]
