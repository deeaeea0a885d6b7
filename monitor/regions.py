"""GB/T 2260 regions and the four tiers (CONTRACT §1).

The tier of a region follows from its code: `xx0000` province (1), `xxxx00` city (2),
anything else county/district (3). Tier 4 (grassroots informants) has no region of its
own; such accounts are attached to a county code.
"""

from __future__ import annotations

import re

PROVINCE, CITY, COUNTY, GRASSROOTS = 1, 2, 3, 4

TIER_NAMES = {PROVINCE: "省级", CITY: "市级", COUNTY: "区县级", GRASSROOTS: "基层"}
TIER_LABELS = {PROVINCE: "province", CITY: "city", COUNTY: "county", GRASSROOTS: "grassroots"}

_CODE = re.compile(r"^[1-9]\d{5}$")

#: The default demo region: Hunan province, Yiyang city and its districts and counties.
DEMO_REGIONS: list[tuple[str, str, str | None]] = [
    ("430000", "湖南省", None),
    ("430900", "益阳市", "430000"),
    ("430902", "资阳区", "430900"),
    ("430903", "赫山区", "430900"),
    ("430921", "南县", "430900"),
    ("430922", "桃江县", "430900"),
    ("430923", "安化县", "430900"),
    ("430981", "沅江市", "430900"),
]


def is_region_code(code: str) -> bool:
    return bool(_CODE.fullmatch(code))


def tier_of(code: str) -> int:
    """1 province, 2 city, 3 county/district, from the shape of a 6-digit code."""
    if not is_region_code(code):
        raise ValueError(f"not a 6-digit GB/T 2260 code: {code!r}")
    if code.endswith("0000"):
        return PROVINCE
    if code.endswith("00"):
        return CITY
    return COUNTY


def parent_of(code: str) -> str | None:
    """The code of the enclosing region by GB/T 2260 structure (None for a province).

    Some county-level units hang directly off a province (省直辖); the registry's
    `parent_code` is the authority, this is only the default for new regions.
    """
    tier = tier_of(code)
    if tier == PROVINCE:
        return None
    if tier == CITY:
        return code[:2] + "0000"
    return code[:4] + "00"


def ancestors(code: str) -> list[str]:
    """The region itself and every region above it, bottom up (county, city, province)."""
    chain = [code]
    parent = parent_of(code)
    while parent is not None:
        chain.append(parent)
        parent = parent_of(parent)
    return chain


def covers(scope: str, code: str) -> bool:
    """True when `code` is `scope` or lies below it (a leader's jurisdiction check)."""
    return scope in ancestors(code)
