"""Event severity: the level I-IV of one informant report or petition, at once.

CONTRACT §5 defaults: I for 100 or more people, or for road blocking, a threat of
self-harm (`extreme_act`) or storming an office whatever the number; II for 30-99;
III for 10-29; IV below 10. Road blocking, storming and self-harm are also recognised in
the free text ("堵路", "冲击政府", "扬言跳楼"), because informants often file them as a
gathering or a petition. A death in a dispute is I. An owner who absconds (老板跑路) calls for an
immediate on-site response (DOMAIN) and is II by default.

Every petition and every informant report that involves people or an online post is a
reported event with a level (CONTRACT §5): the informant system exists so that what
informants see reaches the county at once, and a single worker's hotline call is still a
case the county must know of. Small ones are IV, which goes to the county's daily digest
rather than to anyone's phone; they also feed the surge and risk scores. Above that floor
the level comes from the number of people for an incident (gathering, stoppage, road
blocking, extreme act, a collective petition or another collective action of 5 or more
people), from text that says storming or self-harm, from an owner gone, or from talk of
going to the government together by 10 or more people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from detectors.base import KIND_NAMES, LEVEL_NAMES, Factor, FindingDraft
from detectors.panel import (
    COLLECTIVE,
    FLAG_COLLECTIVE_TALK,
    FLAG_OWNER_GONE,
    FLAG_ROAD_BLOCK,
    FLAG_SELF_HARM,
    FLAG_STORMING,
    text_flags,
)

DEATH = re.compile(r"死亡|身亡|遇难|猝死|died|death|killed", re.IGNORECASE)

EVENT_NAMES = {
    "precursor": "风险苗头",
    "petition": "集体访",
    "gathering": "聚集",
    "work_stoppage": "停工",
    "road_blocking": "堵路",
    "extreme_act": "极端行为",
    "online_opinion": "网络舆情",
    "other": "其他情况",
}
CATEGORY_NAMES = {
    "wage_arrears": "欠薪",
    "social_insurance": "社保",
    "layoff": "裁员",
    "contract": "劳动合同",
    "injury": "工伤",
    "other": "其他",
}
INCIDENT_TYPES = frozenset({"gathering", "work_stoppage", "road_blocking", "extreme_act"})
ALWAYS_I = frozenset({"road_blocking", "extreme_act"})


@dataclass(frozen=True)
class SeverityPolicy:
    """Thresholds of CONTRACT §5 (configurable)."""

    level_i_people: int = 100
    level_ii_people: int = 30
    level_iii_people: int = 10
    owner_absconded_level: str = "II"

    def by_people(self, people: int) -> str:
        if people >= self.level_i_people:
            return "I"
        if people >= self.level_ii_people:
            return "II"
        if people >= self.level_iii_people:
            return "III"
        return "IV"


@dataclass(frozen=True)
class Severity:
    level: str | None
    reasons: tuple[Factor, ...]


def assess(
    *,
    event_type: str | None,
    people: int,
    category: str | None,
    text: str,
    is_petition: bool,
    policy: SeverityPolicy,
) -> Severity:
    """The level of one record (None only for an informant's report that involves nobody
    and names no risk: a routine all-clear)."""
    flags = text_flags(text)
    people = max(int(people or 0), 0)
    reasons: list[Factor] = []
    level: str | None = None
    kind = "petition" if is_petition else (event_type or "other")
    # A collective petition, or an informant's report of an unnamed collective action.
    incident = kind in INCIDENT_TYPES or (kind in ("petition", "other") and people >= COLLECTIVE)
    if incident:
        level = policy.by_people(people)
        reasons.append(Factor(f"event_{kind}", f"{EVENT_NAMES[kind]}，涉及{people}人", 60.0))
    if kind in ALWAYS_I:
        level = "I"
        reasons.append(
            Factor(f"always_i_{kind}", f"{EVENT_NAMES[kind]}，不论人数定为特别重大", 100.0)
        )
    # A precursor or an opinion post that speaks of blocking a road or storming an office
    # reports talk of a plan, not the act: serious (III, someone must go and look), but
    # not the 特别重大 of the act itself. A threat of self-harm is the act (DOMAIN.md).
    talk_only = kind in ("precursor", "online_opinion")
    if flags & FLAG_ROAD_BLOCK and kind != "road_blocking":
        if talk_only:
            level = _higher(level, "III")
            reasons.append(Factor("road_blocking_talk", "有人扬言堵路，需提前稳控", 70.0))
        else:
            level = "I"
            reasons.append(Factor("road_blocking_text", "堵塞道路，不论人数定为特别重大", 100.0))
    if flags & FLAG_STORMING:
        if talk_only:
            level = _higher(level, "III")
            reasons.append(Factor("storming_talk", "有人扬言冲击、围堵办公场所，需提前稳控", 70.0))
        else:
            level = "I"
            reasons.append(Factor("storming", "冲击、围堵机关或企业办公场所", 100.0))
    if flags & FLAG_SELF_HARM:
        level = "I"
        reasons.append(Factor("self_harm", "以自伤、跳楼等极端方式相威胁", 100.0))
    if category == "injury" and DEATH.search(text):
        level = "I"
        reasons.append(Factor("death", "涉及人员死亡", 100.0))
    if flags & FLAG_OWNER_GONE:
        owner_level = policy.owner_absconded_level
        if is_petition and people < COLLECTIVE:
            # One petitioner's word that a boss (or a labour contractor) is unreachable is
            # checked by the county first; an informant's report or a group is acted on.
            owner_level = _lower(owner_level, "III")
        level = _higher(level, owner_level)
        reasons.append(Factor("owner_gone", "企业负责人失联或疑似跑路，需立即到场处置", 80.0))
    if level is None and flags & FLAG_COLLECTIVE_TALK and people >= policy.level_iii_people:
        level = policy.by_people(people)
        reasons.append(Factor("collective_talk", f"{people}人酝酿集体上访或聚集", 50.0))
    if level is None and (is_petition or people > 0 or kind == "online_opinion"):
        # The floor: every reported event has a level, by its number of people. (An
        # informant's routine word that all is well, nobody involved, is no event.)
        level = policy.by_people(people)
        what = "信访" if kind == "petition" else EVENT_NAMES.get(kind, EVENT_NAMES["other"])
        reasons.append(Factor(f"reported_{kind}", f"{what}，涉及{people}人", 20.0))
    if category:
        reasons.append(
            Factor(f"category_{category}", f"诉求：{CATEGORY_NAMES.get(category, category)}", 10.0)
        )
    return Severity(level, tuple(reasons))


def _rank(level: str) -> int:
    return {"I": 4, "II": 3, "III": 2, "IV": 1}[level]


def _higher(level: str | None, other: str) -> str:
    """The more serious of two levels (None counts as no level)."""
    return other if level is None or _rank(other) > _rank(level) else level


def _lower(level: str, other: str) -> str:
    return other if _rank(other) < _rank(level) else level


def event_finding(
    *,
    record_kind: str,
    record: dict[str, Any],
    point_name: str | None,
    severity: Severity,
) -> FindingDraft | None:
    """The finding for one record of level I-IV, or None."""
    if severity.level is None:
        return None
    is_petition = record_kind == "petition"
    record_id = str(record["petition_id"] if is_petition else record["report_id"])
    point_id = record.get("point_id")
    people = int(record.get("people_involved") or 0)
    kind = "petition" if is_petition else str(record.get("event_type") or "other")
    where = point_name or record.get("enterprise_name") or "未登记企业"
    what = EVENT_NAMES.get(kind, kind)
    if is_petition and people < COLLECTIVE:
        what = "信访"  # 集体访 starts at five people
    title = f"【{LEVEL_NAMES[severity.level]}】{where}{what}"
    if people:
        title += f"（{people}人）"
    score = {"I": 95.0, "II": 80.0, "III": 65.0, "IV": 45.0}[severity.level]
    return FindingDraft(
        detector="severity",
        kind="event",
        entity_type="point" if point_id else "event",
        entity_id=str(point_id) if point_id else f"{record_kind}:{record_id}",
        region_code=str(record["region_code"]),
        score=score,
        level=severity.level,
        title=title,
        factors=list(severity.reasons),
        source_ids=[record_id],
        point_id=str(point_id) if point_id else None,
        extra={
            "people_involved": people,
            "enterprise_name": point_name or record.get("enterprise_name"),
            "event_type": kind,
            "category": record.get("category"),
            "record_kind": record_kind,
            "kind_name": KIND_NAMES["event"],
        }
        | _acts_on(record),
    )


def _acts_on(record: dict[str, Any]) -> dict[str, Any]:
    """CONTRACT §8: the earlier report a correction or withdrawal acts on."""
    return {k: str(record[k]) for k in ("corrects", "withdraws") if record.get(k)}


def correction_finding(record_kind: str, record: dict[str, Any]) -> FindingDraft:
    """A withdrawal, or a correction to something with no level: a finding without a
    level that names the report it acts on (the alerting stage closes that alert)."""
    record_id = str(record["report_id"])
    withdrawn = bool(record.get("withdraws"))
    return FindingDraft(
        detector="severity",
        kind="event",
        entity_type="event",
        entity_id=f"{record_kind}:{record_id}",
        region_code=str(record["region_code"]),
        score=0.0,
        level=None,
        title="报告已撤回" if withdrawn else "报告已更正，不再构成事件",
        source_ids=[record_id],
        point_id=str(record["point_id"]) if record.get("point_id") else None,
        extra={
            "people_involved": int(record.get("people_involved") or 0),
            "record_kind": record_kind,
        }
        | _acts_on(record),
    )
