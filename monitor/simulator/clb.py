"""Real incidents replayed as informant reports: China Labour Bulletin's strike map.

Each record of the 2011-2014 map becomes an informant report (interfaces §2): the event
type from its actions (road blocking, threats to jump, strikes, protests, petitions),
the people involved from its participants band (a number the description gives when
it lies inside the band, otherwise the band's lower bound -- the map's bands are
"at least" figures -- and 5 when the map gives neither: it records collective
actions only), its category from the workers' demands, and as description the
title and actions (English, as published). The region is the province's code.

Used by the replay test (every record gets a level consistent with its band and
actions; the petition-surge detector flags the pre-Spring-Festival peaks) and by the
demo to show real-looking incidents.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from monitor.simulator.calibration import BANDS, category_of, event_type_of, read_records

COLLECTIVE = 5

NUMBER = re.compile(
    r"(?:over|about|around|nearly|more than|some)?\s*(\d[\d,]*)\s+"
    r"(?:workers|employees|drivers|staff|teachers|people|laborers|miners)",
    re.IGNORECASE,
)

#: Province codes of the map and their names (to register them as regions).
PROVINCE_NAMES = {
    "110000": "北京市",
    "120000": "天津市",
    "130000": "河北省",
    "140000": "山西省",
    "150000": "内蒙古自治区",
    "210000": "辽宁省",
    "220000": "吉林省",
    "230000": "黑龙江省",
    "310000": "上海市",
    "320000": "江苏省",
    "330000": "浙江省",
    "340000": "安徽省",
    "350000": "福建省",
    "360000": "江西省",
    "370000": "山东省",
    "410000": "河南省",
    "420000": "湖北省",
    "430000": "湖南省",
    "440000": "广东省",
    "450000": "广西壮族自治区",
    "460000": "海南省",
    "500000": "重庆市",
    "510000": "四川省",
    "520000": "贵州省",
    "530000": "云南省",
    "540000": "西藏自治区",
    "610000": "陕西省",
    "620000": "甘肃省",
    "630000": "青海省",
    "640000": "宁夏回族自治区",
    "650000": "新疆维吾尔自治区",
    "710000": "台湾省",
    "810000": "香港特别行政区",
    "820000": "澳门特别行政区",
}
#: Where a record has no province code: the demo's province.
DEFAULT_REGION = "430000"


def people_of(band: str, text: str) -> int:
    """People involved: a number from the text inside the band, else the band's floor."""
    if band not in BANDS:
        # The map records collective actions only: without a figure, at least a handful.
        match = NUMBER.search(text)
        return int(match.group(1).replace(",", "")) if match else COLLECTIVE
    lo, hi = BANDS[band]
    lo = max(lo, 5)  # a collective action of "1-100 persons" is at least a handful
    for match in NUMBER.finditer(text):
        value = int(match.group(1).replace(",", ""))
        if lo <= value <= hi:
            return value
    return lo


def replay_records(path: Path) -> Iterator[dict[str, Any]]:
    """The map's records as informant-report dicts, in date order."""
    records = read_records(path)
    order = sorted(range(len(records)), key=lambda i: records[i]["Date"])
    for serial, i in enumerate(order):
        r = records[i]
        actions = (r["Action Taken Involve"] or "").strip()
        title = (r["Title"] or "").strip()
        description = f"{title} [{actions}]" if actions else title
        code = r.get("region_code") or ""
        region = str(int(float(code))) if code else DEFAULT_REGION
        yield {
            "report_id": f"CLB-{serial + 1:05d}",
            "informant_id": "clb-strike-map",
            "occurred_at": f"{r['Date']}T12:00:00+08:00",
            "region_code": region if region in PROVINCE_NAMES else DEFAULT_REGION,
            "enterprise_name": (r["Employer"] or "").strip()[:200] or None,
            # An action the map does not name is still a collective action: a gathering.
            "event_type": event_type_of(actions).replace("other", "gathering"),
            "category": category_of(r["Employee Demands Involve"] or ""),
            "people_involved": people_of(
                r["Participants"] or "", f"{title} {r['Description'] or ''}"
            ),
            "description": description[:4000],
            "participants_band": r["Participants"] or None,
            "actions": actions or None,
        }
