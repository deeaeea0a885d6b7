"""Chinese free text for simulated petitions and informant reports.

Petition summaries are composed from phrase banks (who, what happened, how long, what
they ask), with fillers, numbers and places, and sometimes a clause from another
category (a layoff petition that mentions the last wages, an arrears petition that
mentions the contract), so that a classifier has to weigh words rather than spot one.

Every bank is split into folds by position: phrases at positions `i % FOLDS == HELD_OUT`
are *held out*. `petition_summary(..., fold="train")` never uses them and
`fold="heldout"` uses only them, so the classifier's accuracy is measured on phrasings
it has never seen (a harder and more honest test than a random split of sentences
built from the same phrases). Data sets for the detectors use every phrase.
"""

from __future__ import annotations

import random
from typing import Literal

Fold = Literal["all", "train", "heldout"]

FOLDS = 5
HELD_OUT = 4

CATEGORY_LABELS = {
    "wage_arrears": "欠薪",
    "social_insurance": "社保",
    "layoff": "裁员",
    "contract": "劳动合同",
    "injury": "工伤",
    "other": "其他",
}

SUBJECTS = [
    "{n}名农民工",
    "我们{n}个工人",
    "本人",
    "该厂职工",
    "{n}余名员工",
    "工友们",
    "来电人",
    "信访人及工友{n}人",
    "班组{n}名工人",
    "我和几个同事",
    "车间员工",
    "项目部的工人",
    "一名女工",
    "老职工",
    "在该企业务工的人员",
]

OPENERS = [
    "",
    "",
    "",
    "您好，",
    "我想反映一下，",
    "情况紧急，",
    "来电反映：",
    "网上留言：",
    "信访人称，",
    "请领导关注，",
    "再次反映，",
]

PHRASES: dict[str, list[str]] = {
    "wage_arrears": [
        "被拖欠工资{m}个月",
        "工资已经{m}个月没发了",
        "包工头拖欠工钱{amt}元",
        "年底结算的工程款迟迟不付，工人工资无着落",
        "老板以资金紧张为由一直拖着不发薪水",
        "讨要血汗钱多次无果",
        "欠发绩效工资和加班工资",
        "项目完工后劳务费至今未结清",
        "每月只发生活费，剩下的工资说年底再给",
        "工资发放一拖再拖，比往常晚了{d}天",
        "公司账上没钱，{m}个月的薪水打了白条",
        "临近春节仍未拿到工资，无法回家过年",
        "总包和分包相互推诿，农民工工资没人支付",
        "工资被克扣，实发数和工资条对不上",
        "工资卡被包工头收走，工钱被冒领",
        "说好的计件工资一直没有兑现",
        "辛苦干了大半年，一分钱报酬都没拿到",
        "欠薪{amt}元，老板一直推脱",
        "工钱结算单签了字却拿不到钱",
        "拖欠我们的劳动报酬{m}个月",
    ],
    "social_insurance": [
        "公司停缴社保{m}个月",
        "单位从未给我们缴纳养老保险",
        "社保断缴导致看病无法报销",
        "医保卡被停用，一查才发现单位欠缴",
        "五险一金只交了一部分，按最低基数缴纳",
        "没有缴纳失业保险，离职后领不到失业金",
        "要求单位补缴社会保险费",
        "快退休了发现养老保险缴费年限不够，单位漏缴",
        "公积金停缴半年，公司不给说法",
        "工资里扣了社保的钱却没有交到社保局",
        "生育保险没有参保，产假待遇无法享受",
        "单位让员工签自愿放弃社保的承诺书",
        "社保缴费记录中断了{m}个月",
        "医疗保险欠费，住院只能全自费",
        "养老金缴费基数被单位压低",
    ],
    "layoff": [
        "公司突然宣布裁员{n}人",
        "企业倒闭，职工被遣散却没有经济补偿",
        "厂子要搬迁，要求员工自行离职",
        "以业绩不达标为由辞退老员工",
        "裁员没有提前三十天通知工会",
        "停产放假，只发最低生活费，变相逼人走",
        "企业改制分流，工龄买断补偿太低",
        "公司被收购后大批员工被解除劳动关系",
        "关停以后遣散费一分没给",
        "要求支付解除劳动关系的经济补偿金",
        "下岗后安置方案迟迟不落实",
        "生产线关闭，上百人面临失业",
        "公司通知下个月起全部员工待岗",
        "被无故解雇，没有任何补偿",
        "破产清算中职工安置费没有着落",
    ],
    "contract": [
        "公司不与员工签订书面劳动合同",
        "试用期延长到一年，一直按试用期标准发钱",
        "强制加班每天{h}小时，周末也不休息",
        "单方面调岗降薪",
        "劳务派遣工同工不同酬",
        "劳动合同到期不续签也不给说法",
        "入职时被扣押身份证和押金",
        "年休假不让休",
        "竞业限制条款不合理",
        "要求签订无固定期限劳动合同",
        "用人单位随意变更工作地点和工时",
        "合同里写的岗位和实际干的活不一样",
        "被迫签署空白合同",
        "公司规章制度罚款名目太多",
        "夜班补贴被取消，工时制度随意改",
    ],
    "injury": [
        "在工地干活时从脚手架上摔下受伤",
        "申请工伤认定被单位阻挠",
        "被机器轧伤手指，企业拒绝承担医疗费",
        "患尘肺病多年，要求做职业病鉴定",
        "受伤后被辞退，伤残津贴没有着落",
        "矿上发生事故，工友受伤送医",
        "长期接触有毒化学品得了职业病",
        "搬运货物时腰椎受伤，老板只给了几百元",
        "要求按伤残等级支付一次性伤残补助金",
        "上下班途中发生交通事故受伤，单位不认工伤",
        "工友在车间被烫伤，至今没有赔偿",
        "高空坠落导致骨折，包工头失联",
        "噪声作业导致听力受损",
        "手臂被切割机割伤缝了十几针",
        "工伤停工留薪期工资没有发放",
    ],
    "other": [
        "反映食堂伙食太差",
        "宿舍条件简陋，十几个人挤一间",
        "咨询本市最低工资标准是多少",
        "反映管理人员态度粗暴，打骂工人",
        "子女入学问题请求工会帮助",
        "工会换届选举不公开",
        "举报企业偷排污水",
        "求职时被中介骗取了费用",
        "咨询劳动法律方面的问题",
        "反映厂区存在消防安全隐患",
        "希望工会组织职工文体活动",
        "反映上下班的班车被取消",
        "厂里高温天气没有防暑降温措施",
        "反映企业食堂价格太高",
        "咨询职工疗休养政策",
    ],
}

