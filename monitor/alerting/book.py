"""Alerts from findings, and the alert lifecycle: triggered -> acknowledged -> resolved.

One open alert per dedup key (entity + risk kind). A finding for a key with an open
alert updates it; a higher level re-escalates it; a finding with no level (the risk has
cleared) resolves it with a resolved notice; a finding for a key whose alerts are all
resolved opens a new alert. Each finding is applied in one transaction together with
the alert change, its audit events and every delivery it causes, then the sender is
woken: a level I or II finding goes out at once, without waiting for any batch.

Acknowledge, resolve and silence are core functions here; the HTTP API, the command
line, the signed links and the web console all call them. Every change is an
`AlertEvent` with who, when and why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Text, case, cast, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from monitor import bus
from monitor.alerting import deadlines
from monitor.alerting.acklinks import AckLinks
from monitor.alerting.corrections import apply_correction
from monitor.alerting.dispatch import Dispatcher, record_event
from monitor.alerting.escalation import (
    NOTHING_REACHED,
    RISK_KINDS,
    Escalator,
    Policies,
    reached_tiers,
)
from monitor.alerting.messages import evidence_for_alert, mask_text, redact, scrub
from monitor.alerting.metrics import alerting_metrics
from monitor.alerting.outbox import Outbox
from monitor.alerting.silences import SilenceError, cancel_silence, create_silence
from monitor.context import Context
from monitor.logging import get_logger
from monitor.loops import finish
from monitor.models import (
    Account,
    Alert,
    Finding,
    HandlingDeadline,
    HandlingRecord,
    InformantReport,
    Petition,
    Region,
    Silence,
)
from monitor.privacy import mask_phone
from monitor.safetext import one_line

log = get_logger("labormon.alerting")

#: Lower is more severe.
LEVEL_RANK = {"I": 1, "II": 2, "III": 3, "IV": 4}
STATUSES = ("triggered", "acknowledged", "resolved")
#: Evidence an alert gathers itself across its findings (not replaced by a headline).
ALERT_OWN_KEYS = ("text", "reports", "risk_factors")
#: Findings applied per transaction (level I and II first).
FINDINGS_BATCH = 100


class AlertError(Exception):
    """An alert operation that cannot be done; `status` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class AlertBook:
    """The alert store and everything that changes an alert."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        config = ctx.settings.alerting
        self.metrics = alerting_metrics(ctx.metrics)
        self.outbox = Outbox(batch_window=config.batch_window, postgres=ctx.db.is_postgres)
        self.links = AckLinks(
            ctx.privacy,
            ctx.clock,
            ctx.settings.http.base_url,
            config.ack_link_ttl,
            login_levels=frozenset(config.ack_link_login_levels),
        )
        self.dispatcher = Dispatcher(ctx.settings, self.outbox, self.links, self.metrics)
        self.policies = Policies(ctx.settings)
        self.escalator = Escalator(self.policies, self.dispatcher, self.metrics)

    # ------------------------------------------------------------------ findings

    async def process_findings(self, limit: int = FINDINGS_BATCH) -> int:
        """Apply unprocessed findings (most severe first); returns how many were applied."""
        return await finish(self._process_findings(limit))

    async def _process_findings(self, limit: int) -> int:
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            severity = case({"I": 0, "II": 1, "III": 2, "IV": 3}, value=Finding.level, else_=4)
            query = (
                select(Finding)
                .where(Finding.processed_at.is_(None))
                .order_by(severity, Finding.id)
                .limit(limit)
            )
            if self.ctx.db.is_postgres:
                query = query.with_for_update(skip_locked=True)
            findings = sorted((await session.scalars(query)).all(), key=lambda f: f.id)
            failed: list[int] = []
            for finding in findings:
                try:
                    async with session.begin_nested():
                        await self._apply(session, finding, now)
                except DBAPIError:
                    raise  # the database itself: retry the whole batch later
                except Exception:
                    # A finding we cannot apply must not block the ones behind it.
                    log.exception("finding could not be applied", finding=finding.id)
                    failed.append(finding.id)
                    self.metrics.findings_failed.inc()
                finding.processed_at = now
        if findings:
            self.metrics.findings_processed.inc(len(findings) - len(failed))
            self.ctx.bus.notify(bus.DELIVERIES)
            self.ctx.bus.notify(bus.ALERTS)
        return len(findings)

    async def _lock_key(self, session: AsyncSession, key: str) -> None:
        """Serialise work on one dedup key across daemons (PostgreSQL; SQLite has one
        writer anyway). Held until the transaction ends."""
        if self.ctx.db.is_postgres:
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": "alert:" + key}
            )

    async def _apply(self, session: AsyncSession, finding: Finding, now: datetime) -> None:
        await self._lock_key(session, finding.dedup_key)
        if await apply_correction(self, session, finding, now):
            return  # an informant's correction or withdrawal (interfaces §8)
        if finding.kind == "event" and finding.level is not None:
            await self._apply_event(session, finding, now)
            return
        risk = finding.kind in RISK_KINDS and finding.point_id and finding.level is not None
        if risk and await self._inhibited(session, finding, now):
            return
        alert = (
            await session.scalars(
                select(Alert).where(
                    Alert.dedup_key == finding.dedup_key, Alert.status != "resolved"
                )
            )
        ).first()
        latest = alert
        if latest is None:
            latest = (
                await session.scalars(
                    select(Alert)
                    .where(Alert.dedup_key == finding.dedup_key)
                    .order_by(Alert.id.desc())
                    .limit(1)
                )
            ).first()
        stale = bool(latest and latest.last_finding_id and finding.id < latest.last_finding_id)
        if finding.level is None:
            if alert is not None and not stale:
                await self._resolve(
                    session,
                    alert,
                    now,
                    actor="system",
                    reason=f"risk cleared (finding {finding.id})",
                    via="finding",
                )
            return
        if finding.level not in LEVEL_RANK:
            raise ValueError(f"finding {finding.id} has unknown level {finding.level!r}")
        if alert is None:
            if stale:
                return  # an older finding for a key that has since been resolved
            await self._open(session, finding, now)
            return
        raised = LEVEL_RANK[finding.level] < LEVEL_RANK[alert.level]
        if stale and not raised:
            return  # applied out of order by a second daemon: the newer one already counts
        if not stale:
            # An older finding may still raise the level, but not replace newer details;
            # a less serious one (a 12-person petition at a point whose road blocking is
            # open at level I) adds its sources but leaves the headline of the level.
            lower = LEVEL_RANK[finding.level] > LEVEL_RANK[alert.level]
            known = await self._personal_values(session, finding)
            self._take_in(alert, finding, now, known, headline=not lower)
        if raised:
            previous = alert.level
            alert.level = finding.level
            record_event(
                session,
                alert,
                "AlertLevelRaised",
                now,
                reason=f"finding {finding.id}",
                details={"from": previous, "to": finding.level, "finding_id": finding.id}
                | await self._deadlines_for_new_level(session, alert, now),
                metrics=self.metrics,
            )
            if alert.status == "acknowledged":
                # Acknowledging a level II does not cover the level I it turned into.
                alert.status = "triggered"
                alert.acknowledged_at = None
                alert.acknowledged_by = None
            await self.dispatcher.publish(
                session, alert, "AlertLevelRaised", now, {"from": previous}
            )
            await self.escalator.start_round(
                session, alert, now, purpose="level_raised", also=reached_tiers(alert)
            )
        else:
            record_event(
                session,
                alert,
                "AlertUpdated",
                now,
                details={"finding_id": finding.id, "level": finding.level},
                metrics=self.metrics,
            )

    async def apply(self, session: AsyncSession, finding: Finding, now: datetime) -> None:
        """Apply a finding written in the caller's transaction at once (a missed handling
        deadline: the claim and its alert commit together)."""
        await self._apply(session, finding, now)
        finding.processed_at = now
        self.metrics.findings_processed.inc()

    # ------------------------------------------------------------------ incidents

    async def _apply_event(self, session: AsyncSession, finding: Finding, now: datetime) -> None:
        """One alert per incident (interfaces §5): an event joins the open alert of its
        entity when it happened within `join_window` of that incident's last event, or
        the alert of the report it `follows`; otherwise it opens a new alert. Joining at
        level II or above, or raising the level, tells the tiers again (续报/新情况), even
        if the alert was acknowledged."""
        evidence = finding.evidence or {}
        occurred = _instant(evidence.get("occurred_at")) or finding.created_at
        alert: Alert | None = None
        follows = evidence.get("follows")
        if follows:
            alert = await self._alert_of_source(session, str(follows))
        if alert is None:
            candidates = (
                await session.scalars(
                    select(Alert)
                    .where(
                        Alert.entity_key == finding.dedup_key,
                        Alert.kind == "event",
                        Alert.status != "resolved",
                    )
                    .order_by(Alert.id.desc())
                )
            ).all()
            window = self.ctx.settings.alerting.join_window
            for candidate in candidates:
                last = candidate.last_event_at or candidate.created_at
                # A cluster of petitions gathers for its whole window.
                if evidence.get("cluster") or abs(occurred - last) <= window:
                    alert = candidate
                    break
        if alert is None:
            opened = await self._open(
                session, finding, now, dedup_key=f"{finding.dedup_key}#{finding.id}"
            )
            await self._attach_open_risk(session, opened)
            return
        await self._join(session, alert, finding, occurred, now)
        if follows and alert.status != "resolved":
            await self._follow_up_record(session, alert, finding, str(follows), now)

    async def _follow_up_record(
        self, session: AsyncSession, alert: Alert, finding: Finding, follows: str, now: datetime
    ) -> None:
        """An informant's report that follows an earlier one is a 续报 on its alert
        (interfaces §8): a `progress` record, which meets the follow-up deadline. Its author
        is shown as 信息员, never by the informant's id."""
        evidence = finding.evidence or {}
        ids = [str(s) for s in evidence.get("source_ids") or []]
        reports = [r for r in (alert.evidence or {}).get("reports") or [] if isinstance(r, dict)]
        text_ = next(
            (str(r.get("text") or "") for r in reports if ids and r.get("source_id") == ids[0]), ""
        )
        people = evidence.get("people_involved")
        fields: dict[str, Any] = {"report_id": ids[0] if ids else None, "follows": follows}
        if isinstance(people, int):
            fields["people_now"] = people
        record = HandlingRecord(
            alert_id=alert.id,
            kind="progress",
            author_id="informant",
            created_at=now,
            text=text_,
            fields=fields,
            via="mqtt" if evidence.get("source") == "mqtt" else "report",
        )
        session.add(record)
        await session.flush()
        record_event(
            session,
            alert,
            "HandlingRecorded",
            now,
            actor="system",
            reason=f"处置记录 {record.id}（信息员续报）",
            details={"record_id": record.id, "kind": "progress", "via": record.via, "text": text_}
            | {k: v for k, v in fields.items() if k == "people_now"},
            metrics=self.metrics,
        )
        await self.dispatcher.publish(
            session,
            alert,
            "HandlingRecorded",
            now,
            {
                "record": {
                    "id": record.id,
                    "kind": "progress",
                    "author_id": "informant",
                    "created_at": now.isoformat(),
                    "text": text_,
                }
                | fields
            },
        )
        ended = await deadlines.progress_filed(
            session,
            alert,
            fields.get("people_now"),
            now,
            self.ctx.settings.handling,
            postgres=self.ctx.db.is_postgres,
        )
        await self.resolve_overdue(session, ended, now, reason=f"处置记录 {record.id}（续报）")

    async def _alert_of_source(self, session: AsyncSession, source_id: str) -> Alert | None:
        """The event alert holding the record `source_id` (the newest)."""
        pattern = (
            '%"' + source_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + '"%'
        )
        rows = await session.scalars(
            select(Alert)
            .where(
                Alert.kind == "event",
                cast(Alert.source_ids, Text).like(pattern, escape="\\"),
            )
            .order_by(Alert.id.desc())
        )
        for alert in rows:
            if source_id in (alert.source_ids or []):
                return alert
        return None

    async def _join(
        self,
        session: AsyncSession,
        alert: Alert,
        finding: Finding,
        occurred: datetime,
        now: datetime,
    ) -> None:
        raised = LEVEL_RANK[finding.level or "IV"] < LEVEL_RANK[alert.level]
        lower = LEVEL_RANK[finding.level or "IV"] > LEVEL_RANK[alert.level]
        known = await self._personal_values(session, finding)
        before = set(alert.source_ids or [])
        news = any(str(x) not in before for x in (finding.evidence or {}).get("source_ids") or [])
        if not news and not raised:
            # The same facts again (a finding re-applied): nothing new to tell.
            self._take_in(alert, finding, now, known, headline=False)
            record_event(
                session,
                alert,
                "AlertUpdated",
                now,
                details={"finding_id": finding.id, "level": finding.level},
                metrics=self.metrics,
            )
            return
        previous_people = alert.people_involved
        self._take_in(alert, finding, now, known, headline=not lower)
        if lower and previous_people is not None:
            alert.people_involved = previous_people
        if alert.last_event_at is None or occurred > alert.last_event_at:
            alert.last_event_at = occurred
        if alert.occurred_at is None or occurred < alert.occurred_at:
            alert.occurred_at = occurred
        await self._attach_text(session, alert, finding, known)
        if alert.status == "resolved":
            # A follow-up of a closed incident that brings serious news reopens it.
            if not raised and LEVEL_RANK[finding.level or "IV"] > LEVEL_RANK["II"]:
                self._record_joined(
                    session, alert, finding, now, known, title=None if lower else alert.title
                )
                return
            alert.status = "triggered"
            alert.resolved_at = None
            alert.resolved_by = None
        if raised:
            previous = alert.level
            alert.level = str(finding.level)
            record_event(
                session,
                alert,
                "AlertLevelRaised",
                now,
                reason=f"finding {finding.id}",
                details={"from": previous, "to": finding.level, "finding_id": finding.id}
                | await self._deadlines_for_new_level(session, alert, now),
                metrics=self.metrics,
            )
            self._unacknowledge(alert)
            await self.dispatcher.publish(
                session, alert, "AlertLevelRaised", now, {"from": previous}
            )
            await self.escalator.start_round(
                session, alert, now, purpose="level_raised", also=reached_tiers(alert)
            )
            return
        self._record_joined(session, alert, finding, now, known)
        if LEVEL_RANK[finding.level or "IV"] <= LEVEL_RANK["II"]:
            # New facts at II or above: everyone who knows hears them, acknowledged or not.
            told = [t for t in reached_tiers(alert) if not self._digest_only(alert, t)]
            if told:
                await self.dispatcher.notify(session, alert, told, "follow_up", now)

    def _record_joined(
        self,
        session: AsyncSession,
        alert: Alert,
        finding: Finding,
        now: datetime,
        known: dict[str, str],
        *,
        title: str | None = None,
    ) -> None:
        """A finding joined this alert (on its timeline, with its own title unless
        `title` is given; names the records hold are masked either way)."""
        record_event(
            session,
            alert,
            "AlertUpdated",
            now,
            details={
                "finding_id": finding.id,
                "level": finding.level,
                "joined": True,
                "title": title if title is not None else scrub(redact(finding.title, known), 200),
            },
            metrics=self.metrics,
        )

    @staticmethod
    def _unacknowledge(alert: Alert) -> None:
        if alert.status == "acknowledged":
            # Acknowledging a level II does not cover the level I it turned into.
            alert.status = "triggered"
            alert.acknowledged_at = None
            alert.acknowledged_by = None

    async def _open_event_alert(self, session: AsyncSession, point_id: str) -> Alert | None:
        return (
            await session.scalars(
                select(Alert)
                .where(
                    Alert.point_id == point_id,
                    Alert.kind == "event",
                    Alert.status != "resolved",
                )
                .order_by(Alert.id.desc())
                .limit(1)
            )
        ).first()

    async def _inhibited(self, session: AsyncSession, finding: Finding, now: datetime) -> bool:
        """A risk alert of an enterprise is held back while an event alert for it is open
        (Alertmanager's inhibition): the event shows the risk's factors instead. An open
        risk alert is still updated, without a message."""
        assert finding.point_id is not None
        event = await self._open_event_alert(session, finding.point_id)
        if event is None:
            return False
        _attach_risk(
            event,
            [f for f in (finding.evidence or {}).get("factors") or [] if isinstance(f, dict)],
            finding.kind,
        )
        risk = (
            await session.scalars(
                select(Alert).where(
                    Alert.dedup_key == finding.dedup_key, Alert.status != "resolved"
                )
            )
        ).first()
        if risk is not None:
            known = await self._personal_values(session, finding)
            self._take_in(risk, finding, now, known)
            record_event(
                session,
                risk,
                "AlertInhibited",
                now,
                reason=f"event alert {event.id} is open",
                details={"finding_id": finding.id, "level": finding.level, "event": event.id},
                metrics=self.metrics,
            )
        return True

    async def _deadlines_for_new_level(
        self, session: AsyncSession, alert: Alert, now: datetime, *, level: str | None = None
    ) -> dict[str, Any]:
        """A raised alert owes what its new `level` (default: its level) owes: a level I
        verification within the hour, not the 24 h of the level III it was. The changes
        go in the audit log."""
        moved = await deadlines.level_raised(
            session,
            alert,
            self.ctx.settings.handling,
            now,
            level=level or alert.level,
            postgres=self.ctx.db.is_postgres,
        )
        return {"deadlines": moved} if moved else {}

    async def _attach_open_risk(self, session: AsyncSession, alert: Alert) -> None:
        """A new event alert shows the factors of its enterprise's open risk alerts."""
        if not alert.point_id:
            return
        risks = await session.scalars(
            select(Alert).where(
                Alert.point_id == alert.point_id,
                Alert.kind.in_(RISK_KINDS),
                Alert.status != "resolved",
            )
        )
        for risk in risks:
            _attach_risk(alert, list(risk.factors or []), risk.kind)

    async def _attach_text(
        self, session: AsyncSession, alert: Alert, finding: Finding, known: dict[str, str]
    ) -> None:
        """What happened in the record's own words, personal data masked (the full text
        stays with the record, for the roles allowed to read it)."""
        evidence = finding.evidence or {}
        ids = [str(s) for s in evidence.get("source_ids") or []]
        if not ids or evidence.get("cluster"):
            return
        if evidence.get("record_kind") == "petition":
            text_ = await session.scalar(
                select(Petition.summary).where(Petition.petition_id == ids[0])
            )
        else:
            text_ = await session.scalar(
                select(InformantReport.description).where(InformantReport.report_id == ids[0])
            )
        if not text_:
            return
        masked = mask_text(redact(str(text_), known))
        kept = dict(alert.evidence or {})
        reports = list(kept.get("reports") or [])
        occurred = evidence.get("occurred_at")
        reports.append({"source_id": ids[0], "at": occurred, "text": masked})
        kept["reports"] = reports[-10:]
        if "text" not in kept or not kept.get("text"):
            kept["text"] = masked
        alert.evidence = kept

    async def _personal_values(self, session: AsyncSession, finding: Finding) -> dict[str, str]:
        """Personal values behind the finding's sources, each with its stand-in: what a
        careless detector could have copied into a title (interfaces §7)."""
        ids = [str(s) for s in (finding.evidence or {}).get("source_ids") or []][:200]
        if not ids:
            return {}
        known: dict[str, str] = {}
        petitions = await session.execute(
            select(Petition.petitioner_name_enc, Petition.petitioner_phone_enc).where(
                Petition.petition_id.in_(ids)
            )
        )
        for name_enc, phone_enc in petitions:
            name = self.ctx.privacy.decrypt(name_enc)
            phone = self.ctx.privacy.decrypt(phone_enc)
            if name:
                known[name] = name[0] + "某"
            if phone:
                known[phone] = mask_phone(phone) or "***"
        informants = await session.scalars(
            select(InformantReport.informant_id).where(InformantReport.report_id.in_(ids))
        )
        for informant in informants:
            known[informant] = "某信息员"
        return known

    def _take_in(
        self,
        alert: Alert,
        finding: Finding,
        now: datetime,
        known: dict[str, str],
        headline: bool = True,
    ) -> None:
        """Take a finding into its alert: its sources always; its title, score, factors
        and head-count only when it is the `headline` (not less serious than the alert)."""
        evidence = finding.evidence or {}
        sources = list(alert.source_ids or [])
        for source in evidence.get("source_ids") or []:
            if str(source) not in sources:
                sources.append(str(source))
        alert.source_ids = sources
        if headline:
            alert.title = one_line(scrub(redact(finding.title, known), 300))
            alert.score = finding.score
            alert.factors = [
                {**f, "text": scrub(redact(str(f.get("text") or ""), known), 300)}
                for f in evidence.get("factors") or []
                if isinstance(f, dict)
            ]
            people = evidence.get("people_involved")
            if isinstance(people, int):
                alert.people_involved = people
            # What joined events added (their words, the risk behind them) stays.
            kept = {k: v for k, v in (alert.evidence or {}).items() if k in ALERT_OWN_KEYS}
            alert.evidence = evidence_for_alert(evidence, known) | kept
        alert.point_id = finding.point_id or alert.point_id
        alert.last_finding_id = max(alert.last_finding_id or 0, finding.id)
        alert.updated_at = now

    async def _open(
        self,
        session: AsyncSession,
        finding: Finding,
        now: datetime,
        *,
        dedup_key: str | None = None,
    ) -> Alert:
        occurred = _instant((finding.evidence or {}).get("occurred_at"))
        alert = Alert(
            dedup_key=dedup_key or finding.dedup_key,
            entity_key=finding.dedup_key,
            occurred_at=occurred if finding.kind == "event" else None,
            last_event_at=(occurred or now) if finding.kind == "event" else None,
            kind=finding.kind,
            level=finding.level,
            status="triggered",
            region_code=finding.region_code,
            created_at=now,
            tier_reached=NOTHING_REACHED,
            escalation_step=0,
            repeats_done=0,
        )
        known = await self._personal_values(session, finding)
        self._take_in(alert, finding, now, known)
        if finding.kind == "event":
            await self._attach_text(session, alert, finding, known)
        session.add(alert)
        await session.flush()
        record_event(
            session,
            alert,
            "AlertTriggered",
            now,
            reason=f"finding {finding.id} ({finding.detector})",
            details={"finding_id": finding.id, "level": finding.level},
            metrics=self.metrics,
        )
        self.metrics.alerts_opened.labels(alert.level, alert.kind).inc()
        await self.dispatcher.publish(session, alert, "AlertTriggered", now)
        await self.escalator.start_round(session, alert, now)
        await deadlines.open_for_alert(session, alert, self.ctx.settings.handling, now)
        log.info("alert triggered", alert=alert.id, level=alert.level, kind=alert.kind)
        return alert

    # ------------------------------------------------------------------ lifecycle

    async def get(self, alert_id: int) -> Alert | None:
        async with self.ctx.db.session() as session:
            return await session.get(Alert, alert_id)

    async def _locked(self, session: AsyncSession, alert_id: int) -> Alert:
        alert = await session.get(Alert, alert_id, with_for_update=True, populate_existing=True)
        if alert is None:
            raise AlertError(f"no alert {alert_id}", 404)
        return alert

    async def acknowledge(
        self,
        alert_id: int,
        *,
        actor: str,
        reason: str | None = None,
        via: str = "api",
        session: AsyncSession | None = None,
    ) -> Alert:
        """Stop the escalation; idempotent for an alert already acknowledged."""
        if session is None:
            async with self.ctx.db.session() as own:
                alert = await self.acknowledge(
                    alert_id, actor=actor, reason=reason, via=via, session=own
                )
            self.wake()
            return alert
        now = self.ctx.clock.now()
        alert = await self._locked(session, alert_id)
        if alert.status == "resolved":
            raise AlertError(f"alert {alert_id} is already resolved")
        if alert.status == "acknowledged":
            return alert
        alert.status = "acknowledged"
        alert.acknowledged_at = now
        alert.acknowledged_by = actor
        alert.updated_at = now
        record_event(
            session,
            alert,
            "AlertAcknowledged",
            now,
            actor=actor,
            reason=reason,
            details={
                "via": via,
                "actor_region_name": await self._actor_region_name(session, actor),
            },
            metrics=self.metrics,
        )
        self.escalator.on_acknowledged(alert, now)
        await self.dispatcher.publish(session, alert, "AlertAcknowledged", now)
        # The risk alert groups saw the alert: tell them someone has it in hand.
        groups = [
            c
            for tier in reached_tiers(alert)
            for c in await self.dispatcher.contacts.for_tier(session, alert, tier)
            if c.recipient.startswith("group:") and alert.level in c.levels
        ]
        if groups:
            await self.dispatcher.notify_contacts(session, alert, groups, "acknowledged", now)
        log.info("alert acknowledged", alert=alert.id, via=via)
        return alert

    async def resolve(
        self,
        alert_id: int,
        *,
        actor: str,
        reason: str | None = None,
        via: str = "api",
        session: AsyncSession | None = None,
    ) -> Alert:
        if session is None:
            async with self.ctx.db.session() as own:
                alert = await self.resolve(
                    alert_id, actor=actor, reason=reason, via=via, session=own
                )
            self.wake()
            return alert
        alert = await self._locked(session, alert_id)
        if alert.status == "resolved":
            return alert
        await self._resolve(
            session, alert, self.ctx.clock.now(), actor=actor, reason=reason, via=via
        )
        return alert

    async def _resolve(
        self,
        session: AsyncSession,
        alert: Alert,
        now: datetime,
        *,
        actor: str,
        reason: str | None,
        via: str,
        purpose: str = "resolved",
    ) -> None:
        # Tell whoever was messaged; a level IV that only sat in the digest needs no notice.
        told = [t for t in reached_tiers(alert) if not self._digest_only(alert, t) and t != "point"]
        alert.status = "resolved"
        alert.resolved_at = now
        alert.resolved_by = actor
        alert.updated_at = now
        alert.next_escalation_at = None
        record_event(
            session,
            alert,
            "AlertResolved",
            now,
            actor=actor,
            reason=reason,
            details={"via": via},
            metrics=self.metrics,
        )
        await self.dispatcher.publish(session, alert, "AlertResolved", now)
        if told:
            await self.dispatcher.notify(session, alert, told, purpose, now)
        log.info("alert resolved", alert=alert.id, via=via)
        # Nothing more is owed on a closed alert: its deadlines end, and so do the
        # reminders of those it missed.
        closed = await deadlines.cancel_all(session, alert, now, postgres=self.ctx.db.is_postgres)
        await self.resolve_overdue(session, closed, now, reason=f"alert {alert.id} closed")

    async def resolve_overdue(
        self,
        session: AsyncSession,
        ended: list[HandlingDeadline],
        now: datetime,
        *,
        reason: str,
    ) -> None:
        """Resolve the `overdue_handling` alerts of deadlines met or no longer owed."""
        for overdue in await deadlines.overdue_alerts(session, ended):
            if overdue.status == "resolved":
                continue  # resolved earlier in this transaction
            await self._resolve(
                session, overdue, now, actor="system", reason=reason, via="handling"
            )

    def _digest_only(self, alert: Alert, tier: str) -> bool:
        policy = self.policies.for_alert(alert)
        told_by_message = any(tier in s.tiers and not s.digest for s in policy.steps)
        return not told_by_message

    async def _actor_region_name(self, session: AsyncSession, actor: str) -> str | None:
        account = await session.get(Account, actor)
        if account is None:
            return None
        region = await session.get(Region, account.region_code)
        return region.name if region else None

    def wake(self) -> None:
        self.ctx.bus.notify(bus.DELIVERIES)
        self.ctx.bus.notify(bus.ALERTS)

    # ------------------------------------------------------------------ silences

    async def silence(
        self,
        *,
        scope: str,
        target: str,
        duration: timedelta,
        reason: str,
        actor: str,
    ) -> Silence:
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            silence = await create_silence(
                session,
                scope=scope,
                target=target,
                ends_at=now + duration,
                reason=reason,
                actor=actor,
                now=now,
            )
        log.info("silence started", silence=silence.id, scope=scope, target=target)
        self.wake()
        return silence

    async def end_silence(self, silence_id: int, *, actor: str) -> Silence:
        async with self.ctx.db.session() as session:
            silence = await cancel_silence(
                session, silence_id, actor=actor, now=self.ctx.clock.now()
            )
        self.wake()
        return silence

    # ------------------------------------------------------------------ queries

    async def list(
        self,
        *,
        status: str | None = None,
        level: str | None = None,
        region: str | None = None,
        within: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Alert]:
        """Alerts, newest first. `region` is exact; `within` keeps a region and all below
        it (a leader's jurisdiction)."""
        query = select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc())
        if status:
            query = query.where(Alert.status == status)
        if level:
            query = query.where(Alert.level == level)
        if region:
            query = query.where(Alert.region_code == region)
        async with self.ctx.db.session() as session:
            if within:
                codes = await _regions_within(session, within)
                query = query.where(Alert.region_code.in_(codes))
            rows = await session.scalars(query.offset(offset).limit(limit))
            return list(rows.all())

    async def counts(self) -> dict[str, int]:
        async with self.ctx.db.session() as session:
            rows = await session.execute(select(Alert.status, func.count()).group_by(Alert.status))
            found = {status: int(n) for status, n in rows}
        return {s: found.get(s, 0) for s in STATUSES}


