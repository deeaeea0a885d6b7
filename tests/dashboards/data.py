"""A simulated year for the analyst views and boards: the volume generator's points,
wage reports, petitions and informant reports (imported as files, like `labormon
import`), plus risk scores, alerts and their audit log written directly, since the
detectors and the alerting stage are built elsewhere.

Everything is deterministic for the seed, so SQLite and PostgreSQL hold the same rows.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.gen_dataset import COUNTIES, generate
from ingest.files import FileImporter
from monitor.clock import FrozenClock
from monitor.config import load_settings
from monitor.daemon import make_context
from monitor.models import Alert, AlertEvent, HandlingRecord, RiskScore

SECRET = "dashboards-test-secret-0123456789abcdef"
#: The simulated year, in China time: March 2024 to February 2025, so it holds the
#: run-up to the 2025 Spring Festival (January 29th).
START = date(2024, 3, 1)
MONTHS = 12
POINTS = 1000
SEED = 11
#: Instants bounding the year (China midnight), and "now" while loading.
YEAR_FROM = datetime(2024, 2, 29, 16, 0, tzinfo=UTC)
YEAR_TO = datetime(2025, 2, 28, 16, 0, tzinfo=UTC)
LOADED_AT = datetime(2025, 3, 2, 2, 0, tzinfo=UTC)

LEVELS = ("I", "II", "III", "IV")
#: Minutes after creation at which an unacknowledged alert moves up a tier (interfaces §5).
ESCALATIONS = {"I": [], "II": [30], "III": [120, 360], "IV": [24 * 60]}


@dataclass(frozen=True)
class LoadedYear:
    files: dict[str, int]
    risk_scores: int
    alerts: int
    alert_events: int


def make_files(directory: Path) -> dict[str, int]:
    counts = generate(POINTS, MONTHS, directory, seed=SEED, start=START)
    counts["wages"] -= _thin_out_wage_reports(directory / "wages.csv")
    return counts


def _thin_out_wage_reports(path: Path) -> int:
    """The generator has every point report every month. Real ones do not: some fall
    silent (the precursor the wage board shows), some join during the year. Returns the
    number of reports removed."""
    rng = random.Random(SEED + 2)
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    fieldnames = list(rows[0])
    silent_from: dict[str, str] = {}
    joined_in: dict[str, str] = {}
    for point_id in sorted({r["point_id"] for r in rows}):
        draw = rng.random()
        month = f"{_month_start(rng.randrange(2, MONTHS)):%Y-%m}"
        if draw < 0.06:
            silent_from[point_id] = month
        elif draw < 0.10:
            joined_in[point_id] = month
    kept = [
        r
        for r in rows
        if r["period"] < silent_from.get(r["point_id"], "9999")
        and r["period"] >= joined_in.get(r["point_id"], "0000")
    ]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(kept)
    return len(rows) - len(kept)


async def load_year(db_url: str, files: Path, settings_dir: Path) -> LoadedYear:
    settings = load_settings(
        overrides={
            "database": {"url": db_url},
            "security": {"secret_key": SECRET, "secret_key_file": str(settings_dir / "k")},
        }
    )
    ctx = make_context(settings, clock=FrozenClock(LOADED_AT))
    try:
        importer = FileImporter(ctx.store, zone=settings.organisation.zone)
        report = await importer.run(files)
        if report.errors:
            raise AssertionError(f"the generated files did not import: {report.errors[:3]}")
        scores = risk_score_rows(point_counties(files))
        alerts, events = alert_rows()
        async with ctx.db.connect() as conn:
            for start in range(0, len(scores), 2000):
                await conn.execute(insert(RiskScore), scores[start : start + 2000])
            await conn.execute(insert(Alert), alerts)
            await conn.execute(insert(AlertEvent), events)
            await conn.execute(insert(HandlingRecord), handling_rows(alerts))
        return LoadedYear(
            files={k: v.stored for k, v in report.kinds.items()},
            risk_scores=len(scores),
            alerts=len(alerts),
            alert_events=len(events),
        )
    finally:
        await ctx.close()


def _month_start(index: int) -> date:
    months = START.year * 12 + START.month - 1 + index
    return date(months // 12, months % 12 + 1, 1)


def _level(score: float) -> str | None:
    for cut, level in ((85, "I"), (70, "II"), (50, "III"), (25, "IV")):
        if score >= cut:
            return level
    return None


FACTORS = [
    ("wage_delay", "工资发放日期连续推迟"),
    ("arrears", "申报拖欠工资"),
    ("social_insurance", "社保断缴"),
    ("report_missing", "月报未按时报送"),
    ("petitions", "近期信访增多"),
    ("informant", "信息员报告异常"),
]


def point_counties(files: Path) -> dict[str, str]:
    with (files / "points.csv").open(encoding="utf-8") as fh:
        return {row["point_id"]: row["region_code"] for row in csv.DictReader(fh)}


def risk_score_rows(counties: dict[str, str]) -> list[dict[str, Any]]:
    """A monthly score per point (history), plus county scores the point view must skip."""
    rng = random.Random(SEED)
    rows: list[dict[str, Any]] = []
    for point_id, county in sorted(counties.items()):
        base = rng.uniform(0, 60)
        for m in range(MONTHS):
            scored_at = datetime.combine(_month_start(m), datetime.min.time(), UTC) + timedelta(
                hours=18 + rng.random()
            )
            score = round(min(100.0, max(0.0, base + rng.gauss(0, 12))), 1)
            picked = rng.sample(FACTORS, rng.randint(0, 4))
            # Weights deliberately not stored in order: the view must sort them.
            factors = [{"code": c, "text": t, "weight": round(rng.random(), 2)} for c, t in picked]
            rows.append(
                {
                    "entity_type": "point",
                    "entity_id": point_id,
                    "region_code": county,
                    "score": score,
                    "level": _level(score),
                    "factors": factors,
                    "as_of": scored_at - timedelta(hours=2),
                    "scored_at": scored_at,
                }
            )
    for county in COUNTIES:
        rows.append(
            {
                "entity_type": "county",
                "entity_id": county,
                "region_code": county,
                "score": 99.0,
                "level": "I",
                "factors": [],
                "as_of": YEAR_TO - timedelta(days=1),
                "scored_at": YEAR_TO - timedelta(hours=1),
            }
        )
    return rows


def alert_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """About 500 alerts over the year with realistic handling times and an audit log."""
    rng = random.Random(SEED + 1)
    alerts: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    span = (YEAR_TO - YEAR_FROM).total_seconds()
    for alert_id in range(1, 501):
        created = YEAR_FROM + timedelta(seconds=rng.uniform(0, span))
        created = created.replace(microsecond=rng.randrange(1_000_000))
        level = rng.choices(LEVELS, weights=(4, 12, 30, 54))[0]
        county = rng.choice(COUNTIES)
        tier = 1 if level == "I" else (2 if level == "II" else 3)
        audit = [(created, "AlertTriggered", "system")]
        # Most alerts are acknowledged; the slower ones escalate first.
        ack_after: timedelta | None = None
        if rng.random() < 0.9:
            typical = {"I": 10, "II": 25, "III": 100, "IV": 900}[level]
            ack_after = timedelta(minutes=rng.lognormvariate(0, 0.8) * typical, microseconds=7)
        for minutes in ESCALATIONS[level]:
            if ack_after is None or ack_after > timedelta(minutes=minutes):
                tier -= 1
                audit.append((created + timedelta(minutes=minutes), "AlertEscalated", "system"))
        acknowledged = created + ack_after if ack_after else None
        if acknowledged:
            audit.append((acknowledged, "AlertAcknowledged", f"leader-{county}"))
        resolved = None
        if acknowledged and rng.random() < 0.8:
            resolved = acknowledged + timedelta(hours=rng.uniform(1, 240))
            audit.append((resolved, "AlertResolved", f"leader-{county}"))
        if resolved and resolved > LOADED_AT:
            resolved = None
            audit.pop()
        status = "resolved" if resolved else ("acknowledged" if acknowledged else "triggered")
        alerts.append(
            {
                "id": alert_id,
                "dedup_key": f"point:P{alert_id:06d}:enterprise_risk:{alert_id}",
                "kind": rng.choice(["event", "enterprise_risk", "petition_surge"]),
                "level": level,
                "status": status,
                "region_code": county,
                "point_id": f"P{alert_id:06d}",
                "title": f"益阳第{alert_id}号企业 劳动关系风险",
                "people_involved": rng.choice([None, 3, 12, 40, 120]),
                "score": None,
                "created_at": created,
                "updated_at": max(at for at, _, _ in audit),
                "acknowledged_at": acknowledged,
                "acknowledged_by": f"leader-{county}" if acknowledged else None,
                "resolved_at": resolved,
                "resolved_by": f"leader-{county}" if resolved else None,
                "tier_reached": tier,
                "escalation_step": 0,
                "repeats_done": 0,
            }
        )
        events.extend(
            {"alert_id": alert_id, "at": at, "event": name, "actor": actor}
            for at, name, actor in audit
        )
    return alerts, events


def handling_rows(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Verify records on the acknowledged event alerts, final reports on the resolved
    ones (a random stream of their own: the alerts stay as they were)."""
    rng = random.Random(SEED + 2)
    rows: list[dict[str, Any]] = []
    for alert in alerts:
        if alert["kind"] != "event" or alert["acknowledged_at"] is None:
            continue
        verified = alert["acknowledged_at"] + timedelta(minutes=rng.uniform(10, 180))
        if verified > LOADED_AT:
            continue
        rows.append(
            {
                "alert_id": alert["id"],
                "kind": "verify",
                "author_id": alert["acknowledged_by"],
                "created_at": verified,
                "text": "已核实",
                "fields": {"verdict": "true"},
                "via": "console",
            }
        )
        if alert["resolved_at"] is not None and alert["resolved_at"] > verified:
            rows.append(
                {
                    "alert_id": alert["id"],
                    "kind": "final",
                    "author_id": alert["resolved_by"],
                    "created_at": alert["resolved_at"],
                    "text": "已办结",
                    "fields": {
                        "wages_recovered": rng.randrange(10_000, 900_000),
                        "workers_paid": rng.randrange(5, 120),
                        "resolution": "negotiated",
                    },
                    "via": "console",
                }
            )
    return rows
