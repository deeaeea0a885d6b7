"""The web console, server side: log-in, jurisdiction, the report form, acknowledge and
resolve through the alerting core, the mail sink and documents (both databases).

The browser walk-through is in tests/test_console_browser.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from monitor.accounts import NewAccount
from monitor.alerting.book import AlertBook
from monitor.context import Context
from monitor.models import Document, Finding, MonitoringPoint
from monitor.web.app import create_app


async def finding(ctx: Context, region: str, level: str, title: str, source: str) -> None:
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        session.add(
            Finding(
                detector="severity",
                kind="event",
                entity_type="event",
                entity_id=source,
                dedup_key=f"event:{source}",
                region_code=region,
                point_id=None,
                score=80.0,
                level=level,
                title=title,
                evidence={
                    "factors": [{"code": "people", "text": "涉及40人(重大)", "weight": 1.0}],
                    "source_ids": [source],
                    "people_involved": 40,
                },
                as_of=now,
                created_at=now,
            )
        )
    await AlertBook(ctx).process_findings()


async def add_point(ctx: Context) -> None:
    """监测点 P1 (资阳建工) in 资阳区."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        session.add(
            MonitoringPoint(
                point_id="P1",
                name="资阳建工",
                region_code="430902",
                industry="construction",
                headcount=300,
                payload_hash="x",
                source="file",
                created_at=now,
                updated_at=now,
            )
        )


class Console:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def login(self, account: NewAccount) -> httpx.Response:
        self.client.cookies.clear()
        return await self.client.post("/login", data={"token": account.token})

    async def csrf(self, path: str) -> str:
        page = (await self.client.get(path)).text
        match = re.search(r'name="csrf" value="([^"]+)"', page)
        assert match, page[:500]
        return match.group(1)


def session_csrf(ctx: Context, console: Console) -> str:
    """The form token of the console session (for viewers whose pages have no form)."""
    from monitor.web.console.auth import COOKIE, csrf_token

    return csrf_token(ctx, console.client.cookies.get(COOKIE))


@pytest.fixture
async def console(ctx: Context, tmp_path: Path) -> AsyncIterator[Console]:
    ctx.settings.console.mail_dir = str(tmp_path / "mail")
    app = create_app(ctx)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        yield Console(client)


@pytest.fixture
async def people(ctx: Context) -> dict[str, NewAccount]:
    add = ctx.accounts.add
    return {
        "ziyang": await add(
            kind="leader", account_id="lead-430902", region_code="430902", email="zy@x.cn"
        ),
        "heshan": await add(
            kind="leader", account_id="lead-430903", region_code="430903", email="hs@x.cn"
        ),
        "city": await add(
            kind="leader", account_id="lead-430900", region_code="430900", email="yy@x.cn"
        ),
        "analyst": await add(
            kind="leader", account_id="ana-430900", region_code="430900", role="analyst"
        ),
        "informant": await add(kind="informant", account_id="inf-430902-1", region_code="430902"),
        "point": await add(kind="source", account_id="hotline", region_code="430900"),
    }


async def test_log_in_and_jurisdiction(
    ctx: Context, console: Console, people: dict[str, NewAccount]
) -> None:
    await finding(ctx, "430902", "II", "资阳某厂40人聚集讨薪", "R-zy")
    await finding(ctx, "430903", "II", "赫山某工地40人聚集讨薪", "R-hs")
    anonymous = await console.client.get("/alerts")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login")
    refused = await console.client.post("/login", data={"token": "lm_wrong"})
    assert refused.status_code == 401
    assert "令牌无效" in refused.text
    assert (
        await console.client.post("/login", data={"token": people["point"].token})
    ).status_code == 401

    await console.login(people["ziyang"])
    page = (await console.client.get("/alerts")).text
    assert "资阳某厂40人聚集讨薪" in page
    assert "赫山某工地" not in page
    other = next(a for a in await AlertBook(ctx).list(within="430903") if a.region_code == "430903")
    assert (await console.client.get(f"/alerts/{other.id}")).status_code == 403

    await console.login(people["city"])
    page = (await console.client.get("/alerts")).text
    assert "资阳某厂" in page
    assert "赫山某工地" in page


