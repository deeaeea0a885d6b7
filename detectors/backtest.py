"""Rolling-origin backtest against ground truth (`labormon evaluate`).

At the 16th of every month (after the monthly reports are due), from six months into
the data until the last date whose 90-day horizon lies inside it, every point is
scored from what was known that day -- the forecaster retrained every few months on
the history known by then, the rules and anomalies otherwise -- and compared with the
incidents that actually followed within 90 days (`incidents.csv`). The status-quo
baseline ranks points by the arrears months of their latest monthly report alone and
"alerts" on any reported arrears.

Figures, for labormon and for the baseline:

- AUC over all (point, as-of) pairs;
- precision at the top 5 % of points, averaged over as-of dates (ties broken at
  random with a fixed seed, which is generous to the baseline's many ties);
- median lead time: for each incident, days between the first alert within the 90
  days before it and the incident, over incidents that had one (the share that had
  one is the detection rate);
- false alerts per 1,000 points per month: alerts (any level) not followed by an
  incident within 90 days.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np

from detectors import forecast, scoring
from detectors.features import compute
from detectors.panel import Panel, PanelView, month_of_index
from monitor.season import day_number, from_day_number


@dataclass
class Metrics:
    auc: float
    precision_top5: float
    median_lead_days: float
    detection_rate: float
    false_alerts_per_1000_point_months: float
    alerts_per_1000_point_months: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


@dataclass
class BacktestResult:
    as_of: list[date]
    points: int
    incidents: int
    positives: int
    labormon: Metrics
    baseline: Metrics
    rules_only: Metrics
    forecaster_dates: int
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of_first": self.as_of[0].isoformat() if self.as_of else None,
            "as_of_last": self.as_of[-1].isoformat() if self.as_of else None,
            "as_of_dates": len(self.as_of),
            "points": self.points,
            "incidents": self.incidents,
            "positive_point_months": self.positives,
            "forecaster_dates": self.forecaster_dates,
            "labormon": self.labormon.as_dict(),
            "rules_only": self.rules_only.as_dict(),
            "baseline": self.baseline.as_dict(),
            **self.details,
        }


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve with ties counted half (rank formula)."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def as_of_dates(panel: Panel, warm_up_months: int = 6, horizon: int = 90) -> list[date]:
    last = panel.last_day()
    dates = []
    for m in range(panel.month0 + warm_up_months, panel.month0 + panel.months + 1):
        d = month_of_index(m).replace(day=forecast.ORIGIN_DAY)
        if day_number(d) + horizon <= last:
            dates.append(d)
    return dates


def _truth_labels(panel: Panel, day: int, horizon: int) -> np.ndarray:
    sel = (panel.truth_day > day) & (panel.truth_day <= day + horizon)
    y = np.zeros(panel.n, dtype=bool)
    y[panel.truth_point[sel]] = True
    return y


def _metrics(
    panel: Panel,
    days: list[int],
    scores: list[np.ndarray],
    alerts: list[np.ndarray],
    labels: list[np.ndarray],
    horizon: int,
    seed: int = 0,
) -> Metrics:
    rng = np.random.default_rng(seed)
    y = np.concatenate(labels)
    s = np.concatenate(scores)
    top = []
    for sc, lab in zip(scores, labels, strict=True):
        k = max(1, round(0.05 * len(sc)))
        order = np.lexsort((rng.random(len(sc)), -sc))
        top.append(lab[order[:k]].mean())
    leads = []
    detected = 0
    counted = 0
    day_arr = np.array(days)
    for point, when in zip(panel.truth_point.tolist(), panel.truth_day.tolist(), strict=True):
        window = np.nonzero((day_arr < when) & (day_arr >= when - horizon))[0]
        if not len(window):
            continue
        counted += 1
        alerted = [k for k in window.tolist() if alerts[k][point]]
        if alerted:
            detected += 1
            leads.append(when - days[alerted[0]])
    alert_all = np.concatenate(alerts)
    point_months = len(alert_all)
    false = int((alert_all & ~y).sum())
    return Metrics(
        auc=auc(y, s),
        precision_top5=float(np.mean(top)),
        median_lead_days=float(np.median(leads)) if leads else float("nan"),
        detection_rate=detected / counted if counted else float("nan"),
        false_alerts_per_1000_point_months=1000.0 * false / max(point_months, 1),
        alerts_per_1000_point_months=1000.0 * int(alert_all.sum()) / max(point_months, 1),
    )


def backtest(
    panel: Panel,
    *,
    policy: scoring.ScoringPolicy | None = None,
    training: forecast.TrainingPolicy | None = None,
    retrain_every: int = 3,
    warm_up_months: int = 6,
    progress: Any = None,
) -> BacktestResult:
    policy = policy or scoring.ScoringPolicy()
    training = training or forecast.TrainingPolicy()
    horizon = training.horizon
    dates = as_of_dates(panel, warm_up_months, horizon)
    cache: dict[int, np.ndarray] = {}
    model: forecast.Forecaster | None = None
    days: list[int] = []
    ours, rules_only, base = [], [], []
    our_alerts, rule_alerts, base_alerts, labels = [], [], [], []
    with_model = 0
    for k, when in enumerate(dates):
        day = day_number(when)
        if k % retrain_every == 0:
            model = forecast.train(panel, day, training, cache) or model
        view = PanelView(panel, day)
        features = compute(view)
        cache.setdefault(day, features.X)
        table = scoring.score(view, model, policy, features=features, explain=False)
        fallback = (
            table
            if model is None
            else scoring.score(view, None, policy, features=features, explain=False)
        )
        with_model += model is not None
        days.append(day)
        ours.append(table.score)
        our_alerts.append(table.level_rank > 0)
        rules_only.append(fallback.score)
        rule_alerts.append(fallback.level_rank > 0)
        arrears = features["arrears_months"]
        base.append(arrears)
        base_alerts.append(arrears >= 1)
        labels.append(_truth_labels(panel, day, horizon))
        if progress is not None:
            progress(when, table.method)
    y = np.concatenate(labels) if labels else np.zeros(0, bool)
    return BacktestResult(
        as_of=dates,
        points=panel.n,
        incidents=len(panel.truth_day),
        positives=int(y.sum()),
        labormon=_metrics(panel, days, ours, our_alerts, labels, horizon),
        baseline=_metrics(panel, days, base, base_alerts, labels, horizon),
        rules_only=_metrics(panel, days, rules_only, rule_alerts, labels, horizon),
        forecaster_dates=with_model,
        details={
            "first_month": month_of_index(panel.month0).isoformat(),
            "last_day": from_day_number(panel.last_day()).isoformat(),
        },
    )
