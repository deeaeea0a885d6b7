"""The detectors' one small contract: stored rows in, findings out.

A detector reads a `PanelView` (what was known at the as-of day) and returns
`FindingDraft`s: an entity (a monitoring point, a county, or a single event), a risk
kind, a score 0-100, a level I-IV (or None: nothing, or the risk has cleared) and the
evidence -- factors in Chinese words with their weights, and the ids of the records
behind them. Drafts become rows of `findings` (see `detectors.persist`); the alerting
stage turns those into alerts. Personal data never enters a draft: factors speak of
enterprises, counts and amounts, never of petitioners or informants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

#: Alert levels, most severe first (interfaces §5).
LEVELS = ("I", "II", "III", "IV")
LEVEL_NAMES = {"I": "特别重大", "II": "重大", "III": "较大", "IV": "一般"}
#: A risk alert (a forecast) carries its level as a colour band, never as 特别重大 etc.
BAND_NAMES = {"I": "红色", "II": "橙色", "III": "黄色", "IV": "蓝色"}
RISK_KINDS = ("enterprise_risk", "county_risk", "petition_surge")


def risk_heading(level: str) -> str:
    """The heading of a risk finding's title: 【橙色风险提示】."""
    return f"【{BAND_NAMES[level]}风险提示】"


#: Rank of a level (higher = more severe); None ranks 0.
RANK = {None: 0, "IV": 1, "III": 2, "II": 3, "I": 4}

KINDS = ("event", "enterprise_risk", "county_risk", "petition_surge", "overdue_report")
KIND_NAMES = {
    "event": "事件",
    "enterprise_risk": "企业风险",
    "county_risk": "区县风险",
    "petition_surge": "信访激增",
    "overdue_report": "月报逾期",
}


def higher(a: str | None, b: str | None) -> str | None:
    """The more severe of two levels."""
    return a if RANK[a] >= RANK[b] else b


def raise_level(level: str | None, steps: int = 1) -> str | None:
    if level is None:
        return None
    return LEVELS[max(0, LEVELS.index(level) - steps)]


@dataclass(frozen=True)
class Factor:
    """One reason, in words: `code` is stable (for machines), `text` is for leaders."""

    code: str
    text: str
    weight: float

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "text": self.text, "weight": round(float(self.weight), 1)}


@dataclass
class FindingDraft:
    detector: str
    kind: str
    #: point | county | event
    entity_type: str
    entity_id: str
    region_code: str
    score: float
    level: str | None
    title: str
    factors: list[Factor] = field(default_factory=list)
    source_ids: list[str] = field(default_factory=list)
    point_id: str | None = None
    #: Extra evidence fields (people_involved, enterprise_name, ...): no personal data.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dedup_key(self) -> str:
        """Entity + risk kind: alerts are deduplicated on it (docs/DEVELOPING.md)."""
        return f"{self.entity_type}:{self.entity_id}:{self.kind}"

    def evidence(self) -> dict[str, Any]:
        return {
            "factors": [f.as_dict() for f in self.factors],
            "source_ids": list(dict.fromkeys(self.source_ids))[:50],
            **self.extra,
        }


class Detector(Protocol):
    """Rows in (a panel as of a day), findings out."""

    name: str

    def detect(self, view: Any) -> list[FindingDraft]: ...
