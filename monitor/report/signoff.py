"""Sign-off of the monthly report (审核/签发): draft on schedule, the reviewer told and
reminded, mailed to its recipients once, on signing.

On schedule the report service stores the draft and mails the reviewers (leader
accounts of `report.reviewer_role` at `report.reviewer_tier`) a link to the console.
A reviewer reads it there, may add a note to the written analysis, and signs. Signing
inserts the `job_runs` row (`monthly_report_signed`, `YYYY-MM`): the one insert that
succeeds renders the signed PDF and Word files (signatory, 报/送/发 lines, 内部资料 mark)
and queues one email per recipient in the same transaction, so a report is mailed once
whoever clicks twice. On `report.remind_day` a report still unsigned reminds the
reviewers, once (`monthly_report_reminder`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import markupsafe
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from monitor import bus
from monitor.clock import add_months, local_date
from monitor.config import Settings
from monitor.context import Context
from monitor.logging import get_logger
from monitor.models import Account, Delivery, Document, JobRun
from monitor.privacy import mask_free_text
from monitor.regions import PROVINCE, UnknownRegion, ancestors, catalogue, tier_of
from monitor.report import CONTENT_TYPES, MonthlyFigures, labels, make_document, render
from monitor.report.mail import covering_mail
from monitor.report.recipients import report_recipients

log = get_logger("labormon.report")

DRAFT_JOB = "monthly_report"
SIGNED_JOB = "monthly_report_signed"
REMINDER_JOB = "monthly_report_reminder"
DRAFT_KIND = "monthly_report_draft"
SIGNED_KIND = "monthly_report"


class SignError(Exception):
    """Why a report cannot be signed (in Chinese, for the console)."""


@dataclass
class Signed:
    key: str
    document_ids: list[int]
    delivery_ids: list[str]


def email(
    recipient: str | None, address: str, subject: str, body: Mapping[str, Any], now: datetime
) -> Delivery:
    return Delivery(
        id=str(uuid.uuid4()),
        alert_id=None,
        purpose="report",
        channel="email",
        recipient=recipient,
        address=address,
        subject=subject,
        body=dict(body),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def reviewer_tier(ctx: Context) -> int:
    """`report.reviewer_tier`, or (unset) the tier of the installation's scope, at most 2:
    a province's leaders sign a province's report, a city's a city's, and a county
    installation's report is still signed by its city, as before."""
    configured = ctx.settings.report.reviewer_tier
    if configured is not None:
        return configured
    return min(tier_of(ctx.settings.organisation.scope_code), 2)


async def reviewers(ctx: Context, session: AsyncSession) -> list[tuple[str, str]]:
    cfg = ctx.settings.report
    # Reviewers of the installation's own report sit in its scope or above it: in a
    # province's installation a city's leaders review nothing but get their city's report.
    scope = ctx.settings.organisation.scope_code
    rows = await session.execute(
        select(Account.id, Account.email)
        .where(
            Account.kind == "leader",
            Account.status == "active",
            Account.role == cfg.reviewer_role,
            Account.tier == reviewer_tier(ctx),
            Account.region_code.in_(sorted({scope, *ancestors(scope)})),
            Account.email.is_not(None),
        )
        .order_by(Account.id)
    )
    return [(account_id, mail) for account_id, mail in rows if mail]


async def recipients_of(ctx: Context, session: AsyncSession) -> list[tuple[str | None, str]]:
    """The recipients of the installation's own report, by the rule of every report."""
    return await report_recipients(ctx, session)


def may_sign(ctx: Context, account: Account | None) -> bool:
    """The configured reviewer of this installation's report: role and tier as configured,
    and a region at or above the installation's scope (another city's leader of the same
    tier may not sign this city's report)."""
    cfg = ctx.settings.report
    scope = ctx.settings.organisation.scope_code
    return (
        account is not None
        and account.kind == "leader"
        and account.role == cfg.reviewer_role
        and account.tier == reviewer_tier(ctx)
        and account.region_code in {scope, *ancestors(scope)}
    )


def review_mail(
    ctx: Context, key: str, title: str, *, reminder: bool
) -> tuple[str, dict[str, object]]:
    url = f"{ctx.settings.http.base_url}/reports/sign/{key}"
    if reminder:
        subject = f"【提醒】{title}尚未签发"
        lead = f"{title}尚未签发，收件领导还没有收到。请审核后签发："
    else:
        subject = f"【待签发】{title}（草稿）"
        lead = f"{title}草稿已生成，请审核，可补充审核意见，签发后即报送收件领导："
    text = f"{lead}\n{url}\n\n本邮件由劳动关系风险监测预警系统自动发送。"
    esc = markupsafe.escape
    html = f'<p>{esc(lead)}</p><p><a href="{esc(url)}">{esc(url)}</a></p>'
    return subject, {"text": text, "html": html}


async def signed_run(ctx: Context, key: str) -> JobRun | None:
    async with ctx.db.session() as session:
        return (
            await session.scalars(select(JobRun).where(JobRun.job == SIGNED_JOB, JobRun.key == key))
        ).first()