async def test_acknowledge_and_resolve_through_the_core(
    ctx: Context, console: Console, people: dict[str, NewAccount]
) -> None:
    await finding(ctx, "430902", "II", "资阳某厂40人聚集讨薪", "R-1")
    [alert] = await AlertBook(ctx).list(within="430900")
    await console.login(people["ziyang"])
    path = f"/alerts/{alert.id}"
    token = await console.csrf(path)
    assert (await console.client.post(f"{path}/ack", data={"csrf": "forged"})).status_code == 400
    done = await console.client.post(f"{path}/ack", data={"csrf": token}, follow_redirects=True)
    assert "已确认收到" in done.text
    assert "确认收到" in (await console.client.get(f"{path}?fragment=1")).text
    [alert] = await AlertBook(ctx).list(within="430900")
    assert alert.status == "acknowledged"
    assert alert.acknowledged_by == "lead-430902"

    # An analyst reads but does not act; a leader of another county cannot act.
    await console.login(people["analyst"])
    token = session_csrf(ctx, console)  # an analyst's alert page has no action forms
    assert (await console.client.post(f"{path}/resolve", data={"csrf": token})).status_code == 403
    await console.login(people["heshan"])
    assert (await console.client.get(path)).status_code == 403

    await console.login(people["city"])
    token = await console.csrf(path)
    await console.client.post(f"{path}/resolve", data={"csrf": token, "note": "已调解"})
    [alert] = await AlertBook(ctx).list(within="430900")
    assert alert.status == "resolved"


async def test_report_form_errors_then_receipt(
    ctx: Context, console: Console, people: dict[str, NewAccount]
) -> None:
    await console.login(people["informant"])
    token = await console.csrf("/report")
    bad = await console.client.post(
        "/report",
        data={
            "csrf": token,
            "occurred_at": "2025-01-15T08:00",
            "region_code": "430902",
            "event_type": "",
            "people_involved": "很多",
            "description": "工人聚集",
        },
    )
    assert bad.status_code == 422
    errors = dict(re.findall(r'id="([a-z_]+)-error" role="alert">([^<]+)<', bad.text))
    assert set(errors) == {"event_type", "people_involved"}
    assert "30、三十" in errors["people_involved"]
    assert 'value="很多"' in bad.text  # what was typed is kept
    good = await console.client.post(
        "/report",
        data={
            "csrf": token,
            "occurred_at": "2025-01-15T08:00",
            "region_code": "430902",
            "event_type": "road_blocking",
            "people_involved": "12",
            "description": "工人堵路讨薪",
            "enterprise_name": "资阳某建筑公司",
            "unlisted": "1",
        },
    )
    # Road blocking is level I: the form says what sending it will do and asks first.
    assert good.status_code == 200
    assert "县、市、省三级" in good.text
    confirmed = re.search(r'name="confirmed" value="([^"]+)"', good.text)
    assert confirmed
    good = await console.client.post(
        "/report",
        data={
            "csrf": token,
            "occurred_at": "2025-01-15T08:00",
            "region_code": "430902",
            "event_type": "road_blocking",
            "people_involved": "12",
            "description": "工人堵路讨薪",
            "enterprise_name": "资阳某建筑公司",
            "unlisted": "1",
            "confirmed": confirmed.group(1),
        },
    )
    assert good.status_code == 303
    receipt = await console.client.get(good.headers["location"])
    report_id = re.search(r'id="receipt-id">([^<]+)<', receipt.text)
    assert report_id
    assert report_id.group(1).startswith("web-")
    # An informant cannot read alerts in general, nor another informant's receipt.
    assert (await console.client.get("/alerts", follow_redirects=False)).headers[
        "location"
    ] == "/report"
    other = await ctx.accounts.add(
        kind="informant", account_id="inf-430902-2", region_code="430902"
    )
    await console.login(other)
    assert (await console.client.get(good.headers["location"])).status_code == 404


