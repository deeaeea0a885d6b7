"""Petition surges per county and per enterprise, aware of the Spring Festival.

For an entity (a county, or an enterprise) and a day, the last `window` days are
compared with the `baseline` days before them:

- expected count = baseline rate x window days, where the baseline leaves out the
  festival lull (workers at home, offices shut) and a window inside the lull expects
  the lull's lower rate -- otherwise the holiday dip would deflate the baseline and
  the return to work look like a surge;
- a surge is a count that a negative binomial with that mean (over-dispersion
  `dispersion`: petitions come in clusters) makes unlikely (p < alpha), at least
  `min_ratio` times the expectation and at least `min_count` petitions;
- the same for people (collective petitions weigh more than single callers), with a
  compound-Poisson z-score;
- in the pre-festival arrears season (60 to 8 days before the festival) the union
  wants to hear earlier, so the test is run at `alpha_season` instead of `alpha`
  (winter wage-arrears campaign practice); findings say so.

Small entities get a prior: the baseline rate is shrunk towards a reference rate
(for an enterprise: the region's petitions per enterprise), so an enterprise with no
history does not "surge" on its second petition.

False-alarm rate: on simulated regions with no trouble at all, and per seed on the
simulator's data, measured by `bench/surge_false_alarms.py` (docs/detectors.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from monitor.season import phase_arrays

LULL_FACTOR = 0.35  # the strike map's festival-lull rate relative to normal (calibrated)


@dataclass(frozen=True)
class SurgePolicy:
    window: int = 28
    baseline: int = 91
    alpha: float = 0.01
    alpha_season: float = 0.05
    min_ratio: float = 1.3
    min_count: int = 5
    dispersion: float = 20.0
    #: Pseudo-days of the reference rate added to the baseline (shrinkage).
    prior_days: float = 7.0
    people_z: float = 3.5
    #: People per petition are capped here for surge purposes: one mass event is an
    #: event finding of its own, not a surge of petitions.
    people_cap: int = 100


@dataclass(frozen=True)
class SurgeResult:
    """Arrays over the entities evaluated (same order as given)."""

    observed: np.ndarray
    expected: np.ndarray
    people: np.ndarray
    expected_people: np.ndarray
    p_value: np.ndarray
    people_z: np.ndarray
    surge: np.ndarray
    in_season: bool

    def ratio(self) -> np.ndarray:
        return self.observed / np.maximum(self.expected, 1e-9)


def evaluate(
    counts: np.ndarray,
    people: np.ndarray,
    first_day: int,
    policy: SurgePolicy,
    reference_rate: np.ndarray | float | None = None,
    min_count: int | None = None,
    people_sq: np.ndarray | None = None,
) -> SurgeResult:
    """Surges at the last day of daily series `counts`/`people` (entities x days,
    covering day numbers `first_day` .. `first_day + days - 1`; `people_sq` the daily
    sums of squared people, for the variance)."""
    counts = np.atleast_2d(np.asarray(counts, dtype=float))
    people = np.atleast_2d(np.asarray(people, dtype=float))
    if people.shape != counts.shape:
        raise ValueError("counts and people must have the same shape")
    days = counts.shape[1]
    w, b = policy.window, policy.baseline
    if days < w:
        raise ValueError(f"need at least {w} days of series, got {days}")
    pre, lull = phase_arrays(first_day, first_day + days - 1)
    win = slice(days - w, days)
    base = slice(max(0, days - w - b), days - w)
    base_ok = ~lull[base]
    base_days = float(base_ok.sum())
    base_count = counts[:, base][:, base_ok].sum(axis=1)
    base_people = people[:, base][:, base_ok].sum(axis=1)
    squares = people**2 if people_sq is None else np.atleast_2d(people_sq)
    base_sq = squares[:, base][:, base_ok].sum(axis=1)
    if reference_rate is None:
        reference = np.where(base_days > 0, base_count / max(base_days, 1.0), 0.0)
    else:
        reference = np.broadcast_to(np.asarray(reference_rate, dtype=float), base_count.shape)
    k = policy.prior_days
    rate = (base_count + k * reference) / (base_days + k)
    win_lull = lull[win]
    exposure = float((~win_lull).sum()) + LULL_FACTOR * float(win_lull.sum())
    expected = np.maximum(rate * exposure, 1e-6)
    observed = counts[:, win].sum(axis=1)
    # Negative binomial with mean mu and variance mu + mu^2 / dispersion.
    r = policy.dispersion
    p_value = stats.nbinom.sf(observed - 1, r, r / (r + expected))
    people_win = people[:, win].sum(axis=1)
    mean_people = np.where(base_count > 0, base_people / np.maximum(base_count, 1), 1.0)
    mean_sq = np.where(base_count > 0, base_sq / np.maximum(base_count, 1), 1.0)
    expected_people = expected * mean_people
    z = (people_win - expected_people) / np.sqrt(np.maximum(expected * mean_sq, 1.0))
    in_season = bool(pre[-1])
    alpha = policy.alpha_season if in_season else policy.alpha
    floor = policy.min_count if min_count is None else min_count
    by_count = (p_value < alpha) & (observed >= floor) & (observed >= policy.min_ratio * expected)
    by_people = (
        (z >= policy.people_z)
        & (observed >= floor)
        & (people_win >= policy.min_ratio * expected_people)
    )
    return SurgeResult(
        observed=observed,
        expected=expected,
        people=people_win,
        expected_people=expected_people,
        p_value=p_value,
        people_z=z,
        surge=by_count | by_people,
        in_season=in_season,
    )


def daily_matrix(
    entity: np.ndarray,
    day: np.ndarray,
    weight: np.ndarray | None,
    entities: int,
    first_day: int,
    days: int,
    *,
    square: bool = False,
) -> np.ndarray:
    """Entities x days counts (or sums of `weight`, or of its squares) of events."""
    sel = (day >= first_day) & (day < first_day + days) & (entity >= 0)
    flat = entity[sel] * days + (day[sel] - first_day)
    weights = None if weight is None else weight[sel] ** (2 if square else 1)
    sums = np.bincount(flat, weights=weights, minlength=entities * days)
    return sums.reshape(entities, days).astype(float)


def series(
    entity: np.ndarray,
    day: np.ndarray,
    people: np.ndarray,
    entities: int,
    first_day: int,
    days: int,
    policy: SurgePolicy,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Daily counts, people (capped per petition) and squared people per entity."""
    capped = np.minimum(np.maximum(people, 1), policy.people_cap).astype(float)
    return (
        daily_matrix(entity, day, None, entities, first_day, days),
        daily_matrix(entity, day, capped, entities, first_day, days),
        daily_matrix(entity, day, capped, entities, first_day, days, square=True),
    )
