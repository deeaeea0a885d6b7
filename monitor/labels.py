"""The one Chinese glossary of labormon's codes.

The console, the notifications, the monthly report and the Grafana boards all name
levels, categories, channels, industries and alert kinds with these words, so that a
leader reads the same term in an email, on the console and in the report.
"""

from __future__ import annotations

#: China's emergency scale (interfaces §5), most serious first.
LEVEL_NAMES: dict[str, str] = {"I": "特别重大", "II": "重大", "III": "较大", "IV": "一般"}
#: The published colours of the levels, with the hex used on screens and in documents.
LEVEL_COLOURS: dict[str, tuple[str, str]] = {
    "I": ("红色", "#c62828"),
    "II": ("橙色", "#ef6c00"),
    "III": ("黄色", "#f9a825"),
    "IV": ("蓝色", "#1565c0"),
}

CATEGORIES: dict[str, str] = {
    "wage_arrears": "拖欠工资",
    "social_insurance": "社会保险",
    "layoff": "裁员安置",
    "contract": "劳动合同",
    "injury": "工伤待遇",
    "other": "其他",
}

CHANNELS: dict[str, str] = {
    "visit": "来访",
    "letter": "来信",
    "hotline_12351": "12351热线",
    "online": "网上信访",
}

INDUSTRIES: dict[str, str] = {
    "construction": "建筑业",
    "manufacturing": "制造业",
    "services": "服务业",
    "logistics": "交通物流",
    "mining": "采矿业",
    "other": "其他行业",
}

EVENT_TYPES: dict[str, str] = {
    "precursor": "苗头隐患",
    "petition": "集体上访",
    "gathering": "聚集",
    "work_stoppage": "停工",
    "road_blocking": "堵路",
    "extreme_act": "极端行为",
    "online_opinion": "网络舆情",
    "other": "其他",
}

ALERT_KINDS: dict[str, str] = {
    "event": "突发事件",
    "enterprise_risk": "企业风险",
    "county_risk": "区县风险",
    "petition_surge": "信访激增",
    "overdue_report": "监测点月报逾期",
    "overdue_handling": "处置逾期",
}

ALERT_STATUS: dict[str, str] = {
    "triggered": "待确认",
    "acknowledged": "已确认",
    "resolved": "已解除",
}

#: The four tiers (interfaces §1) by number.
TIERS: dict[int, str] = {1: "省级", 2: "市级", 3: "区县级", 4: "基层"}

ROLES: dict[str, str] = {
    "leader": "领导",
    "duty_officer": "值班员",
    "analyst": "分析员",
    "informant": "信息员",
    "point": "监测点",
    "source": "信访来源",
}
