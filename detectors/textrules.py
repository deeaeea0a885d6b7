"""What a petition's free text says, read by rules: the cues the category classifier
weighs beside its character n-grams, the number of people given in words, and whether
a threat of self-harm or road blocking is the writer's own or a report of someone else's.

Real petitions are long and indirect (尊敬的领导, a life story, then the request), and a
single word decides little: "工资" appears in complaints about pay levels (`other`) as
often as in arrears; "社保" appears where it is only a condition for buying a flat or
enrolling a child. The cues below follow the category definitions in DOMAIN.md: dispute
verbs next to pay words (拖欠、克扣、未发 … 工资) against level words (标准、调整、提高),
insurance words against the housing/enrolment context they often sit in, and so on. The
classifier learns how much each cue counts; the rules only say whether it is there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cn2an

_PAY = r"(?:工资|薪水|薪资|薪酬|报酬|工钱|血汗钱|劳务费|劳务款|工资款|绩效|奖金|加班费)"

#: Cue name -> pattern. The order is the order of the feature columns (do not reorder:
#: fitted models keep their weights by position; add new cues at the end).
CUES: dict[str, str] = {
    # Pay earned and not paid (wage_arrears): a dispute verb next to a pay word.
    "wage_dispute": (
        r"(?:拖欠|欠发|克扣|扣发|扣除|未发|不发|没发|停发|缓发|拿不到|讨要|讨薪|欠薪|欠款|结清|未结"
        r"|不给|拒付|拒不支付|未支付|没有支付|迟迟不|一拖再拖|打白条|欠条)[^。！？]{0,12}"
        + _PAY
        + "|"
        + _PAY
        + r"[^。！？]{0,12}(?:拖欠|未发|没发|不发|没有发|未付|没给|未结|拿不到|欠|扣|延迟|迟发"
        r"|至今未|一直不|一拖再拖|拖着|推迟|晚了|晚发)"
        r"|讨薪|欠薪|讨要工资|农民工工资"
    ),
    # The level of pay, raises, standards, allowances (other, unless a dispute verb).
    "wage_level": (
        r"最低工资|工资标准|工资待遇|待遇|薪酬改革|提高|上涨|调整|涨工资|偏低|太低|差距|差额|同等|公平|不公"
        r"|补贴|津贴|绩效工资制度"
    ),
    "social_insurance": (
        r"社保|社会保险|养老保险|医疗保险|医保|失业保险|生育保险|工伤保险|五险|养老金|退休金|退休工资"
        r"|合作医疗|新农合|农合|参保|缴费年限|病退|退休手续|办理退休|领取养老"
    ),
    # Where insurance is only a condition for something else (a flat, a hukou, a school).
    "insurance_as_condition": (
        r"购房|买房|房子|落户|户口|入学|上学|人才|补贴申请|限购|购房资格|公积金|居住证"
    ),
    "injury": (
        r"工伤|职业病|尘肺|矽肺|工亡|因工|工作中受伤|工地上?受伤|摔伤|砸伤|伤残|劳动能力鉴定|伤残等级"
    ),
    "layoff": (
        r"裁员|辞退|解聘|开除|遣散|被迫离职|逼迫.{0,4}辞职|强制.{0,4}离职|解除劳动合同|解除劳动关系"
        r"|经济补偿|补偿金|N\+1|关闭|倒闭|破产|停产|关停|分流|下岗|买断|安置"
    ),
    "contract": (
        r"劳动合同|签订合同|签合同|不签|未签|续签|劳务派遣|派遣|同工同酬|用工|加班|工作时间|工时|休息"
        r"|双休|年假|休假|试用期|双倍工资|劳动关系|调岗|降薪|临时工|编外|聘用"
    ),
    # Anything about work at all (versus housing, traffic, schools ...).
    "labour": r"员工|职工|工人|农民工|民工|打工|上班|公司|单位|老板|用人单位|劳动|入职|离职|工作",
    "other_topic": (
        r"培训|补贴|就业服务|招聘|考试|编制|事业单位|公务员|职称|岗位设置|人才|创业|落户|购房|物业|业主"
        r"|开发商|交房|房产证|小区|学校|幼儿园|学生|家长|驾校|退费|拆迁|征收|公交|道路|交通|环境|污染"
        r"|噪音|诈骗|集资|医院|看病"
    ),
    "question": r"请问|咨询|是否|能否|可以吗|怎么办|如何|吗？|吗\?",
    "first_person": r"我|本人|我们",
}
_PATTERNS = [re.compile(p) for p in CUES.values()]
#: Two columns per cue: how often (capped, scaled to 0-1) and whether the first line
#: (a message's title, or the first 60 characters) has it.
N_RULE_FEATURES = 2 * len(_PATTERNS)
_CAP = 6


def rule_features(text: str) -> list[float]:
    head = text[: min(text.find("\n") % (len(text) + 1), 60)]
    out: list[float] = []
    for pattern in _PATTERNS:
        out.append(min(len(pattern.findall(text)), _CAP) / _CAP)
        out.append(1.0 if pattern.search(head) else 0.0)
    return out


# --------------------------------------------------------------------- people in words

_CN = "零〇一二两三四五六七八九十百千万"
_PEOPLE = r"(?:名|位|人|个(?=人|工人|农民工|民工|员工|职工|工友|老乡|师傅|家庭|同事))"
_UNIT = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_DIGIT = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}

# 上百名 / 数十人 / 几百人 / 近千名 / 二三十个人 / 三四十人 / 十几名 / 一百多名 / 120余人 / 百余人
_COUNT = re.compile(
    r"(?P<approx>上|数|几|近|将近|接近|约|大约|超过|逾)?"
    r"(?P<num>\d+|[" + _CN + r"]+)"
    r"(?P<more>多|余|来|几)?" + _PEOPLE
)


@dataclass(frozen=True)
class PeopleCount:
    """A number of people a text gives: `low` to `high` (equal when exact)."""

    low: int
    high: int
    phrase: str


def _numeral(s: str) -> int | None:
    """A plain numeral ("一百二十", "两百", "30") by cn2an; None if it is not one."""
    if s.isdigit():
        return int(s)
    try:
        value = cn2an.cn2an(s, "smart")
    except (ValueError, KeyError, TypeError):
        return None
    return int(value) if value and value == int(value) else None


def _read_count(approx: str, num: str, more: str) -> tuple[int, int] | None:
    # "上百" "数十" "几百": the unit alone, preceded by a word for "some"/"over".
    if num in _UNIT and approx in ("上", "数", "几", "超过", "逾"):
        unit = _UNIT[num]
        return (unit, unit * 10 - 1) if approx in ("上", "超过", "逾") else (2 * unit, 9 * unit)
    # "二三十" "三四十" "一两百" "七八": two adjacent digits, then an optional unit.
    pair = re.fullmatch(r"([一二两三四五六七八九])([二两三四五六七八九])([十百千万]?)", num)
    if pair and _DIGIT[pair.group(2)] - _DIGIT[pair.group(1)] == 1:
        unit = _UNIT.get(pair.group(3), 1)
        return _DIGIT[pair.group(1)] * unit, _DIGIT[pair.group(2)] * unit
    # "十几" "几十" (几 as a digit).
    if num == "十" and more == "几":
        return 11, 19
    value = _UNIT.get(num) or _numeral(num)
    if value is None or value <= 0:
        return None
    if approx in ("近", "将近", "接近"):
        return max(1, int(value * 0.9)), value
    if approx in ("上", "超过", "逾") or more in ("多", "余", "来"):
        # "一百多" / "百余" / "上千": at least the number, below the next step.
        step = 10 ** (len(str(value)) - len(str(value).rstrip("0"))) if value % 10 == 0 else 1
        return value, value + max(step, 1) * (1 if more else 10) - 1
    return value, value


def people_counts(text: str) -> list[PeopleCount]:
    """Every number of people the text gives, in words or digits."""
    found: list[PeopleCount] = []
    for match in _COUNT.finditer(text):
        read = _read_count(
            match.group("approx") or "", match.group("num"), match.group("more") or ""
        )
        if read is not None and read[0] > 0:
            found.append(PeopleCount(read[0], read[1], match.group(0)))
    return found


def people_in_text(text: str, *, limit: int = 1_000_000) -> int | None:
    """The number of people a text speaks of (the largest it gives, at its lower bound:
    "上百名" -> 100, "三四十人" -> 30, "近千名" -> 900), or None when it gives none."""
    counts = [c.low for c in people_counts(text or "") if c.low <= limit]
    return max(counts) if counts else None


# --------------------------------------------------------------- own threat or hearsay

#: A report of what others say or of a rumour: the threat is not the writer's own.
_HEARSAY = re.compile(
    r"听说|据说|传言|传闻|网传|谣言|有人说|有人称|有消息|据悉|据了解|听闻|传出|转发|据群众反映|据反映"
)
#: The writer speaking for themselves (or their group).
_FIRST_PERSON = re.compile(r"我们|我|本人|咱们")
_SENTENCES = re.compile(r"[。！？!?；;\n]")


def threat_is_own(text: str, threat: re.Pattern[str]) -> bool | None:
    """Whether the sentence with a threat (`threat` matches in it) is the writer's own
    ("不给钱我就去跳楼") rather than hearsay ("听说有工人要跳楼"); None when no sentence has
    the threat. A sentence that reports a rumour is hearsay even if it says 我 ("我听说…")."""
    seen = False
    for sentence in _SENTENCES.split(text):
        if not threat.search(sentence):
            continue
        seen = True
        if not _HEARSAY.search(sentence) and _FIRST_PERSON.search(sentence):
            return True
    return False if seen else None


# ----------------------------------------------------------- enterprises named in text

_LEGAL_SUFFIX = re.compile(
    r"(?:股份有限公司|有限责任公司|有限公司|集团有限公司|集团公司|集团|公司)$"
)
_REGION_PREFIX = re.compile(r"^[\u4e00-\u9fff]{1,4}?(?:省|自治区|市|自治州|州|县|区)")
#: A company-like mention in free text: up to 30 characters before a legal suffix.
_MENTION = re.compile(
    r"([\u4e00-\u9fffA-Za-z0-9（）()]{2,30}?)(?:股份有限公司|有限责任公司|有限公司|集团|公司|厂)"
)
#: Shorter cores name too many things to be matched in running text.
MIN_CORE = 3


def name_cores(name: str) -> set[str]:
    """The forms under which a registered enterprise may be named: without its legal
    suffix, and also without leading province/city/county names ("益阳市银城建筑有限公司"
    -> {"益阳市银城建筑", "银城建筑"})."""
    core = _LEGAL_SUFFIX.sub("", re.sub(r"\s+", "", name or ""))
    cores = {core} if len(core) >= MIN_CORE else set()
    while True:
        stripped = _REGION_PREFIX.sub("", core, count=1)
        if stripped == core or len(stripped) < MIN_CORE:
            break
        core = stripped
        cores.add(core)
    return cores


class EnterpriseIndex:
    """Registered monitoring points by the names a petition may use for them."""

    def __init__(self) -> None:
        self._by_core: dict[str, int] = {}
        self._ambiguous: set[str] = set()

    def add(self, name: str | None, index: int) -> None:
        for core in name_cores(name or ""):
            known = self._by_core.get(core)
            if known is not None and known != index:
                self._ambiguous.add(core)
            self._by_core.setdefault(core, index)

    def _lookup(self, core: str) -> int:
        if core in self._ambiguous:
            return -1
        return self._by_core.get(core, -1)

    def find(self, text: str | None) -> int:
        """The one point a text names (by a company-like mention whose tail is a
        registered name), -1 if none or more than one."""
        if not text or not self._by_core:
            return -1
        found: set[int] = set()
        for match in _MENTION.finditer(text):
            mention = match.group(1)
            # The mention starts wherever the sentence does: try every tail of it.
            for start in range(len(mention) - MIN_CORE + 1):
                hit = self._lookup(mention[start:])
                if hit >= 0:
                    found.add(hit)
                    break
        return found.pop() if len(found) == 1 else -1


def threat_is_hearsay(text: str, threat: re.Pattern[str]) -> bool:
    """True when every sentence with the threat reports it as hearsay or a rumour
    ("听说有工人要跳楼", "网传有人要去堵路"): someone must check, but it is not the act.
    False when a sentence states it (the writer's own threat, or what they saw)."""
    sentences = [s for s in _SENTENCES.split(text) if threat.search(s)]
    return bool(sentences) and all(_HEARSAY.search(s) for s in sentences)