#: Who a province's federation reports to.
NATIONAL = "中华全国总工会"


def distribution(settings: Settings, figures: MonthlyFigures) -> list[tuple[str, str]]:
    """The signed report's 报/送/发 lines, as (label, text): as configured, or, for 报 and
    发 not set, after the report's scope: reported to the tier above (a province's report
    to 中华全国总工会, a city's to its province's federation) and issued to the regions it
    compares (各市州总工会, 各区县（市）总工会), as its own text names them."""
    cfg = settings.report
    bao = cfg.bao if cfg.bao is not None else _above(settings, figures)
    fa = cfg.fa if cfg.fa is not None else f"各{labels.areas(figures.region_tier)}总工会"
    return [(label, text) for label, text in (("报", bao), ("送", cfg.song), ("发", fa)) if text]


def _above(settings: Settings, figures: MonthlyFigures) -> str:
    if figures.region_tier == PROVINCE:
        return NATIONAL
    try:
        lineage = catalogue(settings.organisation.regions_file).lineage(figures.city_code)
    except UnknownRegion:
        return ""
    return f"{lineage[-2].name}总工会" if len(lineage) > 1 else ""


async def sign(ctx: Context, month: date, signer: Account, note: str | None) -> Signed:
    """Sign the report of `month` and queue it to its recipients, once."""
    if not may_sign(ctx, signer):
        raise SignError("只有指定的审核人可以签发月报。")
    key = f"{month:%Y-%m}"
    cfg = ctx.settings.report
    now = ctx.clock.now()
    doc = await make_document(ctx.db, ctx.settings, month, now)
    doc.signatory = ctx.privacy.decrypt(signer.name_enc) or signer.id
    # The note goes into the report and its mail (interfaces §7: no personal data there).
    doc.review_note = mask_free_text((note or "").strip()) or None
    doc.distribution = distribution(ctx.settings, doc.figures)
    doc.classification = cfg.classification
    formats = list(cfg.attach)
    files = {fmt: await asyncio.to_thread(render, doc, fmt) for fmt in formats}
    mail = covering_mail(doc, [str(f) for f in formats])
    try:
        async with ctx.db.session() as session:
            session.add(
                JobRun(
                    job=SIGNED_JOB,
                    key=key,
                    holder=signer.id,
                    started_at=now,
                    finished_at=now,
                    status="done",
                    details={"signed_by": signer.id, "note": doc.review_note},
                )
            )
            await session.flush()
            documents = [
                Document(
                    kind=SIGNED_KIND,
                    key=key,
                    filename=f"{doc.filename_stem}.{fmt}",
                    content_type=CONTENT_TYPES[fmt],
                    data=data,
                    created_at=now,
                )
                for fmt, data in files.items()
            ]
            session.add_all(documents)
            await session.flush()
            body: dict[str, object] = {
                "text": mail.text,
                "html": mail.html,
                "attachments": [{"document_id": int(d.id)} for d in documents],
            }
            deliveries = [
                email(recipient, address, mail.subject, body, now)
                for recipient, address in await recipients_of(ctx, session)
            ]
            session.add_all(deliveries)
    except IntegrityError:
        run = await signed_run(ctx, key)
        who = (run.details or {}).get("signed_by") if run else None
        raise SignError(f"这份月报已由 {who} 签发并报送，不会重复发送。") from None
    ctx.bus.notify(bus.DELIVERIES)
    log.info("monthly report signed", month=key, deliveries=len(deliveries))
    return Signed(key, [int(d.id) for d in documents], [d.id for d in deliveries])


async def remind_if_due(ctx: Context) -> bool:
    """On the reminder day, remind the reviewers of last month's unsigned draft, once."""
    cfg = ctx.settings.report
    if not cfg.sign_off:
        return False
    now = ctx.clock.now()
    today = local_date(now, ctx.settings.organisation.zone)
    if today.day < cfg.remind_day:
        return False
    key = f"{add_months(today.replace(day=1), -1):%Y-%m}"
    async with ctx.db.session() as session:
        draft = await session.scalar(
            select(JobRun.id).where(
                JobRun.job == DRAFT_JOB, JobRun.key == key, JobRun.status == "done"
            )
        )
        signed = await session.scalar(
            select(JobRun.id).where(JobRun.job == SIGNED_JOB, JobRun.key == key)
        )
    if draft is None or signed is not None:
        return False
    try:
        async with ctx.db.session() as session:
            session.add(
                JobRun(
                    job=REMINDER_JOB,
                    key=key,
                    holder="report",
                    started_at=now,
                    finished_at=now,
                    status="done",
                )
            )
            await session.flush()
            subject, body = review_mail(ctx, key, f"{key} 月报", reminder=True)
            for account_id, address in await reviewers(ctx, session):
                session.add(email(account_id, address, subject, body, now))
    except IntegrityError:
        return False
    ctx.bus.notify(bus.DELIVERIES)
    log.info("monthly report reminder queued", month=key)
    return True
