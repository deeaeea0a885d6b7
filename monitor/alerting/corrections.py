"""An informant's correction or withdrawal (interfaces §8) applied to the alert of the
report it names.

The correction arrives as a finding of the corrected report (its level from the
corrected content) whose evidence names the earlier report in `corrects` or
`withdraws`. Its alert takes the new facts and the new level, which may drop: escalation
then follows the new level's policy from where the alert stands (steps that are due by
now count as done, since everyone they name already knows more than they would). Whoever
was told hears a short notice ("更正：涉及人数 300 → 30，等级 I → II"). A withdrawal
resolves the alert as withdrawn, with a notice. The original report's content is kept in
the audit event, so the alert page shows what was first said.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from monitor import labels as glossary
from monitor.alerting.dispatch import record_event
from monitor.alerting.escalation import Escalator, reached_tiers
from monitor.alerting.messages import scrub
from monitor.models import Alert, Finding, InformantReport

#: Lower is more severe.
RANK = {"I": 1, "II": 2, "III": 3, "IV": 4}
#: Alerts searched (newest first) for the one a corrected report belongs to.
SEARCH = 5000


def notice_text(details: dict[str, Any]) -> str:
    """The one-line notice of a correction: "更正：涉及人数 300 → 30，等级 I → II"."""
    before, after = details.get("from") or {}, details.get("to") or {}
    parts = []
    if before.get("people") != after.get("people"):
        parts.append(f"涉及人数 {before.get('people')} → {after.get('people')}")
    if before.get("event_type") != after.get("event_type"):
        names = glossary.EVENT_TYPES
        old, new = str(before.get("event_type")), str(after.get("event_type"))
        parts.append(f"事件类型 {names.get(old, old)} → {names.get(new, new)}")
    if before.get("enterprise") != after.get("enterprise"):
        parts.append(f"企业 {before.get('enterprise') or '未填写'} → {after.get('enterprise')}")
    if before.get("level") != after.get("level"):
        parts.append(f"等级 {before.get('level')} → {after.get('level') or '不构成事件'}")
    return "更正：" + ("，".join(parts) if parts else "情况说明有修改")


async def _chain(session: AsyncSession, report_id: str) -> list[InformantReport]:
    """The report and the reports it corrected before it, newest first."""
    chain: list[InformantReport] = []
    current: str | None = report_id
    while current and len(chain) < 20:
        report = await session.get(InformantReport, current)
        if report is None:
            break
        chain.append(report)
        current = report.corrects
    return chain


async def _alert_of(session: AsyncSession, ids: set[str]) -> Alert | None:
    rows = await session.scalars(
        select(Alert).where(Alert.kind == "event").order_by(Alert.id.desc()).limit(SEARCH)
    )
    return next((a for a in rows if ids & set(a.source_ids or [])), None)


def _original(report: InformantReport) -> dict[str, Any]:
    """What the informant first said, for the audit log (no identity: a pseudonym only)."""
    return {
        "report_id": report.report_id,
        "occurred_at": report.occurred_at.isoformat(),
        "region_code": report.region_code,
        "point_id": report.point_id,
        "enterprise_name": report.enterprise_name,
        "event_type": report.event_type,
        "category": report.category,
        "people_involved": report.people_involved,
        "description": scrub(report.description, 2000),
    }


async def apply_correction(
    book: Any, session: AsyncSession, finding: Finding, now: datetime
) -> bool:
    """Apply a correcting or withdrawing finding; False when it is an ordinary finding
    (or corrects a report that raised no alert, which is then judged as a new report).
    `book` is the `AlertBook` (not imported: the book imports this module)."""
    evidence = finding.evidence or {}
    target = evidence.get("corrects") or evidence.get("withdraws")
    if not target:
        return False
    withdrawn = bool(evidence.get("withdraws"))
    chain = await _chain(session, str(target))
    ids = {r.report_id for r in chain}
    alert = await _alert_of(session, ids)
    if alert is None:
        # Nothing was raised from the report: a withdrawal has nothing to close, a
        # correction is judged as the report it now is.
        return withdrawn or finding.level is None
    await book._lock_key(session, alert.dedup_key)
    report_id = next(iter(finding.evidence.get("source_ids") or [""])) if finding.evidence else ""
    sole = not (set(alert.source_ids or []) - ids - {report_id})
    before = {
        "level": alert.level,
        "people": alert.people_involved,
        "event_type": (alert.evidence or {}).get("event_type"),
        "enterprise": (alert.evidence or {}).get("enterprise_name"),
    }
    details: dict[str, Any] = {
        "report_id": report_id,
        "withdraws" if withdrawn else "corrects": str(target),
        "original": _original(chain[0]) if chain else None,
        "from": before,
    }
    told = [t for t in reached_tiers(alert) if not book._digest_only(alert, t) and t != "point"]
    if withdrawn or finding.level is None:
        details["to"] = {"level": None}
        record_event(
            session,
            alert,
            "ReportWithdrawn" if withdrawn else "AlertCorrected",
            now,
            reason=f"report {target} {'withdrawn' if withdrawn else 'corrected'} by "
            f"report {report_id}",
            details=details,
            metrics=book.metrics,
        )
        if alert.status != "resolved" and sole:
            await book._resolve(
                session,
                alert,
                now,
                actor="system",
                reason=f"report {target} withdrawn by its informant"
                if withdrawn
                else f"report {target} corrected to no event",
                via="withdrawal" if withdrawn else "correction",
                purpose="withdrawn" if withdrawn else "corrected",
            )
        return True

    known = await book._personal_values(session, finding)
    new_level = finding.level if sole else min(alert.level, finding.level, key=RANK.__getitem__)
    assert new_level is not None
    book._take_in(alert, finding, now, known, headline=sole or RANK[new_level] < RANK[alert.level])
    details["to"] = {
        "level": new_level,
        "people": alert.people_involved,
        "event_type": (alert.evidence or {}).get("event_type"),
        "enterprise": (alert.evidence or {}).get("enterprise_name"),
    }
    details["notice"] = notice_text(details)
    if alert.status != "resolved" and RANK[new_level] < RANK[alert.level]:
        # Worse than first said: the handling is owed within the new level's times.
        details |= await book._deadlines_for_new_level(session, alert, now, level=new_level)
    record_event(
        session,
        alert,
        "AlertCorrected",
        now,
        reason=f"report {target} corrected by report {report_id}",
        details=details,
        metrics=book.metrics,
    )
    previous = alert.level
    alert.level = new_level
    await book.dispatcher.publish(
        session, alert, "AlertCorrected", now, {"from": previous, "notice": details["notice"]}
    )
    if alert.status == "resolved":
        return True
    if RANK[new_level] < RANK[previous]:
        # Worse than first said: as a level rise, the tiers are told again at once.
        if alert.status == "acknowledged":
            alert.status = "triggered"
            alert.acknowledged_at = None
            alert.acknowledged_by = None
        await book.escalator.start_round(
            session, alert, now, purpose="corrected", also=reached_tiers(alert)
        )
        return True
    if alert.status == "triggered":
        _follow_new_level(book.escalator, alert, now)
    # Everyone told at the old level hears the correction, even a tier the new level
    # would not have reached.
    contacts = [
        c
        for tier in told
        for c in await book.dispatcher.contacts.for_tier(session, alert, tier)
        if previous in c.levels or new_level in c.levels
    ]
    if contacts:
        await book.dispatcher.notify_contacts(session, alert, contacts, "corrected", now)
        record_event(
            session,
            alert,
            "AlertNotified",
            now,
            details={"purpose": "corrected", "tiers": told, "contacts": len(contacts)},
            metrics=book.metrics,
        )
    return True


def _follow_new_level(escalator: Escalator, alert: Alert, now: datetime) -> None:
    """Escalation goes on under the new level's policy from where the alert stands:
    the steps due by now count as done (those tiers were told at the higher level), the
    repeats due by now as sent, and the next deadline is the new policy's."""
    policy = escalator.policies.for_alert(alert)
    base = alert.escalation_started_at or alert.created_at
    alert.escalation_step = sum(1 for s in policy.steps if base + s.after <= now)
    alert.repeats_done = 0
    if alert.escalation_step >= len(policy.steps) and policy.may_repeat(0):
        origin = base + policy.steps[-1].after
        due = int((now - origin) / policy.repeat_interval)
        alert.repeats_done = due if policy.repeat is None else min(due, policy.repeat)
    alert.next_escalation_at = escalator._next(alert, policy, base)
