"""The detectors in the daemon: event severity at once, rules on new reports, the nightly
re-score and the forecaster's retraining on a schedule.

1. New informant reports and petitions (`severity_checked_at IS NULL`) are claimed in
   batches and each gets its level at once; those that warrant it become `event`
   findings in the same transaction. Woken by the bus (`RECORDS`), polling otherwise.
2. New monthly reports (`wage_reports.checked_at IS NULL`): the rules run for their
   points; a floor rule (owner gone, halted with wages unpaid) above the point's last
   finding becomes an `enterprise_risk` finding at once, without waiting for the night.
3. The nightly re-score (`rescore_at`, local time): every point and county scored,
   `risk_scores` written, and findings (`enterprise_risk`, `county_risk`,
   `petition_surge`) for levels that are new, changed or due for a refresh, plus a
   finding with level NULL where a risk has cleared (it resolves the open alert).
4. Retraining (`retrain_at`, when the model is older than `retrain_every`, or there is
   none): the new model goes to the database, so every daemon scores with it.

Periodic jobs run exactly once across daemons: the daemon whose `job_runs` insert wins
does the work; a run left 'running' by a dead daemon is taken over after
`job_stale_after`. APScheduler only wakes the loop; whether a job is due is decided
from the injected clock and the `job_runs` table, so tests move the clock instead of
sleeping and a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from detectors import forecast, scoring
from detectors.base import RANK, RISK_KINDS, FindingDraft, risk_heading
from detectors.load import load_panel
from detectors.panel import PanelView
from detectors.persist import (
    claim_events,
    claim_job,
    claim_wage_reports,
    finish_job,
    job_done,
    latest_findings,
    latest_model,
    petitions_about,
    save_model,
    unchecked_wage_reports,
    write_findings,
    write_risk_findings,
    write_scores,
)
from detectors.severity import (
    SeverityPolicy,
    assess,
    cluster_finding,
    correction_finding,
    event_finding,
)
from detectors.surge import SurgePolicy
from detectors.wagecheck import WageChecker, WageRequest, WorkerFailed
from monitor import bus
from monitor.clock import local_date
from monitor.config import DetectorsConfig
from monitor.logging import get_logger
from monitor.models import MonitoringPoint, Region
from monitor.season import day_number

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from monitor.context import Context

log = get_logger("labormon.detectors")

RESCORE, RETRAIN = "detectors.rescore", "detectors.retrain"


def scoring_policy(cfg: DetectorsConfig) -> scoring.ScoringPolicy:
    return scoring.ScoringPolicy(
        thresholds=(
            ("I", cfg.level_i),
            ("II", cfg.level_ii),
            ("III", cfg.level_iii),
            ("IV", cfg.level_iv),
        ),
        surge=SurgePolicy(
            window=cfg.surge_window_days,
            baseline=cfg.surge_baseline_days,
            alpha=cfg.surge_alpha,
            alpha_season=cfg.surge_alpha_festival,
            min_count=cfg.surge_min_count,
        ),
        enterprise_surge_min=cfg.surge_min_count,
    )


def severity_policy(cfg: DetectorsConfig) -> SeverityPolicy:
    return SeverityPolicy(
        level_i_people=cfg.event_level_i_people,
        level_ii_people=cfg.event_level_ii_people,
        level_iii_people=cfg.event_level_iii_people,
        owner_absconded_level=cfg.owner_absconded_level,
        collective_people=cfg.collective_people,
    )


def _time_of(text: str) -> tuple[int, int]:
    hour, minute = text.split(":")
    return int(hour), int(minute)


class DetectorService:
    """The detectors' stage of the pipeline (a daemon `Service`)."""

    name = "detectors"

    def __init__(self, ctx: Context, *, holder: str | None = None) -> None:
        self.ctx = ctx
        self.cfg = ctx.settings.detectors
        self.zone = ctx.settings.organisation.zone
        handling = ctx.settings.handling
        #: Informants' precursors weigh by their reliability (monitor.reliability).
        self.reliability_prior = handling.reliability_prior
        self.reliability_prior_weight = handling.reliability_prior_weight
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.policy = scoring_policy(self.cfg)
        self.severity = severity_policy(self.cfg)
        self.training = forecast.TrainingPolicy(min_incidents=self.cfg.min_history_incidents)
        self.model: forecast.Forecaster | None = None
        self.model_id: int | None = None
        self._wake = asyncio.Event()
        self._wages = WageChecker(
            ctx.db,
            worker=self.cfg.wage_worker,
            worker_min=self.cfg.wage_worker_min,
            niceness=self.cfg.wage_worker_nice,
        )
        self._state: dict[str, Any] = {"checked": 0}

    @classmethod
    def create(cls, ctx: Context) -> DetectorService | None:
        return cls(ctx) if ctx.settings.detectors.enabled else None

    # ------------------------------------------------------------------ daemon API

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        from apscheduler.triggers.cron import CronTrigger

        for job, at in ((RESCORE, self.cfg.rescore_at), (RETRAIN, self.cfg.retrain_at)):
            hour, minute = _time_of(at)
            scheduler.add_job(
                self._wake.set,
                CronTrigger(hour=hour, minute=minute, timezone=self.zone),
                id=f"{job}:{self.holder}",
                replace_existing=True,
            )

    def health(self) -> dict[str, Any]:
        return dict(self._state) | {"model_id": self.model_id}

    async def run(self) -> None:
        # Two loops: events (informant reports, petitions: where level I comes from) never
        # wait behind a batch of wage reports or the nightly re-score, which take seconds
        # at a province's size.
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(
                    self._loop(self.check_new_events, bus.EVENTS, jobs=False), name="events"
                )
                group.create_task(self._wage_loop(), name="wages")
        finally:
            self._wages.close()

    async def _wage_loop(self) -> None:
        """The wage checks and the periodic jobs. A worker that dies or a database that
        blinks fails one pass, which is retried after a pause: the events loop beside
        this one must not be restarted with it."""
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await self._wages.start_if_large()
                await self._loop(self.check_new_wages, bus.RECORDS, jobs=True)
            except WorkerFailed as exc:
                # A pass that ran a while before failing starts a new series.
                failures = 1 if time.monotonic() - started > 60 else failures + 1
                delay = min(30.0, 0.5 * 2 ** min(failures - 1, 6))
                log.warning("wage check failed; retrying", error=str(exc)[:300], retry_in=delay)
                await asyncio.sleep(delay)

    async def _loop(self, check: Any, topic: str, *, jobs: bool) -> None:
        subscribe = getattr(self.ctx.clock, "subscribe", None)
        clock_moved: asyncio.Event | None = subscribe() if callable(subscribe) else None
        # Our own wake-up: another consumer of the topic cannot swallow it. The events
        # loop is not woken by each batch of a month of wage reports.
        records = self.ctx.bus.subscribe(topic)
        while True:
            checked = await check()
            if jobs:
                await self.run_due_jobs()
            if checked >= self.cfg.batch_size:
                continue  # a backlog: keep going
            await self._sleep(records, clock_moved, self._wake if jobs else None)

    async def _sleep(
        self,
        records: asyncio.Event,
        clock_moved: asyncio.Event | None,
        wake: asyncio.Event | None = None,
    ) -> None:
        if records.is_set():
            records.clear()
            return
        waiters = [
            asyncio.ensure_future(
                asyncio.wait_for(records.wait(), self.cfg.poll_interval.total_seconds())
            ),
        ]
        if wake is not None:
            waiters.append(asyncio.ensure_future(wake.wait()))
        if clock_moved is not None:
            waiters.append(asyncio.ensure_future(clock_moved.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waiters, return_exceptions=True)
            if wake is not None:
                wake.clear()
            records.clear()
            if clock_moved is not None:
                clock_moved.clear()

    # ------------------------------------------------------------------ records

    async def check_new_records(self) -> int:
        """Event severity for new reports and petitions, rules for new wage reports."""
        return await self.check_new_events() + await self.check_new_wages()

    async def check_new_events(self) -> int:
        """Event severity for new informant reports and petitions."""
        total = 0
        findings = 0
        for kind in ("report", "petition"):
            n, written = await self._check_events(kind)
            total += n
            findings += written
        return self._checked(total, findings)

    async def check_new_wages(self) -> int:
        """The rules for new wage reports (after any pause for an event just stored:
        `ingest.event_hold`)."""
        # A deadline that only moves later, not an event to wait on.
        while (left := self.ctx.bus.bulk_wait()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)
        return self._checked(*await self._check_wages())

    def _checked(self, total: int, findings: int) -> int:
        if findings:
            self.ctx.bus.notify(bus.FINDINGS)
        self._state["checked"] += total
        return total

    async def _point_names(self, conn: Any, rows: list[dict[str, Any]]) -> dict[str, str]:
        ids = {r["point_id"] for r in rows if r.get("point_id")}
        names = {r["enterprise_name"] for r in rows if r.get("enterprise_name")}
        if not ids and not names:
            return {}
        result = await conn.execute(
            select(MonitoringPoint.point_id, MonitoringPoint.name).where(
                MonitoringPoint.point_id.in_(ids) | MonitoringPoint.name.in_(names)
            )
        )
        found: dict[str, str] = {}
        for point_id, name in result:
            found[point_id] = name
            found[f"name:{name}"] = point_id
        return found

    async def _check_events(self, kind: str) -> tuple[int, int]:
        now = self.ctx.clock.now()
        drafts: list[FindingDraft] = []
        ordinary: list[dict[str, Any]] = []
        async with self.ctx.db.connect() as conn:
            rows = await claim_events(conn, kind, now, self.cfg.batch_size)
            if not rows:
                return 0, 0
            known = await self._point_names(conn, rows)
            for row in rows:
                if not row.get("point_id") and row.get("enterprise_name"):
                    # Linked by its registered name: the finding belongs to the point.
                    row["point_id"] = known.get(f"name:{row['enterprise_name']}")
                text = row.get("summary") or row.get("description") or ""
                severity = assess(
                    event_type=row.get("event_type"),
                    people=row.get("people_involved") or 0,
                    category=row.get("category"),
                    text=text,
                    is_petition=kind == "petition",
                    policy=self.severity,
                    over_level=row.get("over_level"),
                )
                draft = event_finding(
                    record_kind=kind,
                    record=row,
                    point_name=known.get(row["point_id"]) if row.get("point_id") else None,
                    severity=severity,
                    collective=self.severity.collective_people,
                )
                if draft is None and (row.get("corrects") or row.get("withdraws")):
                    # A correction to nothing worth a level, or a withdrawal: the alert of
                    # the report it names must still hear of it (interfaces §8).
                    draft = correction_finding(kind, row)
                if draft is not None:
                    drafts.append(draft)
                elif kind == "petition" and (row.get("point_id") or row.get("enterprise_name")):
                    ordinary.append(row)
            drafts += await self._clusters(conn, ordinary, known)
            await write_findings(conn, drafts, now, now)
        self.ctx.metrics.detector_records_checked.labels(kind).inc(len(rows))
        for draft in drafts:
            self.ctx.metrics.detector_findings.labels("event", draft.level or "none").inc()
        if drafts:
            log.info("event findings", kind=kind, records=len(rows), findings=len(drafts))
        return len(rows), len(drafts)

    async def _clusters(
        self, conn: Any, ordinary: list[dict[str, Any]], known: dict[str, str]
    ) -> list[FindingDraft]:
        """Cluster events: an ordinary petition that makes `cluster_petitions` distinct
        petitions about its enterprise within `cluster_days` (one draft per enterprise)."""
        window = timedelta(days=self.cfg.cluster_days)
        latest: dict[tuple[str | None, str | None, str], dict[str, Any]] = {}
        for row in ordinary:
            point_id = row.get("point_id")
            key = (point_id, None if point_id else row.get("enterprise_name"), row["region_code"])
            if key not in latest or row["received_at"] > latest[key]["received_at"]:
                latest[key] = row
        drafts = []
        for (point_id, name, region), row in latest.items():
            found = await petitions_about(
                conn,
                point_id=point_id,
                name=name,
                region_code=region,
                since=row["received_at"] - window,
                until=row["received_at"],
            )
            if len(found) < self.cfg.cluster_petitions:
                continue
            drafts.append(
                cluster_finding(
                    point_id=point_id,
                    name=(known.get(point_id) if point_id else name) or str(name or point_id),
                    region_code=region,
                    petitions=found,
                    days=self.cfg.cluster_days,
                    level=self.cfg.cluster_level,
                )
            )
        return drafts

    async def _check_wages(self) -> tuple[int, int]:
        now = self.ctx.clock.now()
        today = local_date(now, self.zone)
        # Read first (the points' history), then claim and write in one transaction: a
        # read inside SQLite's write transaction from a second connection would wait
        # for the lock this transaction holds.
        async with self.ctx.db.engine.connect() as conn:
            peeked = await unchecked_wage_reports(conn, self.cfg.batch_size)
        if not peeked:
            return 0, 0
        # Read and evaluated before the claim's transaction, which on SQLite holds the
        # write lock: only the claim and the writes happen inside it. A big batch goes to
        # the worker process (detectors/wagecheck.py), the alert path keeps the core.
        checked = await self._wages.check(
            WageRequest(
                point_ids=sorted({r["point_id"] for r in peeked}),
                as_of=today,
                zone=self.zone,
                trust_record_dates=self.cfg.trust_record_dates,
                reliability_prior=self.reliability_prior,
                reliability_prior_weight=self.reliability_prior_weight,
            )
        )
        floored, factors, behind = checked.floored, checked.factors, checked.behind
        async with self.ctx.db.connect() as conn:
            claimed = set(await claim_wage_reports(conn, [r["report_id"] for r in peeked], now))
            rows = [r for r in peeked if r["report_id"] in claimed]
            mine = {r["point_id"] for r in rows}
            drafts = []
            for i, level in floored.items():
                point_id = checked.point_ids[i]
                if point_id not in mine:
                    continue
                new = [r["report_id"] for r in rows if r["point_id"] == point_id]
                drafts.append(
                    FindingDraft(
                        detector="rules",
                        kind="enterprise_risk",
                        entity_type="point",
                        entity_id=point_id,
                        region_code=checked.regions[i],
                        score=self.policy.threshold(level),
                        level=level,
                        title=f"{risk_heading(level)}{checked.names[i]}：{factors[i][0].text}",
                        factors=factors[i],
                        # The new reports first, then the records behind the rules.
                        source_ids=new + behind[i],
                        point_id=point_id,
                        extra={"enterprise_name": checked.names[i], "method": "rules"},
                    )
                )
            previous = await latest_findings(
                conn, ["enterprise_risk"], [d.dedup_key for d in drafts]
            )
            # Only a rise is urgent; the nightly re-score handles everything else.
            rising = [
                d
                for d in drafts
                if d.dedup_key not in previous or RANK[previous[d.dedup_key][0]] < RANK[d.level]
            ]
            await write_findings(conn, rising, now, now)
        self.ctx.metrics.detector_records_checked.labels("wage").inc(len(rows))
        for draft in rising:
            self.ctx.metrics.detector_findings.labels(
                "enterprise_risk", draft.level or "none"
            ).inc()
        # Reports another daemon claimed meanwhile still count as work seen.
        return len(peeked), len(rising)

    # ------------------------------------------------------------------ periodic jobs

    def _due(self, at: str, now: datetime) -> tuple[bool, date]:
        local = now.astimezone(self.zone)
        hour, minute = _time_of(at)
        return (local.hour, local.minute) >= (hour, minute), local.date()

    async def run_due_jobs(self) -> None:
        now = self.ctx.clock.now()
        due, today = self._due(self.cfg.retrain_at, now)
        if due and await self._model_is_old(now):
            await self._exclusive(RETRAIN, today.isoformat(), self.retrain)
        due, today = self._due(self.cfg.rescore_at, now)
        if due:
            await self._exclusive(RESCORE, today.isoformat(), self.rescore)

    async def _model_is_old(self, now: datetime) -> bool:
        async with self.ctx.db.read() as conn:
            stored = await latest_model(conn, known_id=self.model_id)
        if stored is None or (stored.forecaster is None and stored.id != self.model_id):
            return True  # no model, or one this daemon cannot use
        if stored.forecaster is not None:
            # Keep what was just read: asking again next pass must not read and unpickle
            # the whole model again (it did, every pass, after a restart).
            self.model, self.model_id = stored.forecaster, stored.id
        return now - stored.created_at >= self.cfg.retrain_every - timedelta(hours=1)

    async def _exclusive(self, job: str, key: str, work: Any) -> bool:
        """Run `work` if this daemon wins (job, key); True when it ran."""
        async with self.ctx.db.engine.connect() as conn:
            if await job_done(conn, job, key):
                return False
        now = self.ctx.clock.now()
        async with self.ctx.db.connect() as conn:
            if not await claim_job(conn, job, key, self.holder, now, self.cfg.job_stale_after):
                return False
        started = time.perf_counter()
        try:
            details = await work()
        except Exception as exc:
            log.exception("detector job failed", job=job, key=key)
            async with self.ctx.db.connect() as conn:
                await finish_job(
                    conn,
                    job,
                    key,
                    self.holder,
                    self.ctx.clock.now(),
                    "failed",
                    {"error": f"{exc.__class__.__name__}: {exc}"[:500]},
                )
            return True
        elapsed = time.perf_counter() - started
        async with self.ctx.db.connect() as conn:
            await finish_job(
                conn,
                job,
                key,
                self.holder,
                self.ctx.clock.now(),
                "done",
                details | {"seconds": round(elapsed, 2)},
            )
        self.ctx.metrics.detector_job_seconds.labels(job).observe(elapsed)
        self.ctx.metrics.detector_last_success.labels(job).set(time.time())
        self._state[job] = {"key": key, "seconds": round(elapsed, 2)} | details
        if details.get("written"):
            # After the job is recorded, so that whoever wakes sees it finished.
            self.ctx.bus.notify(bus.FINDINGS)
        return True

    async def _refresh_model(self, trained_by: date | None = None) -> None:
        async with self.ctx.db.read() as conn:
            stored = await latest_model(conn, known_id=self.model_id, trained_by=trained_by)
        if stored is None or stored.id == self.model_id:
            return
        if stored.forecaster is None:
            log.warning("stored forecaster not usable", model_id=stored.id, error=stored.error)
            return
        self.model, self.model_id = stored.forecaster, stored.id

    async def retrain(self) -> dict[str, Any]:
        now = self.ctx.clock.now()
        today = local_date(now, self.zone)
        panel = await load_panel(
            self.ctx.db,
            zone=self.zone,
            trust_record_dates=self.cfg.trust_record_dates,
            reliability_prior=self.reliability_prior,
            reliability_prior_weight=self.reliability_prior_weight,
        )
        model = await asyncio.to_thread(forecast.train, panel, day_number(today), self.training)
        if model is None:
            return {"trained": False, "reason": "too little history"}
        async with self.ctx.db.connect() as conn:
            self.model_id = await save_model(conn, model, now)
        self.model = model
        log.info("forecaster saved", model_id=self.model_id, **model.metrics)
        return {"trained": True, "model_id": self.model_id} | model.metrics

    async def rescore(self) -> dict[str, Any]:
        """Score every point and county now and write scores and findings."""
        now = self.ctx.clock.now()
        today = local_date(now, self.zone)
        await self._refresh_model()
        panel = await load_panel(
            self.ctx.db,
            as_of=today,
            zone=self.zone,
            trust_record_dates=self.cfg.trust_record_dates,
            reliability_prior=self.reliability_prior,
            reliability_prior_weight=self.reliability_prior_weight,
        )
        view = PanelView(panel, day_number(today))
        table = await asyncio.to_thread(scoring.score, view, self.model, self.policy)
        async with self.ctx.db.engine.connect() as conn:
            names = {c: n for c, n in await conn.execute(select(Region.code, Region.name))}
        drafts = table.point_findings() + table.county_findings(names) + table.surges
        async with self.ctx.db.connect() as conn:
            previous = await latest_findings(conn, RISK_KINDS)
            drafts += _surge_clearings(previous, table.surges, panel)
            chosen, summary = await write_risk_findings(
                conn,
                drafts,
                previous,
                now,
                open_after=self.cfg.risk_open_after,
                close_after=self.cfg.risk_close_after,
                min_level=self.cfg.finding_min_level,
            )
            scores = await write_scores(conn, table, now, now)
        for draft in chosen:
            self.ctx.metrics.detector_findings.labels(draft.kind, draft.level or "none").inc()
        details = {"method": table.method, "scores": scores} | summary.as_dict()
        log.info("risk re-scored", **details)
        return details


def _surge_clearings(
    previous: dict[str, tuple[str | None, datetime]], surges: list[FindingDraft], panel: Any
) -> list[FindingDraft]:
    """Clearing drafts for entities whose petition surge is over."""
    current = {d.dedup_key for d in surges}
    index = {pid: i for i, pid in enumerate(panel.point_ids)}
    out = []
    for key, (level, _) in previous.items():
        entity_type, _, rest = key.partition(":")
        entity_id, _, kind = rest.rpartition(":")
        if kind != "petition_surge" or level is None or key in current:
            continue
        if entity_type == "county":
            region, point_id = entity_id, None
        elif entity_id in index:
            region, point_id = panel.counties[panel.county[index[entity_id]]], entity_id
        else:
            continue
        out.append(
            FindingDraft(
                detector="surge",
                kind="petition_surge",
                entity_type=entity_type,
                entity_id=entity_id,
                region_code=region,
                score=0.0,
                level=None,
                title="信访激增已回落",
                point_id=point_id,
            )
        )
    return out
