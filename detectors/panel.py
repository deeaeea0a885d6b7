"""The detectors' view of the stored rows: one columnar `Panel`, masked to an as-of day.

A panel holds every monitoring point, its monthly reports as (points x months) arrays
and the petitions and informant reports as sorted columns. It is built by
`PanelBuilder` from rows, whether they come from the database (`detectors.load`) or
straight from the simulator, so both paths compute the same thing.

Time travel without leakage: every cell and event carries the local day from which
the union could have known it (`visible_day`). A record that came in live (MQTT,
HTTP) is visible from the day it was stored; a record imported from a file (history
loaded after the fact) from its own date, and a monthly report from its filing
deadline. `Panel.view(as_of)` hides everything not yet visible, and also dates inside
visible records that lie after the as-of day (a wage paid later is "not yet paid").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

import numpy as np

from detectors.textrules import EnterpriseIndex
from monitor.clock import SHANGHAI, add_months, local_date
from monitor.records import CATEGORIES, EVENT_TYPES, INDUSTRIES
from monitor.season import day_number

CHANNEL_CODES = {"hotline_12351": 0, "online": 1, "visit": 2, "letter": 3}
EVENT_CODES = {name: i for i, name in enumerate(EVENT_TYPES)}
CATEGORY_CODES = {name: i for i, name in enumerate(CATEGORIES)}
INDUSTRY_CODES = {name: i for i, name in enumerate(INDUSTRIES)}
STATUS_CODES = {"normal": 0, "reduced": 1, "halted": 2}

SOURCE_PETITION, SOURCE_REPORT = 0, 1
#: Informant event types that are incidents (with collective petitions of 5 or more).
INCIDENT_EVENTS = frozenset(
    EVENT_CODES[e] for e in ("gathering", "work_stoppage", "road_blocking", "extreme_act")
)
COLLECTIVE = 5

# Words in informants' and petitioners' text that the rules look for (Chinese and,
# for replayed English records, English).
OWNER_GONE = re.compile(r"跑路|失联|联系不上|人去楼空|转移资产|逃匿|不见了|absconded|ran off|fled")
COLLECTIVE_TALK = re.compile(
    r"集体上访|一起去|集体到|堵路|讨个说法|串联|号召|扬言|商量集体|集体讨薪|讨薪的事"
)
STORMING = re.compile(
    r"冲击|打砸|闯入|围堵|冲进|storm(?:ed|s|ing)?\s+(?:the\s+|a\s+)?(?:office|government|building|compan)"
    r"|smash(?:ed|es|ing)?\s+(?:the\s+)?(?:company|office|factory)|ransack|besieg",
    re.IGNORECASE,
)
SELF_HARM = re.compile(
    r"跳楼|自杀|自焚|塔吊|轻生|以死相逼|(?:jump|leap)(?:s|ed|ing|t)?\s+(?:off|from)|suicid"
    r"|self-immolat",
    re.IGNORECASE,
)


_CLAUSES = re.compile(r"[，。；;,!！?？]")
_MONTHS = re.compile(r"(\d{1,2}|[一二两三四五六七八九十]{1,3})个(?:多)?月")
_WAGE_WORDS = re.compile(r"工资|薪|工钱|报酬|欠|拖|白条|劳务费")
_CN_DIGITS = {
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}


def _cn_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    if text.startswith("十"):
        return 10 + _CN_DIGITS.get(text[1:], 0)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return _CN_DIGITS.get(tens, 1) * 10 + _CN_DIGITS.get(ones, 0)
    return _CN_DIGITS.get(text, 0)


def months_owed_said(text: str) -> int:
    """The months of wages a text says are owed ("拖欠工资三个月" -> 3), 0 if none: what
    workers tell the hotline is a check on what the enterprise reports."""
    best = 0
    for clause in _CLAUSES.split(text):
        if not _WAGE_WORDS.search(clause):
            continue
        for match in _MONTHS.finditer(clause):
            best = max(best, min(_cn_number(match.group(1)), 36))
    return best


def month_index(value: date) -> int:
    return value.year * 12 + value.month - 1


def month_of_index(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def period_end_day(index: int) -> int:
    """Day number of the last day of the month `index`."""
    return day_number(add_months(month_of_index(index), 1)) - 1


ROAD_BLOCK = re.compile(
    r"堵路|堵塞交通|拦路|封路|堵马路|block(?:ed|s|ing)?\s+(?:the\s+|a\s+)?(?:road|street|highway|traffic)",
    re.IGNORECASE,
)


def text_flags(text: str) -> int:
    """Bit flags of what a free text says: 1 owner gone, 2 collective talk, 4 storming,
    8 self-harm, 16 road blocking."""
    flags = 0
    if OWNER_GONE.search(text):
        flags |= 1
    if COLLECTIVE_TALK.search(text):
        flags |= 2
    if STORMING.search(text):
        flags |= 4
    if SELF_HARM.search(text):
        flags |= 8
    if ROAD_BLOCK.search(text):
        flags |= 16
    return flags


FLAG_OWNER_GONE, FLAG_COLLECTIVE_TALK, FLAG_STORMING, FLAG_SELF_HARM = 1, 2, 4, 8
FLAG_ROAD_BLOCK = 16

WAGE_COLUMNS = (
    "headcount",
    "frontline",
    "wage",
    "arrears_amount",
    "arrears_workers",
    "arrears_months",
    "si_months",
    "layoffs",
    "overtime",
)


@dataclass
class Panel:
    """Stored rows as arrays. Months are indexed from `month0` (a `month_index`)."""

    point_ids: list[str]
    names: list[str]
    #: County index into `counties` (region codes) per point.
    county: np.ndarray
    counties: list[str]
    industry: np.ndarray
    headcount: np.ndarray
    #: Day number from which a point counts as registered (for "never reported").
    registered_day: np.ndarray
    month0: int
    months: int
    #: (points x months) report cells; NaN where no report.
    wage: dict[str, np.ndarray]
    status: np.ndarray
    paid_day: np.ndarray
    visible_day: np.ndarray
    report_ids: np.ndarray
    #: Events (petitions and informant reports), sorted by `day`.
    ev_day: np.ndarray
    ev_visible: np.ndarray
    ev_point: np.ndarray
    ev_county: np.ndarray
    ev_source: np.ndarray
    #: Channel code for petitions, event-type code for informant reports.
    ev_type: np.ndarray
    ev_category: np.ndarray
    ev_people: np.ndarray
    ev_flags: np.ndarray
    #: Months of wages owed that the text says (0: says nothing).
    ev_months: np.ndarray
    ev_ids: np.ndarray
    #: How much each event counts (informants' reliability); empty: every event counts 1.
    ev_weight: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    #: Ground-truth incidents (evaluation only): point index and day.
    truth_point: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    truth_day: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: Derived arrays computed once (incident mask, report deadlines).
    cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.point_ids)

    def view(self, as_of: date) -> PanelView:
        return PanelView(self, day_number(as_of))

    def last_day(self) -> int:
        """The latest day the panel holds data for."""
        days = [int(self.ev_day.max())] if len(self.ev_day) else []
        if self.months:
            days.append(period_end_day(self.month0 + self.months - 1))
        return max(days) if days else day_number(date.today())

    def event_weights(self) -> np.ndarray:
        """`ev_weight`, or ones for a panel built without it."""
        if len(self.ev_weight) == len(self.ev_day):
            return self.ev_weight
        return np.ones(len(self.ev_day))

    def incident_mask(self) -> np.ndarray:
        """Events that are incidents in the system's own history."""
        if "incidents" not in self.cache:
            self.cache["incidents"] = self._incidents()
        return self.cache["incidents"]

    def _incidents(self) -> np.ndarray:
        informant = (self.ev_source == SOURCE_REPORT) & np.isin(self.ev_type, list(INCIDENT_EVENTS))
        collective = (self.ev_people >= COLLECTIVE) & (
            (self.ev_source == SOURCE_PETITION)
            | ((self.ev_source == SOURCE_REPORT) & (self.ev_type == EVENT_CODES["petition"]))
        )
        return informant | collective


