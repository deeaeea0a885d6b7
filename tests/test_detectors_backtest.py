"""The detectors against ground truth: the rolling-origin backtest on three seeds, the
`labormon evaluate` command, and scoring from the database without leakage."""

from __future__ import annotations

import json
import math
import multiprocessing
import subprocess
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from detectors import scoring
from detectors.backtest import BacktestResult, backtest
from detectors.features import NAMES, compute
from detectors.load import load_panel
from detectors.panel import Panel, PanelView
from detectors.sources import panel_from_directory
from ingest.files import FileImporter
from monitor.clock import FrozenClock
from monitor.context import Context
from monitor.records import parse_row
from monitor.season import day_number
from monitor.simulator import write_dataset
from monitor.store import Submission

ROOT = Path(__file__).resolve().parent.parent
SEEDS = (1, 2, 3)
#: A city's monitoring network over three years (the size docs/detectors.md reports).
POINTS, MONTHS, START = 3000, 36, date(2022, 1, 1)


def _one_backtest(seed: int, out: Path) -> BacktestResult:
    """One seed's data set and backtest, in a worker process, on one thread."""
    # Loaded first: a limit reaches only the thread pools (OpenMP here) already loaded.
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: F401
    from threadpoolctl import threadpool_limits

    warnings.simplefilter("error")  # as pytest's filterwarnings in the parent
    with threadpool_limits(1):
        write_dataset(out, points=POINTS, months=MONTHS, seed=seed, start=START)
        return backtest(panel_from_directory(out))


