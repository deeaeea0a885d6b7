"""The alert budget: what a simulated year costs a duty room, before and after issue 13.

A simulated region (`labormon simulate`'s world, Yiyang by default at 3x the demo's 60
points) is replayed day by day through the real daemon code: the record store, the
detectors' event severity and nightly re-score, the alert book, the escalation loop and
the daily/weekly digests, writing deliveries into the outbox (they are counted, not
sent). The clock is a `FrozenClock` moved through the year; nothing sleeps.

Two behaviours run side by side in the same run, each on a fresh SQLite store:

- **today** (before issue 13): every petition an event, one alert per enterprise, risk
  alerts escalated like events and opened/closed on one scoring, surges from 3
  petitions. The same code with the settings that restore that behaviour
  (`collective_people = 1`, no clusters, an unbounded join window,
  `alerting.risk.escalate_as_events`, hysteresis 1, `surge_min_count = 3`).
- **new**: the defaults.

It prints, per behaviour: notifications and action alerts (events I-III) per county
leader per week, median and p90, outside and inside the Spring Festival season; the same
for the city and province duty officers, and what paged the province; incident recall
(the share of the simulator's ground-truth incidents whose enterprise or county had a
risk or event alert 14 days or more before, and the median lead); risk-alert precision
(the share followed by an incident at that enterprise/county within 90 days). With
`--curve` it also prints the trade-off of the new behaviour over the risk threshold
(`finding_min_level`) and the hysteresis (`risk_open_after`).

    python bench/alert_budget.py                     # 180 points, 12 months
    python bench/alert_budget.py --points 60 --curve
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from detectors.service import DetectorService  # noqa: E402
from monitor.alerting.book import AlertBook  # noqa: E402
from monitor.alerting.digest import DailyDigest  # noqa: E402
from monitor.alerting.service import EscalationLoop  # noqa: E402
from monitor.clock import FrozenClock  # noqa: E402
from monitor.config import load_settings  # noqa: E402
from monitor.daemon import make_context  # noqa: E402
from monitor.models import Alert, Delivery  # noqa: E402
from monitor.records import parse_row  # noqa: E402
from monitor.regions import DEMO_REGIONS  # noqa: E402
from monitor.season import in_lull, in_pre_season  # noqa: E402
from monitor.simulator.export import write_dataset  # noqa: E402
from monitor.store import Submission  # noqa: E402

CHINA = ZoneInfo("Asia/Shanghai")
CITY, PROVINCE = "430900", "430000"
COUNTIES = [code for code, _, parent in DEMO_REGIONS if parent == CITY]
RISK = {"enterprise_risk", "county_risk", "petition_surge"}

TODAY = {
    "detectors": {
        "collective_people": 1,  # every petition an event, by its number of people
        "cluster_petitions": 1_000_000,
        "risk_open_after": 1,
        "risk_close_after": 1,
        "surge_min_count": 3,
    },
    "alerting": {"join_window": timedelta(days=36500), "risk": {"escalate_as_events": True}},
}


@dataclass
class Outcome:
    name: str
    seconds: float
    alerts: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    scorings: int
    extra: dict[str, Any] = field(default_factory=dict)


def load_rows(data: Path) -> dict[date, dict[str, list[dict[str, Any]]]]:
    """The data set's records by the local day they reach the union."""
    by_day: dict[date, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    with (data / "petitions.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            at = datetime.fromisoformat(row["received_at"]).astimezone(CHINA)
            by_day[at.date()]["petition"].append(row)
    with (data / "reports.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            at = datetime.fromisoformat(row["occurred_at"]).astimezone(CHINA)
            by_day[at.date()]["report"].append(row)
    with (data / "wages.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            year, month = (int(p) for p in row["period"].split("-"))
            filed = date(year + month // 12, month % 12 + 1, 10)  # filed on the 10th
            by_day[filed]["wage"].append(row)
    return by_day


def incidents(data: Path) -> list[tuple[str, str, date]]:
    """(point, county, local day) of the simulator's ground-truth incidents."""
    county_of: dict[str, str] = {}
    with (data / "points.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            county_of[row["point_id"]] = row["region_code"]
    out = []
    with (data / "incidents.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            day = datetime.fromisoformat(row["occurred_at"]).astimezone(CHINA).date()
            out.append((row["point_id"], county_of.get(row["point_id"], ""), day))
    return out


async def replay(
    name: str,
    data: Path,
    overrides: dict[str, Any],
    first: date,
    last: date,
    *,
    score_every: int,
) -> Outcome:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/budget.db"
        settings = load_settings(
            None, overrides={"database": {"url": db}, "mqtt": {"client_id": f"budget-{name}"}}
        )
        for section, values in overrides.items():
            target = getattr(settings, section)
            for key, value in values.items():
                if isinstance(value, dict):
                    sub = getattr(target, key)
                    for k, v in value.items():
                        setattr(sub, k, v)
                else:
                    setattr(target, key, value)
        settings.alerting.mqtt_events = False
        settings.smtp.url = "smtp://127.0.0.1:9"  # deliveries are written, never sent
        clock = FrozenClock(datetime(first.year, first.month, first.day, tzinfo=CHINA))
        ctx = make_context(settings, clock=clock)
        await ctx.db.migrate()
        for code in [PROVINCE, CITY, *COUNTIES]:
            await ctx.accounts.add(
                kind="leader",
                account_id=f"duty-{code}",
                region_code=code,
                email=f"duty-{code}@union.example.org",
                role="duty_officer",
            )
        with (data / "points.csv").open(encoding="utf-8") as fh:
            points = [Submission(parse_row("point", r), "file") for r in csv.DictReader(fh)]
        await ctx.store.store("point", points)
        by_day = load_rows(data)
        detectors = DetectorService(ctx, holder=name)
        book = AlertBook(ctx)
        escalation = EscalationLoop(ctx, book)
        digest = DailyDigest(ctx, book)
        scorings = 0
        day = first
        while day <= last:
            # The day's records arrive at noon; detectors and alerting follow at once.
            clock.set(datetime(day.year, day.month, day.day, 12, tzinfo=CHINA))
            batch = by_day.get(day, {})
            for kind in ("wage", "petition", "report"):
                subs = [Submission(parse_row(kind, row), "file") for row in batch.get(kind, [])]
                if subs:
                    await ctx.store.store(kind, subs)
            while await detectors.check_new_records():
                pass
            while await book.process_findings():
                pass
            await escalation.run_once()
            await duty_room(ctx, book, clock.now())
            if (day - first).days % score_every == 0 and day > first + timedelta(days=120):
                clock.set(datetime(day.year, day.month, day.day, 23, 30, tzinfo=CHINA))
                await detectors.rescore()
                scorings += 1
                while await book.process_findings():
                    pass
            for hour in (18, 8):
                at = datetime(day.year, day.month, day.day, hour, 40, tzinfo=CHINA)
                clock.set(at + timedelta(days=1) if hour == 8 else at)
                await escalation.run_once()
                if hour == 8:
                    await digest.run_once()
            day += timedelta(days=1)
        async with ctx.db.session() as session:
            alerts = [
                {
                    "id": a.id,
                    "kind": a.kind,
                    "level": a.level,
                    "region": a.region_code,
                    "point": a.point_id,
                    "created": a.created_at,
                }
                for a in (await session.scalars(select(Alert))).all()
            ]
            deliveries = [
                {
                    "recipient": d.recipient,
                    "alert": d.alert_id,
                    "purpose": d.purpose,
                    "created": d.created_at,
                    "channel": d.channel,
                }
                for d in (await session.scalars(select(Delivery))).all()
                if d.channel == "email"
            ]
        await ctx.close()
    return Outcome(name, time.perf_counter() - started, alerts, deliveries, scorings)


async def duty_room(ctx: Any, book: AlertBook, now: datetime) -> None:
    """The officers: every alert is acknowledged once its first messages are out (at the
    day's tick), and an event is handled and resolved two days after it was raised;
    risk alerts are closed by their findings."""
    async with ctx.db.session() as session:
        open_alerts = (await session.scalars(select(Alert).where(Alert.status != "resolved"))).all()
        todo = [(a.id, a.status, a.kind, a.created_at) for a in open_alerts]
    for alert_id, status, kind, created in todo:
        if kind == "event" and now - created >= timedelta(days=2):
            await book.resolve(alert_id, actor="bench", reason="handled", via="bench")
        elif status == "triggered":
            await book.acknowledge(alert_id, actor="bench", via="bench")


def festival(day: date) -> bool:
    return in_pre_season(day) or in_lull(day)


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return float(ordered[index])


def weekly(
    outcome: Outcome, recipients: list[str], first: date, last: date, action_only: bool
) -> dict[bool, list[float]]:
    """Per (recipient, week): messages (or distinct action alerts), split by season."""
    by_alert = {a["id"]: a for a in outcome.alerts}
    counts: dict[tuple[str, int], set[Any] | int] = {}
    for d in outcome.deliveries:
        if d["recipient"] not in recipients:
            continue
        week = (d["created"].astimezone(CHINA).date() - first).days // 7
        key = (d["recipient"], week)
        if action_only:
            alert = by_alert.get(d["alert"])
            if alert is None or alert["kind"] != "event" or alert["level"] == "IV":
                continue
            bucket = counts.setdefault(key, set())
            assert isinstance(bucket, set)
            bucket.add(d["alert"])
        else:
            counts[key] = int(counts.get(key, 0) or 0) + 1  # type: ignore[call-overload]
    weeks = (last - first).days // 7 + 1
    out: dict[bool, list[float]] = {False: [], True: []}
    for recipient in recipients:
        for week in range(weeks):
            value = counts.get((recipient, week), 0)
            n = len(value) if isinstance(value, set) else int(value)
            monday = first + timedelta(days=7 * week)
            out[festival(monday + timedelta(days=3))].append(float(n))
    return out


def recall(
    outcome: Outcome, truth: list[tuple[str, str, date]], since: date
) -> tuple[float, float, float]:
    """(recall at 14 days, median lead in days, risk precision at 90 days)."""
    by_point: dict[str, list[date]] = defaultdict(list)
    by_county: dict[str, list[date]] = defaultdict(list)
    for a in outcome.alerts:
        day = a["created"].astimezone(CHINA).date()
        if a["point"]:
            by_point[a["point"]].append(day)
        if a["kind"] == "county_risk" or not a["point"]:
            by_county[a["region"]].append(day)
    hits, leads = 0, []
    counted = [(p, c, d) for p, c, d in truth if d >= since]
    for point, county, day in counted:
        before = [
            x
            for x in by_point.get(point, []) + by_county.get(county, [])
            if day - timedelta(days=365) <= x <= day - timedelta(days=14)
        ]
        if before:
            hits += 1
            leads.append((day - min(before)).days)
    risk = [a for a in outcome.alerts if a["kind"] in RISK]
    followed = 0
    for a in risk:
        start = a["created"].astimezone(CHINA).date()
        if any(
            start <= d <= start + timedelta(days=90)
            and (p == a["point"] or (a["kind"] == "county_risk" and c == a["region"]))
            for p, c, d in truth
        ):
            followed += 1
    return (
        hits / len(counted) if counted else 0.0,
        statistics.median(leads) if leads else 0.0,
        followed / len(risk) if risk else 0.0,
    )


def province_pages(outcome: Outcome) -> dict[str, int]:
    by_alert = {a["id"]: a for a in outcome.alerts}
    out: dict[str, int] = defaultdict(int)
    for d in outcome.deliveries:
        if d["recipient"] != f"duty-{PROVINCE}" or d["purpose"] == "digest":
            continue
        alert = by_alert.get(d["alert"])
        if alert is None:
            continue
        label = ("event " if alert["kind"] == "event" else "risk ") + alert["level"]
        out[label] += 1
    return dict(sorted(out.items()))


def report(
    outcomes: list[Outcome],
    truth: list[tuple[str, str, date]],
    first: date,
    last: date,
    since: date,
) -> None:
    county = [f"duty-{c}" for c in COUNTIES]
    rows: list[tuple[str, list[str]]] = []

    def add(label: str, values: list[str]) -> None:
        rows.append((label, values))

    for title, recipients, action in (
        ("county leader: messages/week", county, False),
        ("county leader: action alerts (events I-III)/week", county, True),
        ("city duty officer: messages/week", [f"duty-{CITY}"], False),
        ("province duty officer: messages/week", [f"duty-{PROVINCE}"], False),
    ):
        for season in (False, True):
            cells = []
            for o in outcomes:
                values = weekly(o, recipients, first, last, action)[season]
                cells.append(
                    f"{statistics.median(values) if values else 0:.0f} / {pct(values, 0.9):.0f}"
                )
            add(
                f"{title}, {'festival season' if season else 'outside season'} (median / p90)",
                cells,
            )
    cells = []
    for o in outcomes:
        r, lead, precision = recall(o, truth, since)
        cells.append(f"{r:.2f} / {lead:.0f} d / {precision:.2f}")
    add("incident recall at 14 d / median lead / risk precision at 90 d", cells)
    add(
        "alerts opened (events I-III / IV / risk)",
        [
            f"{sum(1 for a in o.alerts if a['kind'] == 'event' and a['level'] != 'IV')}"
            f" / {sum(1 for a in o.alerts if a['kind'] == 'event' and a['level'] == 'IV')}"
            f" / {sum(1 for a in o.alerts if a['kind'] in RISK)}"
            for o in outcomes
        ],
    )
    add(
        "province paged by (kind level: messages)",
        [json.dumps(province_pages(o), ensure_ascii=False) for o in outcomes],
    )
    add("replay seconds (scorings)", [f"{o.seconds:.0f} ({o.scorings})" for o in outcomes])
    width = max(len(label) for label, _ in rows)
    print(f"{'':{width}}  " + "  ".join(f"{o.name:>28}" for o in outcomes))
    for label, values in rows:
        print(f"{label:{width}}  " + "  ".join(f"{v:>28}" for v in values))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=180)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--score-every", type=int, default=1, help="days between scorings")
    parser.add_argument("--curve", action="store_true", help="also the trade-off curve")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        # Four months of history first: the detectors need a baseline.
        months = args.months + 4
        start = date(2024, 9, 1) - timedelta(days=0)
        summary = write_dataset(
            data, points=args.points, months=months, seed=args.seed, start=date(2024, 5, 1)
        )
        first = date(2024, 5, 1)
        last = first + timedelta(days=30 * months) - timedelta(days=1)
        since = first + timedelta(days=120)
        truth = incidents(data)
        print(
            f"# {args.points} points, {months} months ({summary}), year measured from {since}",
            flush=True,
        )
        del start
        outcomes = [
            await replay("today", data, TODAY, first, last, score_every=args.score_every),
            await replay("new", data, {}, first, last, score_every=args.score_every),
        ]
        report(outcomes, truth, since, last, since)
        if args.curve:
            print("\n# trade-off: new behaviour over the risk threshold and the hysteresis")
            curve = []
            for level in ("IV", "III", "II"):
                for n in (1, 2, 3, 5):
                    o = await replay(
                        f"min {level}, N={n}",
                        data,
                        {
                            "detectors": {
                                "finding_min_level": level,
                                "risk_open_after": n,
                                "risk_close_after": n,
                            }
                        },
                        first,
                        last,
                        score_every=args.score_every,
                    )
                    county = [f"duty-{c}" for c in COUNTIES]
                    weeks = weekly(o, county, since, last, False)[False]
                    r, lead, precision = recall(o, truth, since)
                    curve.append(
                        (
                            level,
                            n,
                            statistics.median(weeks) if weeks else 0,
                            pct(weeks, 0.9),
                            r,
                            lead,
                            precision,
                        )
                    )
            print("min level  N  county msgs/week median  p90  recall  lead(d)  precision")
            for level, n, med, p90, r, lead, precision in curve:
                print(
                    f"{level:>9}  {n}  {med:>23.0f}  {p90:>3.0f}  {r:>6.2f}  {lead:>7.0f}"
                    f"  {precision:>9.2f}"
                )


if __name__ == "__main__":
    asyncio.run(main())
