"""The incident forecaster: the probability of a collective incident within 90 days.

Trained on the system's own history: at the 16th of every month (after the reports
are due), the features of every point as then known, and whether an incident
followed within the horizon -- an incident being a reported gathering, stoppage,
road blocking, extreme act or collective petition (5 or more people) linked to the
point. Only origins whose whole horizon lies before the training day are used, and
labels are only the reports known by then, so the model never sees the future of its
own training.

Gradient boosting (scikit-learn's HistGradientBoostingClassifier, small trees, strong
leaves: a few hundred positives is the usual amount of history) with Platt-scaled
probabilities (CalibratedClassifierCV, folds grouped by point so a point's months do
not vouch for each other). With fewer than `min_incidents` labelled incidents there
is no model and scoring falls back to the rules and anomalies.

A fitted model is saved as skops bytes (never pickle) with the scikit-learn version
and the feature names; one trained under another version or feature list is not
used (the daemon retrains instead).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.expert import expert_probability
from detectors.features import COL, NAMES, compute
from detectors.panel import Panel, PanelView
from monitor.logging import get_logger

log = get_logger("labormon.detectors.forecast")

MODEL_NAME = "incident_forecaster"

#: The types beyond skops' defaults that a calibrated gradient-boosting model holds,
#: audited once: loading trusts exactly these and refuses a file with anything else.
TRUSTED_TYPES = frozenset(
    {
        "functools.partial",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.utils.validation.check_array",
    }
)


#: Scoring and training happen on this day of the month: the day after the monthly
#: reports are due (the 15th), when last month's picture is complete.
ORIGIN_DAY = 16


@dataclass(frozen=True)
class TrainingPolicy:
    horizon: int = 90
    #: Months of data before the first origin, so that features have history.
    warm_up_months: int = 2
    min_incidents: int = 30
    max_rows: int = 400_000
    seed: int = 7


@dataclass
class Forecaster:
    model: Any
    feature_names: list[str]
    base_rate: float
    trained_until: int
    metrics: dict[str, Any] = field(default_factory=dict)
    sklearn_version: str = ""

    def predict(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0)
        p = self.model.predict_proba(augment(X))[:, 1]
        return np.clip(np.nan_to_num(p, nan=self.base_rate), 0.0, 1.0)

    # ------------------------------------------------------------------ storage

    def to_bytes(self) -> bytes:
        import skops.io as sio

        return bytes(sio.dumps(self.model))

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        feature_names: list[str],
        base_rate: float,
        trained_until: int,
        metrics: dict[str, Any],
        sklearn_version: str,
    ) -> Forecaster:
        import skops.io as sio
        from sklearn import __version__ as current

        if sklearn_version != current:
            raise ValueError(
                f"model trained with scikit-learn {sklearn_version}, this is {current}"
            )
        if list(feature_names) != NAMES:
            raise ValueError("model trained on another feature list")
        untrusted = sio.get_untrusted_types(data=data)
        unexpected = sorted(set(untrusted) - TRUSTED_TYPES)
        if unexpected:
            raise ValueError(f"model holds types that are not trusted: {unexpected}")
        model = sio.loads(data, trusted=untrusted)
        return cls(model, list(feature_names), base_rate, trained_until, metrics, sklearn_version)


#: Features the trees may only use in the direction of more risk: more arrears, more
#: petitions, more precursors never lower a probability (keeps a model trained on a
#: few hundred incidents from learning noise backwards).
INCREASING = (
    "arrears_months",
    "unpaid",
    "si_months",
    "silent_months",
    "petitions_arrears_90",
    "precursors_90",
    "collective_talk_90",
    "owner_gone_90",
    "incidents_365",
    "self_report_gap",
    "layoff_notifiable",
)


def augment(X: np.ndarray) -> np.ndarray:
    """The features plus the expert formula's log-odds: the trees start from what the
    rules already know and learn the corrections (a prior that matters most when the
    history is short)."""
    p = np.clip(expert_probability(X), 1e-6, 1 - 1e-6)
    return np.column_stack([X, np.log(p / (1 - p))])


def monotonic_constraints() -> list[int]:
    cst = [0] * (len(NAMES) + 1)
    for name in INCREASING:
        cst[COL[name]] = 1
    cst[-1] = 1  # the expert log-odds
    return cst


def incident_labels(panel: Panel, origin: int, horizon: int, known_by: int) -> np.ndarray:
    """Per point: an incident in the system's history in (origin, origin + horizon],
    using only reports visible by `known_by`."""
    mask = panel.incident_mask() & (panel.ev_point >= 0) & (panel.ev_visible <= known_by)
    sel = mask & (panel.ev_day > origin) & (panel.ev_day <= origin + horizon)
    y = np.zeros(panel.n, dtype=bool)
    y[panel.ev_point[sel]] = True
    return y


def training_origins(panel: Panel, until: int, policy: TrainingPolicy) -> list[int]:
    """The 16th of every month (the day after the monthly reports are due) from
    `warm_up_months` into the data, whose horizon ends by `until`."""
    from detectors.panel import month_of_index
    from monitor.season import day_number

    origins = []
    for m in range(panel.month0 + policy.warm_up_months, panel.month0 + panel.months + 2):
        origin = day_number(month_of_index(m).replace(day=ORIGIN_DAY))
        if origin + policy.horizon <= until:
            origins.append(origin)
    return origins


@dataclass
class TrainingSet:
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    origins: list[int]


def training_set(
    panel: Panel,
    until: int,
    policy: TrainingPolicy,
    cache: dict[int, np.ndarray] | None = None,
) -> TrainingSet:
    """Features and labels at every origin before `until` (features may come from a
    cache keyed by origin, as the backtest recomputes nothing)."""
    origins = training_origins(panel, until, policy)
    rng = np.random.default_rng(policy.seed)
    per_origin = max(1, policy.max_rows // max(len(origins), 1))
    xs, ys, gs = [], [], []
    for origin in origins:
        if cache is not None and origin in cache:
            X = cache[origin]
        else:
            X = compute(PanelView(panel, origin)).X
            if cache is not None:
                cache[origin] = X
        y = incident_labels(panel, origin, policy.horizon, until)
        rows = np.arange(panel.n)
        if panel.n > per_origin:
            # A uniform sample of points per origin keeps the probabilities calibrated.
            rows = np.sort(rng.choice(panel.n, per_origin, replace=False))
        xs.append(X[rows])
        ys.append(y[rows])
        gs.append(rows)
    if not xs:
        return TrainingSet(np.zeros((0, len(NAMES))), np.zeros(0, bool), np.zeros(0), [])
    return TrainingSet(np.vstack(xs), np.concatenate(ys), np.concatenate(gs), origins)


def train(
    panel: Panel,
    until: int,
    policy: TrainingPolicy | None = None,
    cache: dict[int, np.ndarray] | None = None,
) -> Forecaster | None:
    """A forecaster trained on the history known by day `until`, or None when there is
    too little of it."""
    from sklearn import __version__ as sklearn_version
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import GroupKFold

    policy = policy or TrainingPolicy()
    started = time.perf_counter()
    data = training_set(panel, until, policy, cache)
    positives = int(data.y.sum())
    if positives < policy.min_incidents or len(np.unique(data.groups)) < 6:
        log.debug("too little history for the forecaster", incidents=positives)
        return None
    booster = HistGradientBoostingClassifier(
        max_iter=150,
        learning_rate=0.05,
        max_leaf_nodes=5,
        min_samples_leaf=150,
        l2_regularization=1.0,
        categorical_features=[COL["industry"]],
        monotonic_cst=monotonic_constraints(),
        random_state=policy.seed,
    )
    X = augment(data.X)
    folds = list(GroupKFold(n_splits=3).split(X, data.y, groups=data.groups))
    folds = [(tr, te) for tr, te in folds if data.y[tr].any() and data.y[te].any()]
    # Each fold's booster is calibrated on the points it did not see; the three are
    # averaged (an ensemble as well as a calibration).
    model = CalibratedClassifierCV(booster, method="sigmoid", cv=folds or 3)
    model.fit(X, data.y)
    base_rate = float(data.y.mean())
    metrics = {
        "rows": len(data.y),
        "incidents": positives,
        "origins": len(data.origins),
        "points": int(panel.n),
        "base_rate": round(base_rate, 5),
        "fit_seconds": round(time.perf_counter() - started, 2),
    }
    log.debug("forecaster trained", **metrics)
    return Forecaster(model, list(NAMES), base_rate, until, metrics, sklearn_version)
