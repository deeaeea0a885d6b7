"""Calibration of the simulator from real incidents: China Labour Bulletin's strike map.

`derive(path)` computes, from the 2011-2014 records, what the simulator can honestly
borrow: the season (month-of-year index and the Spring Festival phases), the
industries of incidents (all, and wage-arrears ones), participant bands, causes and
actions. The constants below are its output (`python bench/calibrate_clb.py`), kept in
code so that the simulator needs no data file at run time; a test recomputes them from
`tests/data/clb_strike_map_2011_2014.csv` and fails if they drift.

What cannot be calibrated from the map (how enterprises behave before an incident,
how often they report, what petitions say) is set by judgement in `world.py` and
stated in docs/detectors.md.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from monitor.season import LULL_AFTER, LULL_BEFORE, PRE_SEASON_START, spring_festival

# --------------------------------------------------------------------------- mapping

#: Strike-map industries -> the industries of interfaces §2.
INDUSTRY_MAP = {
    "Manufacturing": "manufacturing",
    "Construction": "construction",
    "Transportation": "logistics",
    "Services": "services",
    "Education": "services",
    "Retail": "services",
    "Mining": "mining",
    "Other": "other",
}

#: Participant bands of the map and the people range each stands for.
BANDS: dict[str, tuple[int, int]] = {
    "1-100 Persons": (1, 99),
    "100-1000 Persons": (100, 999),
    "1000-10000 Persons": (1000, 9999),
    "10000+ Persons": (10000, 50000),
}

#: Words (English and Chinese, lower case) that mark an action as an extreme act
#: (threat of self-harm), a petition to the government, or storming an office.
EXTREME_WORDS = ("jump", "leap", "suicide", "self-immolat", "跳楼", "自杀", "塔吊")
PETITION_WORDS = ("上访", "petitio", "请愿", "gather in front of local government", "上訪")
STORMING_WORDS = ("打砸", "storm", "smash", "ransack", "围堵", "圍堵", "house arrest", "trapped")

#: Event types in order of precedence when a record names several actions.
EVENT_PRECEDENCE = (
    "extreme_act",
    "road_blocking",
    "petition",
    "gathering",
    "work_stoppage",
    "other",
)

#: Demands -> petition categories, in order of precedence (the first match wins).
CAUSE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("wage_arrears", ("wage arrears", "wages arrears", "欠薪", "拖欠")),
    (
        "social_insurance",
        ("social security", "pension", "housing fund", "insurance", "社保", "养老"),
    ),
    (
        "layoff",
        (
            "layoff",
            "relocation or closure",
            "restructure merger",
            "compensation",
            "bankrupt",
            "closure",
            "倒闭",
            "破产",
            "下岗",
        ),
    ),
    ("contract", ("pay increase", "ot", "work conditions", "contract", "加班", "合同")),
)


def event_type_of(actions: str) -> str:
    """The informant-report event type of a record's `Action Taken Involve`."""
    text = actions.lower()
    found = set()
    if any(w in text for w in EXTREME_WORDS):
        found.add("extreme_act")
    if "block road" in text or "堵路" in text:
        found.add("road_blocking")
    if any(w in text for w in PETITION_WORDS):
        found.add("petition")
    if "protest" in text or "sit-in" in text or "gather" in text or "聚集" in text:
        found.add("gathering")
    if "strike" in text or "stop the construction" in text or "罢工" in text:
        found.add("work_stoppage")
    for kind in EVENT_PRECEDENCE:
        if kind in found:
            return kind
    return "other"


def storming_of(actions: str, description: str = "") -> bool:
    text = f"{actions} {description}".lower()
    return any(w in text for w in STORMING_WORDS)


def category_of(demands: str) -> str:
    items = [d.strip().lower() for d in demands.split(",") if d.strip()]
    for category, words in CAUSE_RULES:
        for item in items:
            if any(item == w or (len(w) > 3 and w in item) for w in words):
                return category
    return "other"