async def test_risk_pages_mail_and_documents(
    ctx: Context, console: Console, people: dict[str, NewAccount], tmp_path: Path
) -> None:
    now = ctx.clock.now()
    await add_point(ctx)
    async with ctx.db.session() as session:
        session.add(
            Document(
                kind="monthly_report",
                key="2024-12",
                filename="月报.pdf",
                content_type="application/pdf",
                data=b"%PDF-1.7 test",
                created_at=now,
            )
        )
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    message = EmailMessage()
    message["Subject"] = "【II级 重大】资阳某厂"
    message["From"] = "labormon@localhost"
    message["Message-ID"] = "<d-1@labormon>"
    message.set_content("正文")
    (mail_dir / "20250115T010000000000-d-1.eml").write_bytes(
        b"X-Labormon-Envelope-To: zy@x.cn\r\n" + message.as_bytes()
    )
    # An open risk alert is ranked on the risk page as a forecast (colour band).
    async with ctx.db.session() as session:
        session.add(
            Finding(
                detector="combiner",
                kind="enterprise_risk",
                entity_type="point",
                entity_id="P1",
                dedup_key="point:P1:enterprise_risk",
                region_code="430902",
                point_id="P1",
                score=72.0,
                level="II",
                title="【橙色风险提示】资阳建工劳资冲突风险72分",
                evidence={"factors": [], "source_ids": []},
                as_of=now,
                created_at=now,
            )
        )
    await AlertBook(ctx).process_findings()
    await console.login(people["ziyang"])
    risk_page = (await console.client.get("/risk")).text
    assert "区县风险" in risk_page
    assert "在提示中的风险" in risk_page and "资阳建工劳资冲突风险72分" in risk_page
    assert "特别重大" not in risk_page
    point = (await console.client.get("/risk/points/P1")).text
    assert "资阳建工" in point
    assert "<svg" in point
    listing = (await console.client.get("/mail")).text
    assert "【II级 重大】资阳某厂" in listing
    assert "正文" in (await console.client.get("/mail/20250115T010000000000-d-1.eml")).text
    assert (await console.client.get("/mail/..%2Fsecret")).status_code == 404
    await console.login(people["city"])  # the monthly report goes to the city and above
    docs = (await console.client.get("/reports")).text
    doc_id = re.search(r'href="/documents/(\d+)"', docs)
    assert doc_id
    download = await console.client.get(f"/documents/{doc_id.group(1)}")
    assert download.content == b"%PDF-1.7 test"
    await console.login(people["informant"])
    assert (await console.client.get("/risk/points/P1")).status_code == 403


async def _report(console: Console, **fields: str) -> httpx.Response:
    data = {
        "csrf": await console.csrf("/report"),
        "occurred_at": "2025-01-15T08:00",
        "region_code": "430902",
        "event_type": "road_blocking",
        "people_involved": "12",
        "description": "工人堵路讨薪",
    } | fields
    if fields.get("enterprise_name") and not fields.get("point_id"):
        data.setdefault("unlisted", "1")
    answer = await console.client.post("/report", data=data)
    confirm = re.search(r'name="confirmed" value="([^"]+)"', answer.text)
    if answer.status_code == 200 and confirm:
        # A level I/II report is sent after its confirmation step.
        answer = await console.client.post("/report", data=data | {"confirmed": confirm.group(1)})
    return answer


async def test_an_informant_follows_only_the_alerts_of_their_own_reports(
    ctx: Context, console: Console, people: dict[str, NewAccount]
) -> None:
    from detectors.service import DetectorService

    # Two alerts in the informant's own county: one from a petition about the same
    # enterprise, one from the informant's report. Only the second is theirs to follow.
    await finding(ctx, "430902", "II", "资阳某厂40人聚集讨薪", "W-P9-202501")
    await console.login(people["informant"])
    mine = await _report(console, enterprise_name="资阳某建筑公司")
    assert mine.status_code == 303
    # Claiming another record's id (a wage report's, a petition's) as one's own report id
    # is possible, but does not open that record's alert.
    from monitor.records import parse_obj
    from monitor.store import Submission

    copied = parse_obj(
        "report",
        {
            "report_id": "W-P9-202501",
            "informant_id": "inf-430902-1",
            "occurred_at": "2025-01-15T08:00:00+08:00",
            "region_code": "430902",
            "event_type": "precursor",
            "people_involved": 3,
            "description": "听说有工人不满",
        },
    )
    stored = await ctx.store.store("report", [Submission(copied, "http", "inf-430902-1")])
    assert stored.stored == ["W-P9-202501"]
    await DetectorService(ctx).check_new_records()
    await AlertBook(ctx).process_findings()
    alerts = {a.title: a for a in await AlertBook(ctx).list(within="430902")}
    other = alerts["资阳某厂40人聚集讨薪"]
    own = next(a for t, a in alerts.items() if "堵路" in t)
    receipt = await console.client.get(mine.headers["location"])
    assert f"/alerts/{own.id}" in receipt.text
    assert f"/alerts/{other.id}" not in receipt.text
    assert (await console.client.get(f"/alerts/{own.id}")).status_code == 200
    assert (await console.client.get(f"/alerts/{other.id}")).status_code == 403


