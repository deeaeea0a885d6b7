"""Storing incoming records exactly once, on SQLite and PostgreSQL alike.

`RecordStore.store()` is the one write path for every channel (MQTT, HTTP, files):
validated records in, a `StoreResult` out that says, per record id, stored, duplicate
(same contents already stored) or rejected (with the field and the reason). The insert
is `INSERT ... ON CONFLICT DO NOTHING RETURNING id`, so redeliveries cost nothing and a
crash between two batches loses nothing: the next attempt stores what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.clock import SHANGHAI, Clock, local_date
from monitor.db import Database
from monitor.logging import get_logger
from monitor.models import (
    Account,
    InformantReport,
    MonitoringPoint,
    Petition,
    Region,
    RejectedMessage,
    WageReport,
)
from monitor.privacy import Privacy, mask_payload, masked_text
from monitor.records import (
    RECORD_TYPES,
    FieldError,
    InformantReportIn,
    MonitoringPointIn,
    PetitionIn,
    Record,
    RegionIn,
    WageReportIn,
)
from monitor.regions import Catalogue, covers, parent_of, tier_of
from monitor.regions import catalogue as default_catalogue

log = get_logger("labormon.store")

#: Infers a petition category from its summary (the detectors provide the real one).
CategoryInferrer = Callable[[str], str]
#: The number of people a free text gives ("上百名农民工" -> 100), None if it gives none.
PeopleReader = Callable[[str], int | None]

#: How far in the future a record's own timestamp may lie (clock skew of senders).
FUTURE_TOLERANCE = timedelta(days=1)

TABLES: dict[str, Any] = {
    "region": Region,
    "point": MonitoringPoint,
    "wage": WageReport,
    "petition": Petition,
    "report": InformantReport,
}


@dataclass(frozen=True)
class Submission:
    """A validated record and where it came from."""

    record: Record
    #: mqtt | http | file
    source: str
    #: The account that sent it (None for file import by an operator).
    account_id: str | None = None


@dataclass
class StoreResult:
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    #: Points whose registry entry changed (re-imported with new contents).
    updated: list[str] = field(default_factory=list)
    rejected: dict[str, FieldError] = field(default_factory=dict)

    def merge(self, other: StoreResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.updated += other.updated
        self.rejected.update(other.rejected)

    def outcome(self, record_id: str) -> str:
        if record_id in self.rejected:
            return "rejected"
        if record_id in self.duplicates:
            return "duplicate"
        return "stored"


#: Both SQLite (>= 3.32) and asyncpg take at most 32,767 parameters per statement.
MAX_PARAMETERS = 30_000
#: SQLAlchemy's own text format for SQLite DATETIME: keep it, or text comparisons break.
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def _sqlite_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime(SQLITE_DATETIME)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# Conversions by exact type (one dict lookup per value: this runs for every cell).
_SQLITE_CONVERT: dict[type, Callable[[Any], Any]] = {
    datetime: _sqlite_datetime,
    date: date.isoformat,
    dict: _json_text,
    list: _json_text,
    bool: int,
}
_PG_CONVERT: dict[type, Callable[[Any], Any]] = {dict: _json_text, list: _json_text}


async def insert_new(
    conn: AsyncConnection, table: str, pk: str, rows: Sequence[dict[str, Any]]
) -> set[str]:
    """`INSERT ... ON CONFLICT DO NOTHING RETURNING pk` for many rows; the pks inserted.

    The hot path of every channel: multi-row VALUES written for the driver directly,
    because SQLAlchemy's per-row bind processing cost more than the database itself
    (bench/import_bench.py). Values are converted as SQLAlchemy would convert them.
    """
    if not rows:
        return set()
    sqlite_backend = conn.dialect.name == "sqlite"
    convert = _SQLITE_CONVERT if sqlite_backend else _PG_CONVERT
    columns = list(rows[0])
    per_statement = max(1, MAX_PARAMETERS // len(columns))
    names = ", ".join(f'"{c}"' for c in columns)
    inserted: set[str] = set()
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        if sqlite_backend:
            one = "(" + ", ".join("?" * len(columns)) + ")"
            values = ", ".join([one] * len(chunk))
        else:
            width = len(columns)
            values = ", ".join(
                "(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")"
                for i in range(len(chunk))
            )
        sql = (
            f'INSERT INTO "{table}" ({names}) VALUES {values} '
            f'ON CONFLICT DO NOTHING RETURNING "{pk}"'
        )
        params = tuple(
            value if (fn := convert.get(type(value))) is None else fn(value)
            for row in chunk
            for value in (row[c] for c in columns)
        )
        result = await conn.exec_driver_sql(sql, params)
        inserted.update(r[0] for r in result)
    return inserted


def _insert(conn: AsyncConnection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


class RecordStore:
    """The idempotent write path for incoming records."""

    def __init__(
        self,
        db: Database,
        privacy: Privacy,
        clock: Clock,
        *,
        zone: tzinfo = SHANGHAI,
        infer_category: CategoryInferrer | None = None,
        correction_window: timedelta = timedelta(minutes=30),
        read_people: PeopleReader | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.db = db
        self.correction_window = correction_window
        #: The GB/T 2260 list: a region record must be in it; a record's unknown region
        #: is told apart as "not a code at all" or "outside this installation".
        self.catalogue = catalogue or default_catalogue()
        self.privacy = privacy
        self.clock = clock
        self.zone = zone
        self.infer_category = infer_category or (lambda _text: "other")
        self.read_people = read_people
        self._regions: set[str] = set()

    # ------------------------------------------------------------------ public

    async def store(
        self, kind: str, items: Sequence[Submission], conn: AsyncConnection | None = None
    ) -> StoreResult:
        """Store one batch of one kind in one transaction (or in the caller's `conn`)."""
        if not items:
            return StoreResult()
        if conn is None:
            async with self.db.connect() as own:
                return await self._store(kind, items, own)
        return await self._store(kind, items, conn)

    async def reject(
        self,
        *,
        channel: str,
        origin: str,
        reason: str,
        payload: bytes | str | None = None,
        client_id: str | None = None,
        record_kind: str | None = None,
        record_id: str | None = None,
        field: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> None:
        """Keep a refused input for inspection, with personal data masked."""
        await self.reject_many(
            [
                dict(
                    channel=channel,
                    origin=origin,
                    reason=reason,
                    payload=payload,
                    client_id=client_id,
                    record_kind=record_kind,
                    record_id=record_id,
                    field=field,
                )
            ],
            conn=conn,
        )

    async def reject_many(
        self, rejects: Iterable[dict[str, Any]], conn: AsyncConnection | None = None
    ) -> None:
        now = self.clock.now()
        rows = []
        for r in rejects:
            payload = r.get("payload")
            rows.append(
                {
                    "received_at": now,
                    "channel": r["channel"],
                    "origin": r["origin"][:2000],
                    "client_id": r.get("client_id"),
                    "record_kind": r.get("record_kind"),
                    "record_id": (r.get("record_id") or None) and str(r["record_id"])[:128],
                    "field": r.get("field"),
                    "reason": r["reason"][:4000],
                    "payload": masked_text(payload) if payload is not None else None,
                    "payload_size": len(payload) if payload is not None else 0,
                }
            )
        if not rows:
            return
        stmt = insert(RejectedMessage)
        if conn is None:
            async with self.db.connect() as own:
                await own.execute(stmt, rows)
        else:
            await conn.execute(stmt, rows)

    async def known_regions(self, conn: AsyncConnection, refresh: bool = False) -> set[str]:
        if refresh or not self._regions:
            result = await conn.execute(select(Region.code))
            self._regions = {row[0] for row in result}
        return self._regions

    # ------------------------------------------------------------------ internals

    async def _store(
        self, kind: str, items: Sequence[Submission], conn: AsyncConnection
    ) -> StoreResult:
        result = StoreResult()
        accepted = await self._check(kind, items, conn, result)
        if not accepted:
            return result
        for item in accepted:
            if item.record.sanitised_fields:
                # The record is kept (with the fields named in its `extra`); the field
                # names only are logged, never the values.
                log.warning(
                    "control characters replaced by spaces",
                    kind=kind,
                    record=item.record.record_id,
                    fields=item.record.sanitised_fields,
                    source=item.source,
                )
        if kind in {"point", "region"}:
            await self._upsert_registry(kind, accepted, conn, result)
            return result
        # Within one batch the first of several records under one id wins; identical
        # copies are duplicates, different ones are conflicts (found after the insert).
        first: dict[str, tuple[Submission, str]] = {}
        later: list[tuple[Submission, str]] = []
        rows = []
        now = self.clock.now()
        for item in accepted:
            fields = item.record.known_fields()
            digest = item.record.content_hash(fields)
            if item.record.record_id in first:
                later.append((item, digest))
            else:
                first[item.record.record_id] = (item, digest)
                rows.append(self._row(item, fields, digest, now))
        model = TABLES[kind]
        table = model.__table__
        pk = table.c[item_id_field(kind)]
        inserted = await insert_new(conn, table.name, pk.name, rows)
        missing = [rid for rid in first if rid not in inserted]
        existing: dict[str, str] = {}
        if missing or later:
            ids = set(missing) | {item.record.record_id for item, _ in later}
            for chunk in _chunks(sorted(ids), 500):
                query = select(pk, table.c.payload_hash).where(pk.in_(chunk))
                existing.update({r[0]: r[1] for r in await conn.execute(query)})
        for rid, (_item, digest) in first.items():
            if rid in inserted:
                result.stored.append(rid)
            elif existing.get(rid) == digest:
                result.duplicates.append(rid)
            elif rid in existing:
                result.rejected[rid] = FieldError(
                    item_id_field(kind), "this id is already stored with different contents"
                )
            else:
                # Not stored and not under its id: a second report for the same month.
                rec = first[rid][0].record
                result.rejected[rid] = FieldError(
                    "period",
                    f"monitoring point {getattr(rec, 'point_id', '?')} already has a report "
                    f"for {getattr(rec, 'period', '?'):%Y-%m} under another report_id",
                )
        for item, digest in later:
            rid = item.record.record_id
            if existing.get(rid) == digest or (rid in inserted and first[rid][1] == digest):
                result.duplicates.append(rid)
            else:
                result.rejected.setdefault(
                    rid,
                    FieldError(
                        item_id_field(kind), "this id was sent twice with different contents"
                    ),
                )
        return result

    async def _check(
        self, kind: str, items: Sequence[Submission], conn: AsyncConnection, result: StoreResult
    ) -> list[Submission]:
        """Checks that need the database or the clock: known regions and points, dates."""
        now = self.clock.now()
        regions = await self.known_regions(conn)
        wanted = {getattr(i.record, "region_code", None) for i in items} - {None}
        if not wanted <= regions:
            regions = await self.known_regions(conn, refresh=True)
        points: set[str] = set()
        if kind == "wage":
            ids = sorted({i.record.point_id for i in items if isinstance(i.record, WageReportIn)})
            for chunk in _chunks(ids, 500):
                query = select(MonitoringPoint.point_id).where(MonitoringPoint.point_id.in_(chunk))
                points.update(r[0] for r in await conn.execute(query))
        this_month = local_date(now, self.zone).replace(day=1)
        informants: dict[str, tuple[str, str]] = {}
        point_regions: dict[str, str] = {}
        if kind == "report":
            reports = [i.record for i in items if isinstance(i.record, InformantReportIn)]
            ids = sorted({r.informant_id for r in reports})
            for chunk in _chunks(ids, 500):
                accounts = select(Account.id, Account.kind, Account.region_code).where(
                    Account.id.in_(chunk)
                )
                informants.update({r[0]: (r[1], r[2]) for r in await conn.execute(accounts)})
            named = sorted({r.point_id for r in reports if r.point_id})
            for chunk in _chunks(named, 500):
                located = select(MonitoringPoint.point_id, MonitoringPoint.region_code).where(
                    MonitoringPoint.point_id.in_(chunk)
                )
                point_regions.update({r[0]: r[1] for r in await conn.execute(located)})
        accepted: list[Submission] = []
        for item in items:
            if isinstance(item.record, InformantReportIn) and (
                item.record.corrects or item.record.withdraws
            ):
                problem, item = await self._check_correction(item, conn, now)
                if problem is not None:
                    result.rejected[item.record.record_id] = problem
                    continue
            rec = item.record
            error = self._semantic_error(rec, regions, points, now, this_month)
            if error is None and isinstance(rec, InformantReportIn):
                error = _informant_error(rec, informants, point_regions)
            if error is not None:
                result.rejected[rec.record_id] = error
            else:
                accepted.append(item)
        return accepted

    async def _check_correction(
        self, item: Submission, conn: AsyncConnection, now: datetime
    ) -> tuple[FieldError | None, Submission]:
        """interfaces §8: a report that corrects or withdraws names the sender's own earlier
        report, still inside the window counted from the first report of the chain, and
        not already corrected or withdrawn by another. A withdrawal takes the content of
        the report it withdraws."""
        rec = item.record
        assert isinstance(rec, InformantReportIn)
        field = "corrects" if rec.corrects else "withdraws"
        target = rec.corrects or rec.withdraws
        t = InformantReport.__table__.c
        original = (
            (await conn.execute(select(InformantReport.__table__).where(t.report_id == target)))
            .mappings()
            .first()
        )
        if original is None:
            return FieldError(field, f"no report {target} is stored"), item
        again = (
            await conn.execute(select(t.report_id).where(t.report_id == rec.report_id))
        ).first()
        if again is not None:
            # Sent before: the duplicate check decides (the same content is a duplicate).
            return None, self._withdrawal_content(item, original)
        if original["informant_id"] != rec.informant_id:
            return FieldError(
                field,
                f"report {target} was sent by another informant: only its sender may "
                "correct or withdraw it",
            ), item
        # The window runs from the first report of a chain of corrections.
        first, hops = original, 0
        while first["corrects"] and hops < 20:
            parent = (
                (
                    await conn.execute(
                        select(InformantReport.__table__).where(t.report_id == first["corrects"])
                    )
                )
                .mappings()
                .first()
            )
            if parent is None:
                break
            first, hops = parent, hops + 1
        ends = first["ingested_at"] + self.correction_window
        if now > ends:
            minutes = int(self.correction_window.total_seconds() // 60)
            return FieldError(
                field,
                f"the {minutes}-minute window to correct or withdraw report {target} ended "
                f"at {ends.astimezone(self.zone):%Y-%m-%d %H:%M} local time: send a new "
                "report, or ask the county union to correct it",
            ), item
        if original["withdraws"]:
            return FieldError(field, f"report {target} is itself a withdrawal"), item
        later = (
            await conn.execute(
                select(t.report_id, t.withdraws).where(
                    (t.corrects == target) | (t.withdraws == target),
                    t.report_id != rec.report_id,
                )
            )
        ).first()
        if later is not None:
            done = "withdrawn" if later.withdraws else "corrected"
            return FieldError(
                field, f"report {target} was already {done} by report {later.report_id}"
            ), item
        return None, self._withdrawal_content(item, original)

    @staticmethod
    def _withdrawal_content(item: Submission, original: Any) -> Submission:
        rec = item.record
        if not isinstance(rec, InformantReportIn) or not rec.withdraws:
            return item
        keep = (
            "occurred_at",
            "region_code",
            "point_id",
            "enterprise_name",
            "event_type",
            "category",
            "people_involved",
            "description",
        )
        content = {k: original[k] for k in keep}
        return Submission(rec.model_copy(update=content), item.source, item.account_id)

    def _semantic_error(
        self, rec: Record, regions: set[str], points: set[str], now: datetime, this_month: Any
    ) -> FieldError | None:
        if isinstance(rec, RegionIn):
            try:
                tier_of(rec.code)
                self.catalogue.get(rec.code)
            except ValueError as exc:
                return FieldError("code", str(exc))
            parent = rec.parent_code or parent_of(rec.code)
            if parent is not None and parent not in regions and parent != rec.code:
                return FieldError("parent_code", f"unknown region {parent}: add it first")
            return None
        code = getattr(rec, "region_code", None)
        if code is not None and code not in regions:
            if code not in self.catalogue:
                return FieldError(
                    "region_code",
                    f"unknown region code {code}: not a GB/T 2260 code ({self.catalogue.source})",
                )
            return FieldError(
                "region_code",
                f"unknown region code {code} ({self.catalogue.name(code)}): not among this "
                "installation's regions (`labormon regions load --scope CODE` adds them)",
            )
        if isinstance(rec, WageReportIn):
            if rec.point_id not in points:
                return FieldError("point_id", f"unknown monitoring point {rec.point_id}")
            if rec.period > this_month:
                return FieldError("period", f"{rec.period:%Y-%m} is in the future")
        if isinstance(rec, PetitionIn) and rec.received_at > now + FUTURE_TOLERANCE:
            return FieldError("received_at", "is in the future")
        if isinstance(rec, InformantReportIn) and rec.occurred_at > now + FUTURE_TOLERANCE:
            return FieldError("occurred_at", "is in the future")
        return None

    async def _upsert_registry(
        self, kind: str, items: Sequence[Submission], conn: AsyncConnection, result: StoreResult
    ) -> None:
        """Registries (regions, points) are state, not events: changed contents update."""
        model = TABLES[kind]
        table = model.__table__
        pk = table.c[item_id_field(kind)]
        now = self.clock.now()
        latest: dict[str, Submission] = {i.record.record_id: i for i in items}
        existing: dict[str, str | None] = {}
        hash_col = table.c.get("payload_hash")
        for chunk in _chunks(sorted(latest), 500):
            cols = [pk, hash_col] if hash_col is not None else [pk]
            rows = await conn.execute(select(*cols).where(pk.in_(chunk)))
            existing.update({r[0]: (r[1] if hash_col is not None else None) for r in rows})
        new_rows = []
        for rid, item in latest.items():
            digest = item.record.content_hash()
            row = self._registry_row(kind, item, digest, now)
            if rid not in existing:
                new_rows.append(row)
                result.stored.append(rid)
            elif kind == "region" or existing[rid] == digest:
                result.duplicates.append(rid)
            else:
                row.pop("created_at", None)
                await conn.execute(update(table).where(pk == rid).values(**row))
                result.updated.append(rid)
        if new_rows:
            await conn.execute(_insert(conn, table).on_conflict_do_nothing(), new_rows)
        if kind == "region":
            self._regions = set()

    def _registry_row(
        self, kind: str, item: Submission, digest: str, now: datetime
    ) -> dict[str, Any]:
        rec = item.record
        if isinstance(rec, RegionIn):
            return {
                "code": rec.code,
                "name": rec.name,
                "tier": tier_of(rec.code),
                "parent_code": rec.parent_code or parent_of(rec.code),
            }
        assert isinstance(rec, MonitoringPointIn)
        return {
            "point_id": rec.point_id,
            "name": rec.name,
            "region_code": rec.region_code,
            "industry": rec.industry,
            "headcount": rec.headcount,
            "extra": mask_payload(rec.extra) if rec.extra else None,
            "payload_hash": digest,
            "source": item.source,
            "created_at": now,
            "updated_at": now,
        }

    def _row(
        self, item: Submission, fields: dict[str, Any], digest: str, now: datetime
    ) -> dict[str, Any]:
        rec = item.record
        base = {
            # Unknown fields are kept, but never a personal value under them (a sender's
            # own "petitioner_phone" inside an "app" object, an "informant_name").
            "extra": mask_payload(rec.extra) if rec.extra else None,
            "payload_hash": digest,
            "source": item.source,
            "account_id": item.account_id,
            "ingested_at": now,
        }
        if isinstance(rec, WageReportIn):
            return base | fields
        if isinstance(rec, PetitionIn):
            inferred = rec.category is None
            people, people_inferred = self._people(rec.people_involved, rec.summary)
            return base | {
                "petition_id": rec.petition_id,
                "received_at": rec.received_at,
                "received_date": local_date(rec.received_at, self.zone),
                "channel": rec.channel,
                "region_code": rec.region_code,
                "point_id": rec.point_id,
                "enterprise_name": rec.enterprise_name,
                "category": self.infer_category(rec.summary) if inferred else rec.category,
                "category_inferred": inferred,
                # A petition is at least its petitioner.
                "people_involved": max(people, 1),
                "people_inferred": people_inferred,
                "summary": rec.summary,
                "petitioner_name_enc": self.privacy.encrypt(rec.petitioner_name),
                "petitioner_phone_enc": self.privacy.encrypt(rec.petitioner_phone),
                "over_level": rec.over_level,
                "closed_at": rec.closed_at,
            }
        assert isinstance(rec, InformantReportIn)
        people, people_inferred = self._people(rec.people_involved, rec.description)
        return base | {
            "report_id": rec.report_id,
            "informant_id": rec.informant_id,
            "occurred_at": rec.occurred_at,
            "occurred_date": local_date(rec.occurred_at, self.zone),
            "region_code": rec.region_code,
            "point_id": rec.point_id,
            "enterprise_name": rec.enterprise_name,
            "event_type": rec.event_type,
            "category": rec.category,
            "people_involved": people,
            "people_inferred": people_inferred,
            "description": rec.description,
            "follows": rec.follows,
            "corrects": rec.corrects,
            "withdraws": rec.withdraws,
        }

    def _people(self, given: int | None, text: str) -> tuple[int, bool]:
        """The number of people: as given, else (missing or 0) as the text gives it in
        words or digits, recorded as inferred."""
        if given or self.read_people is None:
            return int(given or 0), False
        read = self.read_people(text or "")
        return (read, True) if read else (0, False)


def _informant_error(
    rec: InformantReportIn,
    accounts: dict[str, tuple[str, str]],
    point_regions: dict[str, str],
) -> FieldError | None:
    """An informant reports on their own region only, whatever the channel (MQTT, HTTP,
    the console's form, a file naming their account): a report elsewhere would join, and
    let them follow, another county's alert. Ids that name no account (historic files)
    are not checked; MQTT and HTTP accept only accounts."""
    found = accounts.get(rec.informant_id)
    if found is None:
        return None
    kind, scope = found
    if kind != "informant":
        return FieldError(
            "informant_id",
            f"only informant accounts may file reports, and {rec.informant_id} is a {kind}",
        )
    if not covers(scope, rec.region_code):
        return FieldError(
            "region_code",
            f"{rec.region_code} is outside the region of informant {rec.informant_id} ({scope})",
        )
    point_region = point_regions.get(rec.point_id or "")
    if point_region is not None and not covers(scope, point_region):
        return FieldError(
            "point_id",
            f"monitoring point {rec.point_id} is outside the region of informant "
            f"{rec.informant_id} ({scope})",
        )
    return None


def item_id_field(kind: str) -> str:
    return RECORD_TYPES[kind].id_field


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
