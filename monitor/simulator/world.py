"""The simulated region: enterprises with a hidden health, and what the union gets to see.

Each monitoring point is an enterprise with a latent health `h` (mean-reverting, hit by
its own shocks, by sector downturns and county shocks, sometimes collapsing at once).
From `h` follow the *true* wages paid or owed, social insurance, production and
layoffs, and the hazard of a collective incident. What the union sees is a distorted
view of that truth:

- monthly self-reports, honest for some enterprises, hiding arrears for others, and
  missing when "dodgers" are in trouble (or when anyone is simply late);
- construction firms that settle wages once a year before the Spring Festival report
  arrears that grow every month and are not a risk as long as they do settle;
- noisy enterprises (volatile wages) and seasonal ones (mining halts in the rainy
  season, factories reduce output around the festival) that are not at risk;
- petitions from workers, in Chinese, with or without a category, linked to the
  enterprise by id, by exact name, by a nickname nobody can match, or not at all;
- informants' reports of precursors (wages later and later, owner unreachable, talk of
  going to the government together) where an informant happens to be, and noise;
- incidents: mostly from distress, a share with little or no warning (an owner who
  absconds, a sudden collapse, disputes over pay rises that no arrears signal shows).

The simulation steps month by month (`Simulator.step()`), vectorised over points so a
100,000-point region runs in seconds; text is produced only when records are written.
Calibration constants come from the strike map (`calibration.py`); the behavioural
parameters here are judgement, documented in docs/detectors.md.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from monitor.clock import add_months
from monitor.regions import DEMO_CITY, DEMO_REGIONS, tier_of
from monitor.season import day_number, phase_arrays, spring_festival
from monitor.simulator.calibration import BANDS, CALIBRATION
from monitor.simulator.geography import counties_of

INDUSTRIES = ("construction", "manufacturing", "services", "logistics", "mining", "other")
CONSTRUCTION, MANUFACTURING, SERVICES, LOGISTICS, MINING, OTHER = range(6)

#: Share of monitoring points per industry (the union designates points in the sectors
#: where conflict concentrates).
INDUSTRY_MIX = np.array([0.30, 0.32, 0.18, 0.08, 0.05, 0.07])
#: Incident hazard multiplier per industry, chosen so that the simulated shares of
#: wage-arrears incidents by industry come out close to the strike map's.
INDUSTRY_HAZARD = np.array([1.1, 0.9, 0.75, 0.3, 0.45, 0.3])
#: Disputes over pay rises, hours and conditions (no arrears): likelier in big
#: factories and transport firms (the strike map's pay-rise strikes).
BACKGROUND_INDUSTRY = np.array([0.6, 1.5, 0.8, 1.5, 1.0, 0.5])
#: The monthly incident hazard of an enterprise by the months of wages it owes
#: (0, 1, 2, ... 6+): disputes come after arrears build up, not at the first late pay.
HAZARD_BY_ARREARS = np.array([0.0, 0.0015, 0.01, 0.1, 0.18, 0.25, 0.3])
#: Multipliers and additions to that hazard (judgement, see docs/detectors.md).
HAZARD = {
    # Owed wages in the weeks before the festival: workers must take money home.
    "pre_festival": 1.6,
    # A construction firm that fails its year-end settlement owes a year's wages.
    "settlement_failed": 0.16,
    "social_insurance": 0.004,
    "halted": 0.01,
    "layoffs": 0.012,
    # An owner who absconds leaves workers at the gate within days.
    "absconded": 0.3,
    # Disputes no arrears signal announces (pay rises, contracts, other).
    "background": 0.00015,
    "cap": 0.6,
}
#: Months simulated before the first exported month, so that the region starts in its
#: steady state (arrears, absconded owners) rather than with every firm healthy.
BURN_IN = 12
#: Median frontline monthly wage (CNY) per industry in Yiyang, 2022-2024 level.
BASE_WAGE = np.array([5200.0, 4300.0, 3600.0, 4800.0, 5600.0, 3800.0])
#: Median headcount per industry.
BASE_HEADCOUNT = np.array([120.0, 260.0, 80.0, 90.0, 150.0, 60.0])

EVENT_TYPES = ("gathering", "work_stoppage", "road_blocking", "extreme_act", "petition")
GATHERING, WORK_STOPPAGE, ROAD_BLOCKING, EXTREME_ACT, PETITION = range(5)
CATEGORIES = ("wage_arrears", "social_insurance", "layoff", "contract", "injury", "other")
WAGE, SOCIAL, LAYOFF, CONTRACT, INJURY, OTHER_CAT = range(6)
CHANNELS = ("hotline_12351", "online", "visit", "letter")
PRECURSOR_KINDS = (
    "owner_missing",
    "collective_talk",
    "production",
    "wage_delay",
    "social_insurance",
    "layoff",
    "benign",
)
#: Informant report kinds: a precursor kind (0..6), online opinion, or an incident.
REPORT_OPINION = 7
REPORT_INCIDENT = 8

HONEST, HIDER, DODGER = 0, 1, 2
NORMAL, REDUCED, HALTED = 0, 1, 2


def demo_counties() -> list[tuple[str, str]]:
    return [(code, name) for code, name, _ in DEMO_REGIONS if tier_of(code) == 3]


@dataclass
class Points:
    """The registry and the enterprises' fixed traits (index = point number)."""

    ids: list[str]
    names: list[str]
    county: np.ndarray
    industry: np.ndarray
    headcount: np.ndarray
    frontline_share: np.ndarray
    base_wage: np.ndarray
    wage_sigma: np.ndarray
    settler: np.ndarray
    reporter: np.ndarray
    late_filer: np.ndarray
    seasonal: np.ndarray
    informant: np.ndarray
    informant_of: np.ndarray
    mu: np.ndarray
    pay_threshold: np.ndarray