@dataclass
class PanelView:
    """A panel as it was known at the end of local day `day` (a day number)."""

    panel: Panel
    day: int

    def __post_init__(self) -> None:
        p = self.panel
        self.cells = ~np.isnan(p.wage["wage"]) & (p.visible_day <= self.day)
        self.events = p.ev_visible <= self.day
        # The latest month whose report is due by now: reports are due by the deadline
        # day of the next month (the same rule that makes imported reports visible).
        self.due_index = int(np.searchsorted(self._due_days(), self.day, side="right")) - 1

    def _due_days(self) -> np.ndarray:
        p = self.panel
        if "deadlines" not in p.cache:
            p.cache["deadlines"] = np.array(
                [period_end_day(p.month0 + m) + DEADLINE_DAYS for m in range(p.months)],
                dtype=np.int64,
            )
        return p.cache["deadlines"]

    def paid(self) -> np.ndarray:
        """Cells whose wages were paid by the as-of day."""
        p = self.panel
        return self.cells & (p.paid_day >= 0) & (p.paid_day <= self.day)


#: Monthly reports are due by this day of the following month (the union's deadline);
#: an imported report counts as known from then on.
DEADLINE_DAYS = 15


# --------------------------------------------------------------------------- building


def _norm_name(name: str | None) -> str:
    return re.sub(r"\s+", "", name or "")


