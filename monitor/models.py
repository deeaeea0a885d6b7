"""The storage schema: SQLAlchemy 2 models for everything in docs/interfaces.md.

Conventions that every stage relies on:
- every input record is keyed by its own id and carries `payload_hash` (its normalised
  contents), so a record seen twice is stored once and a different record under a
  known id is told apart from a redelivery;
- all instants are UTC (`UTCDateTime`), local calendar days (China time) are
  materialised in `*_date` columns so that views and reports agree on both databases;
- work waiting for a later stage is found by a NULL marker column
  (`severity_checked_at`, `processed_at`, ...), claimed with a conditional update;
- deadlines live in columns (`next_escalation_at`, `next_attempt_at`), never only in memory.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones, so values are stored as
    naive UTC text ('YYYY-MM-DD HH:MM:SS.ffffff', which SQLite's date functions read)
    and given back their UTC zone on the way out. Naive input is a bug and is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw text from a SQLite view or expression
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# BIGINT autoincrement on PostgreSQL; SQLite only auto-assigns an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# none_as_null: a missing value is SQL NULL, not the JSON text "null".
Json = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# --------------------------------------------------------------------------- registry


class Region(Base):
    """A GB/T 2260 administrative region: province (tier 1), city (2), county/district (3)."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    tier: Mapped[int] = mapped_column(SmallInteger)
    parent_code: Mapped[str | None] = mapped_column(
        String(6), ForeignKey("regions.code"), index=True
    )


class MonitoringPoint(Base):
    """劳动关系监测点: an enterprise that files a monthly frontline-wage report."""

    __tablename__ = "monitoring_points"

    point_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(6), ForeignKey("regions.code"), index=True)
    industry: Mapped[str] = mapped_column(String(16))
    headcount: Mapped[int] = mapped_column(Integer)
    extra: Mapped[dict[str, Any] | None] = mapped_column(Json)
    payload_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Account(Base):
    """Who may send or receive: informants, monitoring points, petition sources, leaders.

    Tokens and MQTT passwords are stored only as hashes; names and phones are personal
    data (interfaces §7) and are stored encrypted.
    """

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    region_code: Mapped[str] = mapped_column(String(6), ForeignKey("regions.code"), index=True)
    tier: Mapped[int] = mapped_column(SmallInteger)
    role: Mapped[str] = mapped_column(String(32))
    name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    email: Mapped[str | None] = mapped_column(String(254))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    mqtt_password_hash: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Console sessions issued before this instant are refused (set at log-out).
    sessions_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --------------------------------------------------------------------------- inputs


