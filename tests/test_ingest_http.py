"""HTTP intake served by the daemon: statuses, tokens, field errors, OpenAPI, metrics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from monitor.context import Context
from monitor.models import InformantReport, RejectedMessage
from tests.ingest_support import running
from tests.support import publisher
from tests.support.ports import free_port
from tests.support.stream import import_points


@dataclass
class Api:
    client: httpx.AsyncClient
    tokens: dict[str, str]
    ctx: Context

    async def post(self, path: str, body: object, account: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[account]}"} if account else {}
        content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False)
        return await self.client.post(
            path, content=content, headers=headers | {"Content-Type": "application/json"}
        )


@pytest.fixture
async def api(ctx: Context) -> AsyncIterator[Api]:
    await import_points(ctx)
    tokens = {}
    for kind, account_id, region in [
        # The informants' reports come from every county (publisher.message).
        ("informant", "inf-a", "430900"),
        ("informant", "inf-b", "430900"),
        ("point", "P000", "430902"),
        ("source", "src-a", "430902"),
        ("leader", "boss", "430900"),
    ]:
        new = await ctx.accounts.add(kind=kind, account_id=account_id, region_code=region)
        tokens[account_id] = new.token
    ctx.settings.http.bind = f"127.0.0.1:{free_port()}"
    async with (
        running(ctx, mqtt=False, http=True),
        httpx.AsyncClient(base_url=ctx.settings.http.base_url, timeout=10) as client,
    ):
        yield Api(client, tokens, ctx)


def report(rid: str = "H1", informant: str = "inf-a", **changes: object) -> dict[str, object]:
    body = dict(publisher.message("h", 2, "reports").payload)
    return body | {"report_id": rid, "informant_id": informant} | changes


def wage(rid: str = "HW1", point: str = "P000") -> dict[str, object]:
    body = dict(publisher.message("h", 1).payload)
    return body | {"report_id": rid, "point_id": point}


def petition(pid: str = "HQ1", **changes: object) -> dict[str, object]:
    return dict(publisher.message("h", 0).payload) | {"petition_id": pid} | changes


async def test_stored_then_duplicate(api: Api) -> None:
    first = await api.post("/api/v1/reports", report(), "inf-a")
    assert first.status_code == 201
    assert first.json() == {"status": "stored", "kind": "report", "id": "H1"}
    again = await api.post("/api/v1/reports", report(), "inf-a")
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    async with api.ctx.db.session() as session:
        row = await session.get(InformantReport, "H1")
    assert row is not None
    assert (row.source, row.account_id) == ("http", "inf-a")


async def test_each_kind_with_its_own_account(api: Api) -> None:
    assert (await api.post("/api/v1/wages", wage(), "P000")).status_code == 201
    assert (await api.post("/api/v1/petitions", petition(), "src-a")).status_code == 201
    assert (await api.post("/api/v1/reports", report(), "inf-a")).status_code == 201


async def test_field_errors_are_422_and_kept(api: Api) -> None:
    response = await api.post("/api/v1/reports", report(people_involved="12"), "inf-a")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_field"
    assert body["detail"][0]["loc"] == ["body", "people_involved"]
    assert "number" in body["detail"][0]["msg"]
    missing = await api.post(
        "/api/v1/reports", {"report_id": "H2", "informant_id": "inf-a"}, "inf-a"
    )
    assert missing.status_code == 422
    assert {tuple(d["loc"]) for d in missing.json()["detail"]} >= {("body", "occurred_at")}
    broken = await api.post("/api/v1/reports", b'{"report_id": ', "inf-a")
    assert broken.status_code == 422
    assert broken.json()["code"] == "invalid_json"
    async with api.ctx.db.session() as session:
        rows = (await session.scalars(select(RejectedMessage))).all()
    assert len(rows) == 3
    assert {(r.channel, r.client_id, r.origin) for r in rows} == {
        ("http", "inf-a", "/api/v1/reports")
    }


async def test_same_id_other_contents_is_a_conflict(api: Api) -> None:
    assert (await api.post("/api/v1/reports", report(), "inf-a")).status_code == 201
    other = await api.post("/api/v1/reports", report(people_involved=99), "inf-a")
    assert other.status_code == 422
    assert other.json()["code"] == "conflict"
    assert other.json()["detail"][0]["loc"] == ["body", "report_id"]


async def test_unknown_missing_or_revoked_token_is_401(api: Api) -> None:
    assert (await api.post("/api/v1/reports", report(), None)).status_code == 401
    api.tokens["nobody"] = "lm_not-a-token"
    response = await api.post("/api/v1/reports", report(), "nobody")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    await api.ctx.accounts.revoke("inf-a")
    assert (await api.post("/api/v1/reports", report(), "inf-a")).status_code == 401
    async with api.ctx.db.session() as session:
        # Anyone can send a 401; they do not get to fill the rejections table.
        assert (await session.scalars(select(RejectedMessage))).all() == []


async def test_a_token_cannot_submit_for_another_account(api: Api) -> None:
    spoof = await api.post("/api/v1/reports", report(informant="inf-b"), "inf-a")
    assert spoof.status_code == 403
    assert spoof.json()["code"] == "id_mismatch"
    assert spoof.json()["detail"][0]["loc"] == ["body", "informant_id"]
    # Even with other faults in the body, speaking for another is what is answered.
    broken = await api.post(
        "/api/v1/reports", report(informant="inf-b", people_involved="x"), "inf-a"
    )
    assert broken.status_code == 403
    assert (await api.post("/api/v1/wages", wage(point="P001"), "P000")).status_code == 403
    # Nor for another kind of record.
    assert (await api.post("/api/v1/wages", wage(), "inf-a")).status_code == 403
    assert (await api.post("/api/v1/petitions", petition(), "boss")).status_code == 403
    assert (await api.post("/api/v1/reports", report(informant="boss"), "boss")).status_code == 403
    assert (
        await api.post("/api/v1/petitions", petition(source_id="src-b"), "src-a")
    ).status_code == 403
    async with api.ctx.db.session() as session:
        assert await session.get(InformantReport, "H1") is None
        rows = (await session.scalars(select(RejectedMessage))).all()
    assert len(rows) == 7
    assert {r.client_id for r in rows} == {"inf-a", "P000", "boss", "src-a"}


async def test_oversize_body_is_413(api: Api) -> None:
    big = report(description="长" * 30_000)
    response = await api.post("/api/v1/reports", big, "inf-a")
    assert response.status_code == 413


async def test_personal_data_is_masked_in_kept_rejections(api: Api) -> None:
    bad = petition(people_involved="many")
    assert (await api.post("/api/v1/petitions", bad, "src-a")).status_code == 422
    async with api.ctx.db.session() as session:
        row = (await session.scalars(select(RejectedMessage))).one()
    assert row.payload is not None
    assert "张三" not in row.payload
    assert "13800001111" not in row.payload


async def test_openapi_metrics_and_health(api: Api) -> None:
    await api.post("/api/v1/reports", report(), "inf-a")
    spec = (await api.client.get("/openapi.json")).json()
    for path, required in [
        ("/api/v1/wages", "point_id"),
        ("/api/v1/petitions", "petition_id"),
        ("/api/v1/reports", "informant_id"),
    ]:
        operation = spec["paths"][path]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert required in schema["required"]
        assert {"201", "200", "401", "403", "422"} <= set(operation["responses"])
        assert operation["security"]
    metrics = (await api.client.get("/metrics")).text
    assert 'labormon_records_received_total{channel="http",kind="report"} 1.0' in metrics
    assert 'labormon_records_stored_total{channel="http",kind="report"} 1.0' in metrics
    assert 'labormon_ingest_lag_seconds_count{channel="http"} 1.0' in metrics
    health = (await api.client.get("/healthz")).json()
    assert health["status"] == "ok"
    assert health["services"]["ingest"] == {"queued": 0}
