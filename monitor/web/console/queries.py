"""What the console pages show, read from the store (the console never writes but
through the core: the record store for reports, alerting for acknowledge/resolve)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from monitor.alerting.messages import MessageBuilder, timeline_text
from monitor.clock import add_months, local_date
from monitor.context import Context
from monitor.models import (
    Account,
    Alert,
    AlertEvent,
    Delivery,
    DeliveryAttempt,
    Document,
    Finding,
    InformantReport,
    MonitoringPoint,
    Petition,
    Region,
    RiskScore,
    WageReport,
)

LEVEL_ORDER = {"I": 0, "II": 1, "III": 2, "IV": 3}
STATUS_ORDER = {"triggered": 0, "acknowledged": 1, "resolved": 2}


@dataclass
class TimelineEntry:
    at: datetime
    what: str
    who: str | None = None
    channel: str | None = None
    status: str | None = None
    detail: str | None = None
    #: What an audit event means, in Chinese (the messages' timeline line).
    text: str | None = None


@dataclass
class RiskRow:
    entity_id: str
    name: str
    region_code: str
    county: str
    industry: str | None
    score: float
    level: str | None
    factors: list[dict[str, Any]]
    scored_at: datetime


@dataclass
class CountyTile:
    code: str
    name: str
    score: float | None
    level: str | None
    open_alerts: int
    factors: list[dict[str, Any]] = field(default_factory=list)
    #: The county in context: its city, and its rank by risk score among the scored
    #: counties of its city and of its province (1 = riskiest; None when unscored).
    city: str = ""
    rank_in_city: int | None = None
    scored_in_city: int = 0
    rank_in_province: int | None = None
    scored_in_province: int = 0


@dataclass
class CityTile:
    """A city of a province-wide view: its counties' worst risk and its open alerts."""

    code: str
    name: str
    counties: int
    open_alerts: int
    score: float | None
    level: str | None
    worst_county: str = ""


async def region_names(ctx: Context) -> dict[str, str]:
    async with ctx.db.session() as session:
        return {
            code: name for code, name in await session.execute(select(Region.code, Region.name))
        }


async def alerts_for(
    ctx: Context,
    regions: Iterable[str],
    *,
    status: str | None = None,
    level: str | None = None,
    source_ids: Iterable[str] | None = None,
    limit: int = 200,
) -> list[Alert]:
    """Alerts in the given regions, open ones first, then by level and recency."""
    codes = list(regions)
    if not codes:
        return []
    query = select(Alert).where(Alert.region_code.in_(codes))
    if status:
        query = query.where(Alert.status == status)
    if level:
        query = query.where(Alert.level == level)
    async with ctx.db.session() as session:
        rows = list(
            (await session.scalars(query.order_by(Alert.created_at.desc()).limit(2000))).all()
        )
    if source_ids is not None:
        wanted = set(source_ids)
        rows = [a for a in rows if wanted & set(a.source_ids or [])]
    rows.sort(
        key=lambda a: (
            STATUS_ORDER.get(a.status, 9),
            LEVEL_ORDER.get(a.level, 9),
            -a.created_at.timestamp(),
        )
    )
    return rows[:limit]


async def alert_counts(ctx: Context, regions: Iterable[str]) -> dict[str, dict[str, int]]:
    """Open alerts by level and status, for the header badges."""
    codes = list(regions)
    out: dict[str, dict[str, int]] = {}
    if not codes:
        return out
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(Alert.status, Alert.level, func.count())
            .where(Alert.region_code.in_(codes))
            .group_by(Alert.status, Alert.level)
        )
        for status, level, n in rows:
            out.setdefault(status, {})[level] = int(n)
    return out


