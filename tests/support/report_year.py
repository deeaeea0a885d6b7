"""A simulated year (December 2023 to February 2025) for the monthly report tests.

Deterministic for a seed. It holds what the report must get right: a year boundary
(December 2024 -> January 2025, and January 2024 against an empty January 2023), a
month without any petition (July 2024), the Spring Festival peak, collective
petitions (exactly 4, exactly 5 and large ones), all four channels, every county and
the city's own office, petitions without a monitoring point (with and without an
enterprise name), inferred categories, petitions received at local midnight (stated
in UTC and in China time), petitions gone over the county's head, closed cases,
alerts acknowledged at every tier and by an operator, and risk scores re-scored,
scored after the month's end and of counties (which the report must ignore).

Records go in through the real write path (`RecordStore`); alerts, risk scores and
accounts, which later stages write, are inserted as rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from monitor.clock import add_months
from monitor.context import Context
from monitor.models import Alert, RiskScore
from monitor.records import parse_row
from monitor.store import Submission

CST = ZoneInfo("Asia/Shanghai")
FIRST_MONTH = date(2023, 12, 1)
LAST_MONTH = date(2025, 2, 1)
EMPTY_MONTH = date(2024, 7, 1)
#: "Now" for the loader: after the last month, so every record is in the past.
NOW = datetime(2025, 3, 10, 10, 0, tzinfo=CST).astimezone(UTC)

COUNTIES = ["430902", "430903", "430921", "430922", "430923", "430981"]
COUNTY_WEIGHTS = [14, 26, 12, 16, 10, 18]
CITY_OFFICE = "430900"  # petitions filed at the city's own office

#: Petitions per month: a Spring Festival peak (10 Feb 2024, 29 Jan 2025), a dip after it.
VOLUME = {
    date(2023, 12, 1): 120,
    date(2024, 1, 1): 190,
    date(2024, 2, 1): 150,
    date(2024, 3, 1): 80,
    date(2024, 4, 1): 75,
    date(2024, 5, 1): 82,
    date(2024, 6, 1): 90,
    date(2024, 7, 1): 0,
    date(2024, 8, 1): 70,
    date(2024, 9, 1): 85,
    date(2024, 10, 1): 88,
    date(2024, 11, 1): 110,
    date(2024, 12, 1): 150,
    date(2025, 1, 1): 230,
    date(2025, 2, 1): 120,
}

CHANNELS = ["hotline_12351", "online", "visit", "letter"]
CHANNEL_WEIGHTS = [36, 24, 26, 14]
CATEGORIES = ["wage_arrears", "social_insurance", "layoff", "contract", "injury", "other"]
CATEGORY_WEIGHTS = [48, 14, 10, 12, 9, 7]
SUMMARIES = {
    "wage_arrears": "{firm}拖欠{n}名工人工资{m}个月，多次讨薪未果",
    "social_insurance": "单位断缴社保{m}个月，职工要求补缴养老保险",
    "layoff": "企业裁员{n}人，未依法支付经济补偿",
    "contract": "公司不签劳动合同，强制加班不付加班费",
    "injury": "工人在车间受伤，企业拒绝申报工伤",
    "other": "反映单位食堂和宿舍管理问题",
}
INDUSTRIES = ["construction"] * 4 + ["manufacturing"] * 3 + ["services", "logistics", "mining"]
FIRM_WORDS = [
    "资江",
    "银城",
    "梓山",
    "桃花江",
    "洞庭",
    "会龙山",
    "碧云峰",
    "茈湖口",
    "羞女峰",
    "志溪",
]
FIRM_TYPES = {
    "construction": "建筑工程有限公司",
    "manufacturing": "机械制造有限公司",
    "services": "物业服务有限公司",
    "logistics": "物流运输有限公司",
    "mining": "矿业有限公司",
}
#: Enterprises named by petitions that are no monitoring point (spelt with stray spaces
#: by the petition offices: the report must count them as one enterprise).
FREE_NAMES = ["益阳宏达劳务有限公司", "安化金鑫茶业有限公司", "沅江顺发渔业合作社"]

#: Personal data planted in every petition: the report, CSV and email must not show it.
PETITIONER_NAMES = ["张三丰", "李秀英", "王建国", "赵铁柱"]
PETITIONER_PHONES = ["13912345678", "13787654321", "18673700001", "15907371234"]

LEADERS = [
    # id, region, email, revoked
    ("prov-lead", "430000", "prov-lead@hn-union.example", False),
    ("city-lead", "430900", "city-lead@yy-union.example", False),
    ("city-duty", "430900", "CITY-LEAD@yy-union.example", False),  # same address, other case
    ("city-analyst", "430900", "analyst@yy-union.example", False),
    ("city-nomail", "430900", None, False),
    ("city-gone", "430900", "gone@yy-union.example", True),
    ("heshan-lead", "430903", "heshan@yy-union.example", False),
    ("ziyang-lead", "430902", "ziyang@yy-union.example", False),
]
#: Who acknowledges alerts, and an operator acknowledging on the command line.
ACKERS = ["heshan-lead", "ziyang-lead", "city-lead", "city-duty", "prov-lead", "operator"]


@dataclass
class SimulatedYear:
    points: list[dict[str, Any]] = field(default_factory=list)
    petitions: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    risk_scores: list[dict[str, Any]] = field(default_factory=list)


def _local(day: date, minutes: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CST) + timedelta(minutes=minutes)


def generate(seed: int = 2025) -> SimulatedYear:
    rng = random.Random(seed)
    data = SimulatedYear()
    by_county: dict[str, list[str]] = {c: [] for c in COUNTIES}
    for i in range(48):
        county = COUNTIES[i % len(COUNTIES)]
        industry = INDUSTRIES[rng.randrange(len(INDUSTRIES))]
        name = f"{FIRM_WORDS[i % len(FIRM_WORDS)]}{FIRM_TYPES[industry]}"
        if i >= len(FIRM_WORDS):
            word, series = FIRM_WORDS[i % len(FIRM_WORDS)], i // len(FIRM_WORDS) + 1
            name = f"{word}第{series}{FIRM_TYPES[industry]}"
        point_id = f"YY{i:03d}"
        data.points.append(
            {
                "point_id": point_id,
                "name": name,
                "region_code": county,
                "industry": industry,
                "headcount": str(rng.randint(40, 1500)),
            }
        )
        by_county[county].append(point_id)

    n = 0
    month = FIRST_MONTH
    while month <= LAST_MONTH:
        next_month = add_months(month, 1)
        days = (next_month - month).days
        for _ in range(VOLUME[month]):
            n += 1
            day = month + timedelta(days=rng.randrange(days))
            at = _local(day, rng.randrange(7 * 60, 22 * 60))
            data.petitions.append(_petition(rng, n, at, by_county))
        month = next_month

    # Local-midnight edges: the last minutes of a month and the first of the next, in
    # China time and in UTC; the month is that of the China-time day.
    edges = [
        datetime(2024, 12, 31, 23, 50, tzinfo=CST),
        datetime(2025, 1, 1, 0, 5, tzinfo=CST),
        datetime(2025, 1, 31, 15, 59, tzinfo=UTC),  # 23:59 on 31 January in China
        datetime(2025, 1, 31, 16, 1, tzinfo=UTC),  # 00:01 on 1 February in China
        datetime(2024, 6, 30, 23, 59, tzinfo=CST),  # last minute before the empty July
        datetime(2024, 8, 1, 0, 0, tzinfo=CST),  # first minute after it
    ]
    for at in edges:
        n += 1
        data.petitions.append(_petition(rng, n, at, by_county))
    # Exactly at the collective threshold and one below it, in the report month.
    for people in (5, 4, 5):
        n += 1
        p = _petition(rng, n, datetime(2025, 1, 20, 10, n % 60, tzinfo=CST), by_county)
        p["people_involved"] = str(people)
        data.petitions.append(p)

    _alerts(rng, data)
    _risk_scores(rng, data)
    return data


def _petition(
    rng: random.Random, n: int, at: datetime, by_county: dict[str, list[str]]
) -> dict[str, Any]:
    region = rng.choices([*COUNTIES, CITY_OFFICE], weights=[*COUNTY_WEIGHTS, 4])[0]
    category = rng.choices(CATEGORIES, weights=CATEGORY_WEIGHTS)[0]
    roll = rng.random()
    point_id = ""
    enterprise = ""
    pool = by_county.get(region) or by_county[COUNTIES[1]]
    if roll < 0.72:
        point_id = pool[min(int(rng.expovariate(0.9)), len(pool) - 1)]
    elif roll < 0.86:
        name = FREE_NAMES[rng.randrange(len(FREE_NAMES))]
        enterprise = rng.choice([name, f" {name}", f"{name} "])
    r = rng.random()
    if r < 0.62:
        people = 1
    elif r < 0.82:
        people = rng.randint(2, 4)
    elif r < 0.96:
        people = rng.randint(5, 12)
    else:
        people = rng.randint(30, 120)
    over = rng.random()
    over_level = ""
    if over < 0.05:
        over_level = "city"
    elif over < 0.07:
        over_level = "province"
    elif over < 0.075:
        over_level = "national"
    closed_at = ""
    if rng.random() < 0.7:
        closed = at + timedelta(hours=rng.randint(6, 40 * 24), minutes=rng.randrange(60))
        if closed < NOW:
            closed_at = closed.isoformat()
    firm = "工地" if not enterprise else enterprise.strip()
    summary = SUMMARIES[category].format(firm=firm, n=people, m=rng.randint(1, 5))
    stated = at if rng.random() < 0.8 else at.astimezone(UTC)
    return {
        "petition_id": f"XF{n:05d}",
        "received_at": stated.isoformat(),
        "channel": rng.choices(CHANNELS, weights=CHANNEL_WEIGHTS)[0],
        "region_code": region,
        "point_id": point_id,
        "enterprise_name": enterprise,
        # One in six petition offices leaves the category out: it is inferred.
        "category": "" if rng.random() < 0.16 else category,
        "people_involved": str(people),
        "summary": summary,
        "petitioner_name": PETITIONER_NAMES[n % len(PETITIONER_NAMES)],
        "petitioner_phone": PETITIONER_PHONES[n % len(PETITIONER_PHONES)],
        "over_level": over_level,
        "closed_at": closed_at,
    }


def _alerts(rng: random.Random, data: SimulatedYear) -> None:
    levels = ["I", "II", "III", "IV"]
    start = datetime(2024, 10, 1, tzinfo=CST)
    span = int((NOW - timedelta(days=2) - start).total_seconds() // 60)
    for i in range(90):
        created = start + timedelta(minutes=rng.randrange(span))
        level = rng.choices(levels, weights=[1, 3, 6, 8])[0]
        acked_at = acked_by = resolved_at = None
        if rng.random() < 0.8:
            # Within 36 hours: never after NOW, since alerts end two days before it.
            acked_at = created + timedelta(minutes=rng.randint(3, 36 * 60))
            acked_by = ACKERS[i % len(ACKERS)]
            if rng.random() < 0.7:
                resolved_at = acked_at + timedelta(hours=rng.randint(1, 20 * 24))
                if resolved_at > NOW:
                    resolved_at = None
        data.alerts.append(
            {
                "dedup_key": f"sim:{i}",
                "kind": rng.choice(["event", "enterprise_risk", "county_risk"]),
                "level": level,
                "status": "resolved"
                if resolved_at
                else ("acknowledged" if acked_at else "triggered"),
                "region_code": COUNTIES[i % len(COUNTIES)],
                "title": f"模拟预警{i}",
                "created_at": created.astimezone(UTC),
                "updated_at": created.astimezone(UTC),
                "acknowledged_at": acked_at.astimezone(UTC) if acked_at else None,
                "acknowledged_by": acked_by,
                "resolved_at": resolved_at.astimezone(UTC) if resolved_at else None,
                "tier_reached": 3,
                "escalation_step": 0,
                "repeats_done": 0,
            }
        )
    # Created on New Year's Eve, acknowledged and resolved in January (China time).
    created = datetime(2024, 12, 31, 23, 40, tzinfo=CST)
    data.alerts.append(
        {
            "dedup_key": "sim:new-year",
            "kind": "event",
            "level": "II",
            "status": "resolved",
            "region_code": "430903",
            "title": "跨年预警",
            "created_at": created.astimezone(UTC),
            "updated_at": created.astimezone(UTC),
            "acknowledged_at": (created + timedelta(minutes=35)).astimezone(UTC),
            "acknowledged_by": "city-lead",
            "resolved_at": datetime(2025, 1, 2, 10, 0, tzinfo=CST).astimezone(UTC),
            "tier_reached": 2,
            "escalation_step": 1,
            "repeats_done": 0,
        }
    )


def _risk_scores(rng: random.Random, data: SimulatedYear) -> None:
    levels = [None, None, None, None, "IV", "IV", "III", "III", "II", "I"]
    factors = ["工资发放逐月推迟", "社保断缴3个月", "生产减产停工", "月报未按时报送", "信访量上升"]
    for p in data.points[:-4]:  # the last four points have never been scored
        month = date(2024, 9, 1)
        while month <= LAST_MONTH:
            as_of = datetime.combine(add_months(month, 1), datetime.min.time(), CST)
            level = rng.choice(levels)
            score = {None: 20, "IV": 45, "III": 60, "II": 75, "I": 88}[level] + rng.random() * 9
            row = {
                "entity_type": "point",
                "entity_id": p["point_id"],
                "region_code": p["region_code"],
                "score": round(score, 2),
                "level": level,
                "factors": [{"code": "f", "text": rng.choice(factors), "weight": 0.5}]
                if level
                else [],
                "as_of": as_of.astimezone(UTC),
                "scored_at": (as_of + timedelta(hours=2)).astimezone(UTC),
            }
            data.risk_scores.append(row)
            if rng.random() < 0.15:
                # Re-scored the same day with a correction: the later score counts.
                data.risk_scores.append(
                    row
                    | {
                        "level": "III",
                        "score": 63.5,
                        "factors": [{"code": "r", "text": "复核后调整", "weight": 1}],
                        "scored_at": (as_of + timedelta(hours=5)).astimezone(UTC),
                    }
                )
            month = add_months(month, 1)
    # A county score (not a monitoring point) and a point scored mid-month.
    data.risk_scores.append(
        {
            "entity_type": "county",
            "entity_id": "430903",
            "region_code": "430903",
            "score": 99.0,
            "level": "I",
            "factors": [],
            "as_of": datetime(2025, 2, 1, tzinfo=CST).astimezone(UTC),
            "scored_at": datetime(2025, 2, 1, 2, tzinfo=CST).astimezone(UTC),
        }
    )
    data.risk_scores.append(
        {
            "entity_type": "point",
            "entity_id": data.points[0]["point_id"],
            "region_code": data.points[0]["region_code"],
            "score": 91.0,
            "level": "I",
            "factors": [{"code": "o", "text": "老板失联", "weight": 1}],
            "as_of": datetime(2025, 1, 20, 12, tzinfo=CST).astimezone(UTC),
            "scored_at": datetime(2025, 1, 20, 13, tzinfo=CST).astimezone(UTC),
        }
    )


async def load(ctx: Context, data: SimulatedYear) -> None:
    """Store the year through the store and insert the later stages' rows."""
    points = [Submission(parse_row("point", p), "file") for p in data.points]
    result = await ctx.store.store("point", points)
    assert not result.rejected, result.rejected
    for start in range(0, len(data.petitions), 500):
        rows = [
            {k: v for k, v in p.items() if v != ""} for p in data.petitions[start : start + 500]
        ]
        batch = [Submission(parse_row("petition", r), "file") for r in rows]
        result = await ctx.store.store("petition", batch)
        assert not result.rejected, result.rejected
    for account_id, region, email, revoked in LEADERS:
        await ctx.accounts.add(
            kind="leader", account_id=account_id, region_code=region, email=email
        )
        if revoked:
            await ctx.accounts.revoke(account_id)
    await ctx.accounts.add(kind="informant", account_id="inf-001", region_code="430903")
    async with ctx.db.connect() as conn:
        await conn.execute(insert(Alert), data.alerts)
        await conn.execute(insert(RiskScore), data.risk_scores)
