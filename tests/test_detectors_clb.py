"""Real incidents: the 2011-2014 strike map replayed as informant reports.

Every record must get a level consistent with its participants band and its actions,
through the same path as a live report (store -> DetectorService -> findings), and the
petition-surge detector must flag the pre-Spring-Festival peaks of the series.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from detectors.service import DetectorService
from detectors.surge import SurgePolicy, evaluate, series
from monitor.context import Context
from monitor.models import Finding
from monitor.records import parse_obj
from monitor.season import day_number, from_day_number, in_pre_season, spring_festival
from monitor.simulator.clb import PROVINCE_NAMES, replay_records
from monitor.store import Submission

CLB = Path(__file__).resolve().parent / "data" / "clb_strike_map_2011_2014.csv"

#: What the test itself reads from the published fields (independent of the detector's
#: regular expressions): actions that make an event 特别重大 whatever the number.
LEVEL_I_ACTIONS = (
    "block road",
    "blocking road",
    "blocking the road",
    "blocking the traffic",
    "block roads",
    "jump off",
    "jump from",
    "leap off",
    "suicide",
    "self-immolat",
    "跳楼",
    "自杀",
    "塔吊",
    "打砸",
    "围堵",
)
BAND_LEVELS = {
    "1-100 Persons": {"II", "III", "IV"},
    "100-1000 Persons": {"I"},
    "1000-10000 Persons": {"I"},
    "10000+ Persons": {"I"},
}


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return list(replay_records(CLB))


def allowed_levels(record: dict) -> set[str]:
    text = f"{record['actions'] or ''} {record['description']}".lower()
    if any(word in text for word in LEVEL_I_ACTIONS):
        return {"I"}
    band = record["participants_band"]
    if band in BAND_LEVELS:
        return BAND_LEVELS[band]
    return {"I", "II", "III", "IV"}  # no band published: any level, but one


async def test_every_replayed_record_gets_a_consistent_level(
    ctx: Context, records: list[dict]
) -> None:
    codes = sorted({r["region_code"] for r in records})
    regions = [
        Submission(parse_obj("region", {"code": c, "name": PROVINCE_NAMES[c]}), "file")
        for c in codes
        if c != "430000"
    ]
    assert not (await ctx.store.store("region", regions)).rejected
    ctx.clock.set(ctx.clock.now().replace(year=2015))  # type: ignore[attr-defined]
    result = await ctx.store.store(
        "report", [Submission(parse_obj("report", r), "file") for r in records]
    )
    assert not result.rejected
    assert len(result.stored) == len(records) == 2569
    service = DetectorService(ctx)
    while await service.check_new_records():
        pass
    async with ctx.db.session() as s:
        findings = (await s.scalars(select(Finding).where(Finding.kind == "event"))).all()
    by_record = {f.evidence["source_ids"][0]: f for f in findings}
    assert len(by_record) == len(findings) == len(records)  # every record is an event
    wrong = []
    for record in records:
        finding = by_record[record["report_id"]]
        if finding.level not in allowed_levels(record):
            wrong.append((record["report_id"], record["participants_band"], finding.level))
        assert finding.evidence["people_involved"] == record["people_involved"]
    assert wrong == []
    levels = {f.level for f in findings}
    assert levels == {"I", "II", "III", "IV"}
    # Road blocking is level I whatever the number: the map has small ones too.
    small_blocks = [
        r for r in records if r["event_type"] == "road_blocking" and r["people_involved"] < 100
    ]
    assert small_blocks
    assert all(by_record[r["report_id"]].level == "I" for r in small_blocks)


def test_surge_detector_flags_the_pre_festival_peaks(records: list[dict]) -> None:
    days = np.array([day_number(date.fromisoformat(r["occurred_at"][:10])) for r in records])
    people = np.array([r["people_involved"] for r in records])
    first = int(days.min())
    total = int(days.max()) - first + 1
    policy = SurgePolicy()
    counts, ppl, sq = series(np.zeros(len(days), int), days, people, 1, first, total, policy)
    flagged: list[date] = []
    weeks = 0
    for end in range(policy.window + policy.baseline, total + 1, 7):
        weeks += 1
        result = evaluate(counts[:, :end], ppl[:, :end], first, policy, people_sq=sq[:, :end])
        if result.surge[0]:
            flagged.append(from_day_number(first + end - 1))
    # Each festival with a year of history and its whole season inside the data:
    for year in (2012, 2013, 2014):
        festival = spring_festival(year)
        season = [d for d in flagged if in_pre_season(d) and d < festival and d.year >= year - 1]
        assert season, f"no surge flagged before the {year} festival"
    # ... while most weeks are quiet: a surge detector that always fires says nothing.
    assert len(flagged) < 0.2 * weeks
