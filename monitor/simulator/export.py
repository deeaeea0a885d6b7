"""Turning simulated months into records: the import files, or a timed stream for the demo.

Records use the field names of interfaces §2, so `labormon import DIR` takes the files as
they are, and `MonthBatch` rows become the same dicts that the demo publishes on MQTT.
Text (summaries, descriptions, petitioners' fictitious names) is generated per record
from a random stream keyed by the data set's seed and the record's serial number, so a
record reads the same whether it was written to a file or streamed.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from monitor.regions import DEMO_CITY, catalogue
from monitor.season import from_day_number
from monitor.simulator import names, text
from monitor.simulator.world import (
    CATEGORIES,
    CHANNELS,
    EVENT_TYPES,
    INDUSTRIES,
    PRECURSOR_KINDS,
    REPORT_INCIDENT,
    REPORT_OPINION,
    MonthBatch,
    Simulator,
)

CST = timezone(timedelta(hours=8))
STATUS = ("normal", "reduced", "halted")

POINT_FIELDS = ["point_id", "name", "region_code", "industry", "headcount"]
WAGE_FIELDS = [
    "report_id",
    "point_id",
    "period",
    "headcount",
    "frontline_headcount",
    "avg_frontline_wage",
    "wages_paid_on",
    "arrears_amount",
    "arrears_workers",
    "arrears_months",
    "social_insurance_arrears_months",
    "layoffs_planned",
    "production_status",
    "overtime_hours_avg",
]
PETITION_FIELDS = [
    "petition_id",
    "received_at",
    "channel",
    "region_code",
    "point_id",
    "enterprise_name",
    "category",
    "people_involved",
    "summary",
    "petitioner_name",
    "petitioner_phone",
]
INCIDENT_FIELDS = ["point_id", "occurred_at", "type", "people_involved"]

#: Precursor kinds and the category an informant would tick for them.
PRECURSOR_CATEGORY = {
    "owner_missing": "wage_arrears",
    "collective_talk": "wage_arrears",
    "production": None,
    "wage_delay": "wage_arrears",
    "social_insurance": "social_insurance",
    "layoff": "layoff",
    "benign": None,
}


def _instant(day: int, minute: int) -> datetime:
    d = from_day_number(day)
    return datetime(d.year, d.month, d.day, tzinfo=CST) + timedelta(minutes=int(minute))


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


class Exporter:
    """Renders the batches of one simulator as records."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.points = sim.points
        self.county_codes = [c for c, _ in sim.counties]

    def _rng(self, kind: str, serial: int) -> random.Random:
        return random.Random(f"{self.sim.seed}:{kind}:{serial}")

    # ------------------------------------------------------------------ rows

    def point_rows(self) -> list[dict[str, Any]]:
        p = self.points
        return [
            {
                "point_id": p.ids[i],
                "name": p.names[i],
                "region_code": self.county_codes[p.county[i]],
                "industry": INDUSTRIES[p.industry[i]],
                "headcount": int(p.headcount[i]),
            }
            for i in range(self.sim.n)
        ]

    def wage_rows(self, batch: MonthBatch) -> Iterator[tuple[datetime, dict[str, Any]]]:
        w = batch.wages
        ids = self.points.ids
        for j in range(len(w["point"])):
            point_id = ids[w["point"][j]]
            paid = int(w["paid_day"][j])
            row = {
                "report_id": f"W-{point_id}-{batch.period:%Y%m}",
                "point_id": point_id,
                "period": f"{batch.period:%Y-%m}",
                "headcount": int(w["headcount"][j]),
                "frontline_headcount": int(w["frontline"][j]),
                "avg_frontline_wage": float(w["wage"][j]),
                "wages_paid_on": from_day_number(paid).isoformat() if paid >= 0 else None,
                "arrears_amount": float(w["arrears_amount"][j]),
                "arrears_workers": int(w["arrears_workers"][j]),
                "arrears_months": int(w["arrears_months"][j]),
                "social_insurance_arrears_months": int(w["si_months"][j]),
                "layoffs_planned": int(w["layoffs"][j]),
                "production_status": STATUS[int(w["status"][j])],
                "overtime_hours_avg": float(w["overtime"][j]),
            }
            filed = _instant(int(w["filed_day"][j]), 9 * 60 + (j * 7) % 480)
            yield filed, row

    def petition_rows(self, batch: MonthBatch) -> Iterator[tuple[datetime, dict[str, Any]]]:
        q = batch.petitions
        p = self.points
        for j in range(len(q["point"])):
            serial = int(q["serial"][j])
            rng = self._rng("petition", serial)
            point = int(q["point"][j])
            link = int(q["link"][j])
            category = CATEGORIES[int(q["category"][j])]
            enterprise = None
            if point >= 0 and link == 1:
                enterprise = p.names[point]
            elif point >= 0 and link == 2:
                enterprise = names.short_name(p.names[point])
            people = int(q["people"][j])
            when = _instant(int(q["day"][j]), int(q["minute"][j]))
            summary = text.petition_summary(
                category,
                rng,
                enterprise=enterprise,
                people=people if people > 1 else 0,
                months=int(q["months_owed"][j]),
                escalating=bool(q["escalating"][j]),
            )
            given_name = rng.random() < 0.7
            yield (
                when,
                {
                    "petition_id": f"PT{self.sim.seed}-{serial:07d}",
                    "received_at": _iso(when),
                    "channel": CHANNELS[int(q["channel"][j])],
                    "region_code": self.county_codes[int(q["county"][j])],
                    "point_id": p.ids[point] if point >= 0 and link == 0 else None,
                    "enterprise_name": enterprise,
                    "category": category if bool(q["category_given"][j]) else None,
                    "people_involved": people,
                    "summary": summary,
                    "petitioner_name": names.person_name(rng) if given_name else None,
                    "petitioner_phone": names.phone(rng) if given_name else None,
                },
            )

    def report_rows(self, batch: MonthBatch) -> Iterator[tuple[datetime, dict[str, Any]]]:
        r = batch.reports
        p = self.points
        for j in range(len(r["point"])):
            serial = int(r["serial"][j])
            rng = self._rng("report", serial)
            point = int(r["point"][j])
            kind = int(r["kind"][j])
            people = int(r["people"][j])
            category: str | None
            if kind == REPORT_INCIDENT:
                event_type = EVENT_TYPES[int(r["incident_type"][j])]
                description = text.incident_text(event_type, rng, people)
                category = CATEGORIES[int(r["cause"][j])]
            elif kind == REPORT_OPINION:
                event_type = "online_opinion"
                description = text.opinion_text(rng)
                category = "wage_arrears"
            else:
                name = PRECURSOR_KINDS[kind]
                event_type = "other" if name == "benign" else "precursor"
                description = text.precursor_text(name, rng, months=int(r["months_owed"][j]))
                category = PRECURSOR_CATEGORY[name]
            linked = rng.random()
            county = self.county_codes[int(r["county"][j])]
            when = _instant(int(r["day"][j]), int(r["minute"][j]))
            yield (
                when,
                {
                    "report_id": f"IR{self.sim.seed}-{serial:07d}",
                    "informant_id": f"INF-{county}-{int(r['informant'][j]):03d}",
                    "occurred_at": _iso(when),
                    "region_code": county,
                    "point_id": p.ids[point] if linked < 0.85 else None,
                    "enterprise_name": p.names[point] if linked < 0.95 else None,
                    "event_type": event_type,
                    "category": category,
                    "people_involved": people,
                    "description": description,
                },
            )

    def incident_rows(self, batch: MonthBatch) -> Iterator[dict[str, Any]]:
        inc = batch.incidents
        for j in range(len(inc["point"])):
            yield {
                "point_id": self.points.ids[int(inc["point"][j])],
                "occurred_at": _iso(_instant(int(inc["day"][j]), int(inc["minute"][j]))),
                "type": EVENT_TYPES[int(inc["type"][j])],
                "people_involved": int(inc["people"][j]),
            }

    def stream(self, batch: MonthBatch) -> list[tuple[datetime, str, dict[str, Any]]]:
        """Every record a month produces, with the instant it becomes known, in time
        order (wage reports of the month are filed early the next month)."""
        items: list[tuple[datetime, str, dict[str, Any]]] = []
        items += [(w, "wage", r) for w, r in self.wage_rows(batch)]
        items += [(w, "petition", r) for w, r in self.petition_rows(batch)]
        items += [(w, "report", r) for w, r in self.report_rows(batch)]
        items.sort(key=lambda item: item[0])
        return items

    def days(
        self, batch: MonthBatch
    ) -> Iterator[tuple[date, list[tuple[datetime, str, dict[str, Any]]]]]:
        """The month's records grouped by the local day they become known, in order."""
        day: date | None = None
        bucket: list[tuple[datetime, str, dict[str, Any]]] = []
        for item in self.stream(batch):
            when = item[0].astimezone(CST).date()
            if day is not None and when != day:
                yield day, bucket
                bucket = []
            day = when
            bucket.append(item)
        if day is not None:
            yield day, bucket