class WageReport(Base):
    """A monitoring point's monthly report (one per point per month)."""

    __tablename__ = "wage_reports"
    __table_args__ = (UniqueConstraint("point_id", "period"),)

    report_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    point_id: Mapped[str] = mapped_column(String(64), ForeignKey("monitoring_points.point_id"))
    #: First day of the reported month.
    period: Mapped[date] = mapped_column(Date, index=True)
    headcount: Mapped[int] = mapped_column(Integer)
    frontline_headcount: Mapped[int] = mapped_column(Integer)
    avg_frontline_wage: Mapped[float] = mapped_column(Float)
    wages_paid_on: Mapped[date | None] = mapped_column(Date)
    arrears_amount: Mapped[float] = mapped_column(Float)
    arrears_workers: Mapped[int] = mapped_column(Integer)
    arrears_months: Mapped[int] = mapped_column(Integer)
    social_insurance_arrears_months: Mapped[int] = mapped_column(Integer)
    layoffs_planned: Mapped[int] = mapped_column(Integer)
    production_status: Mapped[str] = mapped_column(String(8))
    overtime_hours_avg: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[dict[str, Any] | None] = mapped_column(Json)
    payload_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))
    account_id: Mapped[str | None] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: Set when the detectors have looked at this report (rules run on each new record).
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Petition(Base):
    """信访: a visit, letter, 12351 hotline call or online petition."""

    __tablename__ = "petitions"
    __table_args__ = (
        Index("ix_petitions_region_date", "region_code", "received_date"),
        Index(
            "ix_petitions_unchecked",
            "ingested_at",
            postgresql_where=text("severity_checked_at IS NULL"),
            sqlite_where=text("severity_checked_at IS NULL"),
        ),
    )

    petition_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Local (China time) day of `received_at`.
    received_date: Mapped[date] = mapped_column(Date, index=True)
    channel: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(6), ForeignKey("regions.code"))
    point_id: Mapped[str | None] = mapped_column(String(64), index=True)
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(20))
    #: True when the category was inferred from the summary rather than given.
    category_inferred: Mapped[bool] = mapped_column(Boolean, default=False)
    people_involved: Mapped[int] = mapped_column(Integer)
    #: True when the number of people was read from the summary (the field was 0 or missing).
    people_inferred: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    summary: Mapped[str] = mapped_column(Text)
    petitioner_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    petitioner_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Went over the county's head: "city", "province" or "national" (越级访); optional.
    over_level: Mapped[str | None] = mapped_column(String(10))
    #: When the case was closed (办结); optional.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extra: Mapped[dict[str, Any] | None] = mapped_column(Json)
    payload_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))
    account_id: Mapped[str | None] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    severity_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InformantReport(Base):
    """信息员报告: what an informant saw at or around an enterprise."""

    __tablename__ = "informant_reports"
    __table_args__ = (
        Index("ix_informant_reports_region_date", "region_code", "occurred_date"),
        Index(
            "ix_informant_reports_unchecked",
            "ingested_at",
            postgresql_where=text("severity_checked_at IS NULL"),
            sqlite_where=text("severity_checked_at IS NULL"),
        ),
    )

    report_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The informant's account id: a pseudonym; the person behind it is personal data.
    informant_id: Mapped[str] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    occurred_date: Mapped[date] = mapped_column(Date, index=True)
    region_code: Mapped[str] = mapped_column(String(6), ForeignKey("regions.code"))
    point_id: Mapped[str | None] = mapped_column(String(64), index=True)
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(20))
    people_involved: Mapped[int] = mapped_column(Integer)
    #: True when the number of people was read from the description (the field was 0).
    people_inferred: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    description: Mapped[str] = mapped_column(Text)
    extra: Mapped[dict[str, Any] | None] = mapped_column(Json)
    payload_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))
    account_id: Mapped[str | None] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    severity_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: NULL 待核实; true | partly | false (a verify record) | corroborated (automatic).
    verification: Mapped[str | None] = mapped_column(String(12))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The `report_id` of an earlier report this one follows up (interfaces §5): it joins
    #: that report's alert.
    follows: Mapped[str | None] = mapped_column(String(64))
    #: interfaces §8: the sender's own earlier report this one corrects or withdraws.
    corrects: Mapped[str | None] = mapped_column(String(64), index=True)
    withdraws: Mapped[str | None] = mapped_column(String(64), index=True)


class RejectedMessage(Base):
    """An input that was refused: what it was, who sent it, where, and why."""

    __tablename__ = "rejected_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: mqtt | http | file
    channel: Mapped[str] = mapped_column(String(8))
    #: MQTT topic, HTTP path, or file:line.
    origin: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str | None] = mapped_column(String(128), index=True)
    record_kind: Mapped[str | None] = mapped_column(String(16))
    record_id: Mapped[str | None] = mapped_column(String(128))
    field: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    #: The payload with personal data masked, cut at 16 KiB (see `payload_size`).
    payload: Mapped[str | None] = mapped_column(Text)
    payload_size: Mapped[int] = mapped_column(Integer, default=0)


# --------------------------------------------------------------------------- detection