async def _regions_within(session: AsyncSession, scope: str) -> list[str]:
    regions = (await session.execute(select(Region.code, Region.parent_code))).all()
    children: dict[str | None, list[str]] = {}
    for code, parent in regions:
        children.setdefault(parent, []).append(code)
    found, todo = [scope], [scope]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _instant(value: Any) -> datetime | None:
    """An ISO 8601 instant from evidence (None if missing or unreadable)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _attach_risk(alert: Alert, factors: list[dict[str, Any]], kind: str) -> None:
    """Show a risk's factors on an event alert (deduplicated, top few)."""
    kept = dict(alert.evidence or {})
    texts = list(kept.get("risk_factors") or [])
    for factor in sorted(factors, key=lambda f: -float(f.get("weight") or 0))[:3]:
        text_ = scrub(str(factor.get("text") or ""), 200)
        if text_ and text_ not in texts:
            texts.append(text_)
    kept["risk_factors"] = texts[:5]
    alert.evidence = kept


def alert_json(alert: Alert) -> dict[str, Any]:
    """The interfaces §4 shape of an alert (`labormon alerts list --json`)."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "level": alert.level,
        "status": alert.status,
        "region_code": alert.region_code,
        "point_id": alert.point_id,
        "title": alert.title,
        "created_at": alert.created_at.isoformat(),
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "source_ids": list(alert.source_ids or []),
    }


__all__ = ["AlertBook", "AlertError", "SilenceError", "alert_json"]
