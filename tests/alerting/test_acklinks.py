"""The acknowledge link in the email: shown on GET, acknowledged on POST, and refused when
forged, expired, reused or presented by another leader."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from monitor.web.app import create_app
from tests.alerting.conftest import PUBLIC_URL, Leader, Pipeline, minutes
from tests.support.mail import MailSink

S = timedelta(seconds=1)
LINK = re.compile(re.escape(PUBLIC_URL) + r"(/ack/[A-Za-z0-9_\-.]+)")


@pytest.fixture
async def client(pipeline: Pipeline) -> AsyncIterator[httpx.AsyncClient]:
    # These tests use the link alone, as an installation that turned the log-in rule off
    # does (tests/alerting/test_hardening_links.py has the default: I and II need it).
    pipeline.ctx.settings.alerting.ack_link_login_levels = []
    app = create_app(pipeline.ctx)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        yield http


async def link_for(pipeline: Pipeline, mail: MailSink, leader: Leader) -> str:
    await pipeline.finding("II")
    await pipeline.run()
    (message,) = mail.to(leader.email)
    found = LINK.search(message.text())
    assert found is not None
    assert found.group(1) in message.html()
    return found.group(1)


async def status(pipeline: Pipeline) -> str:
    (alert,) = await pipeline.alerts()
    return alert.status


async def test_get_only_shows_the_alert_post_acknowledges(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink, client: httpx.AsyncClient
) -> None:
    t0 = pipeline.clock.now()
    path = await link_for(pipeline, mail, leaders["county"])
    for _ in range(3):  # a mail scanner, the preview pane, the leader
        page = await client.get(path)
        assert page.status_code == 200
        assert "确认收到</button>" in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
    assert await status(pipeline) == "triggered"
    pipeline.clock.set(t0 + minutes(12))
    done = await client.post(path)
    assert done.status_code == 200
    assert "已确认收到" in done.text
    (alert,) = await pipeline.alerts()
    assert alert.status == "acknowledged"
    assert alert.acknowledged_by == leaders["county"].id
    assert alert.acknowledged_at == t0 + minutes(12)
    await pipeline.at(t0 + minutes(30))
    assert mail.to(leaders["province"].email) == []


async def test_a_forged_link_is_refused(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink, client: httpx.AsyncClient
) -> None:
    path = await link_for(pipeline, mail, leaders["county"])
    payload, signature = path.removeprefix("/ack/").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    # Someone edits the link to act as the city leader, keeping the signature.
    claims["u"] = leaders["city"].id
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for bad in (f"/ack/{edited}.{signature}", f"/ack/{payload}.{flipped}", "/ack/garbage"):
        assert (await client.get(bad)).status_code == 403
        refused = await client.post(bad)
        assert refused.status_code == 403
        assert "链接无效" in refused.text
    assert await status(pipeline) == "triggered"


async def test_an_expired_link_is_refused(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink, client: httpx.AsyncClient
) -> None:
    t0 = pipeline.clock.now()
    path = await link_for(pipeline, mail, leaders["county"])
    ttl = pipeline.ctx.settings.alerting.ack_link_ttl
    pipeline.clock.set(t0 + ttl - S)
    assert (await client.get(path)).status_code == 200
    pipeline.clock.set(t0 + ttl)
    assert (await client.get(path)).status_code == 410
    refused = await client.post(path)
    assert refused.status_code == 410
    assert "链接已过期" in refused.text
    assert await status(pipeline) == "triggered"


async def test_a_link_works_once(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink, client: httpx.AsyncClient
) -> None:
    path = await link_for(pipeline, mail, leaders["county"])
    assert (await client.post(path)).status_code == 200
    (alert,) = await pipeline.alerts()
    # A second press (or a second tab) changes nothing and says why.
    await pipeline.book.resolve(alert.id, actor="system")
    again = await client.post(path)
    assert again.status_code == 410
    assert "只能确认一次" in again.text


async def test_another_leaders_link_is_refused(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink, client: httpx.AsyncClient
) -> None:
    path = await link_for(pipeline, mail, leaders["county"])
    # The city leader, signed in, opens the county leader's link (forwarded mail).
    city = {"Authorization": f"Bearer {leaders['city'].token}"}
    assert (await client.get(path, headers=city)).status_code == 403
    refused = await client.post(path, headers=city)
    assert refused.status_code == 403
    assert "发给其他负责人" in refused.text
    assert await status(pipeline) == "triggered"
    # The same leader signed in to the console (a session cookie, no token) is refused too.
    signed_in = await client.post("/login", data={"token": leaders["city"].token})
    assert signed_in.status_code == 303
    # (The cookie is Secure, the public URL being https; the test client speaks http.)
    session = {"Cookie": signed_in.headers["set-cookie"].split(";")[0]}
    client.cookies.clear()
    assert (await client.get(path, headers=session)).status_code == 403
    assert (await client.post(path, headers=session)).status_code == 403
    assert await status(pipeline) == "triggered"
    # A leader whose account is revoked cannot use the links already in their inbox.
    await pipeline.ctx.accounts.revoke(leaders["county"].id)
    assert (await client.post(path)).status_code == 403
    assert await status(pipeline) == "triggered"
