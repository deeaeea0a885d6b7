"""Benchmark: score 100,000 monitoring points x 36 months, against a naive per-point loop.

    python bench/score_100k.py [--points 100000] [--months 36] [--naive 1000]

1. Simulates the region (the simulator's arrays, no files: this measures scoring, not
   I/O) and trains the forecaster on a 5,000-point region of the same simulator (the
   model a daemon would hold; training is timed separately).
2. Times the whole scoring as the nightly job runs it -- features, the forecaster, the
   rules and anomalies, the combiner with its factors in words, counties and petition
   surges -- for every point as of the last month.
3. Times the same computation done naively for a sample of points: features by a loop
   over each point's own rows (`detectors.reference`), then the model and the rules
   one point at a time; and prints points/s for both and the ratio.

The target (issue 4): under 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detectors import forecast, rules, scoring  # noqa: E402
from detectors.features import Features  # noqa: E402
from detectors.panel import PanelView  # noqa: E402
from detectors.reference import compute_naive  # noqa: E402
from detectors.sources import panel_from_simulation  # noqa: E402
from monitor.season import day_number  # noqa: E402
from monitor.simulator import Simulator  # noqa: E402


def subset(panel, idx):  # type: ignore[no-untyped-def]
    """The same panel restricted to points `idx` (events of other points unlinked)."""
    from dataclasses import replace

    remap = np.full(panel.n, -1)
    remap[idx] = np.arange(len(idx))
    point = np.where(panel.ev_point >= 0, remap[np.maximum(panel.ev_point, 0)], -1)
    return replace(
        panel,
        point_ids=[panel.point_ids[i] for i in idx],
        names=[panel.names[i] for i in idx],
        county=panel.county[idx],
        industry=panel.industry[idx],
        headcount=panel.headcount[idx],
        registered_day=panel.registered_day[idx],
        wage={k: v[idx] for k, v in panel.wage.items()},
        status=panel.status[idx],
        paid_day=panel.paid_day[idx],
        visible_day=panel.visible_day[idx],
        report_ids=panel.report_ids[idx],
        ev_point=point,
        cache={},
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--naive", type=int, default=1000, help="points in the naive sample")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    start = date(2022, 1, 1)

    t = time.perf_counter()
    panel = panel_from_simulation(Simulator(args.points, args.seed, start), args.months)
    print(
        f"simulated {panel.n:,} points x {args.months} months, {len(panel.ev_day):,} "
        f"petitions and informant reports in {time.perf_counter() - t:.1f}s"
    )
    day = day_number(date(2024, 12, 16))

    t = time.perf_counter()
    history = panel_from_simulation(Simulator(5000, args.seed + 1, start), args.months)
    model = forecast.train(history, day)
    assert model is not None
    print(
        f"forecaster trained on 5,000 points x {args.months} months in "
        f"{time.perf_counter() - t:.1f}s ({model.metrics['incidents']} incidents)"
    )

    # --- vectorised: the nightly job's computation for every point
    t = time.perf_counter()
    table = scoring.score(PanelView(panel, day), model)
    fast = time.perf_counter() - t
    levels = int((table.level_rank > 0).sum())
    assert np.isfinite(table.score).all()
    print(
        f"vectorised: {panel.n:,} points scored in {fast:.1f}s = {panel.n / fast:,.0f} points/s "
        f"({levels:,} at a level, {len(table.surges)} surges)"
    )

    # --- naive: one point at a time, the same computation
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(panel.n, size=min(args.naive, panel.n), replace=False))
    sample = subset(panel, idx)
    t = time.perf_counter()
    view = PanelView(sample, day)
    features = compute_naive(view)
    for i in range(sample.n):
        x = features.X[i : i + 1]
        p = model.predict(x)
        raw = scoring.probability_to_score(p)
        one = Features(day, x, features.last_col[i : i + 1])
        floor = rules.evaluate(one).floor_rank
        score = np.maximum(raw, np.where(floor > 0, 70.0, 0.0))
        if score[0] >= 20:
            for group in scoring.EXPLAINED_GROUPS:
                quiet = x.copy()
                cols = scoring.GROUP_COLUMNS[group]
                quiet[:, cols] = scoring.NEUTRAL_ROW[cols]
                model.predict(quiet)
                rules.group_text(group, x[0])
    naive = time.perf_counter() - t
    naive_rate = sample.n / naive
    print(
        f"naive loop: {sample.n:,} points in {naive:.1f}s = {naive_rate:,.0f} points/s "
        f"(extrapolated to {panel.n:,} points: {panel.n / naive_rate:,.0f}s)"
    )
    print(
        f"ratio: vectorised is {panel.n / fast / naive_rate:,.0f}x the naive loop; "
        f"target under 60 s for {panel.n:,} points: {'met' if fast < 60 else 'MISSED'} "
        f"({fast:.1f}s)"
    )


if __name__ == "__main__":
    main()
