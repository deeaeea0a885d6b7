"""Loads an installation's regions from the GB/T 2260 catalogue into `regions`, and updates them.

Codes change (a county becomes a district, two merge, one is renamed), so loading is an
update, not a seed: codes new to the list are added, names and parents that changed are
written, and codes the list no longer has are kept (records still name them) and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import insert, select, update

from monitor.db import Database
from monitor.models import Region
from monitor.regions import Catalogue, RegionEntry, ancestors


@dataclass
class LoadResult:
    scope: str
    source: str
    regions: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    #: Codes under the scope that the list no longer has: kept, since records name them.
    retired: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"regions of {self.scope} from {self.source}: {self.regions} in scope, "
            f"{len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.retired)} no longer listed (kept)"
        )


async def load_regions(db: Database, catalogue: Catalogue, scope: str) -> LoadResult:
    """Bring the `regions` rows of `scope` (its subtree and the regions above it) up to date."""
    entries: list[RegionEntry] = catalogue.scope(scope)
    result = LoadResult(scope=scope, source=catalogue.source, regions=len(entries))
    wanted = {e.code for e in entries}
    async with db.session() as session:
        rows = await session.execute(
            select(Region.code, Region.name, Region.tier, Region.parent_code)
        )
        existing = {r.code: (r.name, r.tier, r.parent_code) for r in rows}
        new = []
        # Parents come before children in `entries`, so the foreign key holds row by row.
        for e in entries:
            have = existing.get(e.code)
            if have is None:
                new.append(
                    {"code": e.code, "name": e.name, "tier": e.tier, "parent_code": e.parent_code}
                )
                result.added.append(e.code)
            elif have != (e.name, e.tier, e.parent_code):
                await session.execute(
                    update(Region)
                    .where(Region.code == e.code)
                    .values(name=e.name, tier=e.tier, parent_code=e.parent_code)
                )
                result.changed.append(e.code)
        if new:
            await session.execute(insert(Region), new)
        result.retired = sorted(
            code
            for code in existing
            if code not in wanted and code not in catalogue and scope in ancestors(code)
        )
    return result
