"""What each monitoring point looks like as of a day: one row of numbers per point.

Every detector and the forecaster read these features; they are computed for all
points at once with array operations (100,000 points x 36 months in seconds), from a
`PanelView`, i.e. only from what was known by the as-of day. Missing or absurd inputs
(no report, zero headcount, a wage of 4 yuan or 4 million) become neutral values plus
an explicit flag, never NaN.

`reference.py` computes the same numbers with a plain loop per point; a test keeps the
two in step and the benchmark compares their speed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from detectors.panel import (
    EVENT_CODES,
    FLAG_COLLECTIVE_TALK,
    FLAG_OWNER_GONE,
    SOURCE_PETITION,
    SOURCE_REPORT,
    Panel,
    PanelView,
    period_end_day,
)
from monitor.season import days_to_festival, from_day_number

#: Wages outside this range (CNY per month) are typing errors, not signals.
WAGE_MIN, WAGE_MAX = 500.0, 100_000.0
#: Months of history the features look back on.
LOOKBACK = 13
#: Days after the end of a month by which its wages are normally paid.
PAY_GRACE_DAYS = 15
ARREARS_CATEGORIES = (0, 1, 2)  # wage_arrears, social_insurance, layoff

#: Feature names, in column order, with the group each belongs to (groups are what
#: the explanations talk about).
FEATURES: list[tuple[str, str]] = [
    ("arrears_months", "arrears"),
    ("arrears_share", "arrears"),
    ("arrears_wage_months", "arrears"),
    ("arrears_growth", "arrears"),
    ("unpaid", "arrears"),
    ("pay_delay", "arrears"),
    ("pay_delay_trend", "arrears"),
    ("arrears_max_6", "arrears"),
    ("late_months_6", "arrears"),
    ("settler_pattern", "arrears"),
    ("arrears_reset_seen", "arrears"),
    ("si_months", "social_insurance"),
    ("layoff_share", "layoffs"),
    ("layoff_notifiable", "layoffs"),
    ("status", "production"),
    ("abnormal_months_3", "production"),
    ("status_seasonal", "production"),
    ("silent_months", "reporting"),
    ("missing_6", "reporting"),
    ("never_reported", "reporting"),
    ("bad_data", "reporting"),
    ("wage_z_own", "wage_anomaly"),
    ("wage_yoy", "wage_anomaly"),
    ("wage_z_peer", "wage_anomaly"),
    ("headcount_change", "wage_anomaly"),
    ("overtime_change", "wage_anomaly"),
    ("petitions_30", "petitions"),
    ("petitions_90", "petitions"),
    ("petition_people_90", "petitions"),
    ("petitions_arrears_90", "petitions"),
    ("petitions_arrears_180", "petitions"),
    ("months_owed_said_90", "petitions"),
    ("precursors_30", "informants"),
    ("precursors_90", "informants"),
    ("precursors_180", "informants"),
    ("collective_talk_90", "informants"),
    ("owner_gone_90", "informants"),
    ("opinion_90", "informants"),
    ("incidents_90", "history"),
    ("incidents_365", "history"),
    ("days_since_incident", "history"),
    ("self_report_gap", "gap"),
    ("log_headcount", "context"),
    ("industry", "context"),
    ("days_to_festival", "season"),
    ("county_petition_ratio", "county"),
    ("sector_arrears_share", "county"),
    ("county_arrears_share", "county"),
]
NAMES = [name for name, _ in FEATURES]
GROUPS = [group for _, group in FEATURES]
COL = {name: i for i, name in enumerate(NAMES)}

#: The value of each feature at a healthy, quiet enterprise (explanations replace a
#: group by these to see how much it moved the score).
NEUTRAL = {
    "arrears_months": 0.0,
    "arrears_share": 0.0,
    "arrears_wage_months": 0.0,
    "arrears_growth": 0.0,
    "unpaid": 0.0,
    "pay_delay": 10.0,
    "pay_delay_trend": 0.0,
    "arrears_max_6": 0.0,
    "late_months_6": 0.0,
    "settler_pattern": 0.0,
    "arrears_reset_seen": 0.0,
    "si_months": 0.0,
    "layoff_share": 0.0,
    "layoff_notifiable": 0.0,
    "status": 0.0,
    "abnormal_months_3": 0.0,
    "status_seasonal": 0.0,
    "silent_months": 0.0,
    "missing_6": 0.0,
    "never_reported": 0.0,
    "bad_data": 0.0,
    "wage_z_own": 0.0,
    "wage_yoy": 0.0,
    "wage_z_peer": 0.0,
    "headcount_change": 0.0,
    "overtime_change": 0.0,
    "petitions_30": 0.0,
    "petitions_90": 0.0,
    "petition_people_90": 0.0,
    "petitions_arrears_90": 0.0,
    "petitions_arrears_180": 0.0,
    "months_owed_said_90": 0.0,
    "precursors_180": 0.0,
    "precursors_30": 0.0,
    "precursors_90": 0.0,
    "collective_talk_90": 0.0,
    "owner_gone_90": 0.0,
    "opinion_90": 0.0,
    "incidents_90": 0.0,
    "incidents_365": 0.0,
    "days_since_incident": 730.0,
    "self_report_gap": 0.0,
    "days_to_festival": 200.0,
    "county_petition_ratio": 1.0,
    "sector_arrears_share": 0.0,
    "county_arrears_share": 0.0,
}


@dataclass
class Features:
    """Features of every point of a panel as of `day` (a day number)."""

    day: int
    X: np.ndarray
    #: Column of the latest visible report per point (-1: none), for evidence.
    last_col: np.ndarray

    def __getitem__(self, name: str) -> np.ndarray:
        return self.X[:, COL[name]]


def _nanmedian(values: np.ndarray, axis: int = 1) -> np.ndarray:
    """Median ignoring NaN; NaN (without a warning) where a row has no value at all."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmedian(values, axis=axis))


