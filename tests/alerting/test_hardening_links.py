"""Issue 19, finding 10: acknowledge links worked for anyone holding them (a forwarded
mail, a private window). Levels I and II (configurable) now need the addressee signed in,
and the demo's mail sink shows a leader their own mail only, never to anonymous readers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from monitor.web.app import create_app
from tests.alerting.conftest import PUBLIC_URL, Leader, Pipeline
from tests.support.mail import MailSink

LINK = re.compile(re.escape(PUBLIC_URL) + r"(/ack/[A-Za-z0-9_\-.]+)")


@pytest.fixture
async def client(pipeline: Pipeline, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    pipeline.ctx.settings.console.anonymous_read = True
    pipeline.ctx.settings.console.mail_dir = str(tmp_path / "mail")
    app = create_app(pipeline.ctx)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        yield http


async def _link(pipeline: Pipeline, mail: MailSink, leader: Leader, level: str) -> str:
    await pipeline.finding(level, key=f"event:{level}", title=f"资阳某厂{level}级事件")
    await pipeline.run()
    found = [m for m in mail.to(leader.email) if f"{level}级事件" in m.subject]
    match = LINK.search(found[-1].text())
    assert match is not None
    return match.group(1)


async def test_level_i_and_ii_links_need_the_addressee_signed_in(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink, client: httpx.AsyncClient
) -> None:
    path = await _link(pipeline, mail, leaders["county"], "II")
    # A forwarded mail, a private window: nothing shown, nothing acknowledged.
    shown = await client.get(path)
    assert shown.status_code == 401
    assert "II级事件" not in shown.text
    assert f'href="/login?next={path}"' in shown.text or "/login?next=" in shown.text
    assert (await client.post(path)).status_code == 401
    (alert,) = await pipeline.alerts()
    assert alert.status == "triggered"
    # The addressee signed in (an API token here; the console's session works alike).
    own = {"Authorization": f"Bearer {leaders['county'].token}"}
    assert (await client.post(path, headers=own)).status_code == 200
    (alert,) = await pipeline.alerts()
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", leaders["county"].id)


async def test_lower_levels_keep_the_one_click_link_and_the_rule_is_configurable(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink, client: httpx.AsyncClient
) -> None:
    path = await _link(pipeline, mail, leaders["county"], "III")
    assert (await client.post(path)).status_code == 200


async def test_the_mail_sink_is_never_open_to_anonymous_readers(
    pipeline: Pipeline, leaders: dict[str, Leader], client: httpx.AsyncClient
) -> None:
    directory = Path(pipeline.ctx.settings.console.mail_dir)
    directory.mkdir(parents=True)
    for n, leader in enumerate((leaders["county"], leaders["city"])):
        message = EmailMessage()
        message["Subject"] = f"给{leader.id}的预警"
        message["From"] = "labormon@localhost"
        message.set_content(f"{PUBLIC_URL}/ack/secret-{n}")
        (directory / f"20250115T01000000000{n}-d-{n}.eml").write_bytes(
            f"X-Labormon-Envelope-To: {leader.email}\r\n".encode() + message.as_bytes()
        )
    # Anonymous read is on, yet the mailbox is not.
    assert (await client.get("/mail")).status_code == 303
    assert (await client.get("/mail/20250115T010000000000-d-0.eml")).status_code == 303
    signed_in = await client.post("/login", data={"token": leaders["county"].token})
    # (The cookie is Secure, the public URL being https; the test client speaks http.)
    session = {"Cookie": signed_in.headers["set-cookie"].split(";")[0]}
    client.cookies.clear()
    listing = (await client.get("/mail", headers=session)).text
    assert f"给{leaders['county'].id}的预警" in listing
    assert f"给{leaders['city'].id}的预警" not in listing
    other = await client.get("/mail/20250115T010000000001-d-1.eml", headers=session)
    assert other.status_code == 404