@dataclass
class MonthBatch:
    """Everything that happened in one month, as columns (index arrays into `Points`)."""

    index: int
    period: date
    #: Wage reports of this period (filed early next month): one row per filing point.
    wages: dict[str, np.ndarray]
    #: Petitions received this month.
    petitions: dict[str, np.ndarray]
    #: Informant reports this month.
    reports: dict[str, np.ndarray]
    #: Ground truth: collective incidents this month.
    incidents: dict[str, np.ndarray]
    #: The true state at the end of the month (for tests and analysis, never exported).
    truth: dict[str, np.ndarray] = field(default_factory=dict)


def _days_in(period: date) -> int:
    return calendar.monthrange(period.year, period.month)[1]


class Simulator:
    """A deterministic (per seed) simulation of `points` monitoring points from `start`."""

    def __init__(self, points: int, seed: int, start: date, region: str = DEMO_CITY) -> None:
        if points < 1:
            raise ValueError("points must be at least 1")
        self.n = points
        self.seed = seed
        self.start = start.replace(day=1)
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 20110110]))
        self.region = region
        self.geography = counties_of(region)
        self.counties = [(c.code, c.name) for c in self.geography]
        self.points = self._make_points()
        self.t = 0
        n = points
        self.h = self.points.mu + self.rng.normal(0, 0.3, n)
        self.arrears = np.zeros(n, dtype=np.int64)
        self.si = np.zeros(n, dtype=np.int64)
        self.headcount = self.points.headcount.astype(float).copy()
        #: Months since the firm closed (-1: open); `absconded`: closed by a runaway owner.
        self.closed = np.full(n, -1, dtype=np.int64)
        self.absconded = np.zeros(n, dtype=bool)
        self.decline_left = np.zeros(n, dtype=np.int64)
        self.decline_rate = np.zeros(n)
        self.settle_failed = np.full(n, -99, dtype=np.int64)
        self.pending_layoff = np.zeros(n)
        self.late_pay = np.zeros(n, dtype=bool)
        #: Months until a brewing dispute (not about arrears) breaks out; -1: none.
        self.brew_left = np.full(n, -1, dtype=np.int64)
        self.brewing = np.zeros(n, dtype=bool)
        # Settlers have accumulated the months since the last festival.
        months_since = self._months_since_settlement(self.start)
        self.accrued = np.where(self.points.settler, months_since, 0).astype(np.int64)
        self.sector_drift = np.zeros(len(INDUSTRIES))
        self.sector_left = np.zeros(len(INDUSTRIES), dtype=np.int64)
        self.county_drift = np.zeros(len(self.counties))
        self._petition_serial = 0
        self._report_serial = 0
        self.start = add_months(self.start, -BURN_IN)
        for _ in range(BURN_IN):
            self.step()
        self.start = add_months(self.start, BURN_IN)
        self.settle_failed -= BURN_IN
        self.t = 0
        self._petition_serial = 0
        self._report_serial = 0

    # ------------------------------------------------------------------ set-up

    def _make_points(self) -> Points:
        rng, n = self.rng, self.n
        weights = np.array([c.weight for c in self.geography])
        county = rng.choice(len(weights), size=n, p=weights / weights.sum())
        industry = rng.choice(len(INDUSTRIES), size=n, p=INDUSTRY_MIX)
        headcount = np.maximum(
            8, np.round(BASE_HEADCOUNT[industry] * rng.lognormal(0, 0.8, n))
        ).astype(np.int64)
        urban = np.array([c.urban for c in self.geography])[county]
        base_wage = BASE_WAGE[industry] * np.where(urban, 1.05, 0.94) * rng.lognormal(0, 0.1, n)
        noisy = rng.random(n) < 0.2
        settler = (industry == CONSTRUCTION) & (rng.random(n) < 0.55)
        reporter = rng.choice(3, size=n, p=[0.55, 0.30, 0.15])
        seasonal = ((industry == MINING) | (industry == MANUFACTURING)) & (rng.random(n) < 0.35)
        mu = rng.normal(0.8, 0.5, n)
        zombies = rng.random(n) < 0.02
        mu[zombies] = rng.normal(-1.1, 0.3, zombies.sum())
        informant = rng.random(n) < 0.8
        # A few informants per county, each covering the enterprises around them.
        # (n // 40 for a city of six counties; a province's counties share the points, so
        # each gets as many informants as its share of them warrants.)
        per_county = max(3, n // (40 * max(1, len(self.counties) // 6)))
        informant_of = rng.integers(0, per_county, n)
        ids = [f"MP{(i + 1):06d}" for i in range(n)]
        names = self._names(county, industry)
        return Points(
            ids=ids,
            names=names,
            county=county,
            industry=industry,
            headcount=headcount,
            frontline_share=rng.uniform(0.55, 0.92, n),
            base_wage=base_wage,
            wage_sigma=np.where(noisy, 0.16, 0.035),
            settler=settler,
            reporter=reporter,
            late_filer=rng.random(n) < 0.1,
            seasonal=seasonal,
            informant=informant,
            informant_of=informant_of,
            mu=mu,
            pay_threshold=rng.normal(-0.8, 0.3, n),
        )

    def _names(self, county: np.ndarray, industry: np.ndarray) -> list[str]:
        import random

        from monitor.simulator.names import enterprise_name

        text_rng = random.Random(self.seed * 7919 + 1)
        seen: set[str] = set()
        names = []
        for c, i in zip(county.tolist(), industry.tolist(), strict=True):
            serial = 0
            while True:
                name = enterprise_name(text_rng, self.counties[c][1], INDUSTRIES[i], serial)
                if name not in seen:
                    break
                serial += 1
            seen.add(name)
            names.append(name)
        return names

    @staticmethod
    def _settlement_month(year: int) -> date:
        """Settlers pay the year's wages in the month three weeks before the festival."""
        return (spring_festival(year) - timedelta(days=21)).replace(day=1)

    def _months_since_settlement(self, period: date) -> int:
        last = self._settlement_month(period.year)
        if last >= period:
            last = self._settlement_month(period.year - 1)
        return (period.year - last.year) * 12 + period.month - last.month - 1

    # ------------------------------------------------------------------ stepping

    def months(self, count: int) -> Iterator[MonthBatch]:
        for _ in range(count):
            yield self.step()

    def step(self) -> MonthBatch:
        """Advance one month and return what happened in it."""
        rng, n, p = self.rng, self.n, self.points
        t = self.t
        period = add_months(self.start, t)
        days = _days_in(period)
        first_day = day_number(period)
        pre, lull = phase_arrays(first_day, first_day + days - 1)
        arrears_season = CALIBRATION["festival_wage_arrears"]
        all_season = CALIBRATION["festival_all"]
        # Owed wages weigh most before the festival (workers must take money home: the
        # map's 1.25 nationwide, "can double" in DOMAIN; judgement 1.6) and least in the
        # holiday lull (the map's factor).
        daily_arrears = np.where(pre, HAZARD["pre_festival"], 1.0) * np.where(
            lull, arrears_season["lull"], 1.0
        )
        daily_all = np.where(pre, all_season["pre"], 1.0) * np.where(lull, all_season["lull"], 1.0)
        pre_share = pre.mean()

        self._shocks()
        open_ = self.closed < 0
        # 1. Owners absconding: rare, likelier when the firm is sinking; a firm owing
        #    wages for long enough closes (its workers drift away).
        run = open_ & (rng.random(n) < 0.0004 + 0.01 * (self.h < -2.0))
        self.closed[run] = 0
        self.absconded |= run
        self.h[run] = np.minimum(self.h[run], -3.5)
        fold = open_ & ~run & (self.arrears >= 7) & (rng.random(n) < 0.25)
        self.closed[fold] = 0
        gone = self.closed >= 0
        fresh_gone = gone & self.absconded & (self.closed <= 1)

        # 2. Wages: paid, delayed or owed.
        unpaid_p = 1 / (1 + np.exp(-4.0 * (p.pay_threshold - self.h)))
        unpaid = (rng.random(n) < unpaid_p) | gone
        self.arrears = np.where(unpaid, self.arrears + 1, self.arrears)
        recovering = ~unpaid & (self.arrears > 0)
        clear_all = recovering & (self.h > p.pay_threshold + 0.4) & (rng.random(n) < 0.6)
        clear_one = recovering & ~clear_all & (rng.random(n) < 0.5)
        self.arrears[clear_all] = 0
        self.arrears[clear_one] -= 1
        # Settlers: a living allowance monthly, the year's wages at settlement.
        settling = p.settler & (period == self._settlement_month(period.year)) & ~gone
        self.accrued = np.where(p.settler & ~gone, self.accrued + 1, self.accrued)
        fails = settling & (self.h < p.pay_threshold + 0.3)
        self.arrears[fails] += np.minimum(self.accrued[fails], 10)
        self.settle_failed[fails] = t
        self.accrued[settling] = 0
        delay = 5 + rng.gamma(2.0, 2.5, n) + 14 * np.maximum(0, -self.h) * rng.uniform(0.6, 1.4, n)
        delay = np.minimum(delay, 55)
        # Workers notice late pay long before the books show arrears.
        self.late_pay = (~unpaid & (delay > 20)) | (unpaid & (self.arrears <= 1))

        # 3. Social insurance, production, layoffs, headcount.
        sinking = self.h < -1.0
        self.si = np.where(sinking & (rng.random(n) < 0.5), self.si + 1, self.si)
        self.si[gone] += 1
        self.si[(self.h > 0) & (rng.random(n) < 0.3)] = 0
        status = np.full(n, NORMAL)
        status[sinking & (rng.random(n) < 0.6)] = REDUCED
        status[((self.h < -2.2) & (rng.random(n) < 0.7)) | gone] = HALTED
        seasonal_now = p.seasonal & self._off_season(period) & (status == NORMAL)
        status[seasonal_now] = np.where(p.industry[seasonal_now] == MINING, HALTED, REDUCED)
        self.headcount = np.maximum(
            3,
            self.headcount * (1 - 0.6 * self.pending_layoff)
            - np.where(sinking, 0.02 * self.headcount, 0)
            + rng.normal(0, 0.01, n) * self.headcount,
        )
        layoff_share = np.where(
            sinking & ~gone & (rng.random(n) < 0.12),
            rng.uniform(0.1, 0.4, n),
            np.where(rng.random(n) < 0.01, rng.uniform(0.02, 0.08, n), 0.0),
        )
        self.pending_layoff = layoff_share
        layoffs = np.round(layoff_share * self.headcount).astype(np.int64)

        # 4. Incidents (the ground truth).
        recent_fail = (t - self.settle_failed) <= 1
        owed = np.minimum(self.arrears, len(HAZARD_BY_ARREARS) - 1)
        hazard = (
            HAZARD_BY_ARREARS[owed]
            + HAZARD["settlement_failed"] * recent_fail
            + HAZARD["social_insurance"] * (self.si > 2)
            + HAZARD["halted"] * ((status == HALTED) & (self.arrears > 0))
            + HAZARD["layoffs"] * ((layoffs > 0) & sinking)
        ) * daily_arrears.mean()
        size = (np.maximum(self.headcount, 5) / 100.0) ** 0.3
        hazard = hazard * INDUSTRY_HAZARD[p.industry] * size
        hazard = np.where(gone, np.where(fresh_gone, HAZARD["absconded"], 0.05 * hazard), hazard)
        hazard = np.minimum(hazard, HAZARD["cap"])
        # Disputes without arrears brew for a while (talk, complaints about pay and
        # hours) before they break out -- or break out the same month, unannounced.
        big = (np.maximum(self.headcount, 5) / 100.0) ** 0.8
        brewing = self.brew_left >= 0
        start = (
            ~brewing
            & ~gone
            & (
                rng.random(n)
                < HAZARD["background"] * BACKGROUND_INDUSTRY[p.industry] * big * daily_all.mean()
            )
        )
        self.brew_left[start] = rng.choice([0, 1, 2], size=start.sum(), p=[0.3, 0.35, 0.35])
        breaking = self.brew_left == 0
        n_distress = rng.poisson(hazard)
        n_background = breaking.astype(np.int64)
        incidents = self._incidents(
            n_distress, n_background, daily_arrears, daily_all, first_day, t
        )
        # Mediation after an incident often settles the arrears.
        hit = np.zeros(n, dtype=bool)
        hit[incidents["point"]] = True
        settled = hit & ~gone & (rng.random(n) < 0.55)
        self.arrears[settled] = 0
        self.h[settled] += 0.8
        self.decline_left[settled] = 0

        self.brewing = self.brew_left >= 0
        self.brew_left = np.where(self.brew_left >= 0, self.brew_left - 1, -1)
        self.brew_left[gone] = -1

        # 5. Petitions (individual; collective ones are incidents of type petition).
        petitions = self._petitions(
            status, layoffs, gone, recent_fail, daily_arrears, first_day, days, pre_share, incidents
        )
        # 6. Informant reports.
        reports = self._reports(status, layoffs, gone, first_day, days, incidents)
        # 7. Self-reports of this period.
        wages = self._wages(period, status, layoffs, unpaid, delay, gone)

        truth = {
            "health": self.h.copy(),
            "arrears": self.arrears.copy(),
            "si": self.si.copy(),
            "status": status,
            "closed": gone.copy(),
            "absconded": self.absconded.copy(),
        }
        self.closed[gone] += 1
        self.t += 1
        return MonthBatch(t, period, wages, petitions, reports, incidents, truth)

    def _shocks(self) -> None:
        rng, n, p = self.rng, self.n, self.points
        # Sector downturns: a few months of steady pressure on one industry.
        for k in range(len(INDUSTRIES)):
            if self.sector_left[k] > 0:
                self.sector_left[k] -= 1
                if self.sector_left[k] == 0:
                    self.sector_drift[k] = 0.0
            elif rng.random() < 0.03:
                self.sector_left[k] = rng.integers(4, 11)
                self.sector_drift[k] = -rng.uniform(0.08, 0.2)
        self.county_drift = 0.7 * self.county_drift + rng.normal(0, 0.04, len(self.counties))
        # Decline episodes: months of steady loss (orders gone, a client not paying), the
        # usual road to arrears -- wages later and later, then not at all.
        start = (self.decline_left == 0) & (rng.random(n) < 0.011)
        self.decline_left[start] = rng.integers(3, 9, start.sum())
        self.decline_rate[start] = rng.uniform(0.2, 0.45, start.sum())
        declining = self.decline_left > 0
        self.decline_left[declining] -= 1
        self.decline_left[declining & (rng.random(n) < 0.08)] = 0  # rescued
        drift = self.sector_drift[p.industry] + self.county_drift[p.county]
        drift = drift - np.where(declining, self.decline_rate, 0.0)
        self.h += 0.1 * (p.mu - self.h) + rng.normal(0, 0.15, n) + drift
        crash = rng.random(n) < 0.0015
        self.h[crash] -= rng.uniform(2.0, 3.0, crash.sum())
        rescue = (self.h < -1) & (rng.random(n) < 0.03) & (self.closed < 0)
        self.h[rescue] += rng.uniform(1.0, 2.5, rescue.sum())

    def _worried_settlers(self) -> np.ndarray:
        """Settlers late in the year whose money is not there (the developer has not paid
        the project, the foreman says the year may not be settled): workers talk."""
        p = self.points
        return p.settler & (self.accrued >= 8) & (self.h < p.pay_threshold + 0.6)

    def _off_season(self, period: date) -> bool:
        """Seasonal firms: mining halts in the rainy season, factories slow at the festival."""
        festival_month = spring_festival(period.year).replace(day=1) == period
        return period.month in (6, 7) or festival_month

    # ------------------------------------------------------------------ events

    def _spread(self, counts: np.ndarray, daily: np.ndarray, first_day: int) -> np.ndarray:
        """Days for `counts.sum()` events, weighted by the season within the month."""
        weights = daily / daily.sum()
        offsets = self.rng.choice(len(daily), size=int(counts.sum()), p=weights)
        return first_day + offsets

    def _incidents(
        self,
        n_distress: np.ndarray,
        n_background: np.ndarray,
        daily_arrears: np.ndarray,
        daily_all: np.ndarray,
        first_day: int,
        t: int,
    ) -> dict[str, np.ndarray]:
        rng = self.rng
        point = np.concatenate(
            [np.repeat(np.arange(self.n), n_distress), np.repeat(np.arange(self.n), n_background)]
        )
        day = np.concatenate(
            [
                self._spread(n_distress, daily_arrears, first_day),
                self._spread(n_background, daily_all, first_day),
            ]
        )
        arrears_driven = np.concatenate(
            [np.ones(n_distress.sum(), bool), np.zeros(n_background.sum(), bool)]
        )
        k = len(point)
        share = CALIBRATION["event_share"]
        onsite = np.array(
            [
                share["gathering"],
                share["work_stoppage"],
                share["road_blocking"],
                share["extreme_act"],
            ]
        )
        kind = rng.choice(4, size=k, p=onsite / onsite.sum())
        # Collective petitions (集体访) are the commonest collective action in an inland
        # city; the strike map, built from news, under-counts them (judgement: 25 %).
        kind[rng.random(k) < 0.25] = PETITION
        people = self._people(point, kind)
        # Causes: arrears-driven incidents split like the map's arrears-related causes;
        # background ones are pay-rise, contract and other disputes.
        cause = np.where(
            arrears_driven,
            rng.choice([WAGE, SOCIAL, LAYOFF], size=k, p=self._arrears_cause_split()),
            rng.choice([CONTRACT, OTHER_CAT], size=k, p=[0.45, 0.55]),
        )
        minute = rng.integers(6 * 60, 20 * 60, k)
        order = np.argsort(day, kind="stable")
        return {
            "point": point[order],
            "day": day[order],
            "minute": minute[order],
            "type": kind[order],
            "people": people[order],
            "cause": cause[order],
            "month": np.full(k, t),
        }

    @staticmethod
    def _arrears_cause_split() -> np.ndarray:
        c = CALIBRATION["cause_share"]
        split = np.array([c["wage_arrears"], c["social_insurance"], c["layoff"]])
        return split / split.sum()

    def _people(self, point: np.ndarray, kind: np.ndarray) -> np.ndarray:
        """Participants: the strike map's bands, never more than the frontline staff."""
        rng = self.rng
        k = len(point)
        bands = list(BANDS.values())
        share = np.array([CALIBRATION["band_share"][b] for b in BANDS])
        band = rng.choice(len(bands), size=k, p=share / share.sum())
        lo = np.array([max(5, bands[b][0]) for b in band], dtype=float)
        hi = np.array([bands[b][1] for b in band], dtype=float)
        drawn = np.exp(rng.uniform(np.log(lo), np.log(hi + 1)))
        staff = self.headcount[point] * self.points.frontline_share[point]
        people = np.minimum(drawn, np.maximum(5, staff * rng.uniform(0.3, 1.0, k)))
        people = np.maximum(5, np.round(people)).astype(np.int64)
        people[kind == EXTREME_ACT] = rng.integers(1, 4, (kind == EXTREME_ACT).sum())
        return people

    def _petitions(
        self,
        status: np.ndarray,
        layoffs: np.ndarray,
        gone: np.ndarray,
        recent_fail: np.ndarray,
        daily_arrears: np.ndarray,
        first_day: int,
        days: int,
        pre_share: float,
        incidents: dict[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        rng, p, n = self.rng, self.points, self.n
        owed = np.minimum(self.arrears, 6)
        worried_settler = self._worried_settlers()
        rate = (
            0.03
            * np.sqrt(self.headcount / 100.0)
            * (
                1
                + 4.0 * owed
                + 2.0 * recent_fail
                + 1.0 * (self.si > 0)
                + 1.3 * (layoffs > 0)
                + 3.0 * (gone & (self.closed <= 2))
                + 1.5 * worried_settler
                + 1.0 * self.late_pay
                + 2.0 * self.brewing
            )
        )
        rate *= np.where(owed > 0, daily_arrears.mean(), 1.0)
        rate *= np.where(gone & (self.closed > 2), 0.0, 1.0)
        counts = rng.poisson(rate)
        point = np.repeat(np.arange(n), counts)
        k = len(point)
        weights = np.stack(
            [
                0.15 + 3.0 * (self.arrears[point] > 0) + 0.5 * worried_settler[point],
                0.08 + 1.0 * (self.si[point] > 0),
                0.06 + 1.2 * ((layoffs[point] > 0) | (status[point] == HALTED)),
                0.25 + 2.0 * self.brewing[point],
                0.12 * np.where(np.isin(p.industry[point], [CONSTRUCTION, MINING]), 2.0, 1.0),
                np.full(k, 0.2),
            ],
            axis=1,
        )
        weights /= weights.sum(axis=1, keepdims=True)
        category = (rng.random(k)[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
        category = np.minimum(category, len(CATEGORIES) - 1)
        people = np.where(rng.random(k) < 0.7, 1, rng.integers(2, 5, k))
        escalating = (self.arrears[point] >= 2) & (rng.random(k) < 0.3)
        # Unlinked background petitions: workers of firms outside the monitoring points.
        per_county = np.bincount(p.county, minlength=len(self.counties))
        extra = rng.poisson(0.012 * per_county)
        extra_county = np.repeat(np.arange(len(self.counties)), extra)
        e = len(extra_county)
        extra_category = rng.choice(6, size=e, p=[0.3, 0.1, 0.1, 0.2, 0.15, 0.15])
        # Collective petitions that are incidents are petitions too.
        coll = incidents["type"] == PETITION
        c_point = incidents["point"][coll]
        c = len(c_point)
        c_category = incidents["cause"][coll]
        all_point = np.concatenate([point, np.full(e, -1), c_point])
        county = np.concatenate([p.county[point], extra_county, p.county[c_point]])
        day = np.concatenate(
            [
                self._spread(counts, daily_arrears, first_day),
                first_day + rng.integers(0, days, e),
                incidents["day"][coll],
            ]
        )
        minute = np.concatenate([rng.integers(8 * 60, 18 * 60, k + e), incidents["minute"][coll]])
        total = k + e + c
        link = rng.choice(4, size=total, p=[0.55, 0.25, 0.08, 0.12])
        link[all_point < 0] = 3
        serial = self._petition_serial + np.arange(total)
        self._petition_serial += total
        order = np.argsort(day, kind="stable")
        return {
            "serial": serial,
            "point": all_point[order],
            "county": county[order],
            "day": day[order],
            "minute": minute[order],
            "channel": rng.choice(4, size=total, p=[0.4, 0.25, 0.25, 0.1])[order],
            "category": np.concatenate([category, extra_category, c_category])[order],
            "category_given": (rng.random(total) < 0.7)[order],
            "people": np.concatenate([people, rng.integers(1, 3, e), incidents["people"][coll]])[
                order
            ],
            "link": link[order],
            "escalating": np.concatenate([escalating, np.zeros(e, bool), np.ones(c, bool)])[order],
            "months_owed": np.concatenate(
                [self.arrears[point], np.zeros(e, np.int64), self.arrears[c_point]]
            )[order],
        }

    def _reports(
        self,
        status: np.ndarray,
        layoffs: np.ndarray,
        gone: np.ndarray,
        first_day: int,
        days: int,
        incidents: dict[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        rng, p, n = self.rng, self.points, self.n
        sinking = self.h < -1.0
        fresh_gone = gone & self.absconded & (self.closed <= 2)
        # What an informant near the firm might notice this month, and how likely.
        signals = np.stack(
            [
                0.9 * fresh_gone + 0.04 * (self.h < -2.5),  # owner_missing
                0.35 * (self.arrears >= 2)
                + 0.1 * (self.arrears == 1)
                + 0.3 * self.brewing,  # collective_talk
                0.25 * (status == HALTED) + 0.1 * (status == REDUCED) * sinking,  # production
                0.4 * (self.arrears >= 1)
                + 0.25 * self.late_pay
                + 0.3 * self._worried_settlers(),  # wage_delay
                0.12 * (self.si > 1),  # social_insurance
                0.2 * (layoffs > 0) * sinking,  # layoff
                np.full(n, 0.05),  # benign
            ],
            axis=1,
        )
        signals *= (p.informant & ~(gone & (self.closed > 2)))[:, None]
        hits = rng.random(signals.shape) < signals
        # False alarms: healthy enterprises now and then look worrying to an informant.
        false_alarm = p.informant & ~sinking & (rng.random(n) < 0.012)
        hits[false_alarm, rng.integers(1, 4, false_alarm.sum())] = True
        point_k, kind = np.nonzero(hits)
        opinion = rng.random(n) < (
            0.004 + 0.1 * (self.arrears >= 2) + 0.2 * fresh_gone + 0.1 * self.brewing
        )
        o_point = np.nonzero(opinion)[0]
        # Incidents reach the system through informants most of the time.
        seen = rng.random(len(incidents["point"])) < 0.85
        i_point = incidents["point"][seen]
        point = np.concatenate([point_k, o_point, i_point])
        kinds = np.concatenate(
            [kind, np.full(len(o_point), REPORT_OPINION), np.full(len(i_point), REPORT_INCIDENT)]
        )
        day = np.concatenate(
            [
                first_day + rng.integers(0, days, len(point_k) + len(o_point)),
                incidents["day"][seen],
            ]
        )
        total = len(point)
        serial = self._report_serial + np.arange(total)
        self._report_serial += total
        order = np.argsort(day, kind="stable")
        return {
            "serial": serial,
            "point": point[order],
            "kind": kinds[order],
            "incident_type": np.concatenate(
                [np.full(len(point_k) + len(o_point), -1), incidents["type"][seen]]
            )[order],
            "people": np.concatenate(
                [
                    rng.integers(0, 4, len(point_k) + len(o_point)),
                    incidents["people"][seen],
                ]
            )[order],
            "cause": np.concatenate(
                [np.full(len(point_k) + len(o_point), -1), incidents["cause"][seen]]
            )[order],
            "day": day[order],
            "minute": np.concatenate(
                [
                    rng.integers(7 * 60, 22 * 60, len(point_k) + len(o_point)),
                    incidents["minute"][seen],
                ]
            )[order],
            "months_owed": self.arrears[point][order],
            "informant": p.informant_of[point][order],
            "county": p.county[point][order],
        }

    def _wages(
        self,
        period: date,
        status: np.ndarray,
        layoffs: np.ndarray,
        unpaid: np.ndarray,
        delay: np.ndarray,
        gone: np.ndarray,
    ) -> dict[str, np.ndarray]:
        rng, p, n = self.rng, self.points, self.n
        sinking = self.h < -1.0
        # Who files: late filers miss now and then; dodgers vanish when in trouble;
        # an absconded owner files nothing.
        miss = rng.random(n) < np.where(p.late_filer, 0.18, 0.025)
        miss |= (p.reporter == DODGER) & sinking & (rng.random(n) < 0.65)
        miss |= gone
        files = ~miss
        hider = (p.reporter == HIDER) & (rng.random(n) < 0.85)
        frontline = np.round(self.headcount * p.frontline_share)
        owed = self.arrears.copy()
        shown_owed = np.where(hider, 0, owed)
        # Settlers show the months since the last settlement as arrears.
        shown_owed = np.where(p.settler, shown_owed + self.accrued, shown_owed)
        arrears_workers = np.where(
            shown_owed > 0,
            np.round(frontline * np.where(p.settler, 0.9, rng.uniform(0.3, 1.0, n))),
            0,
        )
        month_factor = self._wage_season(period)
        wage = (
            p.base_wage
            * month_factor[p.industry]
            * np.where(sinking, 0.88, 1.0)
            * np.where(status == REDUCED, 0.78, 1.0)
            * np.where(status == HALTED, 0.45, 1.0)
            * rng.lognormal(0, p.wage_sigma)
        )
        # Arrears amount: months owed times the wage bill of those owed.
        amount = shown_owed * arrears_workers * wage * np.where(p.settler, 0.6, 1.0)
        period_end = day_number(add_months(period, 1)) - 1
        paid_day = np.where(unpaid | (hider & (owed > 0)), -1, period_end + np.round(delay))
        # Hiders claim a normal pay day for months they did not pay.
        paid_day = np.where(
            hider & (owed > 0) & ~gone, period_end + rng.integers(5, 12, n), paid_day
        )
        si = np.where(hider & (rng.random(n) < 0.8), 0, self.si)
        shown_status = np.where(hider & (status == REDUCED) & (rng.random(n) < 0.5), NORMAL, status)
        overtime = np.maximum(
            0,
            rng.normal(36, 8, n)
            * np.where(status == REDUCED, 0.45, 1.0)
            * np.where(status == HALTED, 0.0, 1.0)
            * np.where(p.industry == MANUFACTURING, month_factor[MANUFACTURING], 1.0),
        )
        headcount = np.round(self.headcount)
        # Typing errors: an extra zero, a wage in thousands, a headcount of zero.
        typo = rng.random(n) < 0.002
        wage = np.where(typo & (rng.random(n) < 0.5), wage * 100, wage)
        wage = np.where(typo & (rng.random(n) < 0.3), wage / 1000, wage)
        zero = rng.random(n) < 0.001
        headcount = np.where(zero, 0, headcount)
        frontline = np.where(zero, 0, np.minimum(frontline, headcount))
        arrears_workers = np.where(zero, 0, np.minimum(arrears_workers, np.maximum(headcount, 0)))
        idx = np.nonzero(files)[0]
        return {
            "point": idx,
            "headcount": headcount[idx].astype(np.int64),
            "frontline": frontline[idx].astype(np.int64),
            "wage": np.round(wage[idx], 2),
            "paid_day": paid_day[idx].astype(np.int64),
            "arrears_amount": np.round(amount[idx], 2),
            "arrears_workers": arrears_workers[idx].astype(np.int64),
            "arrears_months": np.minimum(shown_owed[idx], 240).astype(np.int64),
            "si_months": np.minimum(si[idx], 240).astype(np.int64),
            "layoffs": layoffs[idx],
            "status": shown_status[idx],
            "overtime": np.round(np.minimum(overtime[idx], 744), 1),
            "filed_day": period_end + rng.integers(2, 12, len(idx)),
        }

    def _wage_season(self, period: date) -> np.ndarray:
        """Wage level by industry in this month relative to the year (orders, weather)."""
        festival = spring_festival(period.year).replace(day=1) == period
        m = period.month
        return np.array(
            [
                0.82 if festival or m == 1 else (1.05 if m in (10, 11, 12) else 1.0),
                0.88 if festival else (1.1 if m in (9, 10, 11) else 1.0),
                1.06 if festival else 1.0,
                1.08 if m in (11, 12) else 1.0,
                0.8 if m in (6, 7) else 1.0,
                1.0,
            ]
        )
