"""The petition-surge detector's false-alarm rate, measured two ways.

    python bench/surge_false_alarms.py [--counties 2000] [--points 3000]

1. Under the null: county petition series with the usual season (the strike map's
   festival factors) and no trouble at all -- every flag is a false alarm. Reported per
   county-month, separately inside and outside the pre-festival season (where the
   detector is deliberately more sensitive), and for a naive detector (a rolling mean
   plus three standard deviations, blind to the festival) as the baseline.
2. On the simulator's regions (seeds 1-3): enterprise surges checked weekly; a flag is
   false when no incident follows at that enterprise within 90 days. Reported as flags
   per 1,000 enterprise-months and the share of flags not followed by an incident.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detectors import scoring  # noqa: E402
from detectors.panel import PanelView  # noqa: E402
from detectors.sources import panel_from_simulation  # noqa: E402
from detectors.surge import SurgePolicy, evaluate  # noqa: E402
from monitor.season import day_number, phase_arrays  # noqa: E402
from monitor.simulator import Simulator  # noqa: E402
from monitor.simulator.calibration import CALIBRATION  # noqa: E402


def null_series(counties: int, rate: float, first: int, days: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pre, lull = phase_arrays(first, first + days - 1)
    season = CALIBRATION["festival_all"]
    factor = np.where(pre, season["pre"], 1.0) * np.where(lull, season["lull"], 1.0)
    # Over-dispersed like real petitions: a gamma-mixed Poisson per county-day.
    mean = rate * factor[None, :] * rng.gamma(20.0, 1 / 20.0, size=(counties, days))
    return rng.poisson(mean).astype(float)


def naive_flags(counts: np.ndarray, end: int, window: int, baseline: int) -> np.ndarray:
    win = counts[:, end - window : end].sum(axis=1)
    past = counts[:, end - window - baseline : end - window]
    # Rolling 28-day sums over the baseline: mean + 3 sd.
    sums = np.stack(
        [past[:, k : k + window].sum(axis=1) for k in range(0, baseline - window, 7)], 1
    )
    return win > sums.mean(axis=1) + 3 * sums.std(axis=1)


def part_one(counties: int) -> None:
    policy = SurgePolicy()
    first = day_number(date(2021, 1, 1))
    days = 4 * 365
    for rate in (0.5, 2.0):
        counts = null_series(counties, rate, first, days, seed=int(rate * 10))
        people = counts * 1.3
        pre, _ = phase_arrays(first, first + days - 1)
        flags = {True: [0, 0], False: [0, 0]}
        naive = {True: [0, 0], False: [0, 0]}
        for end in range(policy.window + policy.baseline, days + 1, 28):
            result = evaluate(counts[:, :end], people[:, :end], first, policy)
            season = bool(pre[end - 1])
            flags[season][0] += int(result.surge.sum())
            flags[season][1] += counties
            naive[season][0] += int(naive_flags(counts, end, policy.window, policy.baseline).sum())
            naive[season][1] += counties
        for season, label in ((False, "outside the season"), (True, "pre-festival season")):
            ours = 1000 * flags[season][0] / max(flags[season][1], 1)
            theirs = 1000 * naive[season][0] / max(naive[season][1], 1)
            print(
                f"null, {rate} petitions/day, {label}: labormon {ours:.1f} false alarms per "
                f"1,000 county-months; naive mean+3sd {theirs:.1f}"
            )


def part_two(points: int) -> None:
    for seed in (1, 2, 3):
        panel = panel_from_simulation(Simulator(points, seed, date(2022, 1, 1)), 36)
        flagged = true = checks = county_flags = county_checks = 0
        for day in range(day_number(date(2022, 7, 1)), day_number(date(2024, 10, 1)), 7):
            table = scoring.score(PanelView(panel, day), None, explain=False)
            county_checks += len(panel.counties)
            for draft in table.surges:
                if draft.entity_type == "county":
                    county_flags += 1
                    continue
                flagged += 1
                i = panel.point_ids.index(draft.entity_id)
                after = (panel.truth_point == i) & (panel.truth_day > day)
                true += bool((after & (panel.truth_day <= day + 90)).any())
            checks += panel.n
        per_point = 1000 * flagged / checks * 4.35
        per_county = 1000 * county_flags / county_checks * 4.35
        unfollowed = 1 - true / max(flagged, 1)
        print(
            f"seed {seed}: enterprise surges {per_point:.2f} per 1,000 enterprise-months, "
            f"{flagged} flags, {unfollowed:.0%} without an incident within 90 days; "
            f"county surges {per_county:.1f} per 1,000 county-months"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counties", type=int, default=2000)
    parser.add_argument("--points", type=int, default=3000)
    args = parser.parse_args()
    part_one(args.counties)
    part_two(args.points)


if __name__ == "__main__":
    main()
