"""Rules from the published thresholds (DOMAIN.md) and wage anomalies, per point.

Rules give two things: a *floor* -- the least level a point gets whatever the model
says, for the situations where county practice demands an immediate response -- and
*factors*, the reasons in words. Floors are kept to the unambiguous cases so that
rules do not re-create the status quo's flood of alerts:

| situation                                                  | floor |
|------------------------------------------------------------|-------|
| owner unreachable / absconding (informant, last 90 days)   | II (I with unpaid wages) |
| production halted with wages unpaid (not a seasonal halt)  | II    |

The other published thresholds -- arrears over 2 months ("red") for 10 or more
workers (群体性欠薪), talk of going to the government together, layoffs at the
notification threshold (>= 20 people or >= 10 %), social insurance stopped -- are
named as factors and weigh in the score, but set no floor: measured on the backtest,
floors for them tripled the alerts (most of them false) and lowered the AUC.

Arrears that match a construction firm's annual settlement (months owed = months
since the last festival) are reported as such and get no colour floor until the
festival has passed unpaid. Wage anomalies compare the latest wage with the point's
own last 12 months and with its industry-and-county peers in the same month (peers
move together with the season, so a festival dip is no anomaly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.base import RANK, Factor
from detectors.features import COL, Features

INDUSTRY_NAMES = ["建筑业", "制造业", "服务业", "物流运输", "采矿业", "其他行业"]

#: Floors: rule code -> level.
FLOORS = {
    "owner_gone": "II",
    "halted_unpaid": "II",
}
#: Published thresholds reported as factors (with the floors' texts) but no floor.
THRESHOLDS = ("group_arrears_red", "collective_talk", "layoff_notifiable", "social_insurance")
#: Thresholds of a wage anomaly: own robust z and peer robust z (both negative).
WAGE_DROP_Z = -3.0
WAGE_PEER_Z = -2.5


@dataclass
class RuleHits:
    """Per point: the floor level (rank 0-4) and which floor rules fired."""

    floor_rank: np.ndarray
    fired: dict[str, np.ndarray]

    def floor(self, i: int) -> str | None:
        rank = int(self.floor_rank[i])
        return {0: None, 1: "IV", 2: "III", 3: "II", 4: "I"}[rank]


def evaluate(f: Features) -> RuleHits:
    arrears = f["arrears_months"]
    settler = f["settler_pattern"] > 0
    unpaid = f["unpaid"] > 0
    seasonal = f["status_seasonal"] > 0
    fired = {
        "owner_gone": f["owner_gone_90"] > 0,
        "halted_unpaid": (f["status"] == 2) & ~seasonal & (unpaid | (arrears > 0)) & ~settler,
        "group_arrears_red": (arrears > 2)
        & ~settler
        & (f["arrears_share"] * np.exp(f["log_headcount"]) >= 9.5),
        "collective_talk": f["collective_talk_90"] > 0,
        "layoff_notifiable": f["layoff_notifiable"] > 0,
    }
    fired["social_insurance"] = f["si_months"] >= 3
    rank = np.zeros(len(arrears), dtype=np.int64)
    for code, level in FLOORS.items():
        rank = np.where(fired[code], np.maximum(rank, RANK[level]), rank)
    # An owner gone while wages are owed is the textbook case of 老板跑路: level I.
    rank = np.where(fired["owner_gone"] & (unpaid | (arrears > 0)), 4, rank)
    return RuleHits(rank, fired)


def _pct(x: float) -> str:
    return f"{abs(x) * 100:.0f}%"


def group_text(group: str, x: np.ndarray) -> str | None:
    """The words for one group of features of one point (row `x`), or None when the
    group has nothing to say."""
    v = {name: float(x[i]) for name, i in COL.items()}
    if group == "arrears":
        months, share = int(v["arrears_months"]), v["arrears_share"]
        if v["settler_pattern"] and months:
            return f"按年结算工资，已累计{months}个月未结清，须在春节前结算"
        if months:
            text = f"拖欠工资{months}个月"
            if share > 0:
                text += f"，涉及约{_pct(share)}的职工"
            if v["arrears_wage_months"] >= 1:
                text += f"，欠薪额约合{v['arrears_wage_months']:.1f}个月工资总额"
            return text
        if v["unpaid"]:
            return f"上月工资逾期{int(v['pay_delay'])}天仍未发放"
        if v["pay_delay_trend"] >= 7:
            return f"工资发放较以往推迟{int(v['pay_delay_trend'])}天，越发越晚"
        return None
    if group == "social_insurance":
        return f"社保断缴{int(v['si_months'])}个月" if v["si_months"] > 0 else None
    if group == "layoffs":
        if v["layoff_share"] <= 0:
            return None
        text = f"计划裁员约{_pct(v['layoff_share'])}"
        if v["layoff_notifiable"]:
            text += "，达到须提前30日向工会通报的标准"
        return text
    if group == "production":
        status = int(v["status"])
        if status == 0:
            return "近3个月曾减产或停产" if v["abnormal_months_3"] > 0 else None
        word = "停产" if status == 2 else "减产"
        if v["status_seasonal"]:
            return f"{word}（去年同期亦如此，属季节性）"
        return f"企业{word}"
    if group == "reporting":
        if v["never_reported"]:
            return "登记后从未报送月报"
        if v["silent_months"] >= 1:
            return f"已连续{int(v['silent_months'])}个月未报送月报"
        if v["missing_6"] >= 1:
            return f"近6个月缺报{int(v['missing_6'])}次"
        if v["bad_data"]:
            return "月报数据异常（工资或人数不合理）"
        return None
    if group == "wage_anomaly":
        parts = []
        if v["wage_z_own"] <= WAGE_DROP_Z:
            parts.append("一线工资明显低于本企业近12个月水平")
        if v["wage_z_peer"] <= WAGE_PEER_Z:
            parts.append("工资变动明显差于同区县同行业同期")
        if v["wage_yoy"] <= -0.15:
            parts.append(f"工资同比下降{_pct(1 - np.exp(v['wage_yoy']))}")
        if v["headcount_change"] <= -0.2:
            parts.append(f"职工人数半年减少{_pct(1 - np.exp(v['headcount_change']))}")
        if v["overtime_change"] <= -20:
            parts.append("加班时间骤减（订单减少）")
        return "，".join(parts) or None
    if group == "petitions":
        n90 = int(v["petitions_90"])
        if not n90:
            return None
        text = f"近90天涉及该企业的信访{n90}件"
        if v["petitions_arrears_90"]:
            text += f"（欠薪、社保、裁员类{int(v['petitions_arrears_90'])}件）"
        if v["petitions_30"]:
            text += f"，近30天{int(v['petitions_30'])}件"
        return text
    if group == "informants":
        parts = []
        if v["owner_gone_90"]:
            parts.append("信息员报告企业负责人失联或转移资产")
        if v["collective_talk_90"]:
            parts.append("职工酝酿集体上访或聚集")
        if v["precursors_90"]:
            parts.append(f"信息员近90天报告风险苗头{int(v['precursors_90'])}次")
        if v["opinion_90"]:
            parts.append(f"网络舆情{int(v['opinion_90'])}条")
        return "，".join(parts) or None
    if group == "history":
        if v["incidents_365"]:
            text = f"近一年已发生群体性事件{int(v['incidents_365'])}起"
            if v["days_since_incident"] < 90:
                text += f"（最近一起在{int(v['days_since_incident'])}天前）"
            return text
        return None
    if group == "gap":
        if v["self_report_gap"]:
            return (
                f"月报自称无欠薪，但近90天有{int(v['self_report_gap'])}条"
                "欠薪类信访或信息员报告，自报与实际不符"
            )
        return None
    if group == "season":
        days = int(v["days_to_festival"])
        return f"距春节{days}天，正值欠薪矛盾高发期" if days <= 100 else None
    if group == "county":
        parts = []
        if v["county_petition_ratio"] >= 1.3:
            parts.append(f"所在区县信访量为前期的{v['county_petition_ratio']:.1f}倍")
        if v["sector_arrears_share"] >= 0.15:
            parts.append(f"本行业{_pct(v['sector_arrears_share'])}的监测点欠薪或停报")
        return "，".join(parts) or None
    if group == "context":
        industry = INDUSTRY_NAMES[int(v["industry"])] if 0 <= v["industry"] < 6 else "其他行业"
        return f"{industry}，职工约{int(np.expm1(v['log_headcount']))}人"
    return None


FLOOR_TEXT = {
    "owner_gone": "企业负责人失联或疑似跑路，须立即到场处置",
    "halted_unpaid": "停产且工资未发，须立即到场处置",
    "group_arrears_red": "群体性欠薪红色预警（欠薪超过2个月且涉及10人以上）",
    "collective_talk": "职工酝酿集体上访",
    "layoff_notifiable": "裁员达到须提前30日通报工会的标准",
    "social_insurance": "社保断缴3个月以上",
}


#: The feature group whose words already say what a rule says.
RULE_GROUP = {
    "owner_gone": "informants",
    "halted_unpaid": "production",
    "group_arrears_red": "arrears",
    "collective_talk": "informants",
    "layoff_notifiable": "layoffs",
    "social_insurance": "social_insurance",
}


def floor_factors(hits: RuleHits, i: int, said: set[str] | None = None) -> list[Factor]:
    """The rules that fired for point `i`: always the floors (they explain a level the
    score alone would not give), the other thresholds unless the group in `said`
    already put them in words."""
    said = said or set()
    return [
        Factor(f"rule_{code}", FLOOR_TEXT[code], 0.0)
        for code, mask in hits.fired.items()
        if bool(mask[i]) and (code in FLOORS or RULE_GROUP[code] not in said)
    ]
