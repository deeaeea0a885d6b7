"""Real incidents for the demo: China Labour Bulletin strike-map records (2011-2014),
retold in Chinese as informant reports from the demo region.

The product's text is Chinese and the records are English, so each incident is
rewritten from its categorical fields (industry, participants band, actions, demands),
never translated from its free text; real employers are not named. The curated list
is committed as `clb_incidents.json` and rebuilt with

    python -m monitor.demo.incidents tests/data/clb_strike_map_2011_2014.csv
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from monitor.simulator.calibration import category_of, event_type_of, read_records, storming_of

HERE = Path(__file__).resolve().parent
INCIDENTS_FILE = HERE / "clb_incidents.json"

INDUSTRY_ZH = {
    "Construction": ("建筑", "工地"),
    "Manufacturing": ("制造", "工厂"),
    "Transportation": ("运输", "公司"),
    "Services": ("服务", "企业"),
    "Mining": ("矿山", "矿"),
    "Retail": ("零售", "商场"),
}
ACTION_ZH = {
    "road_blocking": "在附近道路聚集并堵路",
    "extreme_act": "聚集讨说法,其中有人扬言跳楼",
    "petition": "集体到政府部门上访",
    "gathering": "聚集在公司门口讨说法",
    "work_stoppage": "集体停工",
    "other": "聚集反映诉求",
}
DEMAND_ZH = {
    "wage_arrears": "被拖欠工资",
    "social_insurance": "企业未缴社保",
    "layoff": "企业关停裁员未予补偿",
    "contract": "加班费和劳动合同问题",
    "injury": "工伤赔偿问题",
    "other": "劳动权益问题",
}
#: GB/T 2260 province codes of the strike map's records.
PROVINCES = {
    "110000": "北京",
    "120000": "天津",
    "130000": "河北",
    "140000": "山西",
    "150000": "内蒙古",
    "210000": "辽宁",
    "220000": "吉林",
    "230000": "黑龙江",
    "310000": "上海",
    "320000": "江苏",
    "330000": "浙江",
    "340000": "安徽",
    "350000": "福建",
    "360000": "江西",
    "370000": "山东",
    "410000": "河南",
    "420000": "湖北",
    "430000": "湖南",
    "440000": "广东",
    "450000": "广西",
    "460000": "海南",
    "500000": "重庆",
    "510000": "四川",
    "520000": "贵州",
    "530000": "云南",
    "540000": "西藏",
    "610000": "陕西",
    "620000": "甘肃",
    "630000": "青海",
    "640000": "宁夏",
    "650000": "新疆",
    "710000": "台湾",
    "810000": "香港",
    "820000": "澳门",
}
BANDS = {
    "1-100 Persons": (12, 95),
    "100-1000 Persons": (100, 600),
    "1000-10000 Persons": (1000, 3000),
    "10000+ Persons": (10000, 12000),
}


def retell(record: dict[str, str], rng: random.Random) -> dict[str, Any]:
    """One strike-map record as the parts of a Chinese informant report."""
    event_type = event_type_of(record.get("Action Taken Involve", ""))
    if storming_of(record.get("Action Taken Involve", ""), record.get("Description", "")):
        event_type = "extreme_act"
    category = category_of(record.get("Employee Demands Involve", ""))
    low, high = BANDS.get(record.get("Participants", ""), (15, 60))
    people = rng.randint(low, high)
    trade, place = INDUSTRY_ZH.get(record.get("Industry", ""), ("", "企业"))
    action = ACTION_ZH[event_type]
    if event_type == "extreme_act" and "storm" in record.get("Action Taken Involve", "").lower():
        action = "冲击政府办公场所"
    description = (
        f"某{trade}{place}约{people}名职工因{DEMAND_ZH[category]}{action}。"
        f"(案例改编自中国劳工通讯罢工地图 {record['Date']} "
        f"{PROVINCES.get(record.get('region_code', ''), '')}记录)"
    )
    return {
        "date": record["Date"],
        "province": record.get("Province", ""),
        "participants": record.get("Participants", ""),
        "event_type": event_type,
        "category": category,
        "people_involved": people,
        "enterprise_name": f"某{trade}{place}" if trade else "某企业",
        "description": description,
    }


def build(csv_path: Path, count: int = 60, seed: int = 2011) -> list[dict[str, Any]]:
    """A mix of incidents that will alert: wage-arrears cases first, every action kind."""
    rng = random.Random(seed)
    rows = [r for r in read_records(csv_path) if r.get("Participants")]
    chosen: list[dict[str, Any]] = []
    by_type: dict[str, list[dict[str, Any]]] = {}
    for record in rows:
        told = retell(record, rng)
        if told["event_type"] == "other":
            continue
        by_type.setdefault(told["event_type"], []).append(told)
    # The first one shown is the commonest serious case: wage arrears and a blocked road.
    first = [t for t in by_type.get("road_blocking", []) if t["category"] == "wage_arrears"]
    if first:
        chosen.append(first[0])
        by_type["road_blocking"].remove(first[0])
    # Then round-robin over the kinds so that the demo shows road blocking, stoppages,
    # gatherings, collective petitions and extreme acts, not only the commonest.
    kinds = sorted(by_type)
    while len(chosen) < count and any(by_type.values()):
        for kind in kinds:
            if by_type[kind] and len(chosen) < count:
                chosen.append(by_type[kind].pop(rng.randrange(len(by_type[kind]))))
    return chosen


def load() -> list[dict[str, Any]]:
    return list(json.loads(INCIDENTS_FILE.read_text(encoding="utf-8")))


def main() -> None:
    source = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tests/data/clb_strike_map_2011_2014.csv")
    )
    incidents = build(source)
    INCIDENTS_FILE.write_text(
        json.dumps(incidents, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(incidents)} incidents to {INCIDENTS_FILE}")


if __name__ == "__main__":
    main()