async def alert_detail(ctx: Context, alert_id: int) -> tuple[Alert | None, list[TimelineEntry]]:
    """The alert and its escalation timeline: every audit event and every notification,
    with each send attempt, in time order."""
    async with ctx.db.session() as session:
        alert = await session.get(Alert, alert_id)
        if alert is None:
            return None, []
        events = (
            await session.scalars(
                select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
            )
        ).all()
        deliveries = (
            await session.scalars(
                select(Delivery).where(Delivery.alert_id == alert_id).order_by(Delivery.created_at)
            )
        ).all()
        attempts = (
            await session.scalars(
                select(DeliveryAttempt)
                .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
                .where(Delivery.alert_id == alert_id)
                .order_by(DeliveryAttempt.at)
            )
        ).all()
    # The reasons the system writes are for operators (English, ids); a person's note
    # (an acknowledgement's or a resolution's) is shown.
    timeline = [
        TimelineEntry(
            at=e.at,
            what=e.event,
            who=e.actor,
            detail=e.reason if e.actor != "system" else None,
            text=timeline_text(e),
        )
        for e in events
        # A finding that only repeated what the alert says is no line of its own.
        if not (e.event == "AlertUpdated" and timeline_text(e) is None)
    ]
    by_delivery: dict[str, list[DeliveryAttempt]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
    for d in deliveries:
        tries = by_delivery.get(d.id, [])
        timeline.append(
            TimelineEntry(
                at=d.sent_at or d.created_at,
                what=f"notification:{d.purpose}",
                who=d.recipient,
                channel=d.channel,
                status=d.status,
                detail=(d.last_error if d.status != "sent" else None)
                or (f"{len(tries)} 次尝试" if len(tries) > 1 else None),
            )
        )
    timeline.sort(key=lambda t: t.at)
    return alert, timeline


async def latest_risk(ctx: Context, entity_type: str, regions: Iterable[str]) -> list[RiskRow]:
    """The latest score of every point (or county) in the regions, riskiest first."""
    codes = list(regions)
    if not codes:
        return []
    latest = (
        select(RiskScore.entity_id, func.max(RiskScore.scored_at).label("at"))
        .where(RiskScore.entity_type == entity_type, RiskScore.region_code.in_(codes))
        .group_by(RiskScore.entity_id)
        .subquery()
    )
    query = (
        select(RiskScore)
        .join(
            latest,
            and_(RiskScore.entity_id == latest.c.entity_id, RiskScore.scored_at == latest.c.at),
        )
        .where(RiskScore.entity_type == entity_type)
    )
    names = await region_names(ctx)
    async with ctx.db.session() as session:
        scores = (await session.scalars(query)).all()
        points: dict[str, MonitoringPoint] = {}
        if entity_type == "point":
            ids = [s.entity_id for s in scores]
            for start in range(0, len(ids), 500):
                found = await session.scalars(
                    select(MonitoringPoint).where(
                        MonitoringPoint.point_id.in_(ids[start : start + 500])
                    )
                )
                points.update({p.point_id: p for p in found})
    rows = []
    seen: set[str] = set()
    for s in sorted(scores, key=lambda r: -r.score):
        if s.entity_id in seen:
            continue
        seen.add(s.entity_id)
        point = points.get(s.entity_id)
        rows.append(
            RiskRow(
                entity_id=s.entity_id,
                name=point.name if point else names.get(s.entity_id, s.entity_id),
                region_code=s.region_code,
                county=names.get(s.region_code, s.region_code),
                industry=point.industry if point else None,
                score=float(s.score),
                level=s.level,
                factors=list(s.factors or []),
                scored_at=s.scored_at,
            )
        )
    return rows


async def county_tiles(ctx: Context, regions: Iterable[str]) -> list[CountyTile]:
    codes = set(regions)
    names = await region_names(ctx)
    risk = {r.entity_id: r for r in await latest_risk(ctx, "county", codes)}
    async with ctx.db.session() as session:
        counties = (
            await session.scalars(
                select(Region).where(Region.tier == 3, Region.code.in_(codes)).order_by(Region.code)
            )
        ).all()
        open_rows = await session.execute(
            select(Alert.region_code, func.count())
            .where(Alert.status != "resolved", Alert.region_code.in_(codes))
            .group_by(Alert.region_code)
        )
        open_alerts = {code: n for code, n in open_rows}
        # Ranks put a county in context: among the counties of its city and of its
        # province, whatever part of them the viewer sees.
        provinces = {c.code[:2] for c in counties}
        every = (
            await session.execute(
                select(Region.code, Region.parent_code).where(
                    Region.tier == 3, func.substr(Region.code, 1, 2).in_(sorted(provinces))
                )
            )
        ).all()
    wide = {r.entity_id: r.score for r in await latest_risk(ctx, "county", [c for c, _ in every])}
    parent_of = dict(every)

    def rank(code: str, peers: list[str]) -> tuple[int | None, int]:
        scored = sorted((-wide[c], c) for c in peers if c in wide)
        position = next((i for i, (_s, c) in enumerate(scored, 1) if c == code), None)
        return position, len(scored)

    tiles = []
    for county in counties:
        r = risk.get(county.code)
        city = county.parent_code or county.code
        in_city = rank(county.code, [c for c, p in every if p == city])
        in_province = rank(county.code, [c for c, _ in every if c[:2] == county.code[:2]])
        tiles.append(
            CountyTile(
                code=county.code,
                name=names.get(county.code, county.code),
                score=r.score if r else None,
                level=r.level if r else None,
                open_alerts=int(open_alerts.get(county.code, 0)),
                factors=r.factors[:3] if r else [],
                city=names.get(city, city) if parent_of.get(county.code) else "",
                rank_in_city=in_city[0],
                scored_in_city=in_city[1],
                rank_in_province=in_province[0],
                scored_in_province=in_province[1],
            )
        )
    return tiles


async def city_tiles(
    ctx: Context, regions: Iterable[str], tiles: list[CountyTile]
) -> list[CityTile]:
    """The cities among `regions` with their counties' tiles summed (worst level, open
    alerts), for a viewer who sees more than one city (a province's leader)."""
    codes = set(regions)
    async with ctx.db.session() as session:
        cities = (
            await session.scalars(
                select(Region).where(Region.tier == 2, Region.code.in_(codes)).order_by(Region.code)
            )
        ).all()
        parents = dict(
            (
                await session.execute(
                    select(Region.code, Region.parent_code).where(Region.tier == 3)
                )
            ).all()
        )
    out = []
    for city in cities:
        mine = [t for t in tiles if parents.get(t.code) == city.code]
        scored = [t for t in mine if t.score is not None]
        worst = max(scored, key=lambda t: t.score or 0.0, default=None)
        out.append(
            CityTile(
                code=city.code,
                name=city.name,
                counties=len(mine),
                open_alerts=sum(t.open_alerts for t in mine),
                score=worst.score if worst else None,
                level=worst.level if worst else None,
                worst_county=worst.name if worst else "",
            )
        )
    return out


@dataclass
class PointHistory:
    point: MonitoringPoint
    county: str
    months: list[date]
    wages: list[float | None]
    arrears_workers: list[int | None]
    petitions: list[int]
    people: list[int]
    risk: list[tuple[datetime, float]]
    reports: list[InformantReport]


async def point_history(
    ctx: Context, point_id: str, today: date, months: int = 24
) -> PointHistory | None:
    first = add_months(today.replace(day=1), -(months - 1))
    month_list = [add_months(first, i) for i in range(months)]
    async with ctx.db.session() as session:
        point = await session.get(MonitoringPoint, point_id)
        if point is None:
            return None
        region = await session.get(Region, point.region_code)
        wages = {
            w.period: w
            for w in (
                await session.scalars(
                    select(WageReport).where(
                        WageReport.point_id == point_id, WageReport.period >= first
                    )
                )
            ).all()
        }
        petitions = (
            await session.execute(
                select(Petition.received_date, Petition.people_involved).where(
                    Petition.point_id == point_id, Petition.received_date >= first
                )
            )
        ).all()
        risk = (
            await session.execute(
                select(RiskScore.scored_at, RiskScore.score)
                .where(RiskScore.entity_type == "point", RiskScore.entity_id == point_id)
                .order_by(RiskScore.scored_at.desc())
                .limit(60)
            )
        ).all()
        reports = (
            await session.scalars(
                select(InformantReport)
                .where(InformantReport.point_id == point_id)
                .order_by(InformantReport.occurred_at.desc())
                .limit(10)
            )
        ).all()
    counts = {m: 0 for m in month_list}
    people = {m: 0 for m in month_list}
    for day, n in petitions:
        key = day.replace(day=1)
        if key in counts:
            counts[key] += 1
            people[key] += int(n)
    return PointHistory(
        point=point,
        county=region.name if region else point.region_code,
        months=month_list,
        wages=[wages[m].avg_frontline_wage if m in wages else None for m in month_list],
        arrears_workers=[wages[m].arrears_workers if m in wages else None for m in month_list],
        petitions=[counts[m] for m in month_list],
        people=[people[m] for m in month_list],
        risk=[(at, float(score)) for at, score in reversed(risk)],
        reports=list(reports),
    )


async def my_reports(ctx: Context, account_id: str, limit: int = 20) -> list[InformantReport]:
    async with ctx.db.session() as session:
        return list(
            (
                await session.scalars(
                    select(InformantReport)
                    .where(InformantReport.account_id == account_id)
                    .order_by(InformantReport.ingested_at.desc())
                    .limit(limit)
                )
            ).all()
        )


async def alerts_from_report(ctx: Context, report: InformantReport) -> list[Alert]:
    """The alerts raised from this informant report: an alert whose severity finding was
    made from a report with this id (not a wage report or petition that happens to carry
    the same id), and that still names it among its sources."""
    async with ctx.db.session() as session:
        # A report about a known point (by id or by its registered name) is judged as
        # that point's event; any other as an event of its own.
        points = {report.point_id} if report.point_id else set()
        if report.enterprise_name:
            named = select(MonitoringPoint.point_id).where(
                MonitoringPoint.name == report.enterprise_name
            )
            points.update((await session.scalars(named)).all())
        entity = Finding.entity_id == f"report:{report.report_id}"
        if report.enterprise_name:
            # An enterprise outside the registry is judged as a firm of its county.
            firm = f"{report.region_code}:{report.enterprise_name}"
            entity = or_(entity, Finding.entity_id == firm)
        rows = await session.execute(
            select(Finding.dedup_key, Finding.evidence).where(
                Finding.detector == "severity",
                Finding.region_code == report.region_code,
                or_(entity, Finding.point_id.in_(points)) if points else entity,
            )
        )
        keys = {
            key
            for key, evidence in rows
            if (evidence or {}).get("record_kind") == "report"
            and report.report_id in ((evidence or {}).get("source_ids") or [])
        }
        if not keys:
            return []
        # An event alert is one incident: keyed by its entity (interfaces §5).
        alerts = (
            await session.scalars(
                select(Alert).where(or_(Alert.dedup_key.in_(keys), Alert.entity_key.in_(keys)))
            )
        ).all()
    return sorted(
        (a for a in alerts if report.report_id in (a.source_ids or [])),
        key=lambda a: (STATUS_ORDER.get(a.status, 9), LEVEL_ORDER.get(a.level, 9), -a.id),
    )


def document_region(ctx: Context, key: str) -> str:
    """The region a monthly report covers: `YYYY-MM/<code>` is a city's report within a
    province's installation; a bare month is the installation's own."""
    _month, _, code = key.partition("/")
    return code or ctx.settings.organisation.scope_code


async def latest_documents(
    ctx: Context,
    kind: str = "monthly_report",
    limit: int = 6,
    regions: frozenset[str] | None = None,
) -> list[Document]:
    """The latest documents, of the reports on `regions` only when given (a city's
    leader sees the city's report, a province's leader every report of the province)."""
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(Document.id, Document.kind, Document.key, Document.filename, Document.created_at)
            .where(Document.kind == kind)
            .order_by(Document.key.desc(), Document.id.desc())
            .limit(limit if regions is None else limit * 30)
        )
        docs = [
            Document(id=r.id, kind=r.kind, key=r.key, filename=r.filename, created_at=r.created_at)
            for r in rows
            if regions is None or document_region(ctx, r.key) in regions
        ]
        return docs[: limit if regions is None else limit * 15]


