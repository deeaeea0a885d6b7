"""The ids of the records behind a finding, most relevant first (interfaces §4 `source_ids`).

A point's finding names, factor by factor in the order of their weights, the records
the factor rests on:

- arrears, group arrears (red): the latest report, then those of the 5 months before
  it that show arrears or wages paid late;
- social insurance, layoffs, reporting: the latest report;
- production, halted with wages unpaid: the latest report, the reduced or halted months
  of the 2 before it, and the same month a year before when the halt is seasonal;
- wage anomaly: the latest report, the one a year before (a year-on-year drop) and the
  one 6 months before (a headcount drop);
- petitions / informants: the petitions (not incidents) / informant reports about the
  point in the last 90 days;
- history: the incidents at the point in the last 365 days;
- gap: the arrears-related petitions and the precursor reports of the last 90 days;
- owner gone, collective talk (rules): the records of the last 90 days that say so;

then, whatever the factors, the latest report and the petitions and informant reports
of the last 90 days (newest first). A county's finding names the petitions of its
surge and the records behind its riskiest points. Only real record ids, never names,
phones or informant ids; at most `MAX_IDS` per finding.

Everything is computed for the chosen points at once with array operations; the only
loop per point joins a few short lists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.base import Factor
from detectors.features import ARREARS_CATEGORIES, COL, PAY_GRACE_DAYS, Features
from detectors.panel import (
    EVENT_CODES,
    FLAG_COLLECTIVE_TALK,
    FLAG_OWNER_GONE,
    SOURCE_PETITION,
    SOURCE_REPORT,
    PanelView,
    period_end_day,
)
from monitor.season import from_day_number

#: At most this many ids per finding (`FindingDraft.evidence` keeps 50).
MAX_IDS = 50
#: Ids taken from each point behind a county factor.
IDS_PER_COUNTY_POINT = 8
#: Points behind a county's mean risk whose records are named.
MEAN_RISK_POINTS = 5

# Wage-report slots per point: which months' reports back the factors.
_LATEST = 0
_ARREARS = (1, 2, 3, 4, 5)  # the 5 months before the latest, with arrears or late pay
_ABNORMAL = (6, 7)  # the 2 months before the latest, production reduced or halted
_SEASONAL = 8  # the same month a year before, when the halt is seasonal
_HALF_YEAR = 9  # 6 months before the latest (headcount change)
_YEAR_AGO = 10  # 12 months before the latest (wage year on year)
_SLOTS = 11

WAGE_SLOTS: dict[str, tuple[int, ...]] = {
    "arrears": (_LATEST, *_ARREARS),
    "rule_group_arrears_red": (_LATEST, *_ARREARS),
    "social_insurance": (_LATEST,),
    "rule_social_insurance": (_LATEST,),
    "layoffs": (_LATEST,),
    "rule_layoff_notifiable": (_LATEST,),
    "reporting": (_LATEST,),
    "production": (_LATEST, *_ABNORMAL, _SEASONAL),
    "rule_halted_unpaid": (_LATEST, *_ABNORMAL),
    "wage_anomaly": (_LATEST, _YEAR_AGO, _HALF_YEAR),
}

# Event bits: which events back the factors.
_PETITION_90 = 1
_REPORT_90 = 2
_INCIDENT_365 = 4
_GAP_90 = 8
_OWNER_GONE_90 = 16
_TALK_90 = 32
_RECENT_90 = 64
EVENT_BITS: dict[str, int] = {
    "petitions": _PETITION_90,
    "informants": _REPORT_90,
    "history": _INCIDENT_365,
    "gap": _GAP_90,
    "rule_owner_gone": _OWNER_GONE_90,
    "rule_collective_talk": _TALK_90,
}


def _wage_ids(view: PanelView, f: Features, chosen: np.ndarray) -> list[list[str | None]]:
    """Per chosen point, the report id in each slot (None: no such report)."""
    p = view.panel
    day = view.day
    m = len(chosen)
    if m == 0 or p.months == 0:
        return [[None] * _SLOTS for _ in range(m)]
    # The features' window (see features.compute): months lo..hi of the panel.
    today = from_day_number(day)
    hi = min(today.year * 12 + today.month - 1 - p.month0, p.months - 1)
    lo = max(0, hi - 24)
    last = f.last_col[chosen].astype(np.int64)
    has = last >= 0
    rows = chosen[:, None]

    def cells_at(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Panel columns `k` months before the latest report and whether each is a
        visible report inside the window."""
        col = last[:, None] - k[None, :]
        ok = has[:, None] & (col >= lo) & (col <= hi)
        safe = np.clip(col, 0, p.months - 1)
        ok &= view.cells[rows, safe]
        return safe, ok

    cols = np.full((m, _SLOTS), -1, dtype=np.int64)
    cols[:, _LATEST] = np.where(has, last, -1)
    # Arrears: the months before the latest whose report shows arrears or late wages.
    safe, ok = cells_at(np.arange(1, 6))
    ends = np.array([period_end_day(p.month0 + c) for c in range(p.months)], dtype=np.int64)
    end = ends[safe]
    paid_day = p.paid_day[rows, safe]
    paid = (paid_day >= 0) & (paid_day <= day)
    late = (paid & (paid_day - end > PAY_GRACE_DAYS + 5)) | (~paid & (day - end > PAY_GRACE_DAYS))
    owed = np.nan_to_num(p.wage["arrears_months"][rows, safe]) > 0
    cols[:, list(_ARREARS)] = np.where(ok & (owed | late), safe, -1)
    # Production: the months before the latest that were reduced or halted, and the
    # same month a year before when this year's halt repeats it (seasonal).
    safe, ok = cells_at(np.array([1, 2]))
    cols[:, list(_ABNORMAL)] = np.where(ok & (p.status[rows, safe] > 0), safe, -1)
    safe, ok = cells_at(np.array([12, 6]))
    seasonal = f.X[chosen, COL["status_seasonal"]] > 0
    cols[:, _SEASONAL] = np.where(ok[:, 0] & seasonal, safe[:, 0], -1)
    # Wage anomaly: the comparison reports its words name.
    yoy = f.X[chosen, COL["wage_yoy"]] <= -0.15
    shrink = f.X[chosen, COL["headcount_change"]] <= -0.2
    cols[:, _YEAR_AGO] = np.where(ok[:, 0] & yoy, safe[:, 0], -1)
    cols[:, _HALF_YEAR] = np.where(ok[:, 1] & shrink, safe[:, 1], -1)
    ids = p.report_ids[rows, np.maximum(cols, 0)]
    ids[cols < 0] = None
    out: list[list[str | None]] = ids.tolist()
    return out


