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