def _last_true(mask: np.ndarray) -> np.ndarray:
    """Index of the last True per row, -1 where none."""
    width = mask.shape[1]
    if width == 0:
        return np.full(mask.shape[0], -1)
    rev = np.argmax(mask[:, ::-1], axis=1)
    return np.where(mask.any(axis=1), width - 1 - rev, -1)


def _take(values: np.ndarray, col: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """values[i, col[i]], `fill` where col < 0."""
    rows = np.arange(values.shape[0])
    safe = np.clip(col, 0, max(values.shape[1] - 1, 0))
    if values.shape[1] == 0:
        return np.full(values.shape[0], fill, dtype=float)
    out = values[rows, safe].astype(float)
    return np.where(col >= 0, out, fill)


def _months_since_festival_month(period_index: np.ndarray) -> np.ndarray:
    """Months from the last festival-season month (Jan/Feb) to the report's period."""
    month = period_index % 12 + 1
    return np.where(month >= 2, month - 2, month + 10).astype(float)


def _robust_group_z(values: np.ndarray, keys: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(value - group median) / (1.4826 * group MAD), over valid entries; 0 elsewhere
    and for groups of fewer than five."""
    out = np.zeros(len(values))
    if not valid.any():
        return out
    frame = pd.DataFrame({"k": keys[valid], "v": values[valid]})
    grouped = frame.groupby("k")["v"]
    median = grouped.transform("median").to_numpy()
    mad = (frame["v"] - median).abs().groupby(frame["k"]).transform("median").to_numpy()
    size = grouped.transform("size").to_numpy()
    scale = np.maximum(1.4826 * mad, 0.03)
    z = np.where(size >= 5, (frame["v"].to_numpy() - median) / scale, 0.0)
    out[valid] = z
    return out


def compute(view: PanelView) -> Features:
    """The features of every point as of the view's day."""
    p: Panel = view.panel
    day = view.day
    n = p.n
    X = np.zeros((n, len(NAMES)))
    if n == 0:
        return Features(day, X, np.zeros(0, np.int64))
    today = from_day_number(day)
    current = today.year * 12 + today.month - 1 - p.month0
    hi = min(current, p.months - 1)
    lo = max(0, hi - 24)
    width = max(hi - lo + 1, 0)
    cells = view.cells[:, lo : hi + 1] if width else np.zeros((n, 0), bool)
    w = {k: v[:, lo : hi + 1] for k, v in p.wage.items()}
    status = p.status[:, lo : hi + 1]
    paid_day = p.paid_day[:, lo : hi + 1]
    last = _last_true(cells)
    has = last >= 0
    last_abs = np.where(has, last + lo, -1)

    def at(name: str, col: np.ndarray, fill: float = 0.0) -> np.ndarray:
        return np.nan_to_num(_take(w[name], col, np.nan), nan=fill)

    def shifted(k: int) -> np.ndarray:
        """Column k months before each point's last report, if that cell is visible."""
        col = last - k
        ok = (col >= 0) & has
        ok[ok] = cells[np.nonzero(ok)[0], col[ok]]
        return np.where(ok, col, -1)

    headcount_r = at("headcount", last)
    frontline_r = at("frontline", last)
    wage_last = _take(w["wage"], last)
    wage_ok = has & (wage_last >= WAGE_MIN) & (wage_last <= WAGE_MAX)
    bad = has & (~wage_ok | (headcount_r <= 0))
    staff = np.where(headcount_r > 0, headcount_r, np.maximum(p.headcount, 1))
    frontline_staff = np.where(frontline_r > 0, frontline_r, staff)

    # --- arrears and pay
    arrears = at("arrears_months", last)
    arrears_workers = at("arrears_workers", last)
    arrears_amount = at("arrears_amount", last)
    typical_wage = np.where(wage_ok, wage_last, 4000.0)
    X[:, COL["arrears_months"]] = np.minimum(arrears, 24)
    X[:, COL["arrears_share"]] = np.clip(arrears_workers / staff, 0, 1)
    X[:, COL["arrears_wage_months"]] = np.clip(
        arrears_amount / (frontline_staff * typical_wage), 0, 24
    )
    prev3 = shifted(3)
    X[:, COL["arrears_growth"]] = np.where(prev3 >= 0, arrears - at("arrears_months", prev3), 0.0)
    rows = np.arange(n)
    safe_last = np.clip(last, 0, max(width - 1, 0))
    end_last = np.array([period_end_day(lo + c + p.month0) for c in range(width)] or [0])
    end_of = np.where(has, end_last[np.clip(safe_last, 0, len(end_last) - 1)], 0)
    paid_last = np.where(has, paid_day[rows, safe_last] if width else -1, -1)
    is_paid = (paid_last >= 0) & (paid_last <= day)
    # Wages are normally paid within the first half of the next month.
    X[:, COL["unpaid"]] = (has & ~is_paid & (day - end_of > PAY_GRACE_DAYS)).astype(float)
    delay_last = np.where(is_paid, paid_last - end_of, np.maximum(day - end_of, 0))
    X[:, COL["pay_delay"]] = np.where(has, np.clip(delay_last, 0, 120), 10.0)
    # Delay trend: the latest delay against the median of paid months 3..12 back.
    if width:
        ends = end_last[None, :]
        paid_cells = cells & (paid_day >= 0) & (paid_day <= day)
        delays = np.where(paid_cells, paid_day - ends, np.nan)
        cols = np.arange(width)[None, :]
        back = (cols <= (last[:, None] - 3)) & (cols >= (last[:, None] - 12))
        base_delay = _nanmedian(np.where(back, delays, np.nan))
    else:
        base_delay = np.full(n, np.nan)
    if width:
        recent6 = (cols > (last[:, None] - 6)) & (cols <= last[:, None]) & cells
        arrears_cells = np.where(recent6, np.nan_to_num(w["arrears_months"]), 0.0)
        X[:, COL["arrears_max_6"]] = np.minimum(arrears_cells.max(axis=1), 24)
        late = recent6 & (
            (paid_cells & (paid_day - ends > PAY_GRACE_DAYS + 5))
            | (~paid_cells & (day - ends > PAY_GRACE_DAYS))
        )
        X[:, COL["late_months_6"]] = late.sum(axis=1)
    X[:, COL["pay_delay_trend"]] = np.where(
        has & ~np.isnan(base_delay),
        np.clip(X[:, COL["pay_delay"]] - np.nan_to_num(base_delay, nan=10.0), -60, 120),
        0.0,
    )
    since_festival = _months_since_festival_month(np.maximum(last_abs, 0) + p.month0)
    X[:, COL["settler_pattern"]] = (
        has & (arrears >= 1) & (np.abs(arrears - since_festival) <= 1.5)
    ).astype(float)
    if width:
        am = np.where(cells, np.nan_to_num(w["arrears_months"]), np.nan)
        cols = np.arange(width)[None, :]
        recent = cols >= (last[:, None] - 13)
        peak = np.nanmax(np.where(recent, am, np.nan), axis=1, initial=-1.0)
        # A reset: a clean report after a report of 3+ months within the last 14.
        peak_col = np.nanargmax(np.where(recent & ~np.isnan(am), am, -1.0), axis=1)
        after_peak = cols > peak_col[:, None]
        clean_after = np.any(recent & after_peak & (np.nan_to_num(am, nan=99) == 0), axis=1)
        X[:, COL["arrears_reset_seen"]] = (has & (peak >= 3) & clean_after).astype(float)

    # --- social insurance, layoffs, production
    X[:, COL["si_months"]] = np.minimum(at("si_months", last), 24)
    layoffs = at("layoffs", last)
    X[:, COL["layoff_share"]] = np.clip(layoffs / staff, 0, 1)
    X[:, COL["layoff_notifiable"]] = ((layoffs >= 20) | (layoffs >= 0.1 * staff)).astype(float) * (
        layoffs > 0
    )
    status_last = np.where(has, _take(status.astype(float), last, 0), 0)
    X[:, COL["status"]] = np.maximum(status_last, 0)
    abnormal = np.zeros(n)
    for k in range(3):
        col = shifted(k)
        abnormal = abnormal + (_take(status.astype(float), col, 0) > 0)
    X[:, COL["abnormal_months_3"]] = abnormal
    year_ago = shifted(12)
    X[:, COL["status_seasonal"]] = (
        (_take(status.astype(float), year_ago, 0) > 0) & (status_last > 0)
    ).astype(float)

    # --- reporting discipline
    due = view.due_index
    never = ~has
    # Months due since the data begin (the first month anyone reported): a point that
    # never reported is silent since then, not since some earlier empty month.
    reported = view.cells.any(axis=0)
    data_start = int(np.argmax(reported)) if reported.any() else due + 1
    silent = np.where(has, np.maximum(due - last_abs, 0), np.clip(due + 1 - data_start, 0, 12))
    registered_recently = p.registered_day > day - 45
    silent = np.where(never & registered_recently, 0, silent)
    X[:, COL["silent_months"]] = np.clip(silent, 0, 12)
    if width and due >= 0:
        window = np.zeros(p.months, bool)
        window[max(0, due - 5) : due + 1] = True
        window_slice = window[lo : hi + 1]
        visible_any = view.cells
        first = np.argmax(visible_any, axis=1)
        started = np.where(visible_any.any(axis=1), first, data_start)
        cols_abs = np.arange(lo, hi + 1)[None, :]
        expected = window_slice[None, :] & (cols_abs >= started[:, None])
        missing = (expected & ~cells).sum(axis=1)
        X[:, COL["missing_6"]] = np.where(never & registered_recently, 0, missing)
    X[:, COL["never_reported"]] = (never & ~registered_recently).astype(float)
    X[:, COL["bad_data"]] = bad.astype(float)

    # --- wage anomalies: own history, last year, peers in the same month
    if width:
        logw = np.where(
            cells & (w["wage"] >= WAGE_MIN) & (w["wage"] <= WAGE_MAX), np.log(w["wage"]), np.nan
        )
        cols = np.arange(width)[None, :]
        prior = (cols < last[:, None]) & (cols >= last[:, None] - 12)
        hist = np.where(prior, logw, np.nan)
        med = _nanmedian(hist)
        mad = _nanmedian(np.abs(hist - med[:, None]))
        count = np.sum(~np.isnan(hist), axis=1)
        lw_last = _take(logw, last)
        change = lw_last - med
        ok = wage_ok & (count >= 3) & ~np.isnan(change)
        scale = np.maximum(1.4826 * np.nan_to_num(mad, nan=0.0), 0.03)
        X[:, COL["wage_z_own"]] = np.where(ok, np.clip(change / scale, -20, 20), 0.0)
        lw_year = _take(logw, year_ago)
        X[:, COL["wage_yoy"]] = np.where(
            wage_ok & ~np.isnan(lw_year), np.clip(lw_last - lw_year, -3, 3), 0.0
        )
        keys = (p.industry * 1000 + p.county) * 100 + np.maximum(last, 0)
        X[:, COL["wage_z_peer"]] = np.clip(
            _robust_group_z(np.nan_to_num(change), keys, ok), -20, 20
        )
        hc6 = _take(w["headcount"], shifted(6))
        X[:, COL["headcount_change"]] = np.where(
            has & ~np.isnan(hc6) & (headcount_r > 0),
            np.clip(np.log((headcount_r + 1) / (np.nan_to_num(hc6) + 1)), -3, 3),
            0.0,
        )
        ot = np.where(cells, w["overtime"], np.nan)
        ot_med = _nanmedian(np.where(prior, ot, np.nan))
        ot_last = _take(ot, last)
        X[:, COL["overtime_change"]] = np.where(
            ~np.isnan(ot_last) & ~np.isnan(ot_med), np.clip(ot_last - ot_med, -200, 200), 0.0
        )

    # --- petitions, informants, incidents at the point
    _event_features(view, X)
    reported_clean = has & (arrears == 0) & (X[:, COL["unpaid"]] == 0)
    signals = X[:, COL["petitions_arrears_90"]] + X[:, COL["precursors_90"]]
    X[:, COL["self_report_gap"]] = np.where(reported_clean, signals, 0.0)

    # --- context
    X[:, COL["log_headcount"]] = np.log1p(np.maximum(p.headcount, 0))
    X[:, COL["industry"]] = p.industry
    X[:, COL["days_to_festival"]] = days_to_festival(today)
    _county_features(view, X, has, arrears, silent)
    return Features(day, X, np.where(has, last_abs, -1))


def _window_counts(points: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    linked = points >= 0
    return np.bincount(
        points[linked], weights=None if weights is None else weights[linked], minlength=n
    ).astype(float)


def _event_features(view: PanelView, X: np.ndarray) -> None:
    p = view.panel
    day = view.day
    n = p.n
    lo = np.searchsorted(p.ev_day, day - 364, side="left")
    hi = np.searchsorted(p.ev_day, day, side="right")
    sel = slice(lo, hi)
    vis = view.events[sel]
    ev_day = p.ev_day[sel][vis]
    point = p.ev_point[sel][vis]
    source = p.ev_source[sel][vis]
    etype = p.ev_type[sel][vis]
    category = p.ev_category[sel][vis]
    people = p.ev_people[sel][vis]
    flags = p.ev_flags[sel][vis]
    incident = p.incident_mask()[sel][vis]
    age = day - ev_day
    d30, d90 = age < 30, age < 90
    petition = source == SOURCE_PETITION
    report = source == SOURCE_REPORT
    X[:, COL["petitions_30"]] = _window_counts(point[petition & d30 & ~incident], n)
    X[:, COL["petitions_90"]] = _window_counts(point[petition & d90 & ~incident], n)
    X[:, COL["petition_people_90"]] = _window_counts(
        point[petition & d90 & ~incident], n, people[petition & d90 & ~incident].astype(float)
    )
    arrears_cat = np.isin(category, ARREARS_CATEGORIES)
    X[:, COL["petitions_arrears_90"]] = _window_counts(
        point[petition & d90 & ~incident & arrears_cat], n
    )
    said = p.ev_months[sel][vis].astype(float)
    owed_said = np.zeros(n)
    linked90 = d90 & (point >= 0) & ~incident
    np.maximum.at(owed_said, point[linked90], said[linked90])
    X[:, COL["months_owed_said_90"]] = owed_said
    d180 = age < 180
    X[:, COL["petitions_arrears_180"]] = _window_counts(
        point[petition & d180 & ~incident & arrears_cat], n
    )
    precursor = report & (etype == EVENT_CODES["precursor"])
    # A precursor counts as much as its informant is reliable (1 when unchecked).
    weight = p.event_weights()[sel][vis]
    for name, window in (("precursors_30", d30), ("precursors_90", d90), ("precursors_180", d180)):
        chosen = precursor & window
        X[:, COL[name]] = _window_counts(point[chosen], n, weight[chosen])
    talk = (flags & FLAG_COLLECTIVE_TALK) > 0
    X[:, COL["collective_talk_90"]] = _window_counts(point[talk & d90 & ~incident], n)
    gone = (flags & FLAG_OWNER_GONE) > 0
    X[:, COL["owner_gone_90"]] = _window_counts(point[gone & d90], n)
    opinion = report & (etype == EVENT_CODES["online_opinion"])
    X[:, COL["opinion_90"]] = _window_counts(point[opinion & d90], n)
    X[:, COL["incidents_90"]] = _window_counts(point[incident & d90], n)
    X[:, COL["incidents_365"]] = _window_counts(point[incident], n)
    since = np.full(n, 730.0)
    linked = incident & (point >= 0)
    if linked.any():
        np.minimum.at(since, point[linked], age[linked].astype(float))
    X[:, COL["days_since_incident"]] = since


def _county_features(
    view: PanelView, X: np.ndarray, has: np.ndarray, arrears: np.ndarray, silent: np.ndarray
) -> None:
    """Pressure around the point: its county's petitions against their own baseline,
    and how many of its sector's and county's points are in arrears or silent."""
    p = view.panel
    day = view.day
    counties = len(p.counties)
    lo = np.searchsorted(p.ev_day, day - 210, side="left")
    hi = np.searchsorted(p.ev_day, day, side="right")
    vis = view.events[lo:hi]
    petition = (p.ev_source[lo:hi] == SOURCE_PETITION) & vis
    age = day - p.ev_day[lo:hi]
    county = p.ev_county[lo:hi]
    recent = np.bincount(county[petition & (age < 30)], minlength=counties).astype(float)
    base = np.bincount(county[petition & (age >= 30)], minlength=counties).astype(float)
    # Shrink towards "no change" with a pseudo-count so that small counties do not jump.
    ratio = (recent + 2.0) / (base * 30.0 / 180.0 + 2.0)
    X[:, COL["county_petition_ratio"]] = ratio[p.county]
    troubled = (has & (arrears > 0) & (X[:, COL["settler_pattern"]] == 0)) | (silent >= 2)
    for key, column in ((p.industry, "sector_arrears_share"), (p.county, "county_arrears_share")):
        size = np.bincount(key, minlength=key.max() + 1 if len(key) else 1).astype(float)
        hits = np.bincount(key, weights=troubled.astype(float), minlength=len(size))
        X[:, COL[column]] = (hits / np.maximum(size, 1))[key]