#: A clause from another category, added now and then as a distraction.
CROSS_TALK: dict[str, list[str]] = {
    "wage_arrears": ["当初签了劳动合同", "社保倒是交着", "老板说厂子可能要关"],
    "social_insurance": ["工资倒是按时发", "合同也签了", "去年还有人受过伤"],
    "layoff": ["最后一个月工资也没结", "合同还没到期", "社保也要断了"],
    "contract": ["工资按月发，但", "没有缴社保", "有同事已经辞职"],
    "injury": ["工资每月照发", "合同没签", "医疗费先是自己垫的"],
    "other": ["工资正常", "合同签了", "大家意见很大"],
}

DEMANDS = [
    "要求尽快解决",
    "请求工会帮助协调",
    "希望有关部门介入",
    "请求依法维护合法权益",
    "要求立即支付",
    "已经多次找老板未果",
    "请帮忙督促企业整改",
    "盼回复",
    "",
    "",
]

#: Added to petitions of distressed enterprises: the talk that precedes a collective one.
ESCALATION = [
    "如果再不解决，准备一起去市政府",
    "工友们商量着集体上访",
    "大家情绪很激动",
]

PLACES = ["赫山区", "资阳区", "沅江", "南县", "桃江", "安化", "益阳", "龙岭工业园", "高新区"]

# --------------------------------------------------------------------------- informants

#: Precursor descriptions by the situation the informant saw.
PRECURSORS: dict[str, list[str]] = {
    "owner_missing": [
        "老板联系不上，电话一直关机",
        "企业负责人已经失联{d}天",
        "听说老板跑路了，工人找不到人",
        "厂里在往外搬设备，工人担心老板转移资产",
        "办公室人去楼空，财务也不见了",
    ],
    "collective_talk": [
        "工人私下串联，准备集体到政府讨薪",
        "微信群里有人号召明天一起去市政府",
        "有工人扬言要去堵路讨个说法",
        "工人情绪激动，商量集体上访",
        "几十名工人聚在宿舍商量讨薪的事",
    ],
    "production": [
        "工厂已经停工，机器都停了",
        "车间只开了一半，订单减少",
        "工地停工多日，只有看门的人",
        "企业停产放假，工人在家待岗",
    ],
    "wage_delay": [
        "听工人说本月工资又推迟发放",
        "工资已经拖了{m}个月",
        "这个月工资只发了一半",
        "工人反映工资条上的钱和到手的不一样",
    ],
    "social_insurance": [
        "工人反映社保停缴了",
        "企业好几个月没给工人交社保",
    ],
    "layoff": [
        "企业准备裁员，名单还没公布",
        "听说要关掉一个车间，工人人心惶惶",
    ],
    "benign": [
        "企业生产正常，工人情绪稳定",
        "工人对加班安排有些抱怨",
        "听说公司要调整班次",
        "企业在招工，工资待遇一般",
        "食堂饭菜有工人不满意",
    ],
}

