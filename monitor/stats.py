"""What the store holds (`labormon stats`, interfaces §4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from monitor.db import Database
from monitor.models import (
    Alert,
    Delivery,
    Finding,
    InformantReport,
    MonitoringPoint,
    Petition,
    RejectedMessage,
    WageReport,
)


async def collect(db: Database) -> dict[str, Any]:
    async with db.session() as session:

        async def count(model: Any) -> int:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

        async def by_status(model: Any, statuses: tuple[str, ...]) -> dict[str, int]:
            rows = await session.execute(select(model.status, func.count()).group_by(model.status))
            found = {status: int(n) for status, n in rows}
            return {status: found.get(status, 0) for status in statuses}

        return {
            "points": await count(MonitoringPoint),
            "wage_reports": await count(WageReport),
            "petitions": await count(Petition),
            "informant_reports": await count(InformantReport),
            "rejected": await count(RejectedMessage),
            "findings": await count(Finding),
            "alerts": await by_status(Alert, ("triggered", "acknowledged", "resolved")),
            "deliveries": await by_status(Delivery, ("pending", "sent", "failed")),
        }