class Finding(Base):
    """What a detector concluded about an entity at a point in time, with its evidence."""

    __tablename__ = "findings"
    __table_args__ = (
        Index(
            "ix_findings_unprocessed",
            "id",
            postgresql_where=text("processed_at IS NULL"),
            sqlite_where=text("processed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    detector: Mapped[str] = mapped_column(String(32))
    #: event | enterprise_risk | county_risk | petition_surge | overdue_report
    kind: Mapped[str] = mapped_column(String(24))
    #: point | county | event
    entity_type: Mapped[str] = mapped_column(String(8))
    entity_id: Mapped[str] = mapped_column(String(128))
    #: Alerts are deduplicated on this key (entity + risk kind).
    dedup_key: Mapped[str] = mapped_column(String(200), index=True)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    point_id: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    #: I..IV, or NULL when the risk has cleared (which resolves an open alert).
    level: Mapped[str | None] = mapped_column(String(3))
    title: Mapped[str] = mapped_column(Text)
    #: {"factors": [{"code", "text", "weight"}], "source_ids": [...], "people_involved": n, ...}
    evidence: Mapped[dict[str, Any]] = mapped_column(Json)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RiskScore(Base):
    """The combined risk of a monitoring point or county at one scoring run (history kept)."""

    __tablename__ = "risk_scores"
    __table_args__ = (Index("ix_risk_scores_entity", "entity_type", "entity_id", "scored_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity_type: Mapped[str] = mapped_column(String(8))
    entity_id: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    score: Mapped[float] = mapped_column(Float)
    level: Mapped[str | None] = mapped_column(String(3))
    #: [{"code", "text", "weight"}], strongest first.
    factors: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class DetectorModel(Base):
    """A fitted model of the detectors (the incident forecaster), shared by every daemon.

    Stored as skops bytes (never pickle) with the scikit-learn version it was fitted
    with: a daemon on another version does not load it and retrains instead.
    """

    __tablename__ = "detector_models"
    __table_args__ = (Index("ix_detector_models_name_created", "name", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(32))
    #: "skops"
    format: Mapped[str] = mapped_column(String(8))
    sklearn_version: Mapped[str] = mapped_column(String(16))
    feature_names: Mapped[list[str]] = mapped_column(Json)
    #: The last day of history the model was trained on (local date).
    trained_until: Mapped[date] = mapped_column(Date)
    #: Training figures: rows, incidents, base rate, fit time.
    metrics: Mapped[dict[str, Any]] = mapped_column(Json)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --------------------------------------------------------------------------- alerting


class Alert(Base):
    """One alert per open dedup key; escalates through the tiers until acknowledged."""

    __tablename__ = "alerts"
    __table_args__ = (
        # One open alert per dedup key; a resolved key may open a new one.
        Index(
            "uq_alerts_open_dedup_key",
            "dedup_key",
            unique=True,
            postgresql_where=text("status <> 'resolved'"),
            sqlite_where=text("status <> 'resolved'"),
        ),
        Index(
            "ix_alerts_due",
            "next_escalation_at",
            postgresql_where=text("next_escalation_at IS NOT NULL"),
            sqlite_where=text("next_escalation_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(24))
    level: Mapped[str] = mapped_column(String(3))
    #: triggered | acknowledged | resolved
    status: Mapped[str] = mapped_column(String(12), index=True)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    point_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    factors: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)
    source_ids: Mapped[list[str] | None] = mapped_column(Json)
    people_involved: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    #: Highest tier notified so far: 3 county, 2 city, 1 province.
    tier_reached: Mapped[int] = mapped_column(SmallInteger, default=3)
    #: Index of the next escalation step of the level's policy.
    escalation_step: Mapped[int] = mapped_column(SmallInteger, default=0)
    repeats_done: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finding_id: Mapped[int | None] = mapped_column(BigInteger)
    #: When the current round of escalation started (trigger, level rise, acknowledgement
    #: expiry); the policy's step offsets count from here.
    escalation_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The latest finding's evidence that notifications show (enterprise, event type,
    #: category, ...), without personal data.
    evidence: Mapped[dict[str, Any] | None] = mapped_column(Json)
    #: The entity + kind the alert is about (a finding's dedup key). A risk alert's
    #: `dedup_key` is this; an event alert is one incident of the entity, so its
    #: `dedup_key` adds the incident's first record.
    entity_key: Mapped[str | None] = mapped_column(String(200), index=True)
    #: When the incident's first and latest events happened (their own `occurred_at` /
    #: `received_at`); the latest decides whether a new event joins (interfaces §5).
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RiskStreak(Base):
    """Hysteresis of a risk alert: how many consecutive scorings an entity's band has
    stayed above (direction 1) or below (-1) the band its findings last reported, and
    the band it held throughout (the mildest when rising, the worst when falling)."""

    __tablename__ = "risk_streaks"

    dedup_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    direction: Mapped[int] = mapped_column(SmallInteger)
    count: Mapped[int] = mapped_column(Integer)
    level: Mapped[str | None] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertEvent(Base):
    """The audit log: every change to an alert, with who, when and why."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Past tense: AlertTriggered, AlertEscalated, AlertAcknowledged, AlertResolved, ...
    event: Mapped[str] = mapped_column(String(32))
    #: An account id, or "system".
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(Json)


class HandlingRecord(Base):
    """处置记录 on an alert (interfaces §8): verify 核实, progress 续报, instruction 批示,
    answer, final 终报. Who, when, text, and the kind's structured fields."""

    __tablename__ = "handling_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id"), index=True)
    #: verify | progress | instruction | answer | final
    kind: Mapped[str] = mapped_column(String(12))
    #: An account id (a leader, or the informant whose follow-up report this is).
    author_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    text: Mapped[str] = mapped_column(Text, default="")
    #: verdict, people_now, due_at, answers, people_final, wages_recovered, workers_paid,
    #: resolution, report_id (an informant's follow-up report)
    fields: Mapped[dict[str, Any] | None] = mapped_column(Json)
    #: mqtt | api | cli | console
    via: Mapped[str] = mapped_column(String(8))


class HandlingDeadline(Base):
    """A handling deadline of an alert: verification, the next follow-up report, the final
    report, the answer to an instruction. Claimed like an escalation step: the loop takes
    rows with `missed_at IS NULL` whose `due_at` has passed, in one transaction with the
    `overdue_handling` alert it opens, so two daemons never remind twice."""

    __tablename__ = "handling_deadlines"
    __table_args__ = (
        Index(
            "ix_handling_deadlines_open",
            "due_at",
            postgresql_where=text("met_at IS NULL AND cancelled_at IS NULL AND missed_at IS NULL"),
            sqlite_where=text("met_at IS NULL AND cancelled_at IS NULL AND missed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id"), index=True)
    #: verify | progress | final | answer
    kind: Mapped[str] = mapped_column(String(12))
    #: For `answer`: the instruction record it waits on.
    record_id: Mapped[int | None] = mapped_column(BigInteger)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: No longer owed (the alert closed, the event ended before the next follow-up).
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the loop found it missed and opened its `overdue_handling` alert.
    missed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(Base):
    """The notification outbox: written with the alert change, sent after commit.

    `id` is a UUID that travels with the message (email Message-ID, webhook field,
    MQTT property) so that a receiver can drop a re-send after a crash mid-send.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_deliveries_batch_key", "batch_key", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("alerts.id"), index=True)
    #: alert | escalation | repeat | reminder | resolved | digest | overdue | report
    purpose: Mapped[str] = mapped_column(String(16))
    #: email | wecom | dingtalk | feishu | webhook | mqtt
    channel: Mapped[str] = mapped_column(String(16))
    #: Account id or group name the message is for.
    recipient: Mapped[str | None] = mapped_column(String(64))
    #: Email address, webhook URL or MQTT topic.
    address: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    #: What the notifier renders or sends (structured, no personal data).
    body: Mapped[dict[str, Any]] = mapped_column(Json)
    #: pending | sent | failed
    status: Mapped[str] = mapped_column(String(8), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: 0 for level I .. 3 for level IV, 4 for everything else: senders take urgent first.
    priority: Mapped[int] = mapped_column(SmallInteger, default=4, server_default="4")
    #: Level III/IV messages to one contact share a key; a message not yet attempted takes
    #: in later alerts of the batch window instead of a new message being written.
    batch_key: Mapped[str | None] = mapped_column(String(300))


class DeliveryAttempt(Base):
    """One try at sending a delivery, kept for the timeline and for diagnosing channels."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(36), ForeignKey("deliveries.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    permanent: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float | None] = mapped_column(Float)


class Document(Base):
    """A generated file kept for delivery and download (the monthly report's PDF/DOCX).

    Email deliveries refer to it by id (`{"attachments": [{"document_id": n}]}`) so that
    the outbox row stays small and every daemon can send it.
    """

    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_kind_key", "kind", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: e.g. "monthly_report"
    kind: Mapped[str] = mapped_column(String(32))
    #: e.g. "2025-01"
    key: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Silence(Base):
    """A leader's decision to hold back notifications for an enterprise or a region for a
    time, with the reason (e.g. a dispute already under mediation). Alerts are still
    recorded and shown; their end is logged and what was held back is then sent."""

    __tablename__ = "silences"
    __table_args__ = (
        Index(
            "ix_silences_pending_end",
            "ends_at",
            postgresql_where=text("end_processed_at IS NULL"),
            sqlite_where=text("end_processed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: point | region
    scope: Mapped[str] = mapped_column(String(8))
    #: A point_id, or a region code (a county, or a city and everything below it).
    target: Mapped[str] = mapped_column(String(64))
    #: The region the silence lies in, for the leader's jurisdiction and for display.
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    #: When the end was logged and held-back alerts were notified (NULL: not yet).
    end_processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AckLink(Base):
    """One signed acknowledge link sent to one leader: its nonce makes it single-use."""

    __tablename__ = "ack_links"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(64))
    delivery_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ChannelHealth(Base):
    """The state of one notification channel (a mailbox, a group robot, the broker):
    `failed` after a permanent error until the next success, so that a broken channel is
    visible in `labormon alerts`, the console and /metrics instead of silently dropping."""

    __tablename__ = "channel_health"

    #: "{channel}:{recipient}"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(64))
    #: ok | failing (transient errors, retrying) | failed (permanent error)
    status: Mapped[str] = mapped_column(String(8))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --------------------------------------------------------------------------- coordination


class JobRun(Base):
    """Exactly-once periodic work across daemons: the first to insert (job, key) runs it.

    Used for the monthly report, the nightly re-score, daily digests, overdue checks.
    """

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128))
    holder: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: running | done | failed
    status: Mapped[str] = mapped_column(String(8))
    details: Mapped[dict[str, Any] | None] = mapped_column(Json)


class Lease(Base):
    """A named lease (`holder` until `expires_at`), for work one daemon should do at a time."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InstallationSetting(Base):
    """Facts about the installation kept with its data, e.g. the check value of the secret
    key that encrypted it (`monitor.keycheck`), so that a daemon or a command holding
    another key refuses to run instead of writing data nobody can read back."""

    __tablename__ = "installation"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ShiftHandover(Base):
    """交接班: a duty officer's note to the next shift of a region (append-only: the
    duty view's audit log of who handed over what, and when)."""

    __tablename__ = "shift_handovers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    region_code: Mapped[str] = mapped_column(String(6), ForeignKey("regions.code"), index=True)
    author_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    text: Mapped[str] = mapped_column(Text)
