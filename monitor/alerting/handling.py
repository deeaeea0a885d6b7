"""Handling records on an alert (处置, interfaces §8): verify 核实, progress 续报,
instruction 批示/督办, answer, final 终报.

`Handling.add()` is the one write path the HTTP API, the console, the command line and
an informant's follow-up report all use. A record, its audit event, the deadlines it
meets or starts, the alert change it causes (不实 and 终报 resolve), the MQTT alert
event and the notifications (an instruction goes down to the handler at once) are one
transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from monitor.alerting import deadlines
from monitor.alerting.book import AlertBook, AlertError
from monitor.alerting.dispatch import record_event
from monitor.alerting.messages import (
    RECORD_NAMES,
    RESOLUTION_NAMES,
    VERDICT_NAMES,
    local_text,
    scrub,
)
from monitor.config import Duration
from monitor.context import Context
from monitor.logging import get_logger
from monitor.models import Account, Alert, HandlingDeadline, HandlingRecord, InformantReport
from monitor.regions import TIER_LABELS

log = get_logger("labormon.handling")

KINDS = ("verify", "progress", "instruction", "answer", "final")
VERDICTS = tuple(VERDICT_NAMES)
RESOLUTIONS = tuple(RESOLUTION_NAMES)
#: Longest text of a record.
TEXT_LIMIT = 4000
_DURATION: TypeAdapter[timedelta] = TypeAdapter(Duration)


class RecordError(Exception):
    """A record that cannot be filed: `errors` maps each field to its reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class RecordIn:
    """A handling record as a face submits it (strings from forms are accepted)."""

    kind: str
    text: str = ""
    verdict: str | None = None
    people_now: Any = None
    due_at: Any = None
    due: Any = None
    answers: Any = None
    people_final: Any = None
    wages_recovered: Any = None
    workers_paid: Any = None
    resolution: str | None = None
    #: An informant's follow-up report that this progress record stands for.
    report_id: str | None = None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _count(errors: dict[str, str], name: str, value: Any, required: bool = False) -> int | None:
    if _blank(value):
        if required:
            errors[name] = "required"
        return None
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        errors[name] = "must be a whole number"
        return None
    if isinstance(number, bool) or number < 0 or number > 10_000_000:
        errors[name] = "must be a whole number from 0 to 10,000,000"
        return None
    return number


def _amount(errors: dict[str, str], name: str, value: Any, required: bool = False) -> float | None:
    if _blank(value):
        if required:
            errors[name] = "required"
        return None
    try:
        number = float(str(value).replace(",", "").strip())
    except ValueError:
        errors[name] = "must be an amount in CNY"
        return None
    if not math.isfinite(number) or number < 0 or number > 1e12:
        errors[name] = "must be an amount in CNY from 0"
        return None
    return number


def validate(data: RecordIn, now: datetime) -> tuple[str, dict[str, Any]]:
    """(text, fields) of a valid record, or RecordError naming each bad field."""
    errors: dict[str, str] = {}
    fields: dict[str, Any] = {}
    if data.kind not in KINDS:
        raise RecordError({"kind": f"must be one of {', '.join(KINDS)}"})
    text = (data.text or "").strip()
    if len(text) > TEXT_LIMIT:
        errors["text"] = f"at most {TEXT_LIMIT} characters"
    if data.kind == "verify":
        if data.verdict not in VERDICTS:
            errors["verdict"] = "must be true (属实), partly (部分属实) or false (不实)"
        else:
            fields["verdict"] = data.verdict
    elif data.kind == "progress":
        people = _count(errors, "people_now", data.people_now)
        if people is not None:
            fields["people_now"] = people
        if not text and people is None:
            errors["text"] = "say what is being done"
        if data.report_id:
            fields["report_id"] = data.report_id
    elif data.kind == "instruction":
        due_at = _due(errors, data, now)
        if due_at is not None:
            fields["due_at"] = due_at.isoformat()
        if not text:
            errors["text"] = "required: the instruction itself"
    elif data.kind == "answer":
        answers = _count(errors, "answers", data.answers, required=True)
        if answers is not None:
            fields["answers"] = answers
        if not text:
            errors["text"] = "required: the answer"
    elif data.kind == "final":
        people = _count(errors, "people_final", data.people_final)
        wages = _amount(errors, "wages_recovered", data.wages_recovered, required=True)
        paid = _count(errors, "workers_paid", data.workers_paid, required=True)
        if data.resolution not in RESOLUTIONS:
            errors["resolution"] = "must be one of " + ", ".join(RESOLUTIONS)
        else:
            fields["resolution"] = data.resolution
        for name, value in (
            ("people_final", people),
            ("wages_recovered", wages),
            ("workers_paid", paid),
        ):
            if value is not None:
                fields[name] = value
    if errors:
        raise RecordError(errors)
    return text, fields