@dataclass
class DatasetSummary:
    region: str
    points: int
    months: int
    wage_reports: int
    petitions: int
    informant_reports: int
    incidents: int
    first_period: date
    last_period: date

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in vars(self).items()}


def _cell(value: Any) -> Any:
    return "" if value is None else value


def write_dataset(
    out: Path, *, points: int, months: int, seed: int, start: date, region: str = DEMO_CITY
) -> DatasetSummary:
    """Simulate `region` and write regions.csv, points.csv, wages.csv, petitions.csv,
    reports.jsonl and the ground truth incidents.csv into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    sim = Simulator(points, seed, start, region=region)
    # The region's tree from the GB/T 2260 list, so that an installation of any scope
    # can import the data set as it is.
    with (out / "regions.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["code", "name", "parent_code"])
        for e in catalogue().scope(region):
            writer.writerow([e.code, e.name, e.parent_code or ""])
    exporter = Exporter(sim)
    counts = {"wage": 0, "petition": 0, "report": 0, "incident": 0}
    with (
        (out / "points.csv").open("w", newline="", encoding="utf-8") as points_fh,
        (out / "wages.csv").open("w", newline="", encoding="utf-8") as wages_fh,
        (out / "petitions.csv").open("w", newline="", encoding="utf-8") as petitions_fh,
        (out / "reports.jsonl").open("w", encoding="utf-8") as reports_fh,
        (out / "incidents.csv").open("w", newline="", encoding="utf-8") as incidents_fh,
    ):
        point_writer = csv.DictWriter(points_fh, POINT_FIELDS)
        point_writer.writeheader()
        point_writer.writerows(exporter.point_rows())
        wage_writer = csv.DictWriter(wages_fh, WAGE_FIELDS)
        wage_writer.writeheader()
        petition_writer = csv.DictWriter(petitions_fh, PETITION_FIELDS)
        petition_writer.writeheader()
        incident_writer = csv.DictWriter(incidents_fh, INCIDENT_FIELDS)
        incident_writer.writeheader()
        last = start
        for batch in sim.months(months):
            last = batch.period
            for _, row in exporter.wage_rows(batch):
                wage_writer.writerow({k: _cell(v) for k, v in row.items()})
                counts["wage"] += 1
            for _, row in exporter.petition_rows(batch):
                petition_writer.writerow({k: _cell(v) for k, v in row.items()})
                counts["petition"] += 1
            for _, row in exporter.report_rows(batch):
                clean = {k: v for k, v in row.items() if v is not None}
                reports_fh.write(json.dumps(clean, ensure_ascii=False) + "\n")
                counts["report"] += 1
            for row in exporter.incident_rows(batch):
                incident_writer.writerow(row)
                counts["incident"] += 1
    return DatasetSummary(
        region=region,
        points=points,
        months=months,
        wage_reports=counts["wage"],
        petitions=counts["petition"],
        informant_reports=counts["report"],
        incidents=counts["incident"],
        first_period=sim.start,
        last_period=last,
    )


def default_start(months: int, today: date | None = None) -> date:
    """A start month such that the last simulated month (and the filing of its wage
    reports) lies in the past: the data set can be imported today."""
    today = today or datetime.now(UTC).astimezone(CST).date()
    index = today.year * 12 + today.month - 1 - months - 1
    return date(index // 12, index % 12 + 1, 1)
