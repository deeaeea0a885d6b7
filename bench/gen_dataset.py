"""Write an import data set of N monitoring points x M months (points.csv, wages.csv,
petitions.csv, reports.jsonl) for load tests and benchmarks.

This is a volume generator, not the realistic simulator (`labormon simulate`): the
values are plausible and deterministic for a seed, nothing more.

    python bench/gen_dataset.py --points 2000 --months 36 --out var/bench-data
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

COUNTIES = ["430902", "430903", "430921", "430922", "430923", "430981"]
INDUSTRIES = (
    ["construction"] * 5 + ["manufacturing"] * 3 + ["services", "logistics", "mining", "other"]
)
CHANNELS = ["visit", "letter", "hotline_12351", "online"]
SUMMARIES = {
    "wage_arrears": "工地拖欠{n}名农民工工资{m}个月,多次讨要未果",
    "social_insurance": "公司停缴社保{m}个月,职工要求补缴",
    "layoff": "企业裁员{n}人未依法支付经济补偿",
    "contract": "单位不签劳动合同,强制加班",
    "injury": "工人受伤后企业拒绝申报工伤",
    "other": "反映企业管理问题",
}
CST = timezone(timedelta(hours=8))


def month_add(start: date, months: int) -> date:
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def generate(
    points: int, months: int, out: Path, seed: int = 7, start: date = date(2022, 1, 1)
) -> dict[str, int]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    counts = {"points": points, "wages": 0, "petitions": 0, "reports": 0}
    with (out / "points.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["point_id", "name", "region_code", "industry", "headcount"])
        meta = []
        for i in range(points):
            county = rng.choice(COUNTIES)
            industry = rng.choice(INDUSTRIES)
            headcount = rng.randint(30, 2000)
            meta.append((f"P{i:06d}", county, industry, headcount))
            w.writerow([f"P{i:06d}", f"益阳第{i}号企业", county, industry, headcount])
    with (out / "wages.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
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
        )
        for point_id, _county, _industry, headcount in meta:
            wage = rng.uniform(3000, 7000)
            for m in range(months):
                period = month_add(start, m)
                arrears = rng.random() < 0.05
                frontline = int(headcount * rng.uniform(0.5, 0.9))
                paid = (
                    None if arrears else month_add(period, 1) + timedelta(days=rng.randint(4, 14))
                )
                w.writerow(
                    [
                        f"W-{point_id}-{period:%Y%m}",
                        point_id,
                        f"{period:%Y-%m}",
                        headcount,
                        frontline,
                        round(wage * rng.uniform(0.9, 1.1), 2),
                        paid.isoformat() if paid else "",
                        round(frontline * wage * 0.5, 2) if arrears else 0,
                        frontline // 3 if arrears else 0,
                        1 if arrears else 0,
                        0,
                        0,
                        rng.choice(["normal"] * 8 + ["reduced"]),
                        round(rng.uniform(0, 60), 1),
                    ]
                )
                counts["wages"] += 1
    end = month_add(start, months)
    days = (end - start).days
    with (out / "petitions.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "petition_id",
                "received_at",
                "channel",
                "region_code",
                "point_id",
                "category",
                "people_involved",
                "summary",
                "petitioner_name",
                "petitioner_phone",
            ]
        )
        for i in range(points * months // 10):
            point_id, county, _industry, _h = rng.choice(meta)
            category = rng.choice(list(SUMMARIES))
            when = datetime.combine(
                start + timedelta(days=rng.randrange(days)), datetime.min.time(), CST
            )
            when += timedelta(minutes=rng.randrange(8 * 60, 18 * 60))
            people = rng.choice([1, 1, 1, 2, 3, 5, 8, 12, 30])
            w.writerow(
                [
                    f"Q{i:07d}",
                    when.isoformat(),
                    rng.choice(CHANNELS),
                    county,
                    point_id,
                    category if rng.random() < 0.8 else "",
                    people,
                    SUMMARIES[category].format(n=people, m=rng.randint(1, 6)),
                    "张某",
                    f"139{rng.randint(0, 99999999):08d}",
                ]
            )
            counts["petitions"] += 1
    with (out / "reports.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(points * months // 40):
            point_id, county, _industry, _h = rng.choice(meta)
            when = datetime.combine(
                start + timedelta(days=rng.randrange(days)), datetime.min.time(), CST
            )
            event = rng.choice(
                ["precursor", "precursor", "gathering", "work_stoppage", "petition", "other"]
            )
            fh.write(
                json.dumps(
                    {
                        "report_id": f"R{i:07d}",
                        "informant_id": f"inf-{county}-{rng.randint(1, 40):03d}",
                        "occurred_at": (when + timedelta(hours=10)).isoformat(),
                        "region_code": county,
                        "point_id": point_id,
                        "event_type": event,
                        "category": "wage_arrears",
                        "people_involved": rng.choice([0, 3, 8, 15, 40]),
                        "description": "工人议论工资迟发",
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
            counts["reports"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("var/bench-data"))
    args = parser.parse_args()
    print(json.dumps(generate(args.points, args.months, args.out, args.seed)))


if __name__ == "__main__":
    main()