async def document(ctx: Context, document_id: int) -> Document | None:
    async with ctx.db.session() as session:
        return await session.get(Document, document_id)


async def open_risk_alerts(ctx: Context, regions: Iterable[str], limit: int = 50) -> list[Alert]:
    """Open risk alerts (forecasts) of the regions, worst band first, then by score."""
    codes = list(regions)
    if not codes:
        return []
    async with ctx.db.session() as session:
        rows = (
            await session.scalars(
                select(Alert).where(
                    Alert.kind.in_(["enterprise_risk", "county_risk", "petition_surge"]),
                    Alert.status != "resolved",
                    Alert.region_code.in_(codes),
                )
            )
        ).all()
    return sorted(rows, key=lambda a: (LEVEL_ORDER.get(a.level, 9), -(a.score or 0), a.id))[:limit]


async def alert_facts(ctx: Context, alert: Alert, *, full_text: bool) -> dict[str, Any]:
    """What the alert page shows first (the same facts as the messages); `full_text`: the
    record's own words unmasked, for the roles allowed to read them."""
    settings = ctx.settings
    builder = MessageBuilder(
        settings.organisation.zone, settings.http.base_url, settings.alerting.requirements
    )
    async with ctx.db.session() as session:
        facts = await builder.facts(session, alert)
        facts["county"] = await builder.region_name(session, alert.region_code)
        ids = list(alert.source_ids or [])
        if full_text and ids and alert.kind == "event" and facts.get("text"):
            original = await session.scalar(
                select(InformantReport.description).where(InformantReport.report_id == ids[0])
            ) or await session.scalar(
                select(Petition.summary).where(Petition.petition_id == ids[0])
            )
            if original:
                facts["text"] = str(original)
                facts["text_full"] = True
    return facts


