"""The features computed the naive way: a loop over points, each looking at its own rows.

This is what one writes first (and what a per-enterprise rule engine does); it is kept
as the oracle of `features.compute` -- a test checks that both give the same numbers --
and as the baseline of the scoring benchmark (`bench/score_100k.py`).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

import numpy as np

from detectors.features import (
    ARREARS_CATEGORIES,
    COL,
    NAMES,
    PAY_GRACE_DAYS,
    WAGE_MAX,
    WAGE_MIN,
    Features,
)
from detectors.panel import (
    EVENT_CODES,
    FLAG_COLLECTIVE_TALK,
    FLAG_OWNER_GONE,
    SOURCE_PETITION,
    SOURCE_REPORT,
    PanelView,
    period_end_day,
)
from monitor.season import days_to_festival, from_day_number


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _clip(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def compute_naive(view: PanelView) -> Features:
    p = view.panel
    day = view.day
    n = p.n
    X = np.zeros((n, len(NAMES)))
    today = from_day_number(day)
    current = today.year * 12 + today.month - 1 - p.month0
    hi = min(current, p.months - 1)
    lo = max(0, hi - 24)
    due = view.due_index
    starts = [
        c
        for c in range(p.months)
        if any(
            p.visible_day[i, c] <= day and not math.isnan(p.wage["wage"][i, c]) for i in range(n)
        )
    ]
    data_start = starts[0] if starts else due + 1
    last_cols = np.full(n, -1)
    # Events in the last year, visible at the as-of day, grouped by point.
    incident_mask = p.incident_mask()
    weights = p.event_weights()
    by_point: dict[int, list[int]] = defaultdict(list)
    for e in range(len(p.ev_day)):
        if p.ev_visible[e] <= day and day - 364 <= p.ev_day[e] <= day and p.ev_point[e] >= 0:
            by_point[int(p.ev_point[e])].append(e)
    changes: dict[int, tuple[tuple[int, int, int], float]] = {}
    troubled = [False] * n
    for i in range(n):
        row = X[i]
        cols = [
            c
            for c in range(lo, hi + 1)
            if p.visible_day[i, c] <= day and not math.isnan(p.wage["wage"][i, c])
        ]
        visible = set(cols)
        last = cols[-1] if cols else -1
        has = last >= 0
        last_cols[i] = last

        def get(name: str, c: int, fill: float = 0.0, i: int = i) -> float:
            v = float(p.wage[name][i, c])
            return fill if math.isnan(v) else v

        def back(k: int, last: int = last, visible: set[int] = visible) -> int:
            c = last - k
            return c if last >= 0 and c >= lo and c in visible else -1

        headcount_r = get("headcount", last) if has else 0.0
        frontline_r = get("frontline", last) if has else 0.0
        wage_last = float(p.wage["wage"][i, last]) if has else math.nan
        wage_ok = has and WAGE_MIN <= wage_last <= WAGE_MAX
        bad = has and (not wage_ok or headcount_r <= 0)
        staff = headcount_r if headcount_r > 0 else max(float(p.headcount[i]), 1.0)
        frontline_staff = frontline_r if frontline_r > 0 else staff
        arrears = get("arrears_months", last) if has else 0.0
        workers = get("arrears_workers", last) if has else 0.0
        amount = get("arrears_amount", last) if has else 0.0
        typical = wage_last if wage_ok else 4000.0
        row[COL["arrears_months"]] = min(arrears, 24)
        row[COL["arrears_share"]] = _clip(workers / staff, 0, 1)
        row[COL["arrears_wage_months"]] = _clip(amount / (frontline_staff * typical), 0, 24)
        c3 = back(3)
        row[COL["arrears_growth"]] = arrears - get("arrears_months", c3) if c3 >= 0 else 0.0
        end_of = period_end_day(last + p.month0) if has else 0
        paid_last = int(p.paid_day[i, last]) if has else -1
        is_paid = 0 <= paid_last <= day
        row[COL["unpaid"]] = float(has and not is_paid and day - end_of > PAY_GRACE_DAYS)
        delay = (paid_last - end_of) if is_paid else max(day - end_of, 0)
        row[COL["pay_delay"]] = _clip(delay, 0, 120) if has else 10.0
        past = []
        arrears6 = 0.0
        late6 = 0
        for c in cols:
            end = period_end_day(c + p.month0)
            paid = int(p.paid_day[i, c])
            paid_ok = 0 <= paid <= day
            if has and last - 12 <= c <= last - 3 and paid_ok:
                past.append(float(paid - end))
            if has and last - 6 < c <= last:
                arrears6 = max(arrears6, get("arrears_months", c))
                if (paid_ok and paid - end > PAY_GRACE_DAYS + 5) or (
                    not paid_ok and day - end > PAY_GRACE_DAYS
                ):
                    late6 += 1
        row[COL["arrears_max_6"]] = min(arrears6, 24)
        row[COL["late_months_6"]] = late6
        base_delay = _median(past)
        row[COL["pay_delay_trend"]] = (
            _clip(row[COL["pay_delay"]] - base_delay, -60, 120)
            if has and base_delay is not None
            else 0.0
        )
        month = (max(last, 0) + p.month0) % 12 + 1
        since_festival = month - 2 if month >= 2 else month + 10
        row[COL["settler_pattern"]] = float(
            has and arrears >= 1 and abs(arrears - since_festival) <= 1.5
        )
        recent = [(c, get("arrears_months", c)) for c in cols if c - lo >= (last - lo) - 13]
        if has and recent:
            peak_value = max(v for _, v in recent)
            peak_col = next(c for c, v in recent if v == peak_value)
            clean_after = any(v == 0 for c, v in recent if c > peak_col)
            row[COL["arrears_reset_seen"]] = float(peak_value >= 3 and clean_after)
        row[COL["si_months"]] = min(get("si_months", last), 24) if has else 0.0
        layoffs = get("layoffs", last) if has else 0.0
        row[COL["layoff_share"]] = _clip(layoffs / staff, 0, 1)
        row[COL["layoff_notifiable"]] = float(
            layoffs > 0 and (layoffs >= 20 or layoffs >= 0.1 * staff)
        )
        status_last = max(int(p.status[i, last]), 0) if has else 0
        row[COL["status"]] = status_last
        row[COL["abnormal_months_3"]] = sum(
            1 for k in range(3) if back(k) >= 0 and p.status[i, back(k)] > 0
        )
        c12 = back(12)
        row[COL["status_seasonal"]] = float(c12 >= 0 and p.status[i, c12] > 0 and status_last > 0)
        registered_recently = p.registered_day[i] > day - 45
        silent: float
        if has:
            silent = max(due - last, 0)
        else:
            silent = 0 if registered_recently else _clip(due + 1 - data_start, 0, 12)
        row[COL["silent_months"]] = _clip(silent, 0, 12)
        if hi - lo + 1 > 0 and due >= 0 and not (not has and registered_recently):
            all_visible = [
                c
                for c in range(p.months)
                if p.visible_day[i, c] <= day and not math.isnan(p.wage["wage"][i, c])
            ]
            started = all_visible[0] if all_visible else data_start
            row[COL["missing_6"]] = sum(
                1
                for c in range(max(0, due - 5), due + 1)
                if lo <= c <= hi and c >= started and c not in visible
            )
        row[COL["never_reported"]] = float(not has and not registered_recently)
        row[COL["bad_data"]] = float(bad)

        # Wage anomalies.
        def logw(c: int, i: int = i, visible: set[int] = visible) -> float:
            v = float(p.wage["wage"][i, c])
            return math.log(v) if c in visible and WAGE_MIN <= v <= WAGE_MAX else math.nan

        hist = [logw(c) for c in range(max(last - 12, lo), last) if has and not math.isnan(logw(c))]
        med = _median(hist)
        if has and med is not None and not math.isnan(logw(last)) and len(hist) >= 3 and wage_ok:
            mad = statistics.median(abs(h - med) for h in hist)
            change = logw(last) - med
            row[COL["wage_z_own"]] = _clip(change / max(1.4826 * mad, 0.03), -20, 20)
            changes[i] = ((int(p.industry[i]), int(p.county[i]), last - lo), change)
        if wage_ok and c12 >= 0 and not math.isnan(logw(c12)):
            row[COL["wage_yoy"]] = _clip(logw(last) - logw(c12), -3, 3)
        c6 = back(6)
        if has and c6 >= 0 and headcount_r > 0:
            row[COL["headcount_change"]] = _clip(
                math.log((headcount_r + 1) / (get("headcount", c6) + 1)), -3, 3
            )
        ot = [
            float(p.wage["overtime"][i, c])
            for c in range(max(last - 12, lo), last)
            if has and c in visible and not math.isnan(p.wage["overtime"][i, c])
        ]
        ot_last = float(p.wage["overtime"][i, last]) if has else math.nan
        if ot and not math.isnan(ot_last):
            row[COL["overtime_change"]] = _clip(ot_last - statistics.median(ot), -200, 200)
        # Events about this point.
        owed_said = 0.0
        since = 730.0
        for e in by_point.get(i, []):
            age = day - int(p.ev_day[e])
            incident = bool(incident_mask[e])
            petition = p.ev_source[e] == SOURCE_PETITION
            report = p.ev_source[e] == SOURCE_REPORT
            flags = int(p.ev_flags[e])
            arrears_cat = int(p.ev_category[e]) in ARREARS_CATEGORIES
            if petition and not incident:
                row[COL["petitions_30"]] += age < 30
                row[COL["petitions_90"]] += age < 90
                row[COL["petition_people_90"]] += p.ev_people[e] if age < 90 else 0
                row[COL["petitions_arrears_90"]] += age < 90 and arrears_cat
                row[COL["petitions_arrears_180"]] += age < 180 and arrears_cat
            if age < 90 and not incident:
                owed_said = max(owed_said, float(p.ev_months[e]))
            if report and p.ev_type[e] == EVENT_CODES["precursor"]:
                weight = float(weights[e])
                row[COL["precursors_30"]] += weight if age < 30 else 0.0
                row[COL["precursors_90"]] += weight if age < 90 else 0.0
                row[COL["precursors_180"]] += weight if age < 180 else 0.0
            if flags & FLAG_COLLECTIVE_TALK and age < 90 and not incident:
                row[COL["collective_talk_90"]] += 1
            if flags & FLAG_OWNER_GONE and age < 90:
                row[COL["owner_gone_90"]] += 1
            if report and p.ev_type[e] == EVENT_CODES["online_opinion"] and age < 90:
                row[COL["opinion_90"]] += 1
            if incident:
                row[COL["incidents_90"]] += age < 90
                row[COL["incidents_365"]] += 1
                since = min(since, float(age))
        row[COL["months_owed_said_90"]] = owed_said
        row[COL["days_since_incident"]] = since
        clean = has and arrears == 0 and row[COL["unpaid"]] == 0
        row[COL["self_report_gap"]] = (
            row[COL["petitions_arrears_90"]] + row[COL["precursors_90"]] if clean else 0.0
        )
        row[COL["log_headcount"]] = math.log1p(max(float(p.headcount[i]), 0))
        row[COL["industry"]] = p.industry[i]
        row[COL["days_to_festival"]] = days_to_festival(today)
        troubled[i] = (has and arrears > 0 and row[COL["settler_pattern"]] == 0) or silent >= 2
    # Peers: the same industry, county and report month.
    groups: dict[tuple[int, int, int], list[float]] = defaultdict(list)
    for key, change in changes.values():
        groups[key].append(change)
    for i, (key, change) in changes.items():
        values = groups[key]
        if len(values) >= 5:
            med = statistics.median(values)
            mad = statistics.median(abs(v - med) for v in values)
            X[i, COL["wage_z_peer"]] = _clip((change - med) / max(1.4826 * mad, 0.03), -20, 20)
    # County pressure and sector/county shares of troubled points.
    counties = len(p.counties)
    recent_counts = [0.0] * counties
    base_counts = [0.0] * counties
    for e in range(len(p.ev_day)):
        age = day - int(p.ev_day[e])
        if p.ev_source[e] == SOURCE_PETITION and p.ev_visible[e] <= day and 0 <= age <= 210:
            if age < 30:
                recent_counts[int(p.ev_county[e])] += 1
            else:
                base_counts[int(p.ev_county[e])] += 1
    by_industry: dict[int, list[bool]] = defaultdict(list)
    by_county: dict[int, list[bool]] = defaultdict(list)
    for i in range(n):
        by_industry[int(p.industry[i])].append(troubled[i])
        by_county[int(p.county[i])].append(troubled[i])
    for i in range(n):
        c = int(p.county[i])
        X[i, COL["county_petition_ratio"]] = (recent_counts[c] + 2.0) / (
            base_counts[c] * 30.0 / 180.0 + 2.0
        )
        members = by_industry[int(p.industry[i])]
        X[i, COL["sector_arrears_share"]] = sum(members) / len(members)
        members = by_county[c]
        X[i, COL["county_arrears_share"]] = sum(members) / len(members)
    return Features(day, X, last_cols)
