"""Event severity: the level I-IV of one informant report or petition, at once.

interfaces §5 defaults: I for 100 or more people, or for road blocking, a threat of
self-harm (`extreme_act`) or storming an office whatever the number; II for 30-99;
III for 10-29; IV below 10. Road blocking, storming and self-harm are also recognised in
the free text ("堵路", "冲击政府", "扬言跳楼"), because informants often file them as a
gathering or a petition. A death in a dispute is I. An owner who absconds (老板跑路) calls for an
immediate on-site response (DOMAIN) and is II by default.

What is an event (interfaces §5): every informant report of an incident or a precursor; a
petition only when it is collective (5 or more people), over the level (越级访), or
carries an always-I, owner-gone or death signal. Every other petition is stored, counted
(the county's daily digest) and used by every detector, and raises no alert of its own;
three distinct petitions about one enterprise within 30 days are one cluster event
(`cluster_finding`). An informant's routine word that all is well, nobody involved, is
no event either.

Reasons are one line each and do not repeat each other: a road blocking of 16 people is
"堵路（16人），不论人数定为特别重大", not that and "堵路，涉及16人" and the text's "堵塞道路".
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
    ROAD_BLOCK,
    SELF_HARM,
    STORMING,
    text_flags,
)
from detectors.textrules import threat_is_hearsay, threat_is_own

DEATH = re.compile(
    r"死亡|身亡|遇难|猝死|坠亡|摔死|砸死|丧生|丧命|死于|died|death|killed", re.IGNORECASE
)

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
#: Informant reports that are events even when they count nobody.
FLOOR_TYPES = frozenset({"precursor", "online_opinion"})
#: What the workers ask for, as a title says it: "300人堵路讨薪".
DEMANDS = {
    "wage_arrears": "讨薪",
    "social_insurance": "反映社保问题",
    "layoff": "反映裁员安置",
    "contract": "反映劳动合同问题",
    "injury": "反映工伤待遇",
    "other": "",
}


@dataclass(frozen=True)
class SeverityPolicy:
    """Thresholds of interfaces §5 (configurable)."""

    level_i_people: int = 100
    level_ii_people: int = 30
    level_iii_people: int = 10
    owner_absconded_level: str = "II"
    collective_people: int = COLLECTIVE
    #: The level of an over-level petition (越级访) to the city or province; to Beijing.
    over_level_level: str = "III"
    over_level_national_level: str = "II"

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


OVER_LEVEL_NAMES = {"city": "到市", "province": "到省", "national": "进京"}


def assess(
    *,
    event_type: str | None,
    people: int,
    category: str | None,
    text: str,
    is_petition: bool,
    policy: SeverityPolicy,
    over_level: str | None = None,
) -> Severity:
    """The level of one record; None: no event of its own (an ordinary petition, or an
    informant's report that involves nobody and names no risk)."""
    flags = text_flags(text)
    people = max(int(people or 0), 0)
    reasons: list[Factor] = []
    level: str | None = None
    kind = "petition" if is_petition else (event_type or "other")
    # A collective petition, or an informant's report of an unnamed collective action.
    collective = people >= policy.collective_people
    incident = kind in INCIDENT_TYPES or (kind in ("petition", "other") and collective)
    if kind in ALWAYS_I:
        level = "I"
        reasons.append(
            Factor(
                f"always_i_{kind}",
                f"{EVENT_NAMES[kind]}（{people}人），不论人数定为特别重大"
                if people
                else f"{EVENT_NAMES[kind]}，不论人数定为特别重大",
                100.0,
            )
        )
    elif incident:
        level = policy.by_people(people)
        reasons.append(
            Factor(
                f"event_{kind}",
                f"{EVENT_NAMES[kind]}{people}人，按人数定为{LEVEL_NAMES[level]}",
                60.0,
            )
        )
    if is_petition and over_level:
        over = (
            policy.over_level_national_level
            if over_level == "national"
            else policy.over_level_level
        )
        level = _higher(level, over)
        where = OVER_LEVEL_NAMES.get(over_level, over_level)
        reasons.append(Factor("over_level", f"越级访（{where}）", 75.0))
    # A precursor or an opinion post that speaks of blocking a road or storming an office
    # reports talk of a plan, not the act: serious (III, someone must go and look), but
    # not the 特别重大 of the act itself. A threat of self-harm is the act (DOMAIN.md).
    talk_only = kind in ("precursor", "online_opinion")
    # A rumour ("听说有人要去堵路", "网传有工人要跳楼") is checked first: III, as talk is.
    if flags & FLAG_ROAD_BLOCK and kind not in ALWAYS_I:
        if not talk_only and threat_is_hearsay(text, ROAD_BLOCK):
            level = _higher(level, "III")
            reasons.append(Factor("road_blocking_rumour", "传言有人要堵路，需核实并提前稳控", 70.0))
        elif talk_only:
            level = _higher(level, "III")
            reasons.append(Factor("road_blocking_talk", "有人扬言堵路，需提前稳控", 70.0))
        else:
            level = "I"
            reasons.append(Factor("road_blocking_text", "堵塞道路，不论人数定为特别重大", 100.0))
    if flags & FLAG_STORMING and kind not in ALWAYS_I:
        if not talk_only and threat_is_hearsay(text, STORMING):
            level = _higher(level, "III")
            reasons.append(Factor("storming_rumour", "传言有人要冲击、围堵办公场所，需核实", 70.0))
        elif talk_only:
            level = _higher(level, "III")
            reasons.append(Factor("storming_talk", "有人扬言冲击、围堵办公场所，需提前稳控", 70.0))
        else:
            level = "I"
            reasons.append(Factor("storming", "冲击、围堵机关或企业办公场所", 100.0))
    if flags & FLAG_SELF_HARM and kind != "extreme_act":
        if threat_is_hearsay(text, SELF_HARM):
            level = _higher(level, "III")
            reasons.append(
                Factor("self_harm_rumour", "传言有人以跳楼等极端方式相威胁，需核实并稳控", 70.0)
            )
        else:
            level = "I"
            own = threat_is_own(text, SELF_HARM)
            reasons.append(
                Factor(
                    "self_harm",
                    "信访人本人以自伤、跳楼等极端方式相威胁"
                    if own
                    else "以自伤、跳楼等极端方式相威胁",
                    100.0,
                )
            )
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
    if level is None and not is_petition and (people > 0 or kind in FLOOR_TYPES):
        # The floor: every informant report of an incident or a precursor is an event,
        # by its number of people. (A petition without the signals above is none.)
        level = policy.by_people(people)
        what = EVENT_NAMES.get(kind, EVENT_NAMES["other"])
        reasons.append(
            Factor(f"reported_{kind}", f"{what}，涉及{people}人" if people else what, 20.0)
        )
    if level is None:
        return Severity(None, ())
    if category:
        reasons.append(
            Factor(f"category_{category}", f"诉求：{CATEGORY_NAMES.get(category, category)}", 10.0)
        )
    return Severity(level, tuple(_distinct(reasons)))


def _distinct(reasons: list[Factor]) -> list[Factor]:
    """Reasons without repeats (same code or same words)."""
    seen: set[str] = set()
    out = []
    for reason in reasons:
        if reason.code in seen or reason.text in seen:
            continue
        seen.update((reason.code, reason.text))
        out.append(reason)
    return out


def _rank(level: str) -> int:
    return {"I": 4, "II": 3, "III": 2, "IV": 1}[level]


def _higher(level: str | None, other: str) -> str:
    """The more serious of two levels (None counts as no level)."""
    return other if level is None or _rank(other) > _rank(level) else level


def _lower(level: str, other: str) -> str:
    return other if _rank(other) < _rank(level) else level


def event_title(
    *,
    where: str,
    people: int,
    kind: str,
    category: str | None,
    petition: bool,
    over_level: str | None = None,
    collective: int = COLLECTIVE,
) -> str:
    """What happened in one line: "星东建筑 300人堵路讨薪"."""
    what = EVENT_NAMES.get(kind, kind)
    if petition and people < collective:
        what = "越级访" if over_level else "信访"  # 集体访 starts at five people
    elif petition and over_level:
        what = "集体越级访"
    count = f"{people}人" if people else ""
    return f"{where} {count}{what}{DEMANDS.get(category or '', '')}"


def event_finding(
    *,
    record_kind: str,
    record: dict[str, Any],
    point_name: str | None,
    severity: Severity,
    collective: int = COLLECTIVE,
) -> FindingDraft | None:
    """The finding for one record of level I-IV, or None.

    Its entity is the enterprise (the monitoring point, or the name an unregistered one
    was reported under), so that the alerting stage can join the events of one incident
    (interfaces §5); a record that names no enterprise is an incident of its own."""
    if severity.level is None:
        return None
    is_petition = record_kind == "petition"
    record_id = str(record["petition_id"] if is_petition else record["report_id"])
    point_id = record.get("point_id")
    name = record.get("enterprise_name")
    people = int(record.get("people_involved") or 0)
    kind = "petition" if is_petition else str(record.get("event_type") or "other")
    where = point_name or name or "未登记企业"
    title = event_title(
        where=where,
        people=people,
        kind=kind,
        category=record.get("category"),
        petition=is_petition,
        over_level=record.get("over_level"),
        collective=collective,
    )
    if point_id:
        entity_type, entity_id = "point", str(point_id)
    elif name:
        entity_type, entity_id = "firm", f"{record['region_code']}:{name}"
    else:
        entity_type, entity_id = "event", f"{record_kind}:{record_id}"
    occurred = record.get("received_at") if is_petition else record.get("occurred_at")
    reasons = list(severity.reasons)
    why = max(reasons, key=lambda f: f.weight).text if reasons else ""
    return FindingDraft(
        detector="severity",
        kind="event",
        entity_type=entity_type,
        entity_id=entity_id,
        region_code=str(record["region_code"]),
        # Events carry no risk score (interfaces §5): the level says how serious.
        score=0.0,
        level=severity.level,
        title=title,
        factors=reasons,
        source_ids=[record_id],
        point_id=str(point_id) if point_id else None,
        extra={
            "people_involved": people,
            "enterprise_name": point_name or name,
            "event_type": kind,
            "category": record.get("category"),
            "record_kind": record_kind,
            "kind_name": KIND_NAMES["event"],
            "occurred_at": _iso(occurred),
            "follows": record.get("follows"),
            "over_level": record.get("over_level"),
            "channel": record.get("channel"),
            "why": why,
        }
        | _acts_on(record),
    )


def _acts_on(record: dict[str, Any]) -> dict[str, Any]:
    """interfaces §8: the earlier report a correction or withdrawal acts on."""
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


def cluster_finding(
    *,
    point_id: str | None,
    name: str,
    region_code: str,
    petitions: list[tuple[str, Any]],
    days: int,
    level: str,
) -> FindingDraft:
    """One event for several distinct petitions about one enterprise within `days`
    (interfaces §5): it lists them; later ones in the window join it."""
    ids = [pid for pid, _ in petitions]
    last = max(at for _, at in petitions)
    entity_id = point_id or f"{region_code}:{name}"
    return FindingDraft(
        detector="severity",
        kind="event",
        entity_type="cluster",
        entity_id=entity_id,
        region_code=region_code,
        score=0.0,
        level=level,
        title=f"{name} {days}天内信访{len(ids)}件",
        factors=[
            Factor(
                "petition_cluster",
                f"同一企业{days}天内信访{len(ids)}件（{'、'.join(ids[:10])}）",
                50.0,
            )
        ],
        source_ids=ids,
        point_id=point_id,
        extra={
            "enterprise_name": name,
            "event_type": "petition_cluster",
            "record_kind": "petition",
            "kind_name": KIND_NAMES["event"],
            "petitions": len(ids),
            "window_days": days,
            "occurred_at": _iso(last),
            "why": f"同一企业{days}天内信访{len(ids)}件",
            "cluster": True,
        },
    )


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
