"""Informants' reliability: the share of an informant's settled reports found true,
shrunk toward a prior so that one lucky or unlucky report does not decide it.

A report is 待核实 (unsettled) until a verify record on its alert (`true`, `partly`,
`false`) or an automatic corroboration settles it. The detectors weigh an informant's
precursors by `weight()` (reliability over the prior: an informant nobody has checked
weighs 1, as before); the console shows the figure to the officers who manage
informants. It never reaches informants or notifications.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from monitor.models import InformantReport, Petition, WageReport

#: How much of "true" each settled verdict counts for.
TRUTH = {"true": 1.0, "corroborated": 1.0, "partly": 0.5, "false": 0.0}
#: 待核实 and the verdicts, as the console names them.
VERIFICATION_NAMES = {
    None: "待核实",
    "true": "属实",
    "partly": "部分属实",
    "false": "不实",
    "corroborated": "已印证",
}


@dataclass(frozen=True)
class Reliability:
    informant_id: str
    reports: int
    settled: int
    true_weight: float
    value: float

    def weight(self, prior: float) -> float:
        return self.value / prior if prior > 0 else 1.0


def shrunk(true_weight: float, settled: int, prior: float, prior_weight: float) -> float:
    """(true + prior x k) / (settled + k): the prior for nobody checked, the plain share
    for many settled reports."""
    total = settled + prior_weight
    return (true_weight + prior * prior_weight) / total if total > 0 else prior


async def informant_reliability(
    conn: Any,
    *,
    prior: float,
    prior_weight: float,
    informant_ids: list[str] | None = None,
    until: datetime | None = None,
) -> dict[str, Reliability]:
    """Per informant; `conn` is a session or a connection; `until` counts only what was
    settled by then (scoring as of a past day)."""
    verdict = InformantReport.verification
    if until is not None:
        verdict = case((InformantReport.verified_at <= until, verdict), else_=None)  # type: ignore[assignment]
    truth = case(
        *((verdict == name, value) for name, value in TRUTH.items()),
        else_=0.0,
    )
    query = select(
        InformantReport.informant_id,
        func.count(),
        func.count(verdict),
        func.sum(case((verdict.is_(None), 0.0), else_=truth)),
    ).group_by(InformantReport.informant_id)
    if informant_ids is not None:
        query = query.where(InformantReport.informant_id.in_(informant_ids))
    found: dict[str, Reliability] = {}
    for informant, reports, settled, true_weight in (await conn.execute(query)).all():
        true_weight = float(true_weight or 0.0)
        found[informant] = Reliability(
            informant,
            int(reports),
            int(settled),
            true_weight,
            shrunk(true_weight, int(settled), prior, prior_weight),
        )
    return found


async def corroborate(
    session: Any, now: datetime, window: timedelta, *, limit: int = 500
) -> list[str]:
    """Settle unsettled reports that something else confirms (idempotent): another
    informant's report, a petition, or a wage report with arrears at the same enterprise
    within `window` of the report. Returns the report ids settled."""
    candidates = list(
        (
            await session.scalars(
                select(InformantReport)
                .where(
                    InformantReport.verification.is_(None),
                    InformantReport.point_id.is_not(None),
                    InformantReport.occurred_at >= now - 2 * window,
                )
                .order_by(InformantReport.occurred_at)
                .limit(limit)
            )
        ).all()
    )
    by_point: dict[str, list[InformantReport]] = {}
    for report in candidates:
        by_point.setdefault(str(report.point_id), []).append(report)
    settled: list[str] = []
    for point, reports in by_point.items():
        low = min(r.occurred_at for r in reports) - window
        high = max(r.occurred_at for r in reports) + window
        others = (
            await session.execute(
                select(InformantReport.informant_id, InformantReport.occurred_at).where(
                    InformantReport.point_id == point,
                    InformantReport.occurred_at >= low,
                    InformantReport.occurred_at <= high,
                )
            )
        ).all()
        confirming: list[datetime] = list(
            await session.scalars(
                select(Petition.received_at).where(
                    Petition.point_id == point,
                    Petition.received_at >= low,
                    Petition.received_at <= high,
                )
            )
        )
        confirming += list(
            await session.scalars(
                select(WageReport.ingested_at).where(
                    WageReport.point_id == point,
                    WageReport.arrears_workers > 0,
                    WageReport.ingested_at >= low,
                    WageReport.ingested_at <= high,
                )
            )
        )
        for report in reports:
            near = any(
                informant != report.informant_id and abs(at - report.occurred_at) <= window
                for informant, at in others
            ) or any(abs(at - report.occurred_at) <= window for at in confirming)
            if near:
                report.verification = "corroborated"
                report.verified_at = now
                settled.append(report.report_id)
    return settled
