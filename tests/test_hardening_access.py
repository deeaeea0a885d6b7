"""Issue 19, findings 2 and 3: an informant reports on their own region only, on every
channel, and only informants file informant reports (the console's form as the API)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from ingest.files import FileImporter
from ingest.pipeline import Envelope, IngestPipeline
from monitor.accounts import NewAccount
from monitor.context import Context
from monitor.models import InformantReport
from monitor.records import parse_obj
from monitor.store import Submission
from monitor.web.app import create_app
from tests.ingest_support import running
from tests.support.ports import free_port
from tests.test_console import Console, add_point, finding

ZIYANG, HESHAN = "430902", "430903"


def _report(rid: str, informant: str = "inf-zy", **fields: object) -> dict[str, object]:
    return {
        "report_id": rid,
        "informant_id": informant,
        "occurred_at": "2025-01-15T08:00:00+08:00",
        "region_code": ZIYANG,
        "event_type": "gathering",
        "people_involved": 40,
        "description": "工人聚集讨薪",
    } | fields


@pytest.fixture
async def accounts(ctx: Context) -> dict[str, NewAccount]:
    await add_point(ctx)  # P1 in 资阳区
    now = ctx.clock.now()
    from monitor.models import MonitoringPoint

    async with ctx.db.session() as session:
        session.add(
            MonitoringPoint(
                point_id="P-HS",
                name="赫山建工",
                region_code=HESHAN,
                industry="construction",
                headcount=200,
                payload_hash="x",
                source="file",
                created_at=now,
                updated_at=now,
            )
        )
    add = ctx.accounts.add
    return {
        "inf-zy": await add(kind="informant", account_id="inf-zy", region_code=ZIYANG),
        "leader": await add(kind="leader", account_id="lead-zy", region_code=ZIYANG),
        "analyst": await add(
            kind="leader", account_id="ana-city", region_code="430900", role="analyst"
        ),
    }


async def test_the_store_refuses_reports_outside_the_informants_region(
    ctx: Context, accounts: dict[str, NewAccount]
) -> None:
    items = [
        _report("OK-1"),
        _report("OK-2", point_id="P1"),
        _report("X-REGION", region_code=HESHAN),
        _report("X-POINT", point_id="P-HS"),
        _report("X-LEADER", informant="lead-zy"),
        # An id without an account (a historic file) is not checked.
        _report("OLD-1", informant="INF-430903-007", region_code=HESHAN),
    ]
    result = await ctx.store.store(
        "report", [Submission(parse_obj("report", r), "file") for r in items]
    )
    assert sorted(result.stored) == ["OK-1", "OK-2", "OLD-1"]
    assert {rid: e.field for rid, e in result.rejected.items()} == {
        "X-REGION": "region_code",
        "X-POINT": "point_id",
        "X-LEADER": "informant_id",
    }
    assert "outside the region of informant inf-zy (430902)" in result.rejected["X-REGION"].reason


async def test_every_channel_refuses_another_countys_report(
    ctx: Context, accounts: dict[str, NewAccount], tmp_path: Path
) -> None:
    ctx.settings.http.bind = f"127.0.0.1:{free_port()}"
    async with (
        running(ctx, mqtt=False, http=True) as daemon,
        httpx.AsyncClient(base_url=ctx.settings.http.base_url, timeout=10) as client,
    ):
        token = accounts["inf-zy"].token
        refused = await client.post(
            "/api/v1/reports",
            json=_report("H-1", region_code=HESHAN),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "forbidden"
        # MQTT hands the pipeline the topic's id and asks it to check the account.
        intake = next(s for s in daemon.services if isinstance(s, IngestPipeline))
        payload = json.dumps(_report("M-1", point_id="P-HS")).encode()
        outcome = await intake.submit_and_wait(
            Envelope(
                "mqtt", "labormon/v1/reports/inf-zy", "report", "inf-zy", payload, check_sender=True
            )
        )
        assert (outcome.status, outcome.code) == ("rejected", "forbidden")
    lines = tmp_path / "reports.jsonl"
    lines.write_text(json.dumps(_report("F-1", region_code=HESHAN)) + "\n", encoding="utf-8")
    imported = await FileImporter(ctx.store).run(lines)
    assert imported.rejected == 1
    async with ctx.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(InformantReport)) == 0


@pytest.fixture
async def console(ctx: Context) -> AsyncIterator[Console]:
    app = create_app(ctx)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        yield Console(client)


async def test_only_informants_use_the_report_form_and_only_for_their_region(
    ctx: Context, accounts: dict[str, NewAccount], console: Console
) -> None:
    form = {
        "occurred_at": "2025-01-15T08:00",
        "region_code": ZIYANG,
        # Below level I, so that the form does not first ask to confirm (issue 15).
        "event_type": "gathering",
        "people_involved": "12",
        "description": "工人聚集讨薪",
    }
    for who in ("leader", "analyst"):
        await console.login(accounts[who])
        from monitor.web.console.auth import COOKIE, csrf_token

        csrf = csrf_token(ctx, console.client.cookies.get(COOKIE))
        assert (await console.client.get("/report")).status_code == 403
        posted = await console.client.post("/report", data=form | {"csrf": csrf})
        assert posted.status_code == 403
        assert "只有信息员账号" in posted.text
    await console.login(accounts["inf-zy"])
    csrf = await console.csrf("/report")
    elsewhere = await console.client.post(
        "/report", data=form | {"csrf": csrf, "region_code": HESHAN}
    )
    assert elsewhere.status_code == 422
    other_point = await console.client.post(
        "/report", data=form | {"csrf": csrf, "point_id": "P-HS"}
    )
    assert other_point.status_code == 422
    async with ctx.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(InformantReport)) == 0
    # And so the other county's alert stays out of reach.
    await finding(ctx, HESHAN, "II", "赫山建工40人聚集讨薪", "R-hs")
    from monitor.alerting.book import AlertBook

    [alert] = await AlertBook(ctx).list(within=HESHAN)
    assert (await console.client.get(f"/alerts/{alert.id}")).status_code == 403