OPINION = [
    "网上有帖子称该企业拖欠工资",
    "短视频平台有工人发视频讨薪",
    "本地论坛出现该企业欠薪的话题，转发较多",
    "网上有人说这家厂要倒闭了",
    "朋友圈流传该工地工人讨薪的照片",
]

INCIDENT_TEXT: dict[str, list[str]] = {
    "gathering": [
        "约{n}名工人聚集在公司门口讨要工资",
        "{n}多名工人在厂区聚集，要求老板出面",
        "工人{n}人左右在项目部静坐",
    ],
    "work_stoppage": [
        "{n}名工人集体停工",
        "车间工人罢工，约{n}人",
        "工地全面停工，{n}名工人拒绝上工",
    ],
    "road_blocking": [
        "工人在厂门口马路上堵路，约{n}人",
        "{n}名工人拉横幅堵塞交通",
    ],
    "extreme_act": [
        "一名工人爬上塔吊扬言跳楼讨薪",
        "有工人站在楼顶以跳楼相威胁",
    ],
    "petition": [
        "{n}名工人到县政府集体上访",
        "{n}名工人到市信访局集体反映欠薪",
    ],
}


def _pick(rng: random.Random, bank: list[str], fold: Fold) -> str:
    if fold == "all":
        return rng.choice(bank)
    if fold == "heldout":
        return rng.choice([p for i, p in enumerate(bank) if i % FOLDS == HELD_OUT])
    return rng.choice([p for i, p in enumerate(bank) if i % FOLDS != HELD_OUT])


def _fill(text: str, rng: random.Random, people: int = 0, months: int = 0) -> str:
    return text.format(
        n=people or rng.randint(2, 60),
        m=months or rng.randint(1, 8),
        amt=rng.choice([3000, 8000, 12000, 26000, 54000, 150000, 300000]) + rng.randint(0, 99),
        d=rng.randint(3, 30),
        h=rng.randint(3, 6),
    )


def petition_summary(
    category: str,
    rng: random.Random,
    *,
    enterprise: str | None = None,
    people: int = 0,
    months: int = 0,
    escalating: bool = False,
    fold: Fold = "all",
) -> str:
    """A petition summary of `category` in the words a petition officer would note."""
    parts = [rng.choice(OPENERS)]
    subject = _fill(_pick(rng, SUBJECTS, fold), rng, people=people)
    where = enterprise or rng.choice(["某公司", "某工地", "该企业", "一家厂", ""])
    if rng.random() < 0.3:
        where = rng.choice(PLACES) + where
    parts.append(f"{subject}反映{where}" if where and rng.random() < 0.7 else subject)
    clauses = [_fill(_pick(rng, PHRASES[category], fold), rng, people=people, months=months)]
    if rng.random() < 0.35:
        second = _pick(rng, PHRASES[category], fold)
        clauses.append(_fill(second, rng, people=people, months=months))
    if rng.random() < 0.25:
        clauses.insert(rng.randrange(len(clauses) + 1), rng.choice(CROSS_TALK[category]))
    parts.append("，".join(c for c in clauses if c))
    if escalating:
        parts.append("，" + rng.choice(ESCALATION))
    demand = rng.choice(DEMANDS)
    if demand:
        parts.append("，" + demand)
    text = "".join(parts)
    return text if rng.random() < 0.85 else text.rstrip("。") + "。"


def precursor_text(kind: str, rng: random.Random, months: int = 0) -> str:
    return _fill(rng.choice(PRECURSORS[kind]), rng, months=months)


def opinion_text(rng: random.Random) -> str:
    return rng.choice(OPINION)


def incident_text(event_type: str, rng: random.Random, people: int) -> str:
    return _fill(rng.choice(INCIDENT_TEXT[event_type]), rng, people=people)


def training_corpus(
    per_category: int, seed: int, fold: Fold = "train"
) -> tuple[list[str], list[str]]:
    """A labelled corpus of petition summaries (deterministic for a seed)."""
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    for category in PHRASES:
        for _ in range(per_category):
            texts.append(petition_summary(category, rng, escalating=rng.random() < 0.05, fold=fold))
            labels.append(category)
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order]
