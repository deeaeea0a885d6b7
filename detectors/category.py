"""Petition category from Chinese free text.

This first version is a keyword vote: each category has the words petition officers
write for it, the category with most hits wins, ties go to the earlier (more
specific) category, nothing found is "other".
"""

from __future__ import annotations

KEYWORDS: dict[str, tuple[str, ...]] = {
    "wage_arrears": (
        "欠薪",
        "拖欠",
        "工资",
        "讨薪",
        "工钱",
        "血汗钱",
        "薪水",
        "欠发",
        "发不出",
        "结算",
    ),
    "social_insurance": (
        "社保",
        "养老保险",
        "医保",
        "医疗保险",
        "五险",
        "公积金",
        "断缴",
        "失业保险",
    ),
    "layoff": ("裁员", "辞退", "解雇", "下岗", "遣散", "经济补偿", "倒闭", "关停", "搬迁", "分流"),
    "injury": ("工伤", "受伤", "职业病", "伤残", "事故", "尘肺", "截肢", "死亡"),
    "contract": ("合同", "劳动关系", "试用期", "加班", "休假", "调岗", "派遣", "竞业"),
}


def infer_category(text: str) -> str:
    """The most likely category of a petition summary (one of CONTRACT's categories)."""
    best, best_hits = "other", 0
    for category, words in KEYWORDS.items():
        hits = sum(text.count(word) for word in words)
        if hits > best_hits:
            best, best_hits = category, hits
    return best