async def account_label(ctx: Context, ids: Iterable[str]) -> dict[str, str]:
    """Who acted in a timeline, by post (资阳区总工会值班员), never by name (personal
    data)."""
    wanted = {i for i in ids if i and not i.startswith(("group:", "contact:", "system"))}
    if not wanted:
        return {}
    async with ctx.db.session() as session:
        rows = (await session.scalars(select(Account).where(Account.id.in_(wanted)))).all()
    tier_names = {1: "省级", 2: "市级", 3: "区县级", 4: "基层"}
    role_names = {
        "leader": "领导",
        "duty_officer": "值班员",
        "analyst": "分析员",
        "informant": "信息员",
    }
    async with ctx.db.session() as session:
        regions = {
            code: name
            for code, name in await session.execute(
                select(Region.code, Region.name).where(
                    Region.code.in_({a.region_code for a in rows})
                )
            )
        }
    out = {}
    for a in rows:
        region = regions.get(a.region_code)
        post = f"{region}总工会" if region else tier_names.get(a.tier, "")
        out[a.id] = f"{post}{role_names.get(a.role, a.role)}"
    return out


def local_day(ctx: Context, value: datetime) -> date:
    return local_date(value, ctx.settings.organisation.zone)


def point_filter(query: Any, text: str) -> Any:
    like = f"%{text}%"
    return query.where(or_(MonitoringPoint.point_id.like(like), MonitoringPoint.name.like(like)))


