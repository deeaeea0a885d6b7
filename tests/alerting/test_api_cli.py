"""The faces: `GET /api/v1/alerts` with filters, `POST .../ack|resolve` with a leader's
token and its jurisdiction, silences over HTTP, and `labormon alerts` on the command line."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from monitor.web.app import create_app
from tests.alerting.conftest import COUNTY, OTHER_COUNTY, Leader, Pipeline, add_point
from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_FIELDS = {
    "id",
    "kind",
    "level",
    "status",
    "region_code",
    "point_id",
    "title",
    "created_at",
    "acknowledged_at",
    "resolved_at",
    "source_ids",
}


@pytest.fixture
async def client(pipeline: Pipeline) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(pipeline.ctx)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        yield http


def bearer(leader: Leader | str) -> dict[str, str]:
    token = leader.token if isinstance(leader, Leader) else leader
    return {"Authorization": f"Bearer {token}"}


async def three_alerts(pipeline: Pipeline) -> None:
    await pipeline.finding("II", key="event:A", sources=["R-A"])
    await pipeline.finding("III", key="event:B", sources=["R-B"])
    await pipeline.finding("II", key="event:C", region=OTHER_COUNTY, point=None, sources=["Q-C"])
    await pipeline.alerting.run_once()


async def test_list_alerts_by_status_level_and_region_within_jurisdiction(
    pipeline: Pipeline, leaders: dict[str, Leader], client: httpx.AsyncClient
) -> None:
    await three_alerts(pipeline)
    city = bearer(leaders["city"])
    everything = (await client.get("/api/v1/alerts", headers=city)).json()
    assert len(everything) == 3
    assert set(everything[0]) >= CONTRACT_FIELDS
    level_ii = (await client.get("/api/v1/alerts?level=II", headers=city)).json()
    assert {a["region_code"] for a in level_ii} == {COUNTY, OTHER_COUNTY}
    mine = (await client.get(f"/api/v1/alerts?region={COUNTY}", headers=city)).json()
    assert {a["source_ids"][0] for a in mine} == {"R-A", "R-B"}
    alert_id = mine[0]["id"]
    await pipeline.book.acknowledge(alert_id, actor=leaders["city"].id)
    acked = (await client.get("/api/v1/alerts?status=acknowledged", headers=city)).json()
    assert [a["id"] for a in acked] == [alert_id]
    # A county leader sees their county only, and may not look next door.
    county = bearer(leaders["county"])
    assert len((await client.get("/api/v1/alerts", headers=county)).json()) == 2
    next_door = await client.get(f"/api/v1/alerts?region={OTHER_COUNTY}", headers=county)
    assert next_door.status_code == 403
    assert (await client.get("/api/v1/alerts")).status_code == 401
    assert (await client.get("/api/v1/alerts", headers=bearer("lm_wrong"))).status_code == 401
    informant = await pipeline.ctx.accounts.add(
        kind="informant", account_id="inf-7", region_code=COUNTY
    )
    assert (await client.get("/api/v1/alerts", headers=bearer(informant.token))).status_code == 403
    assert (await client.get("/api/v1/alerts?level=V", headers=city)).status_code == 422


async def test_ack_and_resolve_need_a_leader_of_the_region_or_above(
    pipeline: Pipeline, leaders: dict[str, Leader], client: httpx.AsyncClient
) -> None:
    await three_alerts(pipeline)
    alerts = {a.entity_key: a for a in await pipeline.alerts()}
    a, c = alerts["event:A"].id, alerts["event:C"].id
    next_door = await client.post(f"/api/v1/alerts/{a}/ack", headers=bearer(leaders["other"]))
    assert next_door.status_code == 403
    analyst = await pipeline.ctx.accounts.add(
        kind="leader", account_id="yy-analyst", region_code="430900", role="analyst"
    )
    assert (
        await client.post(f"/api/v1/alerts/{a}/ack", headers=bearer(analyst.token))
    ).status_code == 403
    own = await client.post(
        f"/api/v1/alerts/{a}/ack", headers=bearer(leaders["county"]), json={"reason": "已到场"}
    )
    assert own.status_code == 200
    assert own.json()["status"] == "acknowledged"
    assert own.json()["acknowledged_at"] is not None
    above = await client.post(f"/api/v1/alerts/{c}/resolve", headers=bearer(leaders["province"]))
    assert above.status_code == 200
    assert above.json()["status"] == "resolved"
    late = await client.post(f"/api/v1/alerts/{c}/ack", headers=bearer(leaders["province"]))
    assert late.status_code == 409
    assert (
        await client.post("/api/v1/alerts/999/ack", headers=bearer(leaders["city"]))
    ).status_code == 404
    assert (await client.post(f"/api/v1/alerts/{a}/resolve")).status_code == 401


async def test_silences_over_http_within_jurisdiction(
    pipeline: Pipeline, leaders: dict[str, Leader], client: httpx.AsyncClient
) -> None:
    await add_point(pipeline.ctx)
    body = {"scope": "point", "target": "P1", "duration": "3d", "reason": "已进入调解程序"}
    refused = await client.post("/api/v1/silences", json=body, headers=bearer(leaders["other"]))
    assert refused.status_code == 403
    made = await client.post("/api/v1/silences", json=body, headers=bearer(leaders["county"]))
    assert made.status_code == 201
    silence = made.json()
    assert silence["region_code"] == COUNTY
    listed = (await client.get("/api/v1/silences", headers=bearer(leaders["city"]))).json()
    assert [s["id"] for s in listed] == [silence["id"]]
    assert (await client.get("/api/v1/silences", headers=bearer(leaders["other"]))).json() == []
    ended = await client.delete(
        f"/api/v1/silences/{silence['id']}", headers=bearer(leaders["city"])
    )
    assert ended.status_code == 200
    assert (await client.get("/api/v1/silences", headers=bearer(leaders["city"]))).json() == []


def labormon(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABORMON_")}
    env["LABORMON_SECURITY__SECRET_KEY"] = SECRET
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args, "--db", db_url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_command_line_lists_with_the_contract_fields_and_acts(
    pipeline: Pipeline, leaders: dict[str, Leader], db_url: str
) -> None:
    await three_alerts(pipeline)
    listed = await asyncio.to_thread(labormon, db_url, "alerts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert len(rows) == 3
    assert all(set(row) == CONTRACT_FIELDS | {"stage", "overdue"} for row in rows)
    by_key = {tuple(r["source_ids"]): r for r in rows}
    first = by_key[("R-A",)]
    assert (first["kind"], first["level"], first["status"]) == ("event", "II", "triggered")
    assert (first["region_code"], first["point_id"]) == (COUNTY, "P1")
    assert first["acknowledged_at"] is None
    ack = await asyncio.to_thread(labormon, db_url, "alerts", "ack", str(first["id"]))
    assert ack.returncode == 0, ack.stderr
    wrong = await asyncio.to_thread(
        labormon, db_url, "alerts", "resolve", str(first["id"]), "--as", leaders["other"].id
    )
    assert wrong.returncode == 2
    assert "may not act on alerts of region 430902" in wrong.stderr
    done = await asyncio.to_thread(
        labormon, db_url, "alerts", "resolve", str(first["id"]), "--as", leaders["county"].id
    )
    assert done.returncode == 0, done.stderr
    (alert,) = [a for a in await pipeline.alerts() if a.id == first["id"]]
    assert alert.status == "resolved"
    assert alert.acknowledged_by is not None
    assert alert.acknowledged_by.startswith("operator")
    assert alert.resolved_by == leaders["county"].id
