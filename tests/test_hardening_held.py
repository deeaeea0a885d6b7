"""Issue 19, "what held": regression tests for the protections the review could not break
and that had no test of their own yet (docs/security.md lists which test holds what)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, text

from monitor.accounts import NewAccount
from monitor.context import Context
from monitor.models import Account, Petition
from monitor.records import parse_obj
from monitor.store import Submission
from monitor.web.app import create_app
from monitor.web.console.auth import COOKIE
from tests.test_console import finding


@pytest.fixture
async def client(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    ctx.settings.http.public_url = "https://labormon.example.org"
    app = create_app(ctx)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://labormon.example.org"
    ) as http:
        yield http


@pytest.fixture
async def leader(ctx: Context) -> NewAccount:
    return await ctx.accounts.add(
        kind="leader", account_id="lead-430902", region_code="430902", email="zy@x.cn"
    )


async def test_session_cookie_is_signed_fresh_httponly_lax_and_secure(
    ctx: Context, client: httpx.AsyncClient, leader: NewAccount
) -> None:
    done = await client.post("/login", data={"token": leader.token})
    assert done.status_code == 303
    header = done.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "secure" in header
    cookie = done.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert (
        await client.get("/alerts", headers={"Cookie": f"{COOKIE}={cookie}"})
    ).status_code == 200
    # Edited (another account id) or unsigned: not a session.
    payload, _, signature = cookie.rpartition(".")
    forged = payload.replace("lead-430902", "lead-430900") + "." + signature
    for bad in (forged, payload + ".x", "lead-430902"):
        client.cookies.clear()
        assert (
            await client.get("/alerts", headers={"Cookie": f"{COOKIE}={bad}"})
        ).status_code == 303
    # Past its lifetime: not a session either.
    ctx.clock.advance(ctx.settings.console.session_ttl + timedelta(seconds=1))  # type: ignore[attr-defined]
    client.cookies.clear()
    assert (
        await client.get("/alerts", headers={"Cookie": f"{COOKIE}={cookie}"})
    ).status_code == 303


async def test_log_in_never_redirects_to_another_site(
    client: httpx.AsyncClient, leader: NewAccount
) -> None:
    for target in ("//evil.example/", "/\\evil.example/", "https://evil.example/", "/\t/evil"):
        client.cookies.clear()
        done = await client.post("/login", data={"token": leader.token, "next": target})
        assert done.status_code == 303
        assert done.headers["location"] == "/", target
    client.cookies.clear()
    done = await client.post("/login", data={"token": leader.token, "next": "/risk"})
    assert done.headers["location"] == "/risk"


async def test_tokens_are_256_bit_and_only_their_sha256_is_kept(
    ctx: Context, leader: NewAccount
) -> None:
    secret = leader.token.split("_", 1)[-1] if "_" in leader.token[:8] else leader.token
    assert len(secret) >= 43  # 32 random bytes, base64url
    async with ctx.db.session() as session:
        row = await session.get(Account, leader.id)
    assert row is not None
    assert row.token_hash == hashlib.sha256(leader.token.encode()).hexdigest()
    assert leader.token not in str(row.__dict__)
    assert row.mqtt_password_hash.startswith("$7$")  # Mosquitto's PBKDF2-SHA512


async def test_the_console_escapes_what_people_typed(
    ctx: Context, client: httpx.AsyncClient, leader: NewAccount
) -> None:
    await finding(ctx, "430902", "II", "<script>alert(1)</script>某厂聚集", "R-esc")
    done = await client.post("/login", data={"token": leader.token})
    cookie = done.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    for path in ("/alerts", "/alerts/1"):
        page = (await client.get(path, headers={"Cookie": f"{COOKIE}={cookie}"})).text
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;" in page


async def test_sql_text_in_records_is_data(ctx: Context) -> None:
    hostile = "x'); DROP TABLE petitions; --"
    data = {
        "petition_id": "SQL-1",
        "received_at": "2025-01-10T10:00:00+08:00",
        "channel": "visit",
        "region_code": "430902",
        "enterprise_name": hostile,
        "people_involved": 1,
        "summary": hostile,
    }
    result = await ctx.store.store("petition", [Submission(parse_obj("petition", data), "file")])
    assert result.stored == ["SQL-1"]
    async with ctx.db.session() as session:
        row = await session.get(Petition, "SQL-1")
        assert row is not None and row.enterprise_name == hostile
        assert await session.scalar(select(func.count()).select_from(Petition)) == 1
        assert await session.scalar(text("SELECT count(*) FROM petitions")) == 1
