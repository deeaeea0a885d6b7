"""The expert formula: the risk of an incident from the features, with weights set by
judgement. It scores when no trained model exists and is the forecaster's prior."""

from __future__ import annotations

import numpy as np

from detectors import rules
from detectors.features import COL


def expert_probability(X: np.ndarray) -> np.ndarray:
    """The fallback without a trained model: a logistic formula over the features with
    weights set by judgement (what DOMAIN.md names as precursors, how strongly)."""
    c = COL
    settler = X[:, c["settler_pattern"]] > 0
    arrears = np.where(settler, 0.0, np.minimum(X[:, c["arrears_months"]], 6))
    z = (
        -5.0
        + 0.55 * arrears
        + 0.3 * settler * (X[:, c["days_to_festival"]] <= 40)
        + 0.9 * X[:, c["unpaid"]]
        + 0.02 * np.clip(X[:, c["pay_delay_trend"]], 0, 40)
        + 0.3 * np.minimum(X[:, c["si_months"]], 3)
        + 0.6 * X[:, c["layoff_notifiable"]]
        + 0.8 * (X[:, c["status"]] == 2) * (X[:, c["status_seasonal"]] == 0)
        + 0.35 * (X[:, c["status"]] == 1) * (X[:, c["status_seasonal"]] == 0)
        + 0.45 * np.minimum(X[:, c["silent_months"]], 4)
        + 0.4 * np.minimum(X[:, c["petitions_arrears_90"]], 4)
        + 0.15 * np.minimum(X[:, c["petitions_90"]], 6)
        + 0.5 * np.minimum(X[:, c["precursors_90"]], 3)
        + 0.9 * np.minimum(X[:, c["collective_talk_90"]], 2)
        + 2.0 * np.minimum(X[:, c["owner_gone_90"]], 1)
        + 0.3 * np.minimum(X[:, c["opinion_90"]], 2)
        + 0.7 * np.minimum(X[:, c["incidents_365"]], 2)
        + 0.35 * np.minimum(X[:, c["self_report_gap"]], 3)
        + 0.4 * (X[:, c["wage_z_own"]] <= rules.WAGE_DROP_Z)
        + 0.4 * (X[:, c["wage_z_peer"]] <= rules.WAGE_PEER_Z)
        + 0.5 * (X[:, c["days_to_festival"]] <= 100) * (arrears > 0)
    )
    return 1.0 / (1.0 + np.exp(-z))