@pytest.fixture(scope="session")
def backtests(tmp_path_factory: pytest.TempPathFactory) -> dict[int, BacktestResult]:
    # The seeds are independent, and each is mostly a chain of gradient-boosting fits whose
    # OpenMP threads use two cores poorly (user/real 1.3, far worse when the machine is
    # busy): three single-threaded processes side by side take ~80 s on 2 cores where one
    # seed after the other took ~140 s. Spawned, not forked: the session has threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(SEEDS), mp_context=context) as pool:
        futures = {
            seed: pool.submit(_one_backtest, seed, tmp_path_factory.mktemp(f"sim-{seed}"))
            for seed in SEEDS
        }
        return {seed: future.result() for seed, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_backtest_beats_the_status_quo(backtests: dict[int, BacktestResult], seed: int) -> None:
    result = backtests[seed]
    ours, base = result.labormon, result.baseline
    print(f"seed {seed}: " + json.dumps(result.as_dict(), ensure_ascii=False))
    assert len(result.as_of) >= 24
    assert result.positives > 500
    assert ours.auc >= 0.88
    assert ours.auc >= base.auc + 0.05
    assert ours.precision_top5 >= 1.5 * base.precision_top5
    # Fewer false alerts than "any reported arrears", and warnings weeks ahead.
    assert ours.false_alerts_per_1000_point_months < 0.5 * base.false_alerts_per_1000_point_months
    assert ours.median_lead_days >= 30
    assert ours.detection_rate >= 0.6
    # The forecaster adds to what the rules and anomalies alone achieve.
    assert ours.auc >= result.rules_only.auc


def test_evaluate_command(sim_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    # The refusal (a directory without incidents.csv) needs nothing from the run: it is
    # started first and runs alongside (each command is mostly its ~2 s start-up).
    with subprocess.Popen(
        [sys.executable, "-m", "monitor", "evaluate", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as missing:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "monitor",
                "evaluate",
                str(sim_dir),
                "--json",
                "--out",
                str(out),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        _, missing_stderr = missing.communicate(timeout=60)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures == json.loads(out.read_text(encoding="utf-8"))
    assert figures["import"]["rejected"] == 0
    for who in ("labormon", "rules_only", "baseline"):
        assert set(figures[who]) >= {
            "auc",
            "precision_top5",
            "median_lead_days",
            "false_alerts_per_1000_point_months",
        }
        assert 0.5 <= figures[who]["auc"] <= 1.0
    assert figures["classifier_on_dataset"]["macro_f1"] >= 0.9
    assert missing.returncode == 2
    assert "incidents.csv" in missing_stderr


def _features(panel: Panel, day: date) -> np.ndarray:
    return compute(PanelView(panel, day_number(day))).X


async def test_database_and_files_give_the_same_scores(
    ctx: Context, sim_dir: Path, sim_panel: Panel
) -> None:
    await FileImporter(ctx.store).run(sim_dir)
    stored = await load_panel(ctx.db)
    assert stored.point_ids == sim_panel.point_ids
    for day in (date(2022, 9, 16), date(2023, 6, 3)):
        np.testing.assert_allclose(_features(stored, day), _features(sim_panel, day))
        as_of = await load_panel(ctx.db, as_of=day)
        np.testing.assert_allclose(_features(as_of, day), _features(sim_panel, day))
        a = scoring.score(PanelView(as_of, day_number(day)))
        b = scoring.score(PanelView(sim_panel, day_number(day)))
        np.testing.assert_allclose(a.score, b.score)
        assert [f.text for fs in a.factors for f in fs] == [f.text for fs in b.factors for f in fs]


async def test_score_as_of_sees_nothing_that_came_later(
    ctx: Context, sim_dir: Path, clock: FrozenClock
) -> None:
    await FileImporter(ctx.store).run(sim_dir)
    day = date(2023, 5, 16)
    before = await load_panel(ctx.db, as_of=day)
    expected = scoring.score(PanelView(before, day_number(day)))
    point = before.point_ids[0]
    # Later history imported from a file (dated after the day) ...
    later = [
        {
            "petition_id": f"LATE-{k}",
            "received_at": "2023-05-17T09:00:00+08:00",
            "channel": "visit",
            "region_code": before.counties[before.county[0]],
            "point_id": point,
            "people_involved": 40,
            "summary": "工人集体讨薪，扬言堵路",
        }
        for k in range(5)
    ]
    await ctx.store.store("petition", [Submission(parse_row("petition", r), "file") for r in later])
    # ... and a report about the day before, but received live only after it.
    clock.set(datetime(2023, 5, 20, 2, 0, tzinfo=UTC))
    live = {
        "report_id": "LIVE-1",
        "informant_id": "inf-1",
        "occurred_at": "2023-05-15T10:00:00+08:00",
        "region_code": before.counties[before.county[0]],
        "point_id": point,
        "event_type": "precursor",
        "people_involved": 0,
        "description": "老板联系不上，工人准备集体上访",
    }
    await ctx.store.store("report", [Submission(parse_row("report", live), "mqtt", "inf-1")])
    after = await load_panel(ctx.db, as_of=day)
    result = scoring.score(PanelView(after, day_number(day)))
    np.testing.assert_allclose(result.score, expected.score)
    everything = await load_panel(ctx.db)
    np.testing.assert_allclose(
        scoring.score(PanelView(everything, day_number(day))).score, expected.score
    )
    # The live report counts from the day it arrived.
    seen = scoring.score(PanelView(after, day_number(date(2023, 5, 20))))
    assert seen.features["owner_gone_90"][0] == 1


def test_score_command_writes_the_contract_csv(sim_dir: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'score.db'}"
    env_run = dict(cwd=ROOT, capture_output=True, text=True, timeout=300)
    # A date that does not exist is refused before the store is opened: that command runs
    # alongside the import (each command is mostly its ~2 s start-up).
    with subprocess.Popen(
        [sys.executable, "-m", "monitor", "score", "--as-of", "2023-13-01", "--db", db],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as bad:
        done = subprocess.run(
            [sys.executable, "-m", "monitor", "import", str(sim_dir), "--db", db], **env_run
        )
        _, bad_stderr = bad.communicate(timeout=300)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "scores.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "score",
            "--as-of",
            "2023-11-20",
            "--out",
            str(out),
            "--db",
            db,
        ],
        **env_run,
    )
    assert done.returncode == 0, done.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "point_id,score,level,factors"
    import csv

    rows = list(csv.DictReader(lines))
    assert len(rows) == 150
    scores = [float(r["score"]) for r in rows]
    assert all(0 <= s <= 100 and not math.isnan(s) for s in scores)
    assert {r["level"] for r in rows} <= {"", "I", "II", "III", "IV"}
    top = max(rows, key=lambda r: float(r["score"]))
    assert top["factors"]  # the riskiest point says why, in Chinese
    assert any("\u4e00" <= ch <= "\u9fff" for ch in top["factors"])
    assert bad.returncode == 2
    assert "--as-of" in bad_stderr


def test_every_feature_has_a_neutral_value() -> None:
    from detectors.features import NEUTRAL

    assert set(NAMES) - set(NEUTRAL) <= {"industry", "log_headcount"}
    assert timedelta(days=1)  # keep the import used
