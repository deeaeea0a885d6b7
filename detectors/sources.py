"""Panels from a data set directory (the import files), without a database.

The rows are validated with the same models as `labormon import` and petitions without
a category get one from the same classifier as the store, so a directory read here
and the same directory imported and loaded from the database give the same panel
(a test checks it). Used by tests, benchmarks and the backtest's fast path.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from detectors.panel import Panel, PanelBuilder
from monitor.clock import local_date
from monitor.records import parse_json, parse_row
from monitor.season import day_number


def _csv(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh)


def _valid(kind: str, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        record = parse_row(kind, row)
        yield record.model_dump() | {"source": "file"}


def panel_from_directory(directory: Path, *, with_truth: bool = True) -> Panel:
    from detectors.category import infer_category

    builder = PanelBuilder()
    builder.add_points(_valid("point", _csv(directory / "points.csv")))
    builder.add_wages(_valid("wage", _csv(directory / "wages.csv")))
    builder.add_petitions(_valid("petition", _csv(directory / "petitions.csv")), infer_category)
    reports = directory / "reports.jsonl"
    builder.add_reports(
        parse_json("report", line).model_dump() | {"source": "file"}
        for line in reports.read_text(encoding="utf-8").splitlines()
        if line.strip()
    )
    panel = builder.build()
    if with_truth and (directory / "incidents.csv").is_file():
        attach_truth(panel, read_incidents(directory / "incidents.csv"))
    return panel


def read_incidents(path: Path) -> list[tuple[str, datetime]]:
    """Ground truth: (point_id, occurred_at) per incident."""
    return [(row["point_id"], datetime.fromisoformat(row["occurred_at"])) for row in _csv(path)]


def attach_truth(panel: Panel, incidents: list[tuple[str, datetime]]) -> None:
    index = {pid: i for i, pid in enumerate(panel.point_ids)}
    known = [(index[pid], day_number(local_date(at))) for pid, at in incidents if pid in index]
    panel.truth_point = np.array([k for k, _ in known], dtype=np.int64)
    panel.truth_day = np.array([d for _, d in known], dtype=np.int64)


def panel_from_simulation(sim: Any, months: int) -> Panel:
    """A panel straight from the simulator's arrays, without writing or parsing files
    and without text (categories as simulated, text flags from what the informant saw).
    For benchmarks of 100,000 points; accuracy figures use the files (`labormon
    evaluate`), whose text goes through the classifier and the text rules."""
    from detectors.panel import (
        DEADLINE_DAYS,
        EVENT_CODES,
        FLAG_COLLECTIVE_TALK,
        FLAG_OWNER_GONE,
        SOURCE_PETITION,
        SOURCE_REPORT,
        month_index,
        period_end_day,
    )
    from monitor.simulator.world import PRECURSOR_KINDS, REPORT_INCIDENT, REPORT_OPINION

    p = sim.points
    n = sim.n
    shape = (n, months)
    wage = {
        k: np.full(shape, np.nan)
        for k in (
            "headcount",
            "frontline",
            "wage",
            "arrears_amount",
            "arrears_workers",
            "arrears_months",
            "si_months",
            "layoffs",
            "overtime",
        )
    }
    status = np.full(shape, -1, dtype=np.int8)
    paid_day = np.full(shape, -1, dtype=np.int64)
    visible = np.full(shape, np.iinfo(np.int64).max, dtype=np.int64)
    ev: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "day",
            "point",
            "county",
            "source",
            "type",
            "category",
            "people",
            "flags",
            "months",
        )
    }
    truth_point, truth_day = [], []
    first = None
    owner = PRECURSOR_KINDS.index("owner_missing")
    talk = PRECURSOR_KINDS.index("collective_talk")
    # The simulator's incident types (gathering, stoppage, road blocking, extreme act,
    # collective petition) as informant-report event codes.
    incident_code = np.array(
        [EVENT_CODES[t] for t in ("gathering", "work_stoppage", "road_blocking", "extreme_act")]
        + [EVENT_CODES["petition"]]
    )
    for batch in sim.months(months):
        m = batch.index
        first = first or batch.period
        w = batch.wages
        rows = w["point"]
        for key, column in (
            ("headcount", "headcount"),
            ("frontline", "frontline"),
            ("wage", "wage"),
            ("arrears_amount", "arrears_amount"),
            ("arrears_workers", "arrears_workers"),
            ("arrears_months", "arrears_months"),
            ("si_months", "si_months"),
            ("layoffs", "layoffs"),
            ("overtime", "overtime"),
        ):
            wage[key][rows, m] = w[column]
        status[rows, m] = w["status"]
        paid_day[rows, m] = w["paid_day"]
        visible[rows, m] = period_end_day(month_index(batch.period)) + DEADLINE_DAYS
        q = batch.petitions
        linked = np.where(np.isin(q["link"], (0, 1)), q["point"], -1)
        ev["day"].append(q["day"])
        ev["point"].append(linked)
        ev["county"].append(q["county"])
        ev["source"].append(np.full(len(linked), SOURCE_PETITION))
        ev["type"].append(q["channel"])
        ev["category"].append(q["category"])
        ev["people"].append(q["people"])
        ev["flags"].append(np.where(q["escalating"], FLAG_COLLECTIVE_TALK, 0))
        ev["months"].append(np.where(q["category"] == 0, q["months_owed"], 0))
        r = batch.reports
        kind = r["kind"]
        etype = np.where(
            kind == REPORT_INCIDENT,
            incident_code[np.maximum(r["incident_type"], 0)],
            np.where(kind == REPORT_OPINION, 6, np.where(kind == len(PRECURSOR_KINDS) - 1, 7, 0)),
        )
        ev["day"].append(r["day"])
        ev["point"].append(r["point"])
        ev["county"].append(r["county"])
        ev["source"].append(np.full(len(kind), SOURCE_REPORT))
        ev["type"].append(etype)
        ev["category"].append(np.where(kind == REPORT_INCIDENT, r["cause"], 0))
        ev["people"].append(r["people"])
        ev["flags"].append(
            np.where(kind == owner, FLAG_OWNER_GONE, 0)
            | np.where(kind == talk, FLAG_COLLECTIVE_TALK, 0)
        )
        ev["months"].append(
            np.where(kind == PRECURSOR_KINDS.index("wage_delay"), r["months_owed"], 0)
        )
        truth_point.append(batch.incidents["point"])
        truth_day.append(batch.incidents["day"])
    cat = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in ev.items()}
    order = np.argsort(cat["day"], kind="stable")
    if first is None:
        raise ValueError("months must be at least 1")
    return Panel(
        point_ids=list(p.ids),
        names=list(p.names),
        county=p.county.astype(np.int64),
        counties=[c for c, _ in sim.counties],
        industry=p.industry.astype(np.int64),
        headcount=p.headcount.astype(float),
        registered_day=np.zeros(n, dtype=np.int64),
        month0=month_index(first),
        months=months,
        wage=wage,
        status=status,
        paid_day=paid_day,
        visible_day=visible,
        report_ids=np.full(shape, None, dtype=object),
        ev_day=cat["day"][order].astype(np.int64),
        ev_visible=cat["day"][order].astype(np.int64),
        ev_point=cat["point"][order].astype(np.int64),
        ev_county=cat["county"][order].astype(np.int64),
        ev_source=cat["source"][order].astype(np.int8),
        ev_type=cat["type"][order].astype(np.int8),
        ev_category=cat["category"][order].astype(np.int8),
        ev_people=cat["people"][order].astype(np.int64),
        ev_flags=cat["flags"][order].astype(np.int8),
        ev_months=cat["months"][order].astype(np.int8),
        ev_ids=np.array([f"E{k}" for k in range(len(order))], dtype=object),
        truth_point=np.concatenate(truth_point).astype(np.int64),
        truth_day=np.concatenate(truth_day).astype(np.int64),
    )
