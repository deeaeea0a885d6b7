"""Names for simulated enterprises and (fictitious) petitioners."""

from __future__ import annotations

import random

TRADE_NAMES = list(
    "鑫达华盛宏远恒通富民金鹏联创永兴长青博雅天泽瑞丰德润新航安泰顺发银河"
    "汇丰东方兴隆嘉禾中和益通资江桃花洞庭云台雪峰龙光凯越亿源星辰锦绣"
)

SUFFIX = {
    "construction": [
        "建筑工程有限公司",
        "建设集团有限公司",
        "路桥工程有限公司",
        "装饰工程有限公司",
    ],
    "manufacturing": [
        "机械制造有限公司",
        "纺织有限公司",
        "电子科技有限公司",
        "竹业有限公司",
        "食品有限公司",
    ],
    "services": ["酒店管理有限公司", "物业服务有限公司", "餐饮有限公司", "商贸有限公司"],
    "logistics": ["物流有限公司", "运输有限公司", "快递服务有限公司"],
    "mining": ["矿业有限公司", "锑业有限公司", "石材有限公司"],
    "other": ["农业开发有限公司", "茶业有限公司", "科技有限公司"],
}

SURNAMES = list("王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华平刚桂兰红霞建国志文海燕")


def enterprise_name(rng: random.Random, county_name: str, industry: str, serial: int) -> str:
    """A unique-looking registered name: place + trade name + serial mark + form."""
    trade = rng.choice(TRADE_NAMES) + rng.choice(TRADE_NAMES)
    mark = "" if serial < 1 else f"{serial}"
    return f"益阳{county_name}{trade}{mark}{rng.choice(SUFFIX[industry])}"


def short_name(name: str) -> str:
    """How petitioners often name an enterprise: the trade name without place or form."""
    core = name.removeprefix("益阳")
    for tail in ("有限公司", "集团"):
        core = core.split(tail)[0]
    return core[-6:]


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def phone(rng: random.Random) -> str:
    return rng.choice(["139", "138", "186", "150", "177", "133"]) + f"{rng.randrange(10**8):08d}"