def _event_ids(
    view: PanelView, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str], list[int]]:
    """The events of the last 365 days about the chosen points, grouped by point and
    newest first: (points' first index, end index) into (ids, bits)."""
    p = view.panel
    day = view.day
    lo = np.searchsorted(p.ev_day, day - 364, side="left")
    hi = np.searchsorted(p.ev_day, day, side="right")
    wanted = np.zeros(p.n, dtype=bool)
    wanted[chosen] = True
    point = p.ev_point[lo:hi]
    sel = view.events[lo:hi] & (point >= 0)
    sel[sel] = wanted[point[sel]]
    idx = lo + np.nonzero(sel)[0]
    idx = idx[::-1]  # newest first (events are sorted by day)
    point = p.ev_point[idx]
    order = np.argsort(point, kind="stable")
    idx, point = idx[order], point[order]
    recent = day - p.ev_day[idx] < 90
    source = p.ev_source[idx]
    petition = source == SOURCE_PETITION
    report = source == SOURCE_REPORT
    incident = p.incident_mask()[idx]
    flags = p.ev_flags[idx]
    arrears = np.isin(p.ev_category[idx], ARREARS_CATEGORIES)
    precursor = report & (p.ev_type[idx] == EVENT_CODES["precursor"])
    bits = (
        np.where(recent, _RECENT_90, 0)
        | np.where(petition & recent & ~incident, _PETITION_90, 0)
        | np.where(report & recent, _REPORT_90, 0)
        | np.where(incident, _INCIDENT_365, 0)
        | np.where(recent & ((petition & arrears & ~incident) | precursor), _GAP_90, 0)
        | np.where(recent & ((flags & FLAG_OWNER_GONE) > 0), _OWNER_GONE_90, 0)
        | np.where(recent & ~incident & ((flags & FLAG_COLLECTIVE_TALK) > 0), _TALK_90, 0)
    )
    first = np.searchsorted(point, chosen, side="left")
    end = np.searchsorted(point, chosen, side="right")
    return first, end, [str(x) for x in p.ev_ids[idx].tolist()], bits.tolist()


def point_sources(
    view: PanelView,
    f: Features,
    chosen: np.ndarray,
    factors: Sequence[Sequence[Factor]],
    sources: list[list[str]],
) -> None:
    """Fill `sources[i]` for every chosen point `i` with the ids of the records behind
    its `factors[i]`, most relevant first (see the module's list)."""
    chosen = np.asarray(chosen, dtype=np.int64)
    if not len(chosen):
        return
    wage = _wage_ids(view, f, chosen)
    first, end, ids, bits = _event_ids(view, chosen)
    for k, i in enumerate(chosen.tolist()):
        slots = wage[k]
        a, b = int(first[k]), int(end[k])
        out: list[str] = []
        for factor in factors[i]:
            wanted = WAGE_SLOTS.get(factor.code)
            if wanted:
                out.extend(s for s in (slots[j] for j in wanted) if s)
            bit = EVENT_BITS.get(factor.code)
            if bit:
                out.extend(ids[e] for e in range(a, b) if bits[e] & bit)
        latest = slots[_LATEST]
        if latest:
            out.append(latest)
        out.extend(ids[e] for e in range(a, b) if bits[e] & _RECENT_90)
        sources[i] = list(dict.fromkeys(out))[:MAX_IDS]


def county_sources(
    factors: Sequence[Factor],
    surge_ids: Sequence[str],
    high_points: Sequence[int],
    mean_points: Sequence[int],
    by_point: Sequence[Sequence[str]],
) -> list[str]:
    """The ids behind a county's factors, in their order: the petitions of its surge
    (newest first), the records behind its riskiest points (those named in the
    high-risk factor, then those that raise its mean risk most)."""
    out: list[str] = []
    for factor in factors:
        if factor.code == "county_petition_surge":
            out.extend(surge_ids)
        elif factor.code in ("county_high_risk_points", "county_mean_risk"):
            chosen = high_points if factor.code == "county_high_risk_points" else mean_points
            for i in chosen:
                out.extend(by_point[i][:IDS_PER_COUNTY_POINT])
    return list(dict.fromkeys(out))[:MAX_IDS]