def _due(errors: dict[str, str], data: RecordIn, now: datetime) -> datetime | None:
    if not _blank(data.due_at) and not _blank(data.due):
        errors["due_at"] = "give due_at or due, not both"
        return None
    if not _blank(data.due):
        try:
            length = _DURATION.validate_python(data.due)
        except ValidationError:
            errors["due"] = "must be a duration such as 4h or 2d"
            return None
        if not timedelta(minutes=1) <= length <= timedelta(days=90):
            errors["due"] = "must be between 1 minute and 90 days"
            return None
        return now + length
    if _blank(data.due_at):
        errors["due_at"] = "required: when the answer is due (ISO 8601, or due such as 4h)"
        return None
    try:
        value = (
            data.due_at
            if isinstance(data.due_at, datetime)
            else datetime.fromisoformat(str(data.due_at).strip())
        )
    except ValueError:
        errors["due_at"] = "must be an ISO 8601 time with its offset"
        return None
    if value.tzinfo is None:
        errors["due_at"] = "must carry its UTC offset (e.g. +08:00)"
        return None
    if value <= now:
        errors["due_at"] = "must be in the future"
        return None
    return value


def record_json(record: HandlingRecord) -> dict[str, Any]:
    """interfaces §8: `{id, kind, author_id, created_at, text, ...fields}`."""
    fields = {k: v for k, v in (record.fields or {}).items() if k != "author_tier"}
    return {
        "id": record.id,
        "kind": record.kind,
        "author_id": record.author_id,
        "created_at": record.created_at.isoformat(),
        "text": record.text,
    } | fields


def stage_of(alert: Alert, records: list[HandlingRecord]) -> str:
    """new | acknowledged | verified | handling | closed | false (interfaces §8)."""
    kinds = {r.kind for r in records}
    if alert.status == "resolved":
        false = any(
            r.kind == "verify" and (r.fields or {}).get("verdict") == "false" for r in records
        )
        return "false" if false else "closed"
    if kinds & {"progress", "instruction", "answer"}:
        return "handling"
    if "verify" in kinds:
        return "verified"
    if alert.acknowledged_at is not None or alert.status == "acknowledged":
        return "acknowledged"
    return "new"


async def records_of(
    session: AsyncSession, alert_ids: list[int]
) -> dict[int, list[HandlingRecord]]:
    found: dict[int, list[HandlingRecord]] = {i: [] for i in alert_ids}
    if not alert_ids:
        return found
    rows = await session.scalars(
        select(HandlingRecord)
        .where(HandlingRecord.alert_id.in_(alert_ids))
        .order_by(HandlingRecord.created_at, HandlingRecord.id)
    )
    for record in rows:
        found[record.alert_id].append(record)
    return found


async def deadlines_of(
    session: AsyncSession, alert_ids: list[int]
) -> dict[int, list[HandlingDeadline]]:
    found: dict[int, list[HandlingDeadline]] = {i: [] for i in alert_ids}
    if not alert_ids:
        return found
    rows = await session.scalars(
        select(HandlingDeadline)
        .where(HandlingDeadline.alert_id.in_(alert_ids))
        .order_by(HandlingDeadline.due_at, HandlingDeadline.id)
    )
    for deadline in rows:
        found[deadline.alert_id].append(deadline)
    return found


def overdue_of(found: list[HandlingDeadline], now: datetime) -> list[str]:
    """The kinds of deadlines past due and not met."""
    kinds: list[str] = []
    for d in found:
        if d.met_at is None and d.cancelled_at is None and d.due_at <= now and d.kind not in kinds:
            kinds.append(d.kind)
    return kinds


async def handling_json(
    session: AsyncSession, alerts: list[Alert], now: datetime, *, full: bool = False
) -> dict[int, dict[str, Any]]:
    """Per alert: `stage` and `overdue`, and with `full` its `records` and `deadlines`."""
    ids = [a.id for a in alerts]
    records = await records_of(session, ids)
    due = await deadlines_of(session, ids)
    out: dict[int, dict[str, Any]] = {}
    for alert in alerts:
        item: dict[str, Any] = {
            "stage": stage_of(alert, records[alert.id]),
            "overdue": overdue_of(due[alert.id], now),
        }
        if full:
            item["records"] = [record_json(r) for r in records[alert.id]]
            item["deadlines"] = [deadlines.deadline_json(d) for d in due[alert.id]]
        out[alert.id] = item
    return out


