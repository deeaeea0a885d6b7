"""The alert page's handling part (interfaces §8): the records' timeline, the deadlines,
the unanswered instructions, the informants' reports behind the alert with their
reliability (for the officers who manage informants), and the forms that file each kind
of record through the alerting core."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from monitor.alerting.book import AlertError
from monitor.alerting.contacts import may_act_on
from monitor.alerting.deadlines import DEADLINE_NAMES
from monitor.alerting.handling import (
    Handling,
    RecordError,
    RecordIn,
    deadlines_of,
    overdue_of,
    records_of,
    stage_of,
)
from monitor.alerting.messages import RECORD_NAMES, RESOLUTION_NAMES, VERDICT_NAMES
from monitor.context import Context
from monitor.models import Alert, InformantReport
from monitor.reliability import VERIFICATION_NAMES, informant_reliability
from monitor.web.console.auth import Viewer

STAGE_NAMES = {
    "new": "待确认",
    "acknowledged": "已确认",
    "verified": "已核实",
    "handling": "处置中",
    "closed": "已办结",
    "false": "核实不实",
}
#: The form fields of each kind, in the order shown.
FORM_FIELDS = {
    "verify": ("verdict", "text"),
    "progress": ("people_now", "text"),
    "instruction": ("due", "text"),
    "answer": ("answers", "text"),
    "final": (
        "people_final",
        "wages_recovered",
        "workers_paid",
        "resolution",
        "text",
    ),
}
FIELD_ERRORS = {
    "required": "必填",
    "say what is being done": "请填写现场情况或现场人数",
}


def _error_text(reason: str) -> str:
    if reason in FIELD_ERRORS:
        return FIELD_ERRORS[reason]
    if reason.startswith("required"):
        return "必填"
    if "whole number" in reason:
        return "请填写不小于0的整数"
    if "amount" in reason:
        return "请填写不小于0的金额(元)"
    if "duration" in reason or "between" in reason:
        return "请填写时限,如 4h(4小时)、2d(2天)"
    if "instruction on this alert" in reason:
        return "请选择本预警的一条批示"
    if reason.startswith("must be one of") or reason.startswith("must be true"):
        return "请选择一项"
    if "future" in reason:
        return "时间须晚于现在"
    return reason


async def handling_view(ctx: Context, alert: Alert, viewer: Viewer) -> dict[str, Any]:
    """What the alert page shows of the handling."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        records = (await records_of(session, [alert.id]))[alert.id]
        due = (await deadlines_of(session, [alert.id]))[alert.id]
        reports: list[dict[str, Any]] = []
        # Informants' reports behind the alert, with 待核实 and the reporter's reliability:
        # for county and city officers, never for informants.
        if viewer.is_leader and viewer.account is not None and viewer.account.tier in (2, 3):
            ids = [str(s) for s in alert.source_ids or []][:200]
            found = list(
                (
                    await session.scalars(
                        select(InformantReport).where(InformantReport.report_id.in_(ids))
                    )
                ).all()
            )
            config = ctx.settings.handling
            reliable = await informant_reliability(
                session,
                prior=config.reliability_prior,
                prior_weight=config.reliability_prior_weight,
                informant_ids=sorted({r.informant_id for r in found}),
            )
            for report in found:
                figure = reliable.get(report.informant_id)
                reports.append(
                    {
                        "report_id": report.report_id,
                        "verification": VERIFICATION_NAMES.get(report.verification, "待核实"),
                        "reliability": None if figure is None else round(figure.value * 100),
                        "settled": 0 if figure is None else figure.settled,
                    }
                )
    answered = {(r.fields or {}).get("answers") for r in records if r.kind == "answer"}
    return {
        "records": records,
        "deadlines": due,
        "overdue": overdue_of(due, now),
        "stage": stage_of(alert, records),
        "open_instructions": [
            r for r in records if r.kind == "instruction" and r.id not in answered
        ],
        "source_reports": reports,
        "STAGE_NAMES": STAGE_NAMES,
        "RECORD_NAMES": RECORD_NAMES,
        "VERDICT_NAMES": VERDICT_NAMES,
        "RESOLUTION_NAMES": RESOLUTION_NAMES,
        "DEADLINE_NAMES": DEADLINE_NAMES,
        "FORM_FIELDS": FORM_FIELDS,
        "parse_time": datetime.fromisoformat,
    }


async def file_record(
    ctx: Context, viewer: Viewer, alert_id: int, form: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """("recorded" | a key of the console's messages, field errors in Chinese)."""
    assert viewer.account is not None
    async with ctx.db.session() as session:
        alert = await session.get(Alert, alert_id)
        if alert is None:
            return "missing", {}
        if not await may_act_on(session, viewer.account, alert.region_code):
            return "forbidden", {}
    kind = form.get("kind", "")
    data = RecordIn(
        kind=kind,
        text=form.get("text", ""),
        verdict=form.get("verdict") or None,
        people_now=form.get("people_now"),
        due=form.get("due"),
        answers=form.get("answers"),
        people_final=form.get("people_final"),
        wages_recovered=form.get("wages_recovered"),
        workers_paid=form.get("workers_paid"),
        resolution=form.get("resolution") or None,
    )
    try:
        await Handling(ctx).add(alert_id, data, author=viewer.account.id, via="console")
    except RecordError as exc:
        # The console asks for a duration only (`due`), never an instant.
        return "invalid", {
            ("due" if k == "due_at" else k): _error_text(v) for k, v in exc.errors.items()
        }
    except AlertError:
        return "already_resolved", {}
    return "recorded", {}
