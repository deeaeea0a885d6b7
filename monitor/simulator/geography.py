"""Where the simulated monitoring points lie: the counties of any region, weighted by size.

A region is any GB/T 2260 subtree (a county, a city, a province). Points are spread over
its counties in proportion to the resident population of their city (larger cities have
more enterprises designated as monitoring points, and so more petitions) and, within a
city, with urban districts (市辖区) weighted above counties: enterprises concentrate there.
Petitions and informant reports follow the points, so Changsha gets more of everything
than Zhangjiajie.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.regions import COUNTY, catalogue

#: Resident population (10,000 people) of Hunan's 14 cities, 7th national census
#: (2020-11-01): 湖南省第七次全国人口普查公报（第二号）, 湖南省统计局 2021-05-19.
HUNAN_POPULATION: dict[str, float] = {
    "430100": 1004.79,  # 长沙市
    "430200": 390.27,  # 株洲市
    "430300": 272.62,  # 湘潭市
    "430400": 664.52,  # 衡阳市
    "430500": 656.35,  # 邵阳市
    "430600": 505.19,  # 岳阳市
    "430700": 527.91,  # 常德市
    "430800": 151.70,  # 张家界市
    "430900": 385.16,  # 益阳市
    "431000": 466.71,  # 郴州市
    "431100": 528.98,  # 永州市
    "431200": 458.76,  # 怀化市
    "431300": 382.69,  # 娄底市
    "433100": 248.82,  # 湘西土家族苗族自治州
}

#: Yiyang's county weights as the simulator always had them (the two urban districts and
#: Yuanjiang host more points); kept so that a city data set is what it was.
YIYANG_COUNTY_WEIGHTS = {
    "430902": 0.18,
    "430903": 0.27,
    "430921": 0.12,
    "430922": 0.13,
    "430923": 0.14,
    "430981": 0.16,
}

#: An urban district's weight against a county's within one city (judgement: designated
#: enterprises sit mostly in districts and development zones).
URBAN_WEIGHT = 1.5


@dataclass(frozen=True, slots=True)
class County:
    code: str
    name: str
    city_code: str
    urban: bool
    weight: float


def counties_of(region: str) -> list[County]:
    """The counties of `region` (itself if it is one), each with its share of points."""
    cat = catalogue()
    counties = [e for e in cat.subtree(region) if e.tier == COUNTY]
    if not counties:
        raise ValueError(f"region {region} ({cat.name(region)}) has no counties to simulate")
    by_city: dict[str, list[str]] = {}
    for e in counties:
        by_city.setdefault(e.parent_code or e.code, []).append(e.code)
    out = []
    for e in counties:
        city = e.parent_code or e.code
        urban = e.name.endswith("区")
        siblings = by_city[city]
        if e.code in YIYANG_COUNTY_WEIGHTS:
            within = YIYANG_COUNTY_WEIGHTS[e.code] / sum(
                YIYANG_COUNTY_WEIGHTS.get(c, 0.0) for c in siblings
            )
        else:
            mass = sum(URBAN_WEIGHT if cat.name(c).endswith("区") else 1.0 for c in siblings)
            within = (URBAN_WEIGHT if urban else 1.0) / mass
        # Cities of other provinces (no population table here) weigh alike.
        city_weight = HUNAN_POPULATION.get(city, 400.0)
        out.append(County(e.code, e.name, city, urban, city_weight * within))
    total = sum(c.weight for c in out)
    return [County(c.code, c.name, c.city_code, c.urban, c.weight / total) for c in out]