class Handling:
    """Files handling records; every face calls this."""

    def __init__(self, ctx: Context, book: AlertBook | None = None) -> None:
        self.ctx = ctx
        self.book = book or AlertBook(ctx)
        self.config = ctx.settings.handling
        self.zone = ctx.settings.organisation.zone

    async def add(
        self,
        alert_id: int,
        data: RecordIn,
        *,
        author: str,
        via: str,
        session: AsyncSession | None = None,
    ) -> HandlingRecord:
        if session is None:
            async with self.ctx.db.session() as own:
                record = await self.add(alert_id, data, author=author, via=via, session=own)
            self.book.wake()
            return record
        now = self.ctx.clock.now()
        text, fields = validate(data, now)
        alert = await self.book._locked(session, alert_id)
        if alert.status == "resolved":
            raise AlertError(f"alert {alert_id} is closed; no more records can be filed")
        postgres = self.ctx.db.is_postgres
        if data.kind == "answer":
            instruction = await session.get(HandlingRecord, fields["answers"])
            if (
                instruction is None
                or instruction.alert_id != alert.id
                or instruction.kind != "instruction"
            ):
                raise RecordError({"answers": "must be the id of an instruction on this alert"})
        account = await session.get(Account, author)
        tier = TIER_LABELS.get(account.tier) if account is not None else None
        if tier and data.kind == "instruction":
            fields["author_tier"] = tier
        record = HandlingRecord(
            alert_id=alert.id,
            kind=data.kind,
            author_id=author,
            created_at=now,
            text=text,
            fields=fields,
            via=via,
        )
        session.add(record)
        await session.flush()
        details: dict[str, Any] = {
            "record_id": record.id,
            "kind": data.kind,
            "via": via,
            "text": scrub(text, 500),
            "author_region_name": await self.book._actor_region_name(session, author),
        } | {k: v for k, v in fields.items() if k != "author_tier"}
        if data.kind == "instruction":
            details["due_local"] = local_text(datetime.fromisoformat(fields["due_at"]), self.zone)
        record_event(
            session,
            alert,
            "HandlingRecorded",
            now,
            actor=author,
            # Shown under the record on every tier's timeline: in Chinese, not our kinds.
            reason=f"处置记录 {record.id}（{RECORD_NAMES[data.kind]}）",
            details=details,
            metrics=self.book.metrics,
        )
        alert.updated_at = now
        await self.book.dispatcher.publish(
            session, alert, "HandlingRecorded", now, {"record": record_json(record)}
        )
        ended: list[HandlingDeadline] = []
        if data.kind == "verify":
            ended += await deadlines.meet(session, alert, "verify", now, postgres=postgres)
            await self._settle_sources(session, alert, fields["verdict"], now)
            if fields["verdict"] == "false":
                await self.book._resolve(
                    session, alert, now, actor=author, reason="核实不实", via="verify_false"
                )
        elif data.kind == "progress":
            ended += await self._progress(session, alert, fields.get("people_now"), now)
        elif data.kind == "instruction":
            due_at = datetime.fromisoformat(fields["due_at"])
            await deadlines.add(session, alert, "answer", due_at, now, record_id=record.id)
            handler, _above = await deadlines.handler_and_above(session, alert.region_code)
            # Down at once to the handler's contacts, on their channels.
            await self.book.dispatcher.notify(session, alert, [handler], "instruction", now)
        elif data.kind == "answer":
            ended += await deadlines.meet(
                session, alert, "answer", now, record_id=fields["answers"], postgres=postgres
            )
        elif data.kind == "final":
            ended += await deadlines.meet(session, alert, "final", now, postgres=postgres)
            await self.book._resolve(session, alert, now, actor=author, reason="终报", via="final")
        await self.book.resolve_overdue(
            session, ended, now, reason=f"处置记录 {record.id}（{RECORD_NAMES[data.kind]}）"
        )
        log.info("handling record filed", alert=alert.id, kind=data.kind, via=via)
        return record

    async def _progress(
        self, session: AsyncSession, alert: Alert, people_now: int | None, now: datetime
    ) -> list[HandlingDeadline]:
        return await deadlines.progress_filed(
            session, alert, people_now, now, self.config, postgres=self.ctx.db.is_postgres
        )

    async def _settle_sources(
        self, session: AsyncSession, alert: Alert, verdict: str, now: datetime
    ) -> None:
        """The informants' reports behind the alert take the verdict (reliability)."""
        ids = [str(s) for s in alert.source_ids or []][:500]
        if not ids:
            return
        reports = await session.scalars(
            select(InformantReport).where(InformantReport.report_id.in_(ids))
        )
        for report in reports:
            report.verification = verdict
            report.verified_at = now