def read_records(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- derivation


def _shares(counter: Counter[str], keys: tuple[str, ...] | list[str]) -> dict[str, float]:
    total = sum(counter[k] for k in keys) or 1
    return {k: round(counter[k] / total, 3) for k in keys}


def _daily_counts(days: list[date]) -> tuple[date, list[int]]:
    first, last = min(days), max(days)
    counts = [0] * ((last - first).days + 1)
    for d in days:
        counts[(d - first).days] += 1
    return first, counts


def _phase_factors(days: list[date]) -> dict[str, float]:
    """Rates in the festival phases relative to a symmetric baseline around each
    festival (days -150..-60 and +30..+120), averaged over the festivals with a full
    year of data around them; the symmetric baseline cancels the map's strong trend."""
    first, counts = _daily_counts(days)
    last = first + timedelta(days=len(counts) - 1)

    def rate(lo: date, hi: date) -> float:
        a, b = (lo - first).days, (hi - first).days
        window = counts[max(a, 0) : b + 1]
        return sum(window) / max(len(window), 1)

    ratios: dict[str, list[float]] = {"pre": [], "lull": [], "post": []}
    for year in range(first.year, last.year + 1):
        f = spring_festival(year)
        if f - timedelta(days=150) < first or f + timedelta(days=120) > last:
            continue
        base = (
            rate(f - timedelta(days=150), f - timedelta(days=60))
            + rate(f + timedelta(days=30), f + timedelta(days=120))
        ) / 2
        if base <= 0:
            continue
        ratios["pre"].append(
            rate(f - timedelta(days=PRE_SEASON_START), f - timedelta(days=LULL_BEFORE + 1)) / base
        )
        ratios["lull"].append(
            rate(f - timedelta(days=LULL_BEFORE), f + timedelta(days=LULL_AFTER)) / base
        )
        ratios["post"].append(
            rate(f + timedelta(days=LULL_AFTER + 1), f + timedelta(days=45)) / base
        )
    return {k: round(sum(v) / len(v), 3) for k, v in ratios.items() if v}


def _month_index(days: list[date]) -> list[float]:
    """Month-of-year index by ratio to a centred 12-month moving average."""
    monthly = Counter((d.year, d.month) for d in days)
    months = sorted(monthly)
    (y0, m0), (y1, m1) = months[0], months[-1]
    series = []
    y, m = y0, m0
    while (y, m) <= (y1, m1):
        series.append(((y, m), monthly.get((y, m), 0)))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    ratios: dict[int, list[float]] = {k: [] for k in range(1, 13)}
    for i in range(6, len(series) - 6):
        window = [c for _, c in series[i - 6 : i + 7]]
        centred = (sum(window[1:-1]) + (window[0] + window[-1]) / 2) / 12
        if centred > 0:
            ratios[series[i][0][1]].append(series[i][1] / centred)
    means = [sum(v) / len(v) if v else 1.0 for _, v in sorted(ratios.items())]
    scale = sum(means) / 12
    return [round(x / scale, 3) for x in means]


def derive(path: Path) -> dict[str, Any]:
    """Every calibration constant, from the strike-map CSV."""
    records = read_records(path)
    days = [date.fromisoformat(r["Date"]) for r in records]
    categories = [category_of(r["Employee Demands Involve"] or "") for r in records]
    arrears_days = [d for d, c in zip(days, categories, strict=True) if c == "wage_arrears"]
    industries = Counter(INDUSTRY_MAP.get(r["Industry"], "other") for r in records)
    arrears_industries = Counter(
        INDUSTRY_MAP.get(r["Industry"], "other")
        for r, c in zip(records, categories, strict=True)
        if c == "wage_arrears"
    )
    bands = Counter(r["Participants"] for r in records if r["Participants"] in BANDS)
    events = Counter(event_type_of(r["Action Taken Involve"] or "") for r in records)
    industry_keys = ("construction", "manufacturing", "services", "logistics", "mining", "other")
    return {
        "records": len(records),
        "first_day": min(days).isoformat(),
        "last_day": max(days).isoformat(),
        "month_index": _month_index(days),
        "festival_all": _phase_factors(days),
        "festival_wage_arrears": _phase_factors(arrears_days),
        "industry_share": _shares(industries, industry_keys),
        "wage_arrears_industry_share": _shares(arrears_industries, industry_keys),
        "band_share": _shares(bands, tuple(BANDS)),
        "band_missing_share": round(
            sum(1 for r in records if r["Participants"] not in BANDS) / len(records), 3
        ),
        "cause_share": _shares(
            Counter(categories),
            ("wage_arrears", "social_insurance", "layoff", "contract", "other"),
        ),
        "event_share": _shares(events, EVENT_PRECEDENCE),
    }


# --------------------------------------------------------------------------- constants
# Output of `python bench/calibrate_clb.py` on tests/data/clb_strike_map_2011_2014.csv.

CALIBRATION: dict[str, Any] = {
    "records": 2569,
    "first_day": "2011-01-10",
    "last_day": "2014-12-31",
    "month_index": [
        1.079,
        0.701,
        1.317,
        1.071,
        0.887,
        0.85,
        1.048,
        1.114,
        0.747,
        1.113,
        0.942,
        1.132,
    ],
    "festival_all": {"pre": 1.129, "lull": 0.337, "post": 1.188},
    "festival_wage_arrears": {"pre": 1.245, "lull": 0.482, "post": 0.997},
    "industry_share": {
        "construction": 0.137,
        "manufacturing": 0.431,
        "services": 0.169,
        "logistics": 0.228,
        "mining": 0.016,
        "other": 0.021,
    },
    "wage_arrears_industry_share": {
        "construction": 0.323,
        "manufacturing": 0.435,
        "services": 0.172,
        "logistics": 0.025,
        "mining": 0.021,
        "other": 0.023,
    },
    "band_share": {
        "1-100 Persons": 0.493,
        "100-1000 Persons": 0.406,
        "1000-10000 Persons": 0.097,
        "10000+ Persons": 0.003,
    },
    "band_missing_share": 0.105,
    "cause_share": {
        "wage_arrears": 0.404,
        "social_insurance": 0.061,
        "layoff": 0.143,
        "contract": 0.171,
        "other": 0.22,
    },
    "event_share": {
        "extreme_act": 0.004,
        "road_blocking": 0.13,
        "petition": 0.004,
        "gathering": 0.367,
        "work_stoppage": 0.477,
        "other": 0.018,
    },
}
