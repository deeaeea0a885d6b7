"""The daemon's monthly report: made on schedule, stored, and queued for email once.

On the configured day (default the 1st, 09:00 China time) the report for the month
just ended is due. Every daemon notices it; each tries to insert the `job_runs` row
(`monthly_report`, `YYYY-MM`) and only the one whose insert succeeds goes on. That one
renders the PDF and Word files and, in one transaction, stores them in `documents`,
writes one pending email delivery per recipient (the outbox sender mails them) and
marks the run done. A crash before that commit leaves a `running` row that another
daemon takes over after `stale_after`; a failure marks it `failed` and the next poll
tries again, so a report is neither lost nor sent twice.

The scheduler only wakes the loop; whether the report is due is decided from the
clock and the `job_runs` table, so a daemon restarted within `catch_up` of the
scheduled time still sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, cast

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from monitor import bus
from monitor.clock import add_months
from monitor.context import Context
from monitor.logging import get_logger
from monitor.models import Document, JobRun, Region
from monitor.regions import CITY, PROVINCE, tier_of
from monitor.report import CONTENT_TYPES, make_document, render
from monitor.report.mail import covering_mail
from monitor.report.recipients import report_recipients
from monitor.report.signoff import (
    DRAFT_KIND,
    email,
    remind_if_due,
    review_mail,
    reviewer_tier,
    reviewers,
)

log = get_logger("labormon.report")


def run_key(month: date, region: str, scope: str) -> str:
    """The `job_runs` key of one report: `YYYY-MM` for the installation's own, and
    `YYYY-MM/<code>` for a city's within a province's installation."""
    return f"{month:%Y-%m}" if region == scope else f"{month:%Y-%m}/{region}"


JOB = "monthly_report"
DOCUMENT_KIND = "monthly_report"

Status = Literal["done", "taken", "failed"]


class LostClaim(RuntimeError):
    """Another daemon took the run over (ours was stale) before we committed."""


@dataclass
class RunResult:
    month: date
    status: Status
    document_ids: list[int] = field(default_factory=list)
    delivery_ids: list[str] = field(default_factory=list)
    error: str | None = None
    #: The region the report covers (the installation's scope, or one of its cities).
    region: str = ""


class ReportService:
    """Makes the monthly report when it is due and queues it for the leaders."""

    name = "report"

    def __init__(self, ctx: Context, *, holder: str | None = None, poll: float = 900.0) -> None:
        self.ctx = ctx
        self.config = ctx.settings.report
        self.zone = ctx.settings.organisation.zone
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        #: Seconds between checks when nothing wakes the loop (a missed wake-up or a
        #: clock jump costs at most this long).
        self.poll = poll
        self._wake = asyncio.Event()
        self._last: RunResult | None = None

    @classmethod
    def create(cls, ctx: Context) -> ReportService | None:
        return cls(ctx) if ctx.settings.report.enabled else None

    # ------------------------------------------------------------------ scheduling

    def trigger(self) -> CronTrigger:
        return CronTrigger.from_crontab(self.config.schedule, timezone=self.zone)

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        scheduler.add_job(
            self._wake_up,
            self.trigger(),
            id="monthly_report",
            name="monthly petition report",
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=None,
        )

    async def _wake_up(self) -> None:
        # A coroutine job runs in the event loop, where setting the event is safe.
        self._wake.set()

    def due(self, now: datetime | None = None) -> date | None:
        """The month whose report is due at `now` (the month before the one of the
        latest scheduled time), or None outside the catch-up window."""
        now = now or self.ctx.clock.now()
        local = now.astimezone(self.zone)
        month_start = datetime(local.year, local.month, 1, tzinfo=self.zone)
        fire = self.trigger().get_next_fire_time(None, month_start)
        if fire is None or now < fire or now - fire > self.config.catch_up:
            return None
        return add_months(month_start.date(), -1)

    def health(self) -> dict[str, Any]:
        state: dict[str, Any] = {"schedule": self.config.schedule}
        if self._last is not None:
            state["last"] = {"month": f"{self._last.month:%Y-%m}", "status": self._last.status}
        return state

    async def run(self) -> None:
        while True:
            try:
                await self.run_due()
            except Exception:
                # The database may be briefly away; the next wake-up or poll retries.
                log.exception("monthly report check failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)
            self._wake.clear()

    async def run_due(self) -> RunResult | None:
        """Make every report of the month not made yet (the scope's, then each city's of a
        province's installation); the result of the last one made, or None."""
        await remind_if_due(self.ctx)
        month = self.due()
        if month is None:
            return None
        last: RunResult | None = None
        for region in await self.regions():
            key = run_key(month, region, self.ctx.settings.organisation.scope_code)
            async with self.ctx.db.session() as session:
                done = await session.scalar(
                    select(JobRun.id).where(
                        JobRun.job == JOB, JobRun.key == key, JobRun.status == "done"
                    )
                )
            if done is None:
                last = await self.produce(month, region)
        return last

    async def regions(self) -> list[str]:
        """The regions that get a monthly report: the installation's scope and, for a
        province's, each of its cities (each mailed to its own leaders)."""
        scope = self.ctx.settings.organisation.scope_code
        if tier_of(scope) != PROVINCE:
            return [scope]
        async with self.ctx.db.session() as session:
            cities = await session.scalars(
                select(Region.code)
                .where(Region.parent_code == scope, Region.tier == CITY)
                .order_by(Region.code)
            )
            return [scope, *cities]

    # ------------------------------------------------------------------ the run

    async def produce(self, month: date, region: str | None = None) -> RunResult:
        """Claim the month (of `region`, default the scope), make the report, store it and
        queue the emails, once."""
        scope = self.ctx.settings.organisation.scope_code
        region = region or scope
        key = run_key(month, region, scope)
        run_id = await self._claim(key)
        if run_id is None:
            result = RunResult(month, "taken", region=region)
            self.ctx.metrics.reports.labels("taken").inc()
            return result
        started = time.perf_counter()
        try:
            result = await self._make(month, key, run_id, region)
        except LostClaim:
            log.warning("monthly report run taken over by another daemon", month=key)
            result = RunResult(month, "taken", region=region)
        except Exception as exc:
            log.exception("monthly report failed", month=key)
            await self._fail(run_id, exc)
            result = RunResult(
                month, "failed", error=f"{exc.__class__.__name__}: {exc}", region=region
            )
        self.ctx.metrics.reports.labels(result.status).inc()
        if result.status == "done":
            self.ctx.metrics.report_seconds.observe(time.perf_counter() - started)
        self._last = result
        return result

    async def _claim(self, key: str) -> int | None:
        """Insert the run row, or take over a failed or stale one; None if another has it."""
        now = self.ctx.clock.now()
        try:
            async with self.ctx.db.session() as session:
                row = JobRun(
                    job=JOB,
                    key=key,
                    holder=self.holder,
                    started_at=now,
                    status="running",
                    details={"attempt": 1},
                )
                session.add(row)
                await session.flush()
                return int(row.id)
        except IntegrityError:
            pass
        stale = now - self.config.stale_after
        async with self.ctx.db.session() as session:
            claimed = await session.execute(
                update(JobRun)
                .where(
                    JobRun.job == JOB,
                    JobRun.key == key,
                    or_(
                        JobRun.status == "failed",
                        and_(JobRun.status == "running", JobRun.started_at < stale),
                    ),
                )
                .values(holder=self.holder, started_at=now, status="running", finished_at=None)
                .returning(JobRun.id)
            )
            run_id = claimed.scalar_one_or_none()
        return None if run_id is None else int(run_id)

    async def _make(self, month: date, key: str, run_id: int, region: str) -> RunResult:
        ctx = self.ctx
        now = ctx.clock.now()
        doc = await make_document(
            ctx.db,
            ctx.settings,
            month,
            now,
            None if region == ctx.settings.organisation.scope_code else region,
        )
        files: dict[str, bytes] = {}
        for fmt in self.config.attach:
            # Rendering takes seconds of CPU; a worker thread keeps intake and alerting
            # answering meanwhile.
            files[fmt] = await asyncio.to_thread(render, doc, fmt)
        mail = covering_mail(doc, list(files))
        # Sign-off is for the installation's own report; a province installation's city
        # reports go to their cities' leaders as made.
        draft = self.config.sign_off and region == ctx.settings.organisation.scope_code
        async with ctx.db.session() as session:
            documents = [
                Document(
                    kind=DRAFT_KIND if draft else DOCUMENT_KIND,
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
            body = {
                "text": mail.text,
                "html": mail.html,
                "attachments": [{"document_id": int(d.id)} for d in documents],
            }
            if draft:
                # Sign-off: the reviewers get a link to the draft; the recipients get the
                # report when it is signed (monitor/report/signoff.py).
                subject, review = review_mail(ctx, key, doc.filename_stem, reminder=False)
                deliveries = [
                    email(account_id, address, subject, review, now)
                    for account_id, address in await reviewers(ctx, session)
                ]
            else:
                deliveries = [
                    email(recipient, address, mail.subject, body, now)
                    for recipient, address in await self._recipients(session, region)
                ]
            session.add_all(deliveries)
            finished = await session.execute(
                update(JobRun)
                .where(
                    JobRun.id == run_id, JobRun.holder == self.holder, JobRun.status == "running"
                )
                .values(
                    status="done",
                    finished_at=ctx.clock.now(),
                    details={
                        "state": "draft" if draft else "sent",
                        "documents": [int(d.id) for d in documents],
                        "deliveries": len(deliveries),
                        "petitions": doc.figures.totals.current.petitions,
                        "people": doc.figures.totals.current.people,
                    },
                )
            )
            if cast(CursorResult[Any], finished).rowcount != 1:
                raise LostClaim(key)
        if deliveries:
            ctx.bus.notify(bus.DELIVERIES)
        elif draft:
            log.warning(
                "monthly report stored as a draft but nobody may sign it: add a leader "
                "account with an email in the installation's region (or set [report] "
                "reviewer_tier)",
                month=key,
                reviewer_tier=reviewer_tier(ctx),
            )
        else:
            log.warning(
                "monthly report stored but nobody to send it to: add leader accounts with "
                "an email at the city or province, or [report] recipients",
                month=key,
            )
        log.info(
            "monthly report queued",
            month=key,
            documents=[int(d.id) for d in documents],
            deliveries=len(deliveries),
        )
        return RunResult(
            month,
            "done",
            document_ids=[int(d.id) for d in documents],
            delivery_ids=[d.id for d in deliveries],
            region=region,
        )

    async def _fail(self, run_id: int, exc: BaseException) -> None:
        with contextlib.suppress(Exception):
            async with self.ctx.db.session() as session:
                await session.execute(
                    update(JobRun)
                    .where(JobRun.id == run_id, JobRun.holder == self.holder)
                    .values(
                        status="failed",
                        finished_at=self.ctx.clock.now(),
                        details={"error": f"{exc.__class__.__name__}: {exc}"[:2000]},
                    )
                )

    async def _recipients(
        self, session: AsyncSession, region: str | None = None
    ) -> list[tuple[str | None, str]]:
        return await report_recipients(self.ctx, session, region)
