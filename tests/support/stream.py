"""What a load test needs around a published stream: the points and accounts its senders
need, and what the database holds afterwards."""

from __future__ import annotations

import functools
import secrets
import sys
from pathlib import Path

from sqlalchemy import func, select

from monitor.accounts import hash_token, mosquitto_hash
from monitor.context import Context
from monitor.db import Database
from monitor.models import Account, InformantReport, Petition, RejectedMessage, WageReport
from monitor.records import parse_row
from monitor.store import Submission
from tests.support import publisher

TABLES = {"wage": WageReport, "petition": Petition, "report": InformantReport}
REPO = Path(__file__).resolve().parents[2]


async def import_points(ctx: Context) -> None:
    rows = [Submission(parse_row("point", r), "file") for r in publisher.point_rows()]
    result = await ctx.store.store("point", rows)
    assert len(result.stored) == len(rows)


@functools.cache
def _shared_mqtt_hash() -> str:
    # Accounts.add spends ~20 ms on PBKDF2 per account; load-test senders publish on an
    # open broker, so one hash (computed once) serves them all.
    return mosquitto_hash(secrets.token_urlsafe(18))


async def prepare(ctx: Context) -> None:
    """Monitoring points and one active account per sender of a mixed stream."""
    await import_points(ctx)
    async with ctx.db.session() as session:
        for kind, account_id in publisher.senders():
            session.add(
                Account(
                    id=account_id,
                    kind=kind,
                    # The stream's informants report from every county of the city:
                    # their accounts cover the city (an informant reports on their
                    # own region only).
                    region_code="430900" if kind == "informant" else "430902",
                    tier=4 if kind == "informant" else 3,
                    role=kind,
                    token_hash=hash_token(secrets.token_urlsafe(32)),
                    mqtt_password_hash=_shared_mqtt_hash(),
                    status="active",
                    created_at=ctx.clock.now(),
                )
            )


async def stored_count(db: Database) -> int:
    async with db.session() as session:
        total = 0
        for model in TABLES.values():
            total += int(await session.scalar(select(func.count()).select_from(model)) or 0)
        return total


async def rejected_count(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(RejectedMessage)) or 0)


async def stored_ids(db: Database) -> dict[str, list[str]]:
    """Every stored id per kind, as a list (a set would hide an id stored twice)."""
    out: dict[str, list[str]] = {}
    async with db.session() as session:
        for kind, model in TABLES.items():
            pk = model.__table__.primary_key.columns.values()[0]
            out[kind] = [row[0] for row in await session.execute(select(pk))]
    return out


def assert_exactly_once(found: dict[str, list[str]], expected: dict[str, set[str]]) -> None:
    for kind, ids in expected.items():
        assert len(found[kind]) == len(set(found[kind])), f"{kind}: an id stored twice"
        missing = ids - set(found[kind])
        extra = set(found[kind]) - ids
        assert not missing, f"{kind}: {len(missing)} lost, e.g. {sorted(missing)[:5]}"
        assert not extra, f"{kind}: {len(extra)} unexpected, e.g. {sorted(extra)[:5]}"


def publisher_command(
    url: str,
    client_id: str,
    prefix: str,
    count: int,
    *,
    start: int = 0,
    rate: float = 0,
    topic_prefix: str = "labormon/v1",
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.support.publisher",
        "--url",
        url,
        "--client-id",
        client_id,
        "--prefix",
        prefix,
        "--start",
        str(start),
        "--count",
        str(count),
        "--rate",
        str(rate),
        "--topic-prefix",
        topic_prefix,
    ]