@dataclass
class _Events:
    day: list[int] = field(default_factory=list)
    visible: list[int] = field(default_factory=list)
    point: list[int] = field(default_factory=list)
    county: list[int] = field(default_factory=list)
    source: list[int] = field(default_factory=list)
    type: list[int] = field(default_factory=list)
    category: list[int] = field(default_factory=list)
    people: list[int] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    months: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)


class PanelBuilder:
    """Collects rows (dicts with the field names of interfaces §2, plus `source` and `ingested_at`
    when they come from the database) and builds a `Panel`."""

    def __init__(self, zone: tzinfo = SHANGHAI, *, trust_record_dates: bool = False) -> None:
        self.zone = zone
        #: Count every record from its own date (history replayed live, as the demo does).
        self.trust_record_dates = trust_record_dates
        self.points: list[Mapping[str, Any]] = []
        self.wages: list[Mapping[str, Any]] = []
        self.events = _Events()
        self._index: dict[str, int] = {}
        self._names: dict[str, int] = {}
        #: Points by the shorter names petitioners use ("银城建筑" for 益阳市银城建筑有限公司).
        self._enterprises = EnterpriseIndex()
        self._counties: dict[str, int] = {}

    def _county(self, code: str) -> int:
        if code not in self._counties:
            self._counties[code] = len(self._counties)
        return self._counties[code]

    def add_points(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            pid = str(row["point_id"])
            if pid in self._index:
                continue
            self._index[pid] = len(self.points)
            self._names.setdefault(_norm_name(row.get("name")), len(self.points))
            self._enterprises.add(row.get("name"), len(self.points))
            self._county(str(row["region_code"]))
            self.points.append(row)

    def point_of(
        self, point_id: str | None, enterprise_name: str | None, text: str | None = None
    ) -> int:
        """The point a record is about: by id, else by exact registered name, else by the
        registered enterprise its `enterprise_name` or its free text names (a petition
        without point_id that says "西地省鑫庆医药有限公司拖欠工资" counts toward that point),
        else -1."""
        if point_id and point_id in self._index:
            return self._index[point_id]
        if enterprise_name:
            exact = self._names.get(_norm_name(enterprise_name), -1)
            if exact >= 0:
                return exact
            named = self._enterprises.find(enterprise_name + "公司")
            if named >= 0:
                return named
        if text and not point_id:
            return self._enterprises.find(text)
        return -1

    def add_wages(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.wages.extend(rows)

    def _visible(self, own_day: int, row: Mapping[str, Any]) -> int:
        """Live records are known from when they were stored; file imports are history
        and count from their own date."""
        ingested = row.get("ingested_at")
        if ingested is None or row.get("source") == "file" or self.trust_record_dates:
            return own_day
        return max(own_day, day_number(local_date(ingested, self.zone)))

    def _instant_day(self, value: Any) -> int:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            return day_number(local_date(value, self.zone))
        return day_number(value)

    def add_petitions(
        self, rows: Iterable[Mapping[str, Any]], infer: Callable[[str], str] | None = None
    ) -> None:
        ev = self.events
        for row in rows:
            day = (
                day_number(row["received_date"])
                if row.get("received_date") is not None
                else self._instant_day(row["received_at"])
            )
            category = row.get("category") or (infer(row.get("summary") or "") if infer else None)
            ev.day.append(day)
            ev.visible.append(self._visible(day, row))
            ev.point.append(
                self.point_of(row.get("point_id"), row.get("enterprise_name"), row.get("summary"))
            )
            ev.county.append(self._county(str(row["region_code"])))
            ev.source.append(SOURCE_PETITION)
            ev.type.append(CHANNEL_CODES.get(str(row.get("channel")), 0))
            ev.category.append(CATEGORY_CODES.get(str(category), -1))
            ev.people.append(int(row.get("people_involved") or 1))
            summary = str(row.get("summary") or "")
            ev.flags.append(text_flags(summary))
            ev.months.append(months_owed_said(summary))
            ev.ids.append(str(row["petition_id"]))
            ev.weight.append(1.0)

    def add_reports(self, rows: Iterable[Mapping[str, Any]]) -> None:
        ev = self.events
        for row in rows:
            day = (
                day_number(row["occurred_date"])
                if row.get("occurred_date") is not None
                else self._instant_day(row["occurred_at"])
            )
            ev.day.append(day)
            ev.visible.append(self._visible(day, row))
            ev.point.append(
                self.point_of(
                    row.get("point_id"), row.get("enterprise_name"), row.get("description")
                )
            )
            ev.county.append(self._county(str(row["region_code"])))
            ev.source.append(SOURCE_REPORT)
            ev.type.append(EVENT_CODES.get(str(row.get("event_type")), EVENT_CODES["other"]))
            ev.category.append(CATEGORY_CODES.get(str(row.get("category")), -1))
            ev.people.append(int(row.get("people_involved") or 0))
            description = str(row.get("description") or "")
            ev.flags.append(text_flags(description))
            ev.months.append(months_owed_said(description))
            ev.ids.append(str(row["report_id"]))
            # The informant's reliability over the prior (monitor.reliability); 1 when
            # nobody has checked their reports yet.
            ev.weight.append(float(row.get("weight") or 1.0) if "weight" in row else 1.0)

    def build(self, *, first_month: date | None = None, last_month: date | None = None) -> Panel:
        n = len(self.points)
        periods = [_period_index(r["period"]) for r in self.wages]
        lo = month_index(first_month) if first_month else min(periods, default=None)
        hi = month_index(last_month) if last_month else max(periods, default=None)
        if lo is None or hi is None:
            lo = hi = month_index(date.today())
        months = max(hi - lo + 1, 1)
        wage = {name: np.full((n, months), np.nan) for name in WAGE_COLUMNS}
        status = np.full((n, months), -1, dtype=np.int8)
        paid_day = np.full((n, months), -1, dtype=np.int64)
        visible = np.full((n, months), np.iinfo(np.int64).max, dtype=np.int64)
        report_ids = np.full((n, months), None, dtype=object)
        for row, m in zip(self.wages, periods, strict=True):
            i = self._index.get(str(row["point_id"]))
            if i is None or not lo <= m <= hi:
                continue
            j = m - lo
            wage["headcount"][i, j] = row["headcount"]
            wage["frontline"][i, j] = row.get("frontline_headcount", 0)
            wage["wage"][i, j] = row["avg_frontline_wage"]
            wage["arrears_amount"][i, j] = row.get("arrears_amount") or 0.0
            wage["arrears_workers"][i, j] = row.get("arrears_workers") or 0
            wage["arrears_months"][i, j] = row.get("arrears_months") or 0
            wage["si_months"][i, j] = row.get("social_insurance_arrears_months") or 0
            wage["layoffs"][i, j] = row.get("layoffs_planned") or 0
            overtime = row.get("overtime_hours_avg")
            wage["overtime"][i, j] = np.nan if overtime in (None, "") else float(overtime)
            status[i, j] = STATUS_CODES.get(str(row.get("production_status")), 0)
            paid = row.get("wages_paid_on")
            if paid not in (None, ""):
                paid_day[i, j] = day_number(
                    date.fromisoformat(paid) if isinstance(paid, str) else paid
                )
            visible[i, j] = self._visible(period_end_day(m) + DEADLINE_DAYS, row)
            report_ids[i, j] = str(row["report_id"])
        ev = self.events
        order = np.argsort(np.asarray(ev.day, dtype=np.int64), kind="stable")

        def col(values: list[Any], dtype: Any) -> np.ndarray:
            return np.asarray(values, dtype=dtype)[order] if values else np.zeros(0, dtype)

        counties = sorted(self._counties, key=self._counties.__getitem__)
        return Panel(
            point_ids=[str(r["point_id"]) for r in self.points],
            names=[str(r.get("name") or "") for r in self.points],
            county=np.array(
                [self._counties[str(r["region_code"])] for r in self.points], dtype=np.int64
            ),
            counties=counties,
            industry=np.array(
                [INDUSTRY_CODES.get(str(r.get("industry")), 5) for r in self.points],
                dtype=np.int64,
            ),
            headcount=np.array([float(r.get("headcount") or 0) for r in self.points]),
            registered_day=np.array(
                [
                    self._visible(
                        0, {"source": r.get("source"), "ingested_at": r.get("created_at")}
                    )
                    for r in self.points
                ],
                dtype=np.int64,
            ),
            month0=lo,
            months=months,
            wage=wage,
            status=status,
            paid_day=paid_day,
            visible_day=visible,
            report_ids=report_ids,
            ev_day=col(ev.day, np.int64),
            ev_visible=col(ev.visible, np.int64),
            ev_point=col(ev.point, np.int64),
            ev_county=col(ev.county, np.int64),
            ev_source=col(ev.source, np.int8),
            ev_type=col(ev.type, np.int8),
            ev_category=col(ev.category, np.int8),
            ev_people=col(ev.people, np.int64),
            ev_flags=col(ev.flags, np.int8),
            ev_months=col(ev.months, np.int8),
            ev_ids=col(ev.ids, object),
            ev_weight=col(ev.weight, np.float64),
        )


def _period_index(value: Any) -> int:
    if isinstance(value, str):
        year, month = value.split("-")[:2]
        return int(year) * 12 + int(month) - 1
    return month_index(value)
