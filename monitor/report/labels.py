"""Chinese names of the codes the report shows, and the one way its numbers are written.

Every renderer (HTML, PDF, Word, CSV, email) formats through these functions, so a
figure reads the same in each of them.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

from monitor import labels as glossary

CHANNELS: dict[str, str] = glossary.CHANNELS

CATEGORIES: dict[str, str] = glossary.CATEGORIES

OVER_LEVELS: dict[str, str] = {
    "city": "到市",
    "province": "到省",
    "national": "进京",
}

INDUSTRIES: dict[str, str] = glossary.INDUSTRIES

#: Alert levels on China's emergency scale (interfaces §5), most serious first.
ALERT_LEVELS: dict[str, str] = {
    "I": "Ⅰ级（特别重大）",
    "II": "Ⅱ级（重大）",
    "III": "Ⅲ级（较大）",
    "IV": "Ⅳ级（一般）",
}

#: Risk levels of monitoring points use the same scale, named by colour as on risk maps.
RISK_LEVELS: dict[str, str] = {
    "I": "红色（Ⅰ级）",
    "II": "橙色（Ⅱ级）",
    "III": "黄色（Ⅲ级）",
    "IV": "蓝色（Ⅳ级）",
}
RISK_NONE = "无预警"
RISK_UNSCORED = "未评分"

TIERS: dict[int, str] = {1: "省级", 2: "市级", 3: "区县级", 4: "基层"}
TIER_UNKNOWN = "其他（非账号确认）"

UP, DOWN, FLAT = "↑", "↓", "→"


def label(mapping: dict[str, str], key: str | None) -> str:
    """The Chinese name of a code; an unknown code is shown as it is rather than hidden."""
    if key is None:
        return "未注明"
    return mapping.get(key, key)


def month_title(month: date) -> str:
    return f"{month.year}年{month.month}月"


def day_title(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def short_month(month: date) -> str:
    """Axis and column labels: `24.12`, `25.1`."""
    return f"{month.year % 100:02d}.{month.month}"


def round1(value: Fraction | int) -> Decimal:
    """Round to one decimal, half away from zero (四舍五入, as analysts do in Excel).

    Works on exact fractions, so 1/16 = 6.25 % prints as 6.3 % and never as 6.2 %
    because of a binary float underneath.
    """
    exact = Fraction(value)
    tenths = abs(exact) * 10
    whole = tenths.numerator // tenths.denominator
    if tenths - whole >= Fraction(1, 2):
        whole += 1
    signed = -whole if exact < 0 else whole
    return Decimal(signed).scaleb(-1).quantize(Decimal("0.1"))


def pct(part: int, whole: int) -> Decimal | None:
    """A share in percent, one decimal; None when the whole is zero."""
    if not whole:
        return None
    return round1(Fraction(part * 100, whole))


def change_pct(current: int, base: int) -> Decimal | None:
    """Relative change in percent, one decimal; None when the base is zero."""
    if not base:
        return None
    return round1(Fraction((current - base) * 100, base))


def fmt_int(value: int) -> str:
    return f"{value:d}"


def fmt_decimal(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def fmt_share(part: int, whole: int) -> str:
    share = pct(part, whole)
    return "—" if share is None else f"{share:.1f}%"


def fmt_change(current: int, base: int) -> str:
    """Arrow and relative change, as the tables print them.

    A zero base has no relative change: a rise from nothing is "新增" (new), nothing
    against nothing is "持平" (level). A change that rounds to 0.0 % keeps its arrow so
    that a small rise is not read as no change.
    """
    if not base:
        return f"{UP}新增" if current else f"{FLAT}持平"
    if current == base:
        return f"{FLAT}持平"
    value = change_pct(current, base)
    assert value is not None
    arrow = UP if current > base else DOWN
    return f"{arrow}{abs(value):.1f}%"


def change_words(current: int, base: int, unit: str = "件") -> str:
    """The same change as running text: "上升12.5%", "下降100.0%", "持平", "由零增至3件"."""
    if current == base:
        return "持平"
    if not base:
        return f"由零增至{current}{unit}"
    value = change_pct(current, base)
    assert value is not None
    verb = "上升" if current > base else "下降"
    return f"{verb}{abs(value):.1f}%"


def fmt_hours(hours: Decimal | None) -> str:
    return fmt_decimal(hours)


def fmt_days(days: Decimal | None) -> str:
    return fmt_decimal(days)


def areas(tier: int) -> str:
    """The regions a report compares: a province's cities (市州), a city's counties."""
    from monitor.regions import PROVINCE

    return "市州" if tier == PROVINCE else "区县（市）"


def whole(tier: int) -> str:
    """The report's whole region: 全省 for a province's report, 全市 for a city's."""
    from monitor.regions import PROVINCE

    return "全省" if tier == PROVINCE else "全市"