async def enterprises(
    ctx: Context, regions: Iterable[str], q: str = "", *, exact: bool = False, limit: int = 20
) -> list[MonitoringPoint]:
    """Registered enterprises (monitoring points) of the given counties whose name holds
    `q` (or is `q`, with `exact`): what an informant may pick on the report form."""
    codes = list(regions)
    if not codes:
        return []
    query = select(MonitoringPoint).where(MonitoringPoint.region_code.in_(codes))
    q = q.strip()
    if exact:
        query = query.where(MonitoringPoint.name == q)
    elif q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(MonitoringPoint.name.like(f"%{escaped}%", escape="\\"))
    async with ctx.db.session() as session:
        rows = await session.scalars(query.order_by(MonitoringPoint.name).limit(limit))
        return list(rows.all())


async def enterprise(ctx: Context, point_id: str) -> MonitoringPoint | None:
    async with ctx.db.session() as session:
        return await session.get(MonitoringPoint, point_id)


@dataclass
class CorrectionState:
    """Where a report stands for its sender (interfaces §8)."""

    #: Until when it may be corrected or withdrawn (None: no longer).
    open_until: datetime | None
    #: The report that corrected or withdrew it, if any.
    corrected_by: str | None = None
    withdrawn_by: str | None = None


async def correction_state(ctx: Context, report: InformantReport, window: Any) -> CorrectionState:
    async with ctx.db.session() as session:
        later = (
            await session.execute(
                select(InformantReport.report_id, InformantReport.withdraws).where(
                    or_(
                        InformantReport.corrects == report.report_id,
                        InformantReport.withdraws == report.report_id,
                    )
                )
            )
        ).first()
        first = report
        for _ in range(20):
            if not first.corrects:
                break
            parent = await session.get(InformantReport, first.corrects)
            if parent is None:
                break
            first = parent
    ends = first.ingested_at + window
    state = CorrectionState(open_until=ends if ctx.clock.now() <= ends else None)
    if later is not None:
        state.open_until = None
        if later.withdraws:
            state.withdrawn_by = later.report_id
        else:
            state.corrected_by = later.report_id
    if report.withdraws:
        state.open_until = None
    return state
