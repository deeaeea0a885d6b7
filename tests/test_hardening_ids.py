"""Issue 19, finding 9: `re.match` with `$` let an account id with a trailing newline
through, which then broke Mosquitto's `password_file`. Ids are checked whole everywhere."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from ingest.pipeline import Envelope, validate
from monitor.accounts import AccountError
from monitor.context import Context
from monitor.models import Account
from monitor.regions import is_region_code


async def test_an_account_id_with_a_trailing_newline_is_refused(ctx: Context) -> None:
    with pytest.raises(AccountError, match="--id must be"):
        await ctx.accounts.add(kind="informant", account_id="inf-1\n", region_code="430902")
    with pytest.raises((AccountError, ValueError)):
        await ctx.accounts.add(kind="informant", account_id="inf-2", region_code="430902\n")
    async with ctx.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Account)) == 0


def test_ids_in_topics_regions_and_durations_are_checked_whole() -> None:
    assert not is_region_code("430902\n")
    assert is_region_code("430902")
    payload = json.dumps({"report_id": "R1"}).encode()
    env = validate(Envelope("mqtt", "labormon/v1/reports/x", "report", "inf-1\n", payload), 65536)
    assert env.code == "unknown_topic"