async def test_leaders_of_other_counties_cannot_act_and_reports_go_to_their_tiers(
    ctx: Context, console: Console, people: dict[str, NewAccount]
) -> None:
    await finding(ctx, "430902", "II", "资阳某厂40人聚集讨薪", "R-act")
    [alert] = await AlertBook(ctx).list(within="430900")
    await console.login(people["heshan"])
    token = session_csrf(ctx, console)  # a valid form token of this session
    for action in ("ack", "resolve"):
        done = await console.client.post(
            f"/alerts/{alert.id}/{action}", data={"csrf": token}, follow_redirects=True
        )
        assert "只有本区域或上级区域的领导" in done.text or done.status_code == 403
    [alert] = await AlertBook(ctx).list(within="430900")
    assert alert.status == "triggered"
    # Words on the page come from the console, never from the link.
    page = await console.client.get(f"/alerts/{alert.id}?msg=请拨打13800000000")
    assert "13800000000" not in page.text

    async with ctx.db.session() as session:
        doc = Document(
            kind="monthly_report",
            key="2024-12",
            filename="月报.pdf",
            content_type="application/pdf",
            data=b"%PDF-1.7 test",
            created_at=ctx.clock.now(),
        )
        session.add(doc)
        await session.flush()
        doc_id = doc.id
    # The monthly report is mailed to the city and the province: a county leader does
    # not download it, a city leader does.
    assert (await console.client.get(f"/documents/{doc_id}")).status_code == 403
    await console.login(people["city"])
    assert (await console.client.get(f"/documents/{doc_id}")).content == b"%PDF-1.7 test"


async def test_log_out_ends_the_session_and_other_sites_cannot_log_in(
    ctx: Context, console: Console, people: dict[str, NewAccount]
) -> None:
    await console.login(people["ziyang"])
    assert (await console.client.get("/alerts")).status_code == 200
    kept = dict(console.client.cookies)
    ctx.clock.advance(seconds=1)  # type: ignore[attr-defined]
    assert (await console.client.post("/logout")).status_code == 303
    console.client.cookies.clear()
    console.client.cookies.update(kept)  # a copy of the cookie kept from before
    assert (await console.client.get("/alerts")).status_code == 303
    ctx.clock.advance(seconds=1)  # type: ignore[attr-defined]
    assert (await console.login(people["ziyang"])).status_code == 303
    assert (await console.client.get("/alerts")).status_code == 200

    console.client.cookies.clear()
    forged = await console.client.post(
        "/login",
        data={"token": people["ziyang"].token},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    assert "labormon_session" not in forged.headers.get("set-cookie", "")
    same = await console.client.post(
        "/login", data={"token": people["ziyang"].token}, headers={"Origin": "http://console"}
    )
    assert same.status_code == 303


async def test_personal_numbers_in_report_text_are_masked_for_leaders(
    ctx: Context, console: Console, people: dict[str, NewAccount]
) -> None:
    await add_point(ctx)
    await console.login(people["informant"])
    done = await _report(
        console, event_type="gathering", point_id="P1", description="联系人电话13812345678"
    )
    assert done.status_code == 303, done.text[:300]
    await console.login(people["ziyang"])
    page = (await console.client.get("/risk/points/P1")).text
    assert "13812345678" not in page
    assert "138****5678" in page


async def test_names_in_report_text_are_shown_only_to_those_who_act(
    ctx: Context, console: Console, people: dict[str, NewAccount]
) -> None:
    await add_point(ctx)
    await console.login(people["informant"])
    done = await _report(
        console, event_type="gathering", point_id="P1", description="联系人王小明称老板已失联"
    )
    assert done.status_code == 303, done.text[:300]
    # The informant's own receipt keeps their words.
    assert "联系人王小明称老板已失联" in (await console.client.get(done.headers["location"])).text
    await console.login(people["ziyang"])
    assert "联系人王小明称老板已失联" in (await console.client.get("/risk/points/P1")).text
    await console.login(people["analyst"])
    page = (await console.client.get("/risk/points/P1")).text
    assert "王小明" not in page
    assert "联系人王某称老板已失联" in page


async def test_the_reports_page_shows_leaders_no_shell_commands(
    ctx: Context, console: Console, people: dict[str, NewAccount]
) -> None:
    # A real installation with no report yet and no Grafana address: the page explains in
    # words what will happen, and names no command, config key or code to a leader.
    ctx.settings.grafana.url = ""
    await console.login(people["city"])
    page = (await console.client.get("/reports")).text
    page = page[page.index("<main") : page.index("</main>")]  # not the product name in the footer
    assert "每月" in page and "自动生成" in page
    assert "趋势看板" in page
    for command in ("labormon", "<code>", "grafana_url", "dashboards export", "push"):
        assert command not in page, command
